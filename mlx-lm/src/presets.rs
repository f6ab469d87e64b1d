//! Random-weight models with the real shapes of well-known mlx-community checkpoints, for
//! examples and benches that need no download.
//!
//! A preset is a `config.json` (in `mlx-lm/presets/`); [`random_model`] builds its model with
//! the config's quantization and draws every parameter directly in its stored form: packed
//! `uint32` codes, bf16 scales and biases, bf16 floats. No float copy of a quantized weight is
//! ever made. The draws are plain MLX random calls from one seed, made in sorted path order, so
//! that `examples/presets.py` draws the very same weights in Python; [`weights_checksum`]
//! confirms it (the examples print it as 16 hex digits). [`save_model_dir`] writes the model as an mlx-community directory that mlx-lm
//! loads as it is.
//!
//! The draw for the parameter at sorted position `i` uses `random::key(seed * 1_000_000 + i)`:
//!
//! Floats are stored in the config's `torch_dtype` (`bfloat16` when absent, as mlx-community
//! checkpoints; `float32` suits CPUs, whose bf16 quantized matmul is slow):
//!
//! - packed weights (`uint32`): threefry's raw bits, `random::split(key, ⌈n/2⌉)` flattened;
//! - affine scales: `normal(shape, f32, loc = s, scale = s / 10)` in the float dtype, with
//!   `s = 2√3 / (√in · (2^bits − 1))` so that a dequantized row has about unit norm over `√in`;
//!   their biases are `−scales · (2^bits − 1) / 2` (centred codes; no draw of their own);
//! - norm weights (`…norm.weight`): ones;
//! - `e_score_correction_bias`: `normal(shape, f32, 0, 0.01)` (kept float32, as mlx-lm does);
//! - other floats: `normal(shape, f32, 0, 1/√last_dim)` in the float dtype.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use mlx_rs::nn::Module;
use mlx_rs::utils::tree_unflatten;
use mlx_rs::{Array, Dtype, Error, Result, random};

use crate::config::{ModelConfig, QuantMode};
use crate::load::LoadedModel;
use crate::models;

/// A named preset: the `config.json` of a real checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// The name the examples take (`--preset NAME`).
    pub name: &'static str,
    /// The mlx-community checkpoint whose shapes it has.
    pub checkpoint: &'static str,
    /// Its `config.json`.
    pub config_json: &'static str,
}

/// Every preset.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "glm45-air-3bit",
        checkpoint: "mlx-community/GLM-4.5-Air-3bit",
        config_json: include_str!("../presets/glm45-air-3bit.json"),
    },
    Preset {
        name: "mistral-7b-4bit",
        checkpoint: "mlx-community/Mistral-7B-Instruct-v0.3-4bit",
        config_json: include_str!("../presets/mistral-7b-4bit.json"),
    },
    Preset {
        name: "mixtral-8x7b-4bit",
        checkpoint: "mlx-community/Mixtral-8x7B-Instruct-v0.1-4bit",
        config_json: include_str!("../presets/mixtral-8x7b-4bit.json"),
    },
    Preset {
        name: "qwen3-30b-a3b-4bit",
        checkpoint: "mlx-community/Qwen3-30B-A3B-4bit",
        config_json: include_str!("../presets/qwen3-30b-a3b-4bit.json"),
    },
];

impl Preset {
    /// The preset called `name`, or an error listing the presets.
    pub fn named(name: &str) -> Result<&'static Preset> {
        PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
            Error::invalid(
                "preset",
                format!("unknown preset `{name}` (known: {})", names.join(", ")),
            )
        })
    }

    /// The preset's config.
    pub fn config(&self) -> Result<ModelConfig> {
        ModelConfig::from_json_str(self.config_json, &format!("preset {}", self.name))
    }
}

