//! Loading model directories: strictness (every mismatch an error naming the key), unknown
//! architectures, missing files, and a quantized checkpoint loaded without a float copy.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mlx_lm::presets::{random_model, save_model_dir};
use mlx_lm::{ModelConfig, load_model};
use mlx_rs::nn::Module;
use mlx_rs::{Array, memory};

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mlx-lm-load-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of fixture `name` whose weights pass through `edit` first.
fn edited_copy(name: &str, tag: &str, edit: impl FnOnce(&mut HashMap<String, Array>)) -> PathBuf {
    let src = common::fixture_dir(name);
    let dir = scratch(tag);
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let (mut weights, _) = mlx_rs::io::load_safetensors(src.join("model.safetensors")).unwrap();
    edit(&mut weights);
    let meta: HashMap<String, String> = HashMap::new();
    mlx_rs::io::save_safetensors(dir.join("model.safetensors"), &weights, &meta).unwrap();
    dir
}

fn load_err(dir: &Path) -> String {
    load_model(dir).unwrap_err().to_string()
}

#[test]
fn checkpoint_mismatches_are_errors_naming_the_key() {
    let dir = edited_copy("llama_f32", "missing", |w| {
        w.remove("model.layers.1.mlp.up_proj.weight");
    });
    let err = load_err(&dir);
    assert!(err.contains("no `model.layers.1.mlp.up_proj.weight`"), "{err}");

    let dir = edited_copy("llama_f32", "extra", |w| {
        w.insert("model.layers.7.mlp.up_proj.weight".into(), Array::scalar(1.0f32));
    });
    let err = load_err(&dir);
    assert!(err.contains("`model.layers.7.mlp.up_proj.weight` is not a parameter"), "{err}");

    let dir = edited_copy("llama_f32", "shape", |w| {
        w.insert(
            "model.norm.weight".into(),
            mlx_rs::ops::ones(&[32], mlx_rs::Dtype::Float32).unwrap(),
        );
    });
    let err = load_err(&dir);
    assert!(err.contains("`model.norm.weight` has shape [32]") && err.contains("[64]"), "{err}");

    // llama's sanitize drops rotary_emb.inv_freq (and the tied lm_head) instead of failing.
    let dir = edited_copy("llama_f32", "sanitized", |w| {
        w.insert("model.layers.0.self_attn.rotary_emb.inv_freq".into(), Array::scalar(1.0f32));
        w.insert("lm_head.weight".into(), Array::scalar(1.0f32));
    });
    assert!(load_model(&dir).is_ok());
}

#[test]
fn unknown_architectures_missing_files_and_bad_configs_are_errors() {
    let dir = scratch("unknown");
    std::fs::write(dir.join("config.json"), r#"{"model_type": "gpt9"}"#).unwrap();
    std::fs::write(dir.join("model.safetensors"), b"").unwrap();
    let err = load_err(&dir);
    assert!(err.contains("unsupported model_type `gpt9`") && err.contains("llama"), "{err}");

    let dir = scratch("noweights");
    std::fs::copy(common::fixture_dir("llama_f32").join("config.json"), dir.join("config.json"))
        .unwrap();
    assert!(load_err(&dir).contains("no model*.safetensors"));

    let dir = scratch("badconfig");
    std::fs::write(dir.join("config.json"), "{ not json").unwrap();
    assert!(load_err(&dir).contains("config.json"));

    let dir = scratch("badfield");
    std::fs::write(dir.join("config.json"), r#"{"model_type": "llama", "hidden_size": "wide"}"#)
        .unwrap();
    std::fs::copy(
        common::fixture_dir("llama_f32").join("model.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    let err = load_err(&dir);
    assert!(err.contains("hidden_size") || err.contains("wide"), "{err}");

    assert!(load_err(Path::new("/no/such/model")).contains("not a model directory"));
}

#[test]
fn a_quantized_checkpoint_loads_without_a_float_copy() {
    // About 230 MB as float32, 33 MB packed at 4 bits.
    let config = ModelConfig::from_json_str(
        r#"{"model_type": "llama", "hidden_size": 1024, "num_hidden_layers": 4,
            "intermediate_size": 2816, "num_attention_heads": 8, "rms_norm_eps": 1e-5,
            "vocab_size": 8192, "tie_word_embeddings": false,
            "quantization": {"group_size": 64, "bits": 4}}"#,
        "config.json",
    )
    .unwrap();
    let dir = scratch("q4");
    {
        let model = random_model(&config, 1).unwrap();
        save_model_dir(model.model.as_ref(), &config, &dir).unwrap();
    }
    memory::clear_cache().unwrap();
    memory::reset_peak_memory().unwrap();
    let before = memory::get_active_memory().unwrap();
    let loaded = load_model(&dir).unwrap();
    let params = loaded.model.parameters();
    mlx_rs::transforms::eval(&params.leaves()).unwrap();
    let packed: usize = params.leaves().iter().map(|a| a.nbytes()).sum();
    let peak = memory::get_peak_memory().unwrap() - before;
    assert!(packed < 40 << 20, "packed size {packed}");
    assert!(peak < 2 * packed, "peak {peak} bytes for {packed} packed bytes");
    std::fs::remove_dir_all(&dir).unwrap();
}
