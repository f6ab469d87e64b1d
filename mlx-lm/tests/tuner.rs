//! The tuner against mlx-lm 0.32.0 (`tests/golden/gen_tuner.py` writes `tuner.json` and the
//! Python-written adapter directories under `tests/fixtures/tuner/`).

mod common;

use std::path::PathBuf;

use common::fixture_dir;
use mlx_lm::tuner::{
    self, Batches, Dataset, DatasetOptions, FineTuneConfig, FineTuneType, LoraParameters,
    LrSchedule, Trainer, TrainingArgs, TrainingCallback,
};
use mlx_lm::{LanguageModel, Tokenizer, load_model};
use mlx_rs::utils::{Tree, tree_flatten, tree_unflatten};
use mlx_rs::{Array, Dtype, random, transforms};
use serde_json::Value;

fn golden() -> &'static Value {
    static G: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    G.get_or_init(|| {
        let path = common::crate_dir().join("tests/golden/tuner.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn tuner_dir(name: &str) -> PathBuf {
    common::crate_dir().join("tests/fixtures/tuner").join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mlx-lm-tuner-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn ints(v: &Value) -> Vec<i32> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as i32).collect()
}

fn matrix(v: &Value) -> (Vec<i32>, i32, i32) {
    let rows = v.as_array().unwrap();
    let cols = rows[0].as_array().unwrap().len() as i32;
    (rows.iter().flat_map(ints).collect(), rows.len() as i32, cols)
}

fn assert_close(name: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let mut worst = 0.0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let e = (g - w).abs();
        worst = worst.max(e);
        assert!(e <= atol + rtol * w.abs(), "{name}[{i}]: got {g}, want {w}");
    }
    eprintln!("{name}: largest difference {worst:e}");
}

fn to_f32(a: &Array) -> Vec<f32> {
    a.astype(Dtype::Float32).unwrap().to_vec::<f32>().unwrap()
}

fn prompt_logits(model: &dyn LanguageModel) -> Vec<f32> {
    let prompt = ints(&golden()["prompt"]);
    let x = Array::from_slice(&prompt, &[1, prompt.len() as i32]).unwrap();
    to_f32(&model.forward(&x, None).unwrap())
}

fn golden_batch() -> (Array, Array) {
    let (t, b, w) = matrix(&golden()["batch"]);
    let (l, lb, lw) = matrix(&golden()["lengths"]);
    (Array::from_slice(&t, &[b, w]).unwrap(), Array::from_slice(&l, &[lb, lw]).unwrap())
}

/// The fixture model of a golden adapter case with mlx-lm's adapters loaded.
fn adapted(case: &str) -> Box<dyn LanguageModel> {
    let g = &golden()["adapters"][case];
    let mut model = load_model(fixture_dir(g["model"].as_str().unwrap())).unwrap().model;
    model.freeze();
    tuner::load_adapters(model.as_mut(), tuner_dir(case)).unwrap();
    model
}

fn check_logits(case: &str, tol: f32) {
    let mut model = adapted(case);
    model.train(false);
    let want = floats(&golden()["adapters"][case]["logits"]);
    assert_close(&format!("{case} logits"), &prompt_logits(model.as_ref()), &want, tol, tol);
}

#[test]
fn python_lora_adapters_reproduce_mlx_lm_logits() {
    check_logits("llama_lora_py", 1e-4);
}

#[test]
fn python_moe_lora_adapters_reproduce_mlx_lm_logits() {
    // Keys pick q_proj, the router and one expert projection (LoRASwitchLinear).
    check_logits("qwen3_moe_lora_py", 1e-4);
    check_logits("qwen3_moe_all_lora_py", 1e-4);
}

#[test]
fn dora_forward_and_step_match_mlx_lm() {
    check_logits("llama_dora_py", 1e-4);
    // Gradients reach `m`, `lora_a` and `lora_b` (the row norms are not differentiated).
    check_step("llama_dora_py", 1e-4);
}

#[test]
fn qlora_forward_matches_mlx_lm() {
    // bf16 activations on a 4-bit base.
    check_logits("llama_q4_lora_py", 2e-2);
}

