//! GLM-4 MoE against mlx-lm 0.32.0 on the fixtures of `fixtures/models/gen_glm4_moe.py`, its
//! router against mlx-lm's `group_expert_select`, and its `sanitize` on per-expert checkpoints.

mod common;

use mlx_lm::load::read_weights;
use mlx_lm::models::glm4_moe::{Model, ModelArgs, group_expert_select};
use mlx_lm::{Architecture, ModelConfig, Weights, models};
use mlx_rs::{Array, Dtype, Ellipsis, ops};

#[test]
fn glm4_moe_f32_matches_mlx_lm() {
    common::check_fixture("glm4_moe_f32", 1e-4, 1e-4);
}

#[test]
fn glm4_moe_q4_bf16_matches_mlx_lm() {
    common::check_fixture("glm4_moe_q4", 2e-2, 2e-2);
}

fn sorted_pairs(inds: &Array, weights: &Array) -> Vec<Vec<(u32, f32)>> {
    let k = inds.dim(-1).unwrap() as usize;
    let i = inds.astype(Dtype::Uint32).unwrap().to_vec::<u32>().unwrap();
    let w = weights.to_vec::<f32>().unwrap();
    i.chunks(k)
        .zip(w.chunks(k))
        .map(|(i, w)| {
            let mut row: Vec<(u32, f32)> = i.iter().copied().zip(w.iter().copied()).collect();
            row.sort_by_key(|p| p.0);
            row
        })
        .collect()
}

fn assert_rows(got: &[Vec<(u32, f32)>], want: &[&[(u32, f32)]]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.len(), w.len());
        for ((gi, gw), (wi, ww)) in g.iter().zip(w.iter()) {
            assert_eq!(gi, wi, "experts {g:?} vs {w:?}");
            assert!((gw - ww).abs() < 1e-6, "weights {g:?} vs {w:?}");
        }
    }
}

/// Golden values from mlx-lm 0.32.0's `group_expert_select` (MLX 0.32.2).
#[test]
fn group_expert_select_matches_mlx_lm() {
    let gates = Array::from_slice(
        &[0.5f32, -1.0, 2.0, 0.0, 1.5, -0.5, 0.25, 1.0, 1.0, 2.0, -2.0, 0.5, 0.0, -1.0, 3.0, -0.5],
        &[2, 8],
    )
    .unwrap();
    let bias = Array::from_slice(&[0.1f32, 0.0, -0.2, 0.3, -0.1, 0.2, 0.0, -0.3], &[8]).unwrap();
    // 4 groups of 2, 2 kept, top 3, normalised, times 2.5.
    let (inds, w) = group_expert_select(&gates, &bias, 3, 4, 2, 2.5, true).unwrap();
    assert_eq!(inds.bound(), 8);
    assert_eq!(w.dtype(), Dtype::Float32);
    assert_rows(
        &sorted_pairs(inds.array(), &w),
        &[
            &[(2, 1.001_647_2), (3, 0.568_602_7), (4, 0.929_750_1)],
            &[(0, 0.712_691_2), (1, 0.858_667_6), (6, 0.928_641_3)],
        ],
    );
    // 2 groups of 4, 1 kept, top 2, weights the raw sigmoid scores.
    let bias = Array::from_slice(&[-2.0f32, -2.0, -2.0, -2.0, 0.0, 0.0, 0.0, 0.0], &[8]).unwrap();
    let (inds, w) = group_expert_select(&gates, &bias, 2, 2, 1, 1.0, false).unwrap();
    assert_rows(
        &sorted_pairs(inds.array(), &w),
        &[&[(4, 0.817_574_5), (7, 0.731_058_6)], &[(4, 0.5), (6, 0.952_574_1)]],
    );
    // bf16 router logits are scored in float32.
    let (_, w16) =
        group_expert_select(&gates.astype(Dtype::Bfloat16).unwrap(), &bias, 2, 2, 1, 1.0, false)
            .unwrap();
    assert_eq!(w16.dtype(), Dtype::Float32);
}

/// The f32 fixture's layer count and experts, for building a model by hand.
fn fixture_args(name: &str) -> (ModelConfig, ModelArgs) {
    let config = ModelConfig::load(common::fixture_dir(name)).unwrap();
    let args: ModelArgs = config.parse_as().unwrap();
    (config, args)
}

