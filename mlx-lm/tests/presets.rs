//! Random-weight presets: the same weights as `examples/presets.py` (checksums and logits from
//! `golden/gen_presets.py`), every preset config buildable, and the mlx-community round trip.

use mlx_lm::presets::{PRESETS, Preset, random_model, save_model_dir, weights_checksum};
use mlx_lm::{ModelConfig, load_model};
use mlx_rs::{Array, Dtype};
use serde_json::Value;

fn golden() -> Vec<Value> {
    let text = include_str!("golden/presets.json");
    serde_json::from_str(text).unwrap()
}

fn logits(model: &dyn mlx_lm::LanguageModel) -> Array {
    let tokens = Array::from_slice(&[1i32, 2, 3, 4], &[1, 4]).unwrap();
    model.forward(&tokens, None).unwrap().astype(Dtype::Float32).unwrap()
}

#[test]
fn random_weights_equal_pythons() {
    for case in golden() {
        let config = ModelConfig::from_json_str(&case["config"].to_string(), "case").unwrap();
        let loaded = random_model(&config, case["seed"].as_u64().unwrap()).unwrap();
        let digest = format!("{:016x}", weights_checksum(loaded.model.as_ref()).unwrap());
        assert_eq!(digest, case["checksum"].as_str().unwrap(), "{}", case["name"]);
        let out = logits(loaded.model.as_ref());
        let sum = out.sum(.., false).unwrap().item::<f32>().unwrap();
        let want = case["logits_sum"].as_f64().unwrap() as f32;
        assert!((sum - want).abs() <= 1e-3 * want.abs().max(1.0), "logits sum {sum} vs {want}");
        let last = out.index((0, -1, ..8)).unwrap().to_vec::<f32>().unwrap();
        for (g, w) in last.iter().zip(case["logits_first"].as_array().unwrap()) {
            assert!((g - w.as_f64().unwrap() as f32).abs() < 1e-2, "{g} vs {w}");
        }
    }
}

#[test]
fn weights_follow_the_quantization_overrides() {
    let case = &golden()[0];
    let config = ModelConfig::from_json_str(&case["config"].to_string(), "case").unwrap();
    let loaded = random_model(&config, 3).unwrap();
    let params = loaded.model.parameters();
    // 8-bit override: 128 inputs in 32 words; 4-bit elsewhere: 16 words.
    assert_eq!(params.leaf("model.layers.1.mlp.down_proj.weight").unwrap().shape(), [128, 64]);
    assert_eq!(params.leaf("model.layers.0.mlp.down_proj.weight").unwrap().shape(), [128, 32]);
    // `lm_head: false` stays a bf16 float weight.
    let head = params.leaf("lm_head.weight").unwrap();
    assert_eq!((head.shape(), head.dtype()), (&[128, 128][..], Dtype::Bfloat16));
    // Biases centre the codes: bias = -scale * 15 / 2.
    let s =
        params.leaf("model.layers.0.mlp.up_proj.scales").unwrap().astype(Dtype::Float32).unwrap();
    let b =
        params.leaf("model.layers.0.mlp.up_proj.biases").unwrap().astype(Dtype::Float32).unwrap();
    for (s, b) in s.to_vec::<f32>().unwrap().iter().zip(b.to_vec::<f32>().unwrap()) {
        assert!((b + s * 7.5).abs() <= 1e-2 * b.abs(), "bias {b} for scale {s}");
    }
    // Another seed, other weights.
    let other = random_model(&config, 4).unwrap();
    assert_ne!(
        weights_checksum(loaded.model.as_ref()).unwrap(),
        weights_checksum(other.model.as_ref()).unwrap()
    );
}

#[test]
fn saved_preset_loads_back_as_the_same_model() {
    let case = &golden()[0];
    let config = ModelConfig::from_json_str(&case["config"].to_string(), "case").unwrap();
    let loaded = random_model(&config, 3).unwrap();
    let dir = std::env::temp_dir().join(format!("mlx-lm-preset-{}", std::process::id()));
    save_model_dir(loaded.model.as_ref(), &config, &dir).unwrap();
    let back = load_model(&dir).unwrap();
    assert_eq!(
        weights_checksum(back.model.as_ref()).unwrap(),
        weights_checksum(loaded.model.as_ref()).unwrap()
    );
    let (a, b) = (logits(loaded.model.as_ref()), logits(back.model.as_ref()));
    assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_preset_config_parses_and_unknown_names_are_listed() {
    for preset in PRESETS {
        let config = preset.config().unwrap();
        assert!(config.quantization.is_some(), "{}", preset.name);
        assert!(!config.eos_token_ids.is_empty(), "{}", preset.name);
    }
    let err = Preset::named("llama-1t").unwrap_err().to_string();
    assert!(err.contains("unknown preset `llama-1t`") && err.contains("mistral-7b-4bit"), "{err}");
}

#[test]
fn mistral_preset_has_the_real_packed_shapes() {
    // Built lazily: nothing of the 7B model is drawn or evaluated here.
    let config = Preset::named("mistral-7b-4bit").unwrap().config().unwrap();
    let model = mlx_lm::models::build(&config, None).unwrap();
    let params = model.parameters();
    let q = params.leaf("model.layers.31.self_attn.q_proj.weight").unwrap();
    assert_eq!((q.shape(), q.dtype()), (&[4096, 512][..], Dtype::Uint32));
    let k = params.leaf("model.layers.0.self_attn.k_proj.scales").unwrap();
    assert_eq!(k.shape(), [1024, 64]);
    assert_eq!(params.leaf("model.embed_tokens.weight").unwrap().shape(), [32768, 512]);
    assert_eq!(params.leaf("lm_head.weight").unwrap().shape(), [32768, 512]);
}

#[test]
fn every_preset_has_mlx_lms_parameters() {
    use sha2::{Digest, Sha256};
    let want: Value = serde_json::from_str(include_str!("golden/preset_structures.json")).unwrap();
    for preset in PRESETS {
        // Built lazily: nothing of these models is drawn or evaluated.
        let model = mlx_lm::models::build(&preset.config().unwrap(), None).unwrap();
        let mut params = model.named_parameters();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let listing: Vec<String> = params
            .iter()
            .map(|(p, a)| format!("{p} {:?} mlx.core.{}", a.shape(), a.dtype().name()))
            .collect();
        let digest = Sha256::digest(listing.join("\n").as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let bytes: usize = params.iter().map(|(_, a)| a.nbytes()).sum();
        let w = &want[preset.name];
        assert_eq!(params.len() as u64, w["parameters"].as_u64().unwrap(), "{}", preset.name);
        assert_eq!(bytes as u64, w["bytes"].as_u64().unwrap(), "{}", preset.name);
        assert_eq!(hex, w["digest"].as_str().unwrap(), "{}", preset.name);
    }
}