fn check_step(case: &str, tol: f32) {
    check_step_with(case, tol, false);
}

fn check_step_with(case: &str, tol: f32, grad_checkpoint: bool) {
    let mut model = adapted(case);
    model.train(true);
    model.set_grad_checkpoint(grad_checkpoint).unwrap();
    let step = &golden()["adapters"][case]["step"];
    let (batch, lengths) = golden_batch();
    let params = model.trainable_parameters();
    let (values, grads) = transforms::value_and_grad_tree(&params, |p| {
        model.update(p)?;
        let (loss, ntoks) = tuner::default_loss(model.as_ref(), &batch, &lengths)?;
        Ok(vec![loss, ntoks])
    })
    .unwrap();
    let loss = values[0].item::<f32>().unwrap();
    let want_loss = step["loss"].as_f64().unwrap() as f32;
    assert!(
        (loss - want_loss).abs() <= tol * want_loss.abs(),
        "{case}: loss {loss} vs {want_loss}"
    );
    assert_eq!(values[1].item::<i32>().unwrap() as i64, step["ntoks"].as_i64().unwrap());
    let want = step["grads"].as_object().unwrap();
    let got = tree_flatten(&grads);
    assert_eq!(got.len(), want.len(), "{case}: gradient count");
    let mut nonzero_a = false;
    for (path, g) in got {
        let w = floats(&want[&path]);
        let g = to_f32(&g);
        nonzero_a |= path.ends_with("lora_a") && g.iter().any(|x| *x != 0.0);
        let scale = w.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert_close(&format!("{case} d/d {path}"), &g, &w, tol, tol * scale.max(1e-3));
    }
    assert!(nonzero_a, "{case}: lora_a gets a gradient");
}

#[test]
fn one_step_loss_and_gradients_match_mlx_lm() {
    check_step("llama_lora_py", 1e-4);
}

#[test]
fn moe_step_loss_and_gradients_match_mlx_lm() {
    check_step("qwen3_moe_lora_py", 1e-4);
    check_step("qwen3_moe_all_lora_py", 1e-4);
}

#[test]
fn qlora_step_loss_and_gradients_match_mlx_lm() {
    check_step("llama_q4_lora_py", 3e-2);
}

#[test]
fn qlora_on_quantized_experts_matches_mlx_lm() {
    // LoRASwitchLinear over QuantizedSwitchLinear (gather_qmm), and the router.
    check_logits("qwen3_moe_q4_lora_py", 2e-2);
    check_step("qwen3_moe_q4_lora_py", 3e-2);
    check_fused("qwen3_moe_q4_lora_py", false, 2e-2);
}

fn trainer_for(case: &str, args: TrainingArgs) -> Trainer {
    let optimizer = tuner::build_optimizer("adamw", 1e-2.into()).unwrap();
    Trainer::new(adapted(case), optimizer, args).unwrap()
}

fn batch_of_golden() -> tuner::Batch {
    let (tokens, lengths) = golden_batch();
    tuner::Batch { tokens, lengths, truncated_from: None }
}

fn check_updated(name: &str, params: &Tree) {
    let want = golden()["adapters"]["llama_lora_py"]["step"]["updated"].as_object().unwrap();
    let got = tree_flatten(params);
    assert_eq!(got.len(), want.len());
    for (path, p) in got {
        // Adam divides by |g|: where a gradient is ~0 its rounding moves the step (at most lr).
        assert_close(&format!("{name} {path}"), &to_f32(&p), &floats(&want[&path]), 1e-4, 1e-3);
    }
}

