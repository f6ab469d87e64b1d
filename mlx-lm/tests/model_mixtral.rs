//! Mixtral against mlx-lm 0.32.0 on the fixtures of `fixtures/models/gen_mixtral.py`, and its
//! `sanitize` on Hugging Face's per-expert checkpoint layout.

mod common;

use std::collections::HashMap;

use mlx_lm::models::mixtral::{Model, ModelArgs};
use mlx_lm::{Architecture, Weights, load_model};
use mlx_rs::io::{load_safetensors, save_safetensors};
use mlx_rs::{Array, Dtype, ops};

#[test]
fn mixtral_f32_matches_mlx_lm() {
    common::check_fixture("mixtral_f32", 1e-4, 1e-4);
}

#[test]
fn mixtral_q4_bf16_matches_mlx_lm() {
    common::check_fixture("mixtral_q4", 2e-2, 2e-2);
}

/// 40 prompt tokens x top-2 = 80 (token, expert) pairs: SwitchGlu's sorted path.
#[test]
fn mixtral_long_prompt_sorted_experts_matches_mlx_lm() {
    common::check_fixture("mixtral_long_f32", 1e-4, 1e-4);
}

/// The sorted path through `gather_qmm`.
#[test]
fn mixtral_long_prompt_q4_bf16_matches_mlx_lm() {
    common::check_fixture("mixtral_long_q4", 2e-2, 2e-2);
}

fn tiny_args(tied: bool) -> ModelArgs {
    serde_json::from_value(serde_json::json!({
        "model_type": "mixtral",
        "hidden_size": 4,
        "num_hidden_layers": 2,
        "intermediate_size": 3,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "num_local_experts": 3,
        "num_experts_per_tok": 2,
        "vocab_size": 5,
        "tie_word_embeddings": tied,
    }))
    .unwrap()
}

/// `start, start + 1, ...` in the given shape (float32).
fn counting(shape: &[i32], start: f32) -> Array {
    let n: i32 = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| start + i as f32).collect();
    Array::from_slice(&values, shape).unwrap()
}

#[test]
fn sanitize_stacks_per_expert_weights() {
    let model = Model::new(&tiny_args(true), "mixtral").unwrap();
    let mut weights = Weights::new();
    // w1 = gate_proj [hidden 3, in 4], w2 = down_proj [4, 3], w3 = up_proj [3, 4]; expert e of
    // layer l starts counting at 1000 l + 100 e (+ 10 for w2, + 20 for w3).
    for l in 0..2 {
        for e in 0..3 {
            let base = (1000 * l + 100 * e) as f32;
            let p = format!("model.layers.{l}.block_sparse_moe.experts.{e}");
            weights.insert(format!("{p}.w1.weight"), counting(&[3, 4], base));
            weights.insert(format!("{p}.w2.weight"), counting(&[4, 3], base + 10.0));
            weights.insert(format!("{p}.w3.weight"), counting(&[3, 4], base + 20.0));
        }
    }
    weights.insert("model.norm.weight".into(), counting(&[4], 7.0));
    weights.insert("lm_head.weight".into(), counting(&[5, 4], 0.0));

    let out = model.sanitize(weights).unwrap();
    let mut keys: Vec<&str> = out.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "model.layers.0.block_sparse_moe.switch_mlp.down_proj.weight",
            "model.layers.0.block_sparse_moe.switch_mlp.gate_proj.weight",
            "model.layers.0.block_sparse_moe.switch_mlp.up_proj.weight",
            "model.layers.1.block_sparse_moe.switch_mlp.down_proj.weight",
            "model.layers.1.block_sparse_moe.switch_mlp.gate_proj.weight",
            "model.layers.1.block_sparse_moe.switch_mlp.up_proj.weight",
            "model.norm.weight",
        ],
        "tied lm_head dropped, experts stacked"
    );
    let get = |k: &str| out[k].clone();
    let gate = get("model.layers.1.block_sparse_moe.switch_mlp.gate_proj.weight");
    assert_eq!(gate.shape(), [3, 3, 4]);
    let down = get("model.layers.1.block_sparse_moe.switch_mlp.down_proj.weight");
    assert_eq!(down.shape(), [3, 4, 3]);
    // Expert 2 of layer 1: w1 counts from 1200, w2 from 1210, w3 from 1220.
    let expert = |a: &Array| a.index(2).unwrap().reshape([-1]).unwrap().to_vec::<f32>().unwrap();
    let from = |s: f32| (0..12).map(|i| s + i as f32).collect::<Vec<f32>>();
    assert_eq!(expert(&gate), from(1200.0));
    assert_eq!(expert(&down), from(1210.0));
    let up = get("model.layers.1.block_sparse_moe.switch_mlp.up_proj.weight");
    assert_eq!(expert(&up), from(1220.0));
    let first = get("model.layers.0.block_sparse_moe.switch_mlp.gate_proj.weight");
    assert_eq!(first.index(0).unwrap().reshape([-1]).unwrap().to_vec::<f32>().unwrap(), from(0.0));
    assert_eq!(get("model.norm.weight").to_vec::<f32>().unwrap(), [7.0, 8.0, 9.0, 10.0]);
}

