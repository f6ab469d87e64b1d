//! Qwen3 / Qwen3-MoE against mlx-lm 0.32.0 on the fixtures of `fixtures/models/gen_qwen3.py`,
//! and the Qwen3-MoE `sanitize`, `quant_predicate` and dense/sparse layer choice.

mod common;

use mlx_lm::config::ModuleQuantization;
use mlx_lm::models::qwen3_moe::{self, ModelArgs};
use mlx_lm::{Architecture, ModelConfig, QuantMode, QuantParams, Weights, load_model};
use mlx_rs::nn::Module;
use mlx_rs::{Array, Dtype};
use serde_json::json;

#[test]
fn qwen3_f32_matches_mlx_lm() {
    common::check_fixture("qwen3_f32", 1e-4, 1e-4);
}

#[test]
fn qwen3_q4_bf16_matches_mlx_lm() {
    common::check_fixture("qwen3_q4", 2e-2, 2e-2);
}

#[test]
fn qwen3_moe_f32_matches_mlx_lm() {
    common::check_fixture("qwen3_moe_f32", 1e-4, 1e-4);
}

#[test]
fn qwen3_moe_q4_bf16_matches_mlx_lm() {
    common::check_fixture("qwen3_moe_q4", 2e-2, 2e-2);
}

fn moe_args(extra: serde_json::Value) -> ModelArgs {
    let mut v = json!({
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "num_experts": 3,
        "num_experts_per_tok": 2,
        "decoder_sparse_step": 2,
        "mlp_only_layers": [],
        "moe_intermediate_size": 8,
        "norm_topk_prob": true,
        "rms_norm_eps": 1e-6,
        "vocab_size": 96,
        "rope_theta": 10000.0,
        "max_position_embeddings": 128,
        "tie_word_embeddings": true,
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

fn param_shapes(model: &dyn mlx_lm::LanguageModel) -> std::collections::HashMap<String, Vec<i32>> {
    model.named_parameters().into_iter().map(|(k, v)| (k, v.shape().to_vec())).collect()
}

#[test]
fn qwen3_moe_picks_dense_and_sparse_layers_as_mlx_lm() {
    let sparse = |args: &ModelArgs| -> Vec<bool> {
        (0..args.num_hidden_layers).map(|i| args.is_sparse(i).unwrap()).collect()
    };
    assert_eq!(sparse(&moe_args(json!({}))), [false, true]);
    let args = moe_args(
        json!({"num_hidden_layers": 4, "decoder_sparse_step": 1, "mlp_only_layers": [0, 2]}),
    );
    assert_eq!(sparse(&args), [false, true, false, true]);
    assert_eq!(
        sparse(&moe_args(json!({"num_experts": 0, "decoder_sparse_step": 1}))),
        [false, false]
    );
    assert!(moe_args(json!({"decoder_sparse_step": 0})).is_sparse(0).is_err());
    // An experts-free config never divides by the step (mlx-lm short-circuits too).
    assert!(!moe_args(json!({"num_experts": 0, "decoder_sparse_step": 0})).is_sparse(1).unwrap());

    // The built model has a dense MLP in layer 0 and experts in layer 1.
    let model = qwen3_moe::Model::new(&moe_args(json!({})), "qwen3_moe").unwrap();
    let shapes = param_shapes(&model);
    assert_eq!(shapes["model.layers.0.mlp.gate_proj.weight"], [64, 64]);
    assert!(!shapes.contains_key("model.layers.0.mlp.gate.weight"));
    assert_eq!(shapes["model.layers.1.mlp.gate.weight"], [3, 64]);
    assert_eq!(shapes["model.layers.1.mlp.switch_mlp.gate_proj.weight"], [3, 8, 64]);
    assert_eq!(shapes["model.layers.1.mlp.switch_mlp.down_proj.weight"], [3, 64, 8]);
    assert!(!shapes.contains_key("model.layers.1.mlp.gate_proj.weight"));
    assert!(!shapes.contains_key("lm_head.weight"));
    assert!(
        qwen3_moe::Model::new(&moe_args(json!({"num_experts_per_tok": 4})), "qwen3_moe").is_err()
    );
}

/// A `[rows, cols]` f32 array whose values encode `tag` and the position.
fn tagged(tag: f32, rows: i32, cols: i32) -> Array {
    let data: Vec<f32> = (0..rows * cols).map(|i| tag * 1000.0 + i as f32).collect();
    Array::from_slice(&data, &[rows, cols]).unwrap()
}

#[test]
fn qwen3_moe_sanitize_stacks_experts_in_order() {
    let model = qwen3_moe::Model::new(&moe_args(json!({})), "qwen3_moe").unwrap();
    let projections = [("gate_proj", 8, 64), ("up_proj", 8, 64), ("down_proj", 64, 8)];
    let mut weights = Weights::new();
    for (p, (name, rows, cols)) in projections.iter().enumerate() {
        for e in 0..3 {
            let tag = (p * 10 + e) as f32;
            let prefix = format!("model.layers.1.mlp.experts.{e}.{name}");
            weights.insert(format!("{prefix}.weight"), tagged(tag, *rows, *cols));
            weights.insert(format!("{prefix}.scales"), tagged(tag + 0.25, *rows, 2));
            weights.insert(format!("{prefix}.biases"), tagged(tag + 0.5, *rows, 2));
        }
    }
    let router = tagged(7.0, 3, 64);
    weights.insert("model.layers.1.mlp.gate.weight".into(), router.clone());
    weights.insert("lm_head.weight".into(), tagged(9.0, 96, 64));

    let out = model.sanitize(weights.clone()).unwrap();
    let mut keys: Vec<&String> = out.keys().collect();
    keys.sort();
    let mut want: Vec<String> = projections
        .iter()
        .flat_map(|(n, _, _)| {
            ["biases", "scales", "weight"].map(|t| format!("model.layers.1.mlp.switch_mlp.{n}.{t}"))
        })
        .chain(["model.layers.1.mlp.gate.weight".to_owned()])
        .collect();
    want.sort();
    assert_eq!(keys, want.iter().collect::<Vec<_>>(), "tied lm_head dropped, experts stacked");
    for (p, (name, rows, cols)) in projections.iter().enumerate() {
        for (t, offset, width) in [("weight", 0.0, *cols), ("scales", 0.25, 2), ("biases", 0.5, 2)]
        {
            let stacked = &out[&format!("model.layers.1.mlp.switch_mlp.{name}.{t}")];
            assert_eq!(stacked.shape(), [3, *rows, width], "{name}.{t}");
            let got = stacked.to_vec::<f32>().unwrap();
            let per = (rows * width) as usize;
            for e in 0..3usize {
                let tag = (p * 10 + e) as f32 + offset;
                let want = tagged(tag, *rows, width).to_vec::<f32>().unwrap();
                assert_eq!(&got[e * per..(e + 1) * per], want.as_slice(), "{name}.{t} expert {e}");
            }
        }
    }
    assert_eq!(
        out["model.layers.1.mlp.gate.weight"].to_vec::<f32>().unwrap(),
        router.to_vec::<f32>().unwrap()
    );

    // An untied model keeps its lm_head; a missing expert is an error naming it.
    let untied =
        qwen3_moe::Model::new(&moe_args(json!({"tie_word_embeddings": false})), "qwen3_moe")
            .unwrap();
    assert!(untied.sanitize(weights.clone()).unwrap().contains_key("lm_head.weight"));
    weights.remove("model.layers.1.mlp.experts.2.down_proj.weight");
    let err = model.sanitize(weights).unwrap_err().to_string();
    assert!(err.contains("model.layers.1.mlp.experts.2.down_proj.weight"), "{err}");
}

#[test]
fn qwen3_moe_loads_a_per_expert_checkpoint() {
    // The f32 fixture with its experts split back into Hugging Face's per-expert keys loads
    // through sanitize and gives mlx-lm's logits.
    let dir = common::fixture_dir("qwen3_moe_f32");
    let config = ModelConfig::load(&dir).unwrap();
    let mut weights = mlx_lm::load::read_weights(&dir).unwrap();
    let stacked: Vec<String> =
        weights.keys().filter(|k| k.contains(".switch_mlp.")).cloned().collect();
    assert_eq!(stacked.len(), 3);
    for key in stacked {
        let w = weights.remove(&key).unwrap();
        assert_eq!(w.dim(0).unwrap(), 8);
        for e in 0..8 {
            weights.insert(
                key.replace(".switch_mlp.", &format!(".experts.{e}.")),
                w.index(e).unwrap(),
            );
        }
    }
    let model = mlx_lm::models::build(&config, Some(weights)).unwrap();
    let want = common::expected("qwen3_moe_f32");
    let prompt = Array::from_slice(&want.prompt, &[1, want.prompt.len() as i32]).unwrap();
    let got = model.forward(&prompt, None).unwrap().to_vec::<f32>().unwrap();
    let tol = if common::on_gpu() { 2e-2 } else { 1e-4 };
    for (i, (g, w)) in got.iter().zip(&want.logits).enumerate() {
        assert!((g - w).abs() <= tol + tol * w.abs(), "logit {i}: got {g}, want {w}");
    }
}

#[test]
fn qwen3_moe_quant_predicate_puts_routers_at_8_bits() {
    let model = qwen3_moe::Model::new(&moe_args(json!({})), "qwen3_moe").unwrap();
    let router = QuantParams { group_size: 64, bits: 8, mode: QuantMode::Affine };
    assert_eq!(model.quant_predicate("model.layers.1.mlp.gate"), Some(Some(router)));
    for path in [
        "model.layers.0.mlp.gate_proj",
        "model.layers.1.mlp.switch_mlp.gate_proj",
        "model.layers.1.self_attn.q_proj",
        "model.embed_tokens",
        "lm_head",
    ] {
        assert_eq!(model.quant_predicate(path), None, "{path}");
    }

    // The q4 fixture's config records what mlx-lm's predicate chose: exactly the routers.
    let dir = common::fixture_dir("qwen3_moe_q4");
    let config = ModelConfig::load(&dir).unwrap();
    let q = config.quantization.as_ref().unwrap();
    assert_eq!(q.default, QuantParams { group_size: 32, bits: 4, mode: QuantMode::Affine });
    let overrides: Vec<(&str, ModuleQuantization)> =
        q.overrides.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        overrides,
        [
            ("model.layers.1.mlp.gate", ModuleQuantization::Params(router)),
            ("model.layers.2.mlp.gate", ModuleQuantization::Params(router)),
        ]
    );
    for (path, _) in &overrides {
        assert_eq!(model.quant_predicate(path), Some(Some(router)), "{path}");
    }

    // Loading quantizes the routers with 8 bits in groups of 64 (64 inputs: 16 words, one
    // scale per row) and the experts with 4 bits in groups of 32.
    let loaded = load_model(&dir).unwrap();
    let params: std::collections::HashMap<String, Array> =
        loaded.model.named_parameters().into_iter().collect();
    for l in [1, 2] {
        let gate = |t: &str| &params[&format!("model.layers.{l}.mlp.gate.{t}")];
        assert_eq!(gate("weight").shape(), [8, 16]);
        assert_eq!(gate("weight").dtype(), Dtype::Uint32);
        assert_eq!(gate("scales").shape(), [8, 1]);
        assert_eq!(gate("biases").shape(), [8, 1]);
        let up = |t: &str| &params[&format!("model.layers.{l}.mlp.switch_mlp.up_proj.{t}")];
        assert_eq!(up("weight").shape(), [8, 32, 8]);
        assert_eq!(up("scales").shape(), [8, 32, 2]);
    }
    assert_eq!(params["model.layers.0.mlp.gate_proj.weight"].shape(), [64, 8]);
    assert!(!params.contains_key("lm_head.weight"));
}

#[test]
fn qwen3_moe_sorted_expert_path_matches_token_by_token() {
    // 40 positions route 80 (token, expert) pairs, past SwitchGlu's sort threshold of 64; one
    // position at a time through the cache routes 2. Both must give the same logits.
    let loaded = load_model(common::fixture_dir("qwen3_moe_f32")).unwrap();
    let model = loaded.model.as_ref();
    let tokens: Vec<i32> = (0..40).map(|i| (i * 37 + 5) % 96).collect();
    let whole = model
        .forward(&Array::from_slice(&tokens, &[1, 40]).unwrap(), None)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let mut cache = model.make_cache().unwrap();
    let tol = if common::on_gpu() { 2e-2 } else { 1e-4 };
    for (i, t) in tokens.iter().enumerate() {
        let step = model
            .forward(&Array::from_slice(&[*t], &[1, 1]).unwrap(), Some(&mut cache))
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let want = &whole[i * 96..(i + 1) * 96];
        for (j, (g, w)) in step.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol + tol * w.abs(), "position {i} logit {j}: {g} vs {w}");
        }
    }
}