#[test]
fn compiled_and_eager_adamw_steps_match_mlx_lm() {
    for compile in [true, false] {
        let args = TrainingArgs { compile, ..Default::default() };
        let mut trainer = trainer_for("llama_lora_py", args);
        let (loss, ntoks) = trainer.step(&batch_of_golden(), true).unwrap();
        let want = golden()["adapters"]["llama_lora_py"]["step"]["loss"].as_f64().unwrap() as f32;
        assert!((loss.item::<f32>().unwrap() - want).abs() < 1e-4 * want);
        assert_eq!(ntoks.item::<i32>().unwrap(), 16);
        assert_eq!(batch_of_golden().num_loss_tokens().unwrap(), 16);
        check_updated(
            if compile { "compiled" } else { "eager" },
            &trainer.trainable_parameters().unwrap(),
        );
        assert!((trainer.learning_rate().unwrap() - 1e-2).abs() < 1e-9);
        // The model itself holds the trained values once handed back.
        let (model, _) = trainer.into_parts().unwrap();
        check_updated("model", &model.trainable_parameters());
    }
}

#[test]
fn gradient_checkpointing_keeps_the_gradients() {
    // Every block recomputed in the backward pass: the same loss and gradients as mlx-lm's.
    check_step_with("llama_lora_py", 1e-4, true);
    for compile in [true, false] {
        let args = TrainingArgs { compile, grad_checkpoint: true, ..Default::default() };
        let mut trainer = trainer_for("llama_lora_py", args);
        trainer.step(&batch_of_golden(), true).unwrap();
        check_updated("checkpointed", &trainer.trainable_parameters().unwrap());
    }
    // MoE blocks (router, SwitchGlu experts with LoRASwitchLinear) too.
    check_step_with("qwen3_moe_all_lora_py", 1e-4, true);
    check_step_with("qwen3_moe_q4_lora_py", 3e-2, true);
}

#[test]
fn gradient_accumulation_averages_the_gradients() {
    // Two accumulated iterations on one batch give the same update as one plain iteration.
    let batch = batch_of_golden();
    let accumulated = TrainingArgs { grad_accumulation_steps: 2, ..Default::default() };
    let mut trainer = trainer_for("llama_lora_py", accumulated);
    let before = trainer.trainable_parameters().unwrap();
    trainer.step(&batch, false).unwrap();
    let mid = trainer.trainable_parameters().unwrap();
    for ((_, a), (_, b)) in tree_flatten(&before).iter().zip(tree_flatten(&mid).iter()) {
        assert_eq!(to_f32(a), to_f32(b), "no update before the last accumulation step");
    }
    trainer.step(&batch, true).unwrap();
    check_updated("accumulated", &trainer.trainable_parameters().unwrap());
}

fn set_adapter_values(model: &mut dyn LanguageModel, seed: u64) {
    let mut new = Vec::new();
    let mut params = model.trainable_parameters().paths();
    params.sort();
    let current = model.trainable_parameters();
    for (i, path) in params.iter().enumerate() {
        let p = current.leaf(path).unwrap();
        let key = random::key(seed * 1000 + i as u64).unwrap();
        let noise = random::normal(p.shape(), Dtype::Float32, 0.0, 1.0, Some(&key)).unwrap();
        new.push((path.clone(), (noise * 0.2f32).unwrap()));
    }
    model.update(&tree_unflatten(new).unwrap()).unwrap();
}

fn rust_adapter_config() -> FineTuneConfig {
    FineTuneConfig {
        fine_tune_type: FineTuneType::Lora,
        num_layers: 2,
        lora_parameters: LoraParameters { rank: 4, scale: 10.0, dropout: 0.0, keys: None },
        extra: serde_json::Map::from_iter([(
            "model".to_owned(),
            Value::from("tests/fixtures/models/llama_f32"),
        )]),
    }
}

fn write_rust_adapters(dir: &std::path::Path) {
    let mut model = load_model(fixture_dir("llama_f32")).unwrap().model;
    let config = rust_adapter_config();
    assert_eq!(tuner::prepare_model(model.as_mut(), &config).unwrap(), 14);
    set_adapter_values(model.as_mut(), 7);
    tuner::save_adapters(model.as_ref(), &config, dir).unwrap();
}

/// Writes `tests/fixtures/tuner/llama_lora_rs` (then run gen_tuner.py for its Python logits).
#[test]
#[ignore]
fn write_rust_adapter_fixture() {
    write_rust_adapters(&tuner_dir("llama_lora_rs"));
}