/// The model of `config` with every parameter drawn from `seed` (see the module docs), each
/// parameter evaluated as it is drawn.
pub fn random_model(config: &ModelConfig, seed: u64) -> Result<LoadedModel> {
    let float = float_dtype(config)?;
    let mut model = models::build(config, None)?;
    let mut params = model.named_parameters();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let shapes: BTreeMap<String, Vec<i32>> =
        params.iter().map(|(p, a)| (p.clone(), a.shape().to_vec())).collect();
    let base = seed.checked_mul(1_000_000).ok_or_else(|| {
        Error::invalid("random_model", format!("seed {seed} is too large (at most 2^64 / 10^6)"))
    })?;
    let mut drawn: Vec<(String, Array)> = Vec::with_capacity(params.len());
    let mut scales_of: BTreeMap<String, (Array, i32)> = BTreeMap::new();
    for (i, (path, param)) in params.iter().enumerate() {
        let key = random::key(base + i as u64)?;
        let shape = param.shape();
        let value = if param.dtype() == Dtype::Uint32 {
            raw_bits(shape, &key)?
        } else if let Some(prefix) = path.strip_suffix(".scales") {
            let bits = affine_bits(config, prefix)?;
            let groups = shape.last().copied().unwrap_or(1);
            let packed = shapes.get(&format!("{prefix}.weight")).and_then(|s| s.last().copied());
            let packed = packed.ok_or_else(|| {
                Error::invalid("random_model", format!("`{path}` has no packed weight"))
            })?;
            // In f64, rounded once to f32, as Python passes its floats to MLX.
            let in_dims = f64::from((packed * 32 / bits).max(groups));
            let levels = f64::from((1u32 << bits) - 1);
            let s = 2.0 * 3f64.sqrt() / (in_dims.sqrt() * levels);
            let (loc, scale) = (s as f32, (s / 10.0) as f32);
            let scales =
                random::normal(shape, Dtype::Float32, loc, scale, Some(&key))?.astype(float)?;
            scales_of.insert(prefix.to_owned(), (scales.clone(), bits));
            scales
        } else if path
            .strip_suffix(".biases")
            .is_some_and(|prefix| shapes.contains_key(&format!("{prefix}.scales")))
        {
            // Derived from the scales below; the index `i` is used all the same.
            continue;
        } else if path.ends_with("norm.weight") {
            mlx_rs::ops::ones(shape, float)?
        } else if path.ends_with("e_score_correction_bias") {
            random::normal(shape, Dtype::Float32, 0.0, 0.01, Some(&key))?
        } else {
            let last = f64::from(shape.last().copied().unwrap_or(1).max(1));
            random::normal(shape, Dtype::Float32, 0.0, (1.0 / last.sqrt()) as f32, Some(&key))?
                .astype(float)?
        };
        value.eval()?;
        drawn.push((path.clone(), value));
    }
    for (prefix, (scales, bits)) in scales_of {
        let half = ((1u32 << bits) - 1) as f32 / 2.0;
        let biases = (scales.astype(Dtype::Float32)? * -half)?.astype(float)?;
        biases.eval()?;
        drawn.push((format!("{prefix}.biases"), biases));
    }
    if drawn.len() != params.len() {
        return Err(Error::invalid(
            "random_model",
            format!("drew {} of {} parameters", drawn.len(), params.len()),
        ));
    }
    model.update(&tree_unflatten(drawn)?)?;
    // Evaluation mode, as a loaded model.
    model.train(false);
    Ok(LoadedModel { model, config: config.clone() })
}

/// The dtype floats are drawn in: `torch_dtype` (`bfloat16`, `float16` or `float32`), bf16 when
/// absent.
fn float_dtype(config: &ModelConfig) -> Result<Dtype> {
    match config.get("torch_dtype").and_then(|v| v.as_str()) {
        None | Some("bfloat16") => Ok(Dtype::Bfloat16),
        Some("float16") => Ok(Dtype::Float16),
        Some("float32") => Ok(Dtype::Float32),
        Some(other) => Err(Error::invalid(
            "random_model",
            format!(
                "{}: torch_dtype `{other}` (expected bfloat16, float16 or float32)",
                config.file
            ),
        )),
    }
}