fn qwen3_args(extra: serde_json::Value) -> mlx_lm::models::qwen3::ModelArgs {
    let mut v = json!({
        "hidden_size": 64,
        "num_hidden_layers": 1,
        "intermediate_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "rms_norm_eps": 1e-6,
        "vocab_size": 96,
        "max_position_embeddings": 128,
        "tie_word_embeddings": true,
        "rope_theta": 10000.0,
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

#[test]
fn qwen3_sanitize_and_rope_config_follow_mlx_lm() {
    use mlx_lm::models::qwen3::Model;
    let mut weights = Weights::new();
    weights.insert("lm_head.weight".into(), tagged(1.0, 96, 64));
    weights.insert("model.norm.weight".into(), tagged(2.0, 1, 64));
    let tied = Model::new(&qwen3_args(json!({})), "qwen3").unwrap();
    let out = tied.sanitize(weights.clone()).unwrap();
    assert!(!out.contains_key("lm_head.weight") && out.contains_key("model.norm.weight"));
    let untied = Model::new(&qwen3_args(json!({"tie_word_embeddings": false})), "qwen3").unwrap();
    let out = untied.sanitize(weights).unwrap();
    assert_eq!(out["lm_head.weight"].shape(), [96, 64]);

    // `rope_parameters` fills in a missing `rope_theta` and `rope_scaling`, never overrides.
    let nested = json!({"rope_type": "linear", "factor": 4.0, "rope_theta": 500.0});
    let args = qwen3_args(json!({"rope_theta": null, "rope_parameters": nested}));
    let (theta, scaling) = args.rope_config().unwrap();
    assert_eq!(theta, 500.0);
    assert_eq!(scaling.unwrap()["factor"], 4.0);
    let args = qwen3_args(json!({"rope_parameters": nested, "rope_scaling": {"type": "default"}}));
    let (theta, scaling) = args.rope_config().unwrap();
    assert_eq!(theta, 10000.0);
    assert_eq!(scaling.unwrap()["type"], "default");
    let err = Model::new(&qwen3_args(json!({"rope_theta": null})), "qwen3").unwrap_err();
    assert!(err.to_string().contains("rope_theta is missing"), "{err}");
    let bad = qwen3_args(
        json!({"rope_parameters": {"rope_type": "yarn", "factor": 2.0, "rope_theta": 1.0}}),
    );
    assert!(Model::new(&bad, "qwen3").is_err(), "unsupported rope types are errors");
}