#[test]
fn rust_adapters_load_in_mlx_lm() {
    // The committed directory is what the Rust side writes ...
    let fresh = scratch("rs-adapters");
    write_rust_adapters(&fresh);
    let (a, _) = mlx_rs::io::load_safetensors(fresh.join("adapters.safetensors")).unwrap();
    let (b, _) =
        mlx_rs::io::load_safetensors(tuner_dir("llama_lora_rs").join("adapters.safetensors"))
            .unwrap();
    assert_eq!(a.len(), b.len());
    for (k, v) in &a {
        assert_eq!(to_f32(v), to_f32(&b[k]), "{k}");
    }
    let config = std::fs::read_to_string(fresh.join("adapter_config.json")).unwrap();
    let committed =
        std::fs::read_to_string(tuner_dir("llama_lora_rs").join("adapter_config.json")).unwrap();
    assert_eq!(config, committed);
    // ... and mlx-lm's load_adapters on it gives the logits Rust computes.
    check_logits("llama_lora_rs", 1e-4);
}

#[test]
fn adapter_config_round_trips_in_mlx_lm_format() {
    let text = std::fs::read_to_string(tuner_dir("qwen3_moe_lora_py").join("adapter_config.json"))
        .unwrap();
    let config = FineTuneConfig::from_json(&serde_json::from_str(&text).unwrap(), "x").unwrap();
    assert_eq!(config.fine_tune_type, FineTuneType::Lora);
    assert_eq!(config.num_layers, 2);
    assert_eq!(config.lora_parameters.rank, 4);
    assert_eq!(config.lora_parameters.keys.as_ref().unwrap().len(), 3);
    let back = FineTuneConfig::from_json(&config.to_json(), "y").unwrap();
    assert_eq!(back, config);
    let alpha = serde_json::json!({"num_layers": 2, "lora_parameters": {"rank": 8, "alpha": 16}});
    let e = FineTuneConfig::from_json(&alpha, "cfg.json").unwrap_err().to_string();
    assert!(e.contains("cfg.json") && e.contains("'scale'") && e.contains("alpha"), "{e}");
}

#[test]
fn linear_to_lora_layers_picks_the_last_blocks_and_keys() {
    let mut model = load_model(fixture_dir("llama_f32")).unwrap().model;
    model.freeze();
    let n =
        tuner::linear_to_lora_layers(model.as_mut(), 1, &LoraParameters::default(), false).unwrap();
    assert_eq!(n, 7);
    let paths = model.trainable_parameters().paths();
    assert!(paths.iter().all(|p| p.starts_with("model.layers.1.")), "{paths:?}");
    assert_eq!(paths.len(), 14);

    let mut model = load_model(fixture_dir("qwen3_moe_f32")).unwrap().model;
    model.freeze();
    let keys = LoraParameters {
        keys: Some(vec!["mlp.switch_mlp.down_proj".into()]),
        ..Default::default()
    };
    assert_eq!(tuner::linear_to_lora_layers(model.as_mut(), -1, &keys, false).unwrap(), 1);
    let dora = tuner::linear_to_lora_layers(model.as_mut(), -1, &LoraParameters::default(), true);
    assert!(dora.unwrap_err().to_string().contains("DoRA"));

    let mut model = load_model(fixture_dir("llama_f32")).unwrap().model;
    let full =
        FineTuneConfig { fine_tune_type: FineTuneType::Full, num_layers: 1, ..Default::default() };
    assert_eq!(tuner::prepare_model(model.as_mut(), &full).unwrap(), 0);
    let paths = model.trainable_parameters().paths();
    assert_eq!(paths.len(), 9);
    assert!(paths.iter().all(|p| p.starts_with("model.layers.1.")));
    let too_many = FineTuneConfig { num_layers: 3, ..Default::default() };
    assert!(tuner::prepare_model(model.as_mut(), &too_many).is_err());
}

#[test]
fn mismatched_adapters_are_refused_with_names() {
    let mut model = load_model(fixture_dir("qwen3_moe_f32")).unwrap().model;
    let e =
        tuner::load_adapters(model.as_mut(), tuner_dir("llama_lora_py")).unwrap_err().to_string();
    assert!(e.contains("incompatible tensors") && e.contains("lora_a"), "{e}");
}

