//! Shared by the model tests: the fixtures written by `tests/fixtures/models/gen_<arch>.py`
//! and the checks every architecture runs on them.

#![allow(dead_code)]

use std::path::PathBuf;

use mlx_lm::{LanguageModel, load_model};
use mlx_rs::{Array, Dtype};
use serde_json::Value;

/// The crate's directory: `$MLX_LM_DIR` when set (a test binary run from another copy of the
/// tree, as on the GPU machine), else where the crate was built.
pub fn crate_dir() -> PathBuf {
    std::env::var_os("MLX_LM_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The directory of fixture `name`.
pub fn fixture_dir(name: &str) -> PathBuf {
    crate_dir().join("tests/fixtures/models").join(name)
}

/// What mlx-lm computed on fixture `name` (`expected.json`).
pub struct Expected {
    /// The prompt's token ids.
    pub prompt: Vec<i32>,
    /// The prompt's logits `(1, T, vocab)`, flattened.
    pub logits: Vec<f32>,
    /// Their shape.
    pub logits_shape: Vec<i32>,
    /// The greedy continuation through mlx-lm's prompt cache.
    pub greedy: Vec<i32>,
}

/// Reads fixture `name`'s `expected.json`.
pub fn expected(name: &str) -> Expected {
    let text = std::fs::read_to_string(fixture_dir(name).join("expected.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let ints = |key: &str| -> Vec<i32> {
        v[key].as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as i32).collect()
    };
    Expected {
        prompt: ints("prompt"),
        logits_shape: ints("logits_shape"),
        greedy: ints("greedy"),
        logits: v["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect(),
    }
}

/// True when the default device is a GPU.
pub fn on_gpu() -> bool {
    mlx_rs::Device::default_device().is_ok_and(|d| d.device_type() == mlx_rs::DeviceType::Gpu)
}

/// `n` greedy tokens after `prompt` through the model's prompt cache: the prompt in one
/// step, then a token a step (what the generator records).
pub fn greedy(model: &dyn LanguageModel, prompt: &[i32], n: usize) -> Vec<i32> {
    let mut cache = model.make_cache().unwrap();
    let mut logits = model
        .forward(&Array::from_slice(prompt, &[1, prompt.len() as i32]).unwrap(), Some(&mut cache))
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let last = logits.index((.., -1, ..)).unwrap();
        let token = last.argmax(-1, false).unwrap().astype(Dtype::Int32).unwrap();
        out.push(token.to_vec::<i32>().unwrap()[0]);
        logits = model.forward(&token.reshape([1, 1]).unwrap(), Some(&mut cache)).unwrap();
    }
    out
}

/// Loads fixture `name` and checks it against mlx-lm: the prompt's logits within
/// `atol + rtol * |want|` (widened on a GPU, where matmuls use TF32) and the greedy
/// continuation token for token.
pub fn check_fixture(name: &str, rtol: f32, atol: f32) {
    let want = expected(name);
    let loaded = load_model(fixture_dir(name)).unwrap();
    let model = loaded.model.as_ref();
    let prompt = Array::from_slice(&want.prompt, &[1, want.prompt.len() as i32]).unwrap();
    let logits = model.forward(&prompt, None).unwrap().astype(Dtype::Float32).unwrap();
    assert_eq!(logits.shape(), want.logits_shape.as_slice(), "{name}: logits shape");
    let got = logits.to_vec::<f32>().unwrap();
    let (rtol, atol) = if on_gpu() { (rtol.max(2e-2), atol.max(2e-2)) } else { (rtol, atol) };
    let mut worst = 0.0f32;
    for (i, (g, w)) in got.iter().zip(&want.logits).enumerate() {
        let err = (g - w).abs();
        worst = worst.max(err);
        assert!(err <= atol + rtol * w.abs(), "{name}: logit {i}: got {g}, want {w}");
    }
    eprintln!("{name}: largest logit difference {worst:e}");
    let tokens = greedy(model, &want.prompt, want.greedy.len());
    assert_eq!(tokens, want.greedy, "{name}: greedy continuation");
}