/// The fixture's checkpoint with every `switch_mlp` tensor split into per-expert tensors
/// `experts.{e}.*` (as in Hugging Face checkpoints) and a multi-token-prediction layer added.
fn per_expert_checkpoint(name: &str, n_experts: i32, n_layers: i32) -> Weights {
    let stacked = read_weights(&common::fixture_dir(name)).unwrap();
    let mut weights = Weights::new();
    for (k, v) in stacked {
        match k.split_once(".mlp.switch_mlp.") {
            Some((prefix, rest)) => {
                for e in 0..n_experts {
                    let expert = v.index((e, Ellipsis)).unwrap();
                    weights.insert(format!("{prefix}.mlp.experts.{e}.{rest}"), expert);
                }
            }
            None => {
                weights.insert(k, v);
            }
        }
    }
    let mtp = format!("model.layers.{n_layers}");
    let junk = ops::ones(&[3, 5], Dtype::Float32).unwrap();
    for key in
        ["eh_proj.weight", "enorm.weight", "mlp.experts.0.gate_proj.weight", "mlp.gate.weight"]
    {
        weights.insert(format!("{mtp}.{key}"), junk.clone());
    }
    weights
}

#[test]
fn sanitize_stacks_experts_and_drops_the_mtp_layer() {
    let (_, args) = fixture_args("glm4_moe_f32");
    let model = Model::new(&args, "glm4_moe").unwrap();
    let mut weights = Weights::new();
    // Experts e of layer 1: gate/up [16, 32] filled with 10e + 1 / 10e + 2, down [32, 16] with
    // 10e + 3; gate_proj also has scales and biases (as a quantized checkpoint).
    for e in 0..8 {
        let fill =
            |shape: &[i32], v: i32| ops::full(shape, &Array::scalar(v as f32), None).unwrap();
        let p = format!("model.layers.1.mlp.experts.{e}");
        weights.insert(format!("{p}.gate_proj.weight"), fill(&[16, 32], 10 * e + 1));
        weights.insert(format!("{p}.up_proj.weight"), fill(&[16, 32], 10 * e + 2));
        weights.insert(format!("{p}.down_proj.weight"), fill(&[32, 16], 10 * e + 3));
        weights.insert(format!("{p}.gate_proj.scales"), fill(&[16, 1], -e));
        weights.insert(format!("{p}.gate_proj.biases"), fill(&[16, 1], 100 + e));
    }
    weights.insert(
        "model.layers.0.mlp.gate_proj.weight".into(),
        ops::zeros(&[64, 32], Dtype::Float32).unwrap(),
    );
    weights.insert("model.norm.weight".into(), ops::ones(&[32], Dtype::Float32).unwrap());
    for key in [
        "model.layers.3.eh_proj.weight",
        "model.layers.3.mlp.experts.0.up_proj.weight",
        "model.layers.4.x",
    ] {
        weights.insert(key.into(), ops::ones(&[2], Dtype::Float32).unwrap());
    }
    let out = model.sanitize(weights).unwrap();
    let mut keys: Vec<&str> = out.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "model.layers.0.mlp.gate_proj.weight",
            "model.layers.1.mlp.switch_mlp.down_proj.weight",
            "model.layers.1.mlp.switch_mlp.gate_proj.biases",
            "model.layers.1.mlp.switch_mlp.gate_proj.scales",
            "model.layers.1.mlp.switch_mlp.gate_proj.weight",
            "model.layers.1.mlp.switch_mlp.up_proj.weight",
            "model.norm.weight",
        ]
    );
    let per_expert = |key: &str, shape: &[i32]| -> Vec<f32> {
        let a = &out[key];
        assert_eq!(a.shape(), shape, "{key}");
        let per = a.size() / 8;
        let v = a.to_vec::<f32>().unwrap();
        (0..8)
            .map(|e| {
                let row = &v[e * per..(e + 1) * per];
                assert!(row.iter().all(|x| *x == row[0]), "{key}: expert {e} is not one value");
                row[0]
            })
            .collect()
    };
    let tens = |add: f32| (0..8).map(|e| 10.0 * e as f32 + add).collect::<Vec<_>>();
    assert_eq!(
        per_expert("model.layers.1.mlp.switch_mlp.gate_proj.weight", &[8, 16, 32]),
        tens(1.0)
    );
    assert_eq!(per_expert("model.layers.1.mlp.switch_mlp.up_proj.weight", &[8, 16, 32]), tens(2.0));
    assert_eq!(
        per_expert("model.layers.1.mlp.switch_mlp.down_proj.weight", &[8, 32, 16]),
        tens(3.0)
    );
    let neg: Vec<f32> = (0..8).map(|e| -(e as f32)).collect();
    assert_eq!(per_expert("model.layers.1.mlp.switch_mlp.gate_proj.scales", &[8, 16, 1]), neg);
    let hundreds: Vec<f32> = (0..8).map(|e| 100.0 + e as f32).collect();
    assert_eq!(per_expert("model.layers.1.mlp.switch_mlp.gate_proj.biases", &[8, 16, 1]), hundreds);
}

#[test]
fn sanitize_names_a_missing_expert() {
    let (_, args) = fixture_args("glm4_moe_f32");
    let model = Model::new(&args, "glm4_moe").unwrap();
    let mut weights = Weights::new();
    for e in [0, 1, 2, 4, 5, 6, 7] {
        weights.insert(
            format!("model.layers.2.mlp.experts.{e}.down_proj.weight"),
            ops::zeros(&[32, 16], Dtype::Float32).unwrap(),
        );
    }
    let err = model.sanitize(weights).unwrap_err().to_string();
    assert!(err.contains("model.layers.2.mlp.experts.3.down_proj.weight"), "{err}");
}