fn check_fused(case: &str, dequantize: bool, tol: f32) {
    let g = &golden()["adapters"][case];
    let source = fixture_dir(g["model"].as_str().unwrap());
    let mut model = adapted(case);
    tuner::fuse_model(model.as_mut(), dequantize).unwrap();
    assert!(model.parameters().paths().iter().all(|p| !p.contains("lora_")));
    let out = scratch(&format!("fused-{case}-{dequantize}"));
    let config = mlx_lm::ModelConfig::load(&source).unwrap();
    tuner::save_fused_model(model.as_ref(), &config, &out, dequantize, Some(&source)).unwrap();
    let fused = load_model(&out).unwrap();
    assert_eq!(fused.config.quantization.is_some(), config.quantization.is_some() && !dequantize);
    let key = if dequantize { "fused_dequantized_logits" } else { "fused_logits" };
    let want = floats(&g[key]);
    assert_close(&format!("{case} {key}"), &prompt_logits(fused.model.as_ref()), &want, tol, tol);
    if config.quantization.is_none() {
        // A float base: fusing is exact up to rounding, so base + adapter = fused.
        let unfused = floats(&g["logits"]);
        assert_close(
            &format!("{case} fused vs adapted"),
            &prompt_logits(fused.model.as_ref()),
            &unfused,
            tol,
            tol,
        );
    }
}

#[test]
fn fused_models_give_the_adapted_logits() {
    check_fused("llama_lora_py", false, 1e-4);
    check_fused("llama_dora_py", false, 1e-4);
    check_fused("qwen3_moe_all_lora_py", false, 1e-4);
    // QLoRA: re-quantized as mlx-lm does, and with `--dequantize` (bf16 weights).
    check_fused("llama_q4_lora_py", false, 2e-2);
    check_fused("llama_q4_lora_py", true, 2e-2);
}

/// mlx-lm's quantized MoE adapters fused by Rust into a model directory.
fn write_fused_moe(dir: &std::path::Path) {
    let case = "qwen3_moe_q4_lora_py";
    let source = fixture_dir("qwen3_moe_q4");
    let mut model = adapted(case);
    tuner::fuse_model(model.as_mut(), false).unwrap();
    let config = mlx_lm::ModelConfig::load(&source).unwrap();
    tuner::save_fused_model(model.as_ref(), &config, dir, false, Some(&source)).unwrap();
}

/// Writes `tests/fixtures/tuner/qwen3_moe_q4_fused_rs` (then run gen_tuner.py for mlx-lm's
/// logits on it).
#[test]
#[ignore]
fn write_rust_fused_fixture() {
    write_fused_moe(&tuner_dir("qwen3_moe_q4_fused_rs"));
}

#[test]
fn rust_fused_model_loads_in_mlx_lm() {
    let fresh = scratch("fused-moe");
    write_fused_moe(&fresh);
    let committed = tuner_dir("qwen3_moe_q4_fused_rs");
    let (a, _) = mlx_rs::io::load_safetensors(fresh.join("model.safetensors")).unwrap();
    let (b, _) = mlx_rs::io::load_safetensors(committed.join("model.safetensors")).unwrap();
    assert_eq!(a.len(), b.len());
    for (k, v) in &a {
        assert_eq!(v.dtype(), b[k].dtype(), "{k}");
        assert_eq!(to_f32(v), to_f32(&b[k]), "{k}");
    }
    let config = std::fs::read_to_string(fresh.join("config.json")).unwrap();
    assert_eq!(config, std::fs::read_to_string(committed.join("config.json")).unwrap());
    // mlx-lm loads the directory strictly and computes what Rust computes.
    let fused = load_model(&committed).unwrap();
    let want = floats(&golden()["fused_rs"]["qwen3_moe_q4_fused_rs"]);
    assert_close("qwen3_moe_q4_fused_rs", &prompt_logits(fused.model.as_ref()), &want, 1e-4, 1e-4);
}

fn bpe() -> Tokenizer {
    Tokenizer::from_dir(common::crate_dir().join("tests/fixtures/bpe")).unwrap()
}