/// Random `uint32` codes of `shape`: threefry's raw output as `random::split(key, ⌈n/2⌉)`
/// gives it, flattened and cut to `n` (the form Python can reproduce: it has no `bits`).
fn raw_bits(shape: &[i32], key: &Array) -> Result<Array> {
    let n: i64 = shape.iter().map(|&d| i64::from(d)).product();
    let half = i32::try_from((n + 1) / 2).map_err(|_| {
        Error::invalid("random_model", format!("a parameter of {n} elements is too large"))
    })?;
    random::split(key, half)?.reshape([-1])?.index(..n as i32)?.reshape(shape)
}

/// The bits of the affine quantization of `prefix` (an error for other modes: presets are
/// affine).
fn affine_bits(config: &ModelConfig, prefix: &str) -> Result<i32> {
    let q = config.quantization.as_ref().and_then(|q| q.quantization_for(prefix));
    match q {
        Some(p) if p.mode == QuantMode::Affine => Ok(p.bits),
        Some(p) => Err(Error::invalid(
            "random_model",
            format!(
                "`{prefix}` is quantized as {}: presets draw affine weights only",
                p.mode.name()
            ),
        )),
        None => Err(Error::invalid(
            "random_model",
            format!("`{prefix}` has scales but no quantization"),
        )),
    }
}

/// A digest of every weight: FNV-1a (64-bit) over the little-endian bytes of each parameter's
/// float32 sum, in sorted path order. Rust and Python holding the same weights print the same
/// digest (the same MLX reductions on the same device give the same bits).
pub fn weights_checksum(model: &dyn Module) -> Result<u64> {
    let mut params = model.named_parameters();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for (_, p) in params {
        let sum = p.astype(Dtype::Float32)?.sum(.., false)?.item::<f32>()?;
        for byte in sum.to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    Ok(hash)
}

/// The largest safetensors file [`save_model_dir`] writes (mlx-lm's 5 GB shards).
pub const MAX_SHARD_BYTES: usize = 5 << 30;

/// Writes `model` as an mlx-community directory: `config.json` (the given config) and its
/// weights as `model.safetensors`, or as `model-0000K-of-0000N.safetensors` shards of at most
/// [`MAX_SHARD_BYTES`] with a `model.safetensors.index.json`.
pub fn save_model_dir(
    model: &dyn Module,
    config: &ModelConfig,
    dir: impl AsRef<Path>,
) -> Result<()> {
    let dir = dir.as_ref();
    let io =
        |e: std::io::Error| Error::invalid("save_model_dir", format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut params = model.named_parameters();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let mut shards: Vec<Vec<(String, Array)>> = vec![Vec::new()];
    let mut bytes = 0usize;
    for (path, p) in params {
        if bytes + p.nbytes() > MAX_SHARD_BYTES && !shards.last().is_some_and(Vec::is_empty) {
            shards.push(Vec::new());
            bytes = 0;
        }
        bytes += p.nbytes();
        if let Some(last) = shards.last_mut() {
            last.push((path, p));
        }
    }
    let text = serde_json::to_string_pretty(&config.raw)
        .map_err(|e| Error::invalid("save_model_dir", e.to_string()))?;
    std::fs::write(dir.join("config.json"), text + "\n").map_err(io)?;
    let n = shards.len();
    let metadata = HashMap::from([("format", "mlx")]);
    let as_map =
        |shard: &[(String, Array)]| -> HashMap<String, Array> { shard.iter().cloned().collect() };
    if n == 1 {
        return mlx_rs::io::save_safetensors(
            dir.join("model.safetensors"),
            &as_map(&shards[0]),
            &metadata,
        );
    }
    let mut weight_map = serde_json::Map::new();
    let mut total = 0usize;
    for (k, shard) in shards.iter().enumerate() {
        let name = format!("model-{:05}-of-{n:05}.safetensors", k + 1);
        mlx_rs::io::save_safetensors(dir.join(&name), &as_map(shard), &metadata)?;
        for (path, a) in shard {
            total += a.nbytes();
            weight_map.insert(path.clone(), serde_json::Value::String(name.clone()));
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).map_err(io)
}