/// A per-expert checkpoint with an MTP layer loads (sanitize, quantize, strict load) into the
/// model mlx-lm computed the fixture's logits with.
fn check_per_expert_fixture(name: &str, rtol: f32, atol: f32) {
    let (config, args) = fixture_args(name);
    let weights = per_expert_checkpoint(name, args.n_routed_experts, args.num_hidden_layers);
    assert!(weights.keys().any(|k| k.contains(".mlp.experts.7.down_proj.")));
    let model = models::build(&config, Some(weights)).unwrap();
    let want = common::expected(name);
    let prompt = Array::from_slice(&want.prompt, &[1, want.prompt.len() as i32]).unwrap();
    let got = model.forward(&prompt, None).unwrap().astype(Dtype::Float32).unwrap();
    let got = got.to_vec::<f32>().unwrap();
    assert_eq!(got.len(), want.logits.len());
    let (rtol, atol) =
        if common::on_gpu() { (rtol.max(2e-2), atol.max(2e-2)) } else { (rtol, atol) };
    for (i, (g, w)) in got.iter().zip(&want.logits).enumerate() {
        assert!((g - w).abs() <= atol + rtol * w.abs(), "{name}: logit {i}: got {g}, want {w}");
    }
}

#[test]
fn per_expert_f32_checkpoint_loads_and_matches() {
    check_per_expert_fixture("glm4_moe_f32", 1e-4, 1e-4);
}

#[test]
fn per_expert_q4_checkpoint_loads_and_matches() {
    check_per_expert_fixture("glm4_moe_q4", 2e-2, 2e-2);
}

#[test]
fn unsupported_configs_are_errors() {
    let (_, args) = fixture_args("glm4_moe_f32");
    let bad = |f: &dyn Fn(&mut ModelArgs)| {
        let mut a = args.clone();
        f(&mut a);
        Model::new(&a, "glm4_moe").unwrap_err().to_string()
    };
    assert!(bad(&|a| a.topk_method = "greedy".into()).contains("topk_method"));
    assert!(bad(&|a| a.n_group = 3).contains("n_group"));
    assert!(bad(&|a| a.num_experts_per_tok = 9).contains("num_experts_per_tok"));
    assert!(bad(&|a| a.head_dim = 0).contains("head_dim"));
}

/// The `glm45-air-3bit` preset (GLM-4.5-Air's config.json, 3-bit as mlx-community's) builds
/// lazily with the real checkpoint's packed shapes.
#[test]
fn glm45_air_preset_has_the_real_packed_shapes() {
    let config = mlx_lm::presets::Preset::named("glm45-air-3bit").unwrap().config().unwrap();
    let model = models::build(&config, None).unwrap();
    assert_eq!((model.num_layers(), model.vocab_size()), (46, 151_552));
    let params = model.parameters();
    let shape = |p: &str| params.leaf(p).unwrap().shape().to_vec();
    // 3 bits: 4096 inputs in 384 words, 64 groups of 64.
    assert_eq!(shape("model.embed_tokens.weight"), [151_552, 384]);
    assert_eq!(shape("lm_head.weight"), [151_552, 384]);
    assert_eq!(shape("model.layers.0.self_attn.q_proj.weight"), [12_288, 384]);
    assert_eq!(shape("model.layers.0.self_attn.q_proj.bias"), [12_288]);
    assert_eq!(shape("model.layers.0.self_attn.k_proj.weight"), [1024, 384]);
    assert_eq!(shape("model.layers.0.self_attn.o_proj.weight"), [4096, 1152]);
    assert_eq!(shape("model.layers.0.mlp.gate_proj.weight"), [10_944, 384]);
    assert_eq!(shape("model.layers.0.mlp.down_proj.scales"), [4096, 171]);
    let moe = "model.layers.45.mlp";
    assert_eq!(shape(&format!("{moe}.switch_mlp.gate_proj.weight")), [128, 1408, 384]);
    assert_eq!(shape(&format!("{moe}.switch_mlp.down_proj.weight")), [128, 4096, 132]);
    assert_eq!(shape(&format!("{moe}.switch_mlp.down_proj.scales")), [128, 4096, 22]);
    assert_eq!(shape(&format!("{moe}.shared_experts.up_proj.weight")), [1408, 384]);
    assert_eq!(shape(&format!("{moe}.gate.weight")), [128, 4096]);
    assert_eq!(shape(&format!("{moe}.gate.e_score_correction_bias")), [128]);
    assert!(params.leaf("model.layers.0.mlp.gate.weight").is_err());
    assert!(params.leaf("model.layers.0.self_attn.q_norm.weight").is_err());
}