#[test]
fn datasets_and_batches_match_mlx_lm() {
    let tokenizer = bpe();
    for (name, case) in golden()["datasets"].as_object().unwrap() {
        let options = DatasetOptions {
            mask_prompt: case["mask_prompt"].as_bool().unwrap(),
            ..Default::default()
        };
        let dir = tuner_dir(case["dir"].as_str().unwrap());
        let data = tuner::load_local_dataset(&dir, Some(&tokenizer), &options).unwrap();
        assert!(data.valid.is_empty() && data.test.is_empty());
        let want: Vec<(Vec<u32>, usize)> = case["examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    ints(&e[0]).into_iter().map(|x| x as u32).collect(),
                    e[1].as_u64().unwrap() as usize,
                )
            })
            .collect();
        assert_eq!(data.train.examples, want, "{name}: tokens and offsets");
        let batches = case["batches"].as_array().unwrap();
        let mut matched = 0;
        for max_len in [2048usize, 12] {
            let groups = tuner::batch_indices(&data.train, 2).unwrap();
            for group in groups {
                let b = tuner::make_batch(&data.train, &group, max_len).unwrap();
                let (tokens, lengths) =
                    (b.tokens.to_vec::<i32>().unwrap(), b.lengths.to_vec::<i32>().unwrap());
                let found = batches.iter().any(|w| {
                    w["max_seq_length"].as_u64() == Some(max_len as u64)
                        && matrix(&w["tokens"]).0 == tokens
                        && matrix(&w["lengths"]).0 == lengths
                        && matrix(&w["tokens"]).2 == b.tokens.dim(1).unwrap()
                });
                assert!(found, "{name}: batch {group:?} at max_seq_length {max_len} is mlx-lm's");
                matched += 1;
            }
        }
        assert_eq!(matched, batches.len(), "{name}: batch count");
    }
}

#[test]
fn malformed_records_name_the_file_and_line() {
    let tok = bpe();
    let opts = DatasetOptions::default();
    let bad_json = "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": \"c\"\n";
    let e =
        Dataset::from_jsonl(bad_json, "train.jsonl", Some(&tok), &opts).unwrap_err().to_string();
    assert!(e.contains("train.jsonl:3: invalid JSON"), "{e}");
    let missing = "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\"}\n";
    let e = Dataset::from_jsonl(missing, "valid.jsonl", Some(&tok), &opts).unwrap_err().to_string();
    assert!(e.contains("valid.jsonl:2: `completion` is missing"), "{e}");
    let wrong_type = "{\"text\": \"a\"}\n\n{\"text\": 3}\n";
    let e = Dataset::from_jsonl(wrong_type, "t.jsonl", Some(&tok), &opts).unwrap_err().to_string();
    assert!(e.contains("t.jsonl:3: `text` must be a string"), "{e}");
    let unknown = "{\"foo\": 1}\n";
    let e = Dataset::from_jsonl(unknown, "u.jsonl", Some(&tok), &opts).unwrap_err().to_string();
    assert!(e.contains("u.jsonl:1: unsupported data format"), "{e}");
    let masked = DatasetOptions { mask_prompt: true, ..Default::default() };
    let e = Dataset::from_jsonl("{\"text\": \"a\"}\n", "m.jsonl", Some(&tok), &masked)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not supported for text"), "{e}");
    let e =
        Dataset::from_jsonl("{\"text\": \"a\"}\n", "n.jsonl", None, &opts).unwrap_err().to_string();
    assert!(e.contains("n.jsonl:1") && e.contains("tokenizer"), "{e}");
    let tokens =
        "{\"tokens\": [1, 2, 3]}\n{\"tokens\": [4, 5], \"offset\": 1}\n{\"tokens\": [-1]}\n";
    let e = Dataset::from_jsonl(tokens, "k.jsonl", None, &opts).unwrap_err().to_string();
    assert!(e.contains("k.jsonl:3"), "{e}");
    let good = "{\"tokens\": [1, 2, 3]}\n{\"tokens\": [4, 5], \"offset\": 1}\n";
    let ok = Dataset::from_jsonl(good, "k.jsonl", None, &opts).unwrap();
    assert_eq!(ok.examples, vec![(vec![1, 2, 3], 0), (vec![4, 5], 1)]);
}