#[test]
fn sanitize_keeps_an_untied_lm_head_and_stacked_checkpoints() {
    let model = Model::new(&tiny_args(false), "mixtral").unwrap();
    let mut weights = Weights::new();
    let key = "model.layers.0.block_sparse_moe.switch_mlp.gate_proj.weight";
    weights.insert(key.into(), counting(&[3, 3, 4], 0.0));
    weights.insert("lm_head.weight".into(), counting(&[5, 4], 0.0));
    let out = model.sanitize(weights).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[key].shape(), [3, 3, 4]);
    assert!(out.contains_key("lm_head.weight"));
}

#[test]
fn sanitize_reports_a_missing_expert() {
    let model = Model::new(&tiny_args(true), "mixtral").unwrap();
    let mut weights = Weights::new();
    for e in [0, 2] {
        let key = format!("model.layers.0.block_sparse_moe.experts.{e}.w1.weight");
        weights.insert(key, counting(&[3, 4], 0.0));
    }
    let err = model.sanitize(weights).unwrap_err().to_string();
    assert!(err.contains("model.layers.0.block_sparse_moe.experts.1.w1.weight"), "{err}");
}

#[test]
fn bad_routing_config_is_an_error() {
    let mut args = tiny_args(true);
    args.num_experts_per_tok = 4;
    let err = Model::new(&args, "mixtral").unwrap_err().to_string();
    assert!(err.contains("num_experts_per_tok"), "{err}");
}

/// The 4-bit fixture rewritten in Hugging Face's layout (`experts.{e}.w1/w2/w3` with their
/// `scales` and `biases`) loads through `sanitize` and computes mlx-lm's logits.
#[test]
fn per_expert_quantized_checkpoint_loads_through_sanitize() {
    let name = "mixtral_q4";
    let src = common::fixture_dir(name);
    let (stacked, _) = load_safetensors(src.join("model.safetensors")).unwrap();
    let mut split: HashMap<String, Array> = HashMap::new();
    let mut unstacked = 0;
    for (key, value) in stacked {
        let Some((prefix, rest)) = key.split_once(".switch_mlp.") else {
            split.insert(key, value);
            continue;
        };
        let (proj, part) = rest.split_once('.').unwrap();
        let w = match proj {
            "gate_proj" => "w1",
            "down_proj" => "w2",
            "up_proj" => "w3",
            other => panic!("unexpected {other}"),
        };
        for (e, expert) in
            ops::split(&value, value.dim(0).unwrap(), 0).unwrap().into_iter().enumerate()
        {
            split.insert(format!("{prefix}.experts.{e}.{w}.{part}"), expert.squeeze(0).unwrap());
            unstacked += 1;
        }
    }
    // 2 layers x 3 projections x {weight, scales, biases} x 8 experts.
    assert_eq!(unstacked, 2 * 3 * 3 * 8);
    let dir = std::env::temp_dir().join(format!("mlx-lm-mixtral-hf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    save_safetensors(dir.join("model.safetensors"), &split, &HashMap::<String, String>::new())
        .unwrap();

    let want = common::expected(name);
    let loaded = load_model(&dir).unwrap();
    let prompt = Array::from_slice(&want.prompt, &[1, want.prompt.len() as i32]).unwrap();
    let logits = loaded.model.forward(&prompt, None).unwrap().astype(Dtype::Float32).unwrap();
    let got = logits.to_vec::<f32>().unwrap();
    assert_eq!(got.len(), want.logits.len());
    for (i, (g, w)) in got.iter().zip(&want.logits).enumerate() {
        assert!((g - w).abs() <= 2e-2 + 2e-2 * w.abs(), "logit {i}: got {g}, want {w}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