#[test]
fn schedules_warm_up_then_decay() {
    let s = tuner::build_schedule(&LrSchedule {
        name: "cosine_decay".into(),
        arguments: vec![1e-3, 100.0, 1e-5],
        warmup: 10,
        warmup_init: 0.0,
    })
    .unwrap();
    let at = |n| s.at(n).unwrap().item::<f32>().unwrap();
    assert_eq!(at(0), 0.0);
    assert!((at(5) - 5e-4).abs() < 1e-8);
    assert!((at(10) - 1e-3).abs() < 1e-8);
    assert!((at(11) - 1e-3).abs() < 1e-8); // cosine from the boundary (step - 11 = 0)
    assert!((at(111) - 1e-5).abs() < 1e-8);
    assert!(tuner::build_optimizer("muon", 1e-3.into()).is_err());
}

#[derive(Default)]
struct Recorder {
    train: Vec<tuner::TrainReport>,
    val: Vec<tuner::ValReport>,
    saved: Vec<(usize, Vec<PathBuf>)>,
}

impl TrainingCallback for Recorder {
    fn on_train_loss_report(&mut self, r: &tuner::TrainReport) {
        println!("{r}");
        self.train.push(r.clone());
    }
    fn on_val_loss_report(&mut self, r: &tuner::ValReport) {
        println!("{r}");
        self.val.push(r.clone());
    }
    fn on_save(&mut self, it: usize, files: &[PathBuf], _last: bool) {
        self.saved.push((it, files.to_vec()));
    }
}

#[test]
fn training_lowers_the_loss_saves_and_resumes() {
    // A tokenizer-free dataset: the same few sequences, so LoRA can fit them.
    let seqs: Vec<Vec<u32>> =
        (0..8).map(|i| (0..12).map(|j| ((i * 7 + j * 3) % 90 + 1) as u32).collect()).collect();
    let train = Dataset::from_tokens(seqs.clone());
    let valid = Dataset::from_tokens(seqs[..4].to_vec());
    let mut model = load_model(fixture_dir("llama_f32")).unwrap().model;
    let config = FineTuneConfig { num_layers: 2, ..Default::default() };
    tuner::prepare_model(model.as_mut(), &config).unwrap();
    // `lora_a` drawn from an explicit key (the global random state is shared with the tests
    // running beside this one), so that the run is the same every time.
    let start = model
        .trainable_parameters()
        .map_with_path(|path, a| match path.ends_with("lora_a") {
            true => {
                let bound = Array::scalar(0.125f32);
                let key = mlx_rs::random::key(11)?;
                mlx_rs::random::uniform(
                    &bound.negative()?,
                    &bound,
                    a.shape(),
                    a.dtype(),
                    Some(&key),
                )
            }
            false => Ok(a.clone()),
        })
        .unwrap();
    model.update(&start).unwrap();
    let dir = scratch("train");
    config.save(&dir).unwrap();
    let args = TrainingArgs {
        batch_size: 2,
        iters: 30,
        steps_per_report: 10,
        steps_per_eval: 15,
        steps_per_save: 20,
        val_batches: None,
        adapter_file: dir.join("adapters.safetensors"),
        ..Default::default()
    };
    let schedule = tuner::build_schedule(&LrSchedule {
        name: "cosine_decay".into(),
        arguments: vec![1e-2, 30.0],
        warmup: 3,
        warmup_init: 1e-4,
    })
    .unwrap();
    let optimizer = tuner::build_optimizer("adamw", schedule.into()).unwrap();
    let mut trainer = Trainer::new(model, optimizer, args.clone()).unwrap();
    let mut rec = Recorder::default();
    trainer.train(&train, Some(&valid), &mut rec).unwrap();
    assert_eq!(rec.train.iter().map(|r| r.iteration).collect::<Vec<_>>(), [10, 20, 30]);
    assert_eq!(rec.val.iter().map(|r| r.iteration).collect::<Vec<_>>(), [1, 15, 30]);
    assert!(rec.val[2].val_loss < rec.val[0].val_loss * 0.9, "{:?}", rec.val);
    assert!(rec.train[2].train_loss < rec.train[0].train_loss);
    assert_eq!(rec.train[0].trained_tokens, 10 * 2 * 12);
    assert!(dir.join("0000020_adapters.safetensors").exists());
    assert_eq!(rec.saved.last().unwrap().0, 30);
    let (trained, _) = trainer.into_parts().unwrap();
    // Resuming: a fresh model with the saved adapters holds the trained values.
    let mut fresh = load_model(fixture_dir("llama_f32")).unwrap().model;
    fresh.freeze();
    tuner::load_adapters(fresh.as_mut(), &dir).unwrap();
    for ((p, a), (_, b)) in tree_flatten(&trained.trainable_parameters())
        .iter()
        .zip(tree_flatten(&fresh.trainable_parameters()).iter())
    {
        assert_eq!(to_f32(a), to_f32(b), "{p}");
    }
    let mut fresh = fresh;
    let mut trained = trained;
    let resumed = tuner::evaluate(fresh.as_mut(), &valid, 2, None, 2048, 0).unwrap();
    let finished = tuner::evaluate(trained.as_mut(), &valid, 2, None, 2048, 0).unwrap();
    assert_eq!(resumed, finished);
    // (mlx-lm validates at the last iteration before that iteration's update.)
    assert!(finished < rec.val[0].val_loss * 0.9, "{finished} after {:?}", rec.val);
    let batches = Batches::new(&train, 2, 2048, false, 0).unwrap();
    assert_eq!(batches.count(), 4);
}

#[test]
fn glm4_moe_checkpointing_keeps_the_gradients() {
    // No mlx-lm golden for GLM adapters: the identity that checkpointing changes nothing.
    let grads = |grad_checkpoint: bool| {
        let mut model = load_model(fixture_dir("glm4_moe_f32")).unwrap().model;
        model.freeze();
        let params = tuner::LoraParameters::default();
        assert!(tuner::linear_to_lora_layers(model.as_mut(), 2, &params, false).unwrap() > 0);
        // The same `lora_a` both times (from an explicit key: the global random state is
        // shared with the tests beside this one), and a non-zero `lora_b` so that gradients
        // reach `lora_a`.
        let trainable = model.trainable_parameters();
        let b = trainable.map_with_path(|path, a| {
            if path.ends_with("lora_b") {
                mlx_rs::ops::full_like(a, &Array::scalar(0.01f32), None)
            } else if path.ends_with("lora_a") {
                let bound = Array::scalar(0.1f32);
                let key = mlx_rs::random::key(5)?;
                mlx_rs::random::uniform(
                    &bound.negative()?,
                    &bound,
                    a.shape(),
                    a.dtype(),
                    Some(&key),
                )
            } else {
                Ok(a.clone())
            }
        });
        model.update(&b.unwrap()).unwrap();
        model.set_grad_checkpoint(grad_checkpoint).unwrap();
        let (batch, lengths) = golden_batch();
        let params = model.trainable_parameters();
        let (values, grads) = transforms::value_and_grad_tree(&params, |p| {
            model.update(p)?;
            let (loss, ntoks) = tuner::default_loss(model.as_ref(), &batch, &lengths)?;
            Ok(vec![loss, ntoks])
        })
        .unwrap();
        (values[0].item::<f32>().unwrap(), grads)
    };
    let (loss, plain) = grads(false);
    let (loss_ck, checkpointed) = grads(true);
    assert!((loss - loss_ck).abs() < 1e-5, "{loss} vs {loss_ck}");
    assert!(plain.paths().iter().any(|p| p.ends_with("lora_a")));
    for ((path, a), b) in plain.paths().iter().zip(plain.leaves()).zip(checkpointed.leaves()) {
        let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        assert!(a.iter().any(|x| *x != 0.0), "{path}: zero gradient");
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5 + 1e-4 * x.abs(), "{path}: {x} vs {y}");
        }
    }
}
