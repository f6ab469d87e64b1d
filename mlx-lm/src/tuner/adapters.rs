//! Adapters on a model, as mlx-lm's `tuner/utils.py` and `fuse.py`: which layers get one
//! ([`linear_to_lora_layers`], [`prepare_model`]), the adapter directory
//! (`adapters.safetensors` + `adapter_config.json`: [`save_adapters`], [`load_adapters`]) and
//! the merge into a plain model directory ([`fuse_model`], [`save_fused_model`]).
//!
//! Paths are mlx-lm's: a model's transformer blocks are `model.layers.{i}`, and an adapter's
//! parameters are `model.layers.{i}.self_attn.q_proj.lora_a`, `...lora_b`, (DoRA) `...m`, so an
//! adapter directory written by either side loads in the other.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use mlx_rs::nn::{self, AdapterConfig, AdapterKind, Module};
use mlx_rs::quantization::{self, Quantized};
use mlx_rs::utils::{tree_flatten, tree_unflatten};
use mlx_rs::{Array, Context, Error, Result};
use serde_json::{Map, Value};

use crate::LanguageModel;
use crate::config::ModelConfig;
use crate::model::quantization_params;
use crate::presets::save_model_dir;

/// The prefix of every transformer block's path.
pub const LAYERS_PREFIX: &str = "model.layers.";

/// The adapter weights' file name in an adapter directory.
pub const ADAPTER_WEIGHTS: &str = "adapters.safetensors";

/// The adapter config's file name in an adapter directory.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";

fn err(op: &'static str, msg: impl Into<String>) -> Error {
    Error::invalid(op, msg.into())
}

/// mlx-lm's `lora_parameters`: the adapter's rank, scale and dropout, and optionally the layer
/// keys (paths inside a block, such as `self_attn.q_proj`) that get one.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraParameters {
    /// The rank (mlx-lm's default 8).
    pub rank: i32,
    /// The scale of the update (default 20).
    pub scale: f32,
    /// Dropout on the adapter's input (default 0).
    pub dropout: f32,
    /// The blocks' layers to adapt (`None`: every adaptable layer).
    pub keys: Option<Vec<String>>,
}

impl Default for LoraParameters {
    fn default() -> LoraParameters {
        LoraParameters { rank: 8, scale: 20.0, dropout: 0.0, keys: None }
    }
}

impl LoraParameters {
    /// The JSON object mlx-lm writes (`keys` only when given).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("rank".into(), Value::from(self.rank));
        m.insert("dropout".into(), Value::from(f64::from(self.dropout)));
        m.insert("scale".into(), Value::from(f64::from(self.scale)));
        if let Some(keys) = &self.keys {
            m.insert("keys".into(), Value::from(keys.clone()));
        }
        Value::Object(m)
    }

    /// Reads a `lora_parameters` object (`rank` and `scale` required, as in mlx-lm; a config
    /// with `alpha` instead of `scale` gets mlx-lm's hint). `file` names the source in errors.
    pub fn from_json(value: &Value, file: &str) -> Result<LoraParameters> {
        const OP: &str = "lora_parameters";
        let Value::Object(m) = value else {
            return Err(err(OP, format!("{file}: `lora_parameters` must be an object")));
        };
        let number = |key: &str| -> Result<Option<f64>> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                    err(OP, format!("{file}: `lora_parameters.{key}` must be a number, got {v}"))
                }),
            }
        };
        let scale = number("scale")?.ok_or_else(|| {
            let hint = if m.contains_key("alpha") {
                " Found 'alpha' instead: mlx-lm's LoRA config uses 'scale', not 'alpha'."
            } else {
                ""
            };
            err(OP, format!("{file}: the LoRA config is missing the required key 'scale'.{hint}"))
        })?;
        let rank = number("rank")?
            .ok_or_else(|| err(OP, format!("{file}: `lora_parameters.rank` is missing")))?;
        if rank.fract() != 0.0 || rank < 1.0 || rank > f64::from(i32::MAX) {
            return Err(err(OP, format!("{file}: `lora_parameters.rank` {rank} is not a rank")));
        }
        let keys = match m.get("keys") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|k| {
                        k.as_str().map(str::to_owned).ok_or_else(|| {
                            err(OP, format!("{file}: `lora_parameters.keys` must hold strings"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            Some(v) => {
                return Err(err(
                    OP,
                    format!("{file}: `lora_parameters.keys` must be a list, got {v}"),
                ));
            }
        };
        Ok(LoraParameters {
            rank: rank as i32,
            scale: scale as f32,
            dropout: number("dropout")?.unwrap_or(0.0) as f32,
            keys,
        })
    }
}

/// What is trained (mlx-lm's `fine_tune_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FineTuneType {
    /// Low-rank adapters (`LoRALinear`, `LoRASwitchLinear`).
    Lora,
    /// Weight-decomposed adapters (`DoRALinear`).
    Dora,
    /// Every parameter of the last `num_layers` blocks.
    Full,
}

impl FineTuneType {
    /// mlx-lm's name (`"lora"`, `"dora"`, `"full"`).
    pub fn name(self) -> &'static str {
        match self {
            FineTuneType::Lora => "lora",
            FineTuneType::Dora => "dora",
            FineTuneType::Full => "full",
        }
    }

    /// The type called `name`, or an error listing the names.
    pub fn from_name(name: &str) -> Result<FineTuneType> {
        match name {
            "lora" => Ok(FineTuneType::Lora),
            "dora" => Ok(FineTuneType::Dora),
            "full" => Ok(FineTuneType::Full),
            other => Err(err(
                "fine_tune_type",
                format!("unknown fine-tune type {other:?} (known: lora, dora, full)"),
            )),
        }
    }
}

/// The content of `adapter_config.json`: what mlx-lm reads back (`fine_tune_type`,
/// `num_layers`, `lora_parameters`) and every other field it writes there (the training
/// arguments: `model`, `batch_size`, `iters`, `learning_rate`, ...), kept in `extra`.
#[derive(Clone, Debug, PartialEq)]
pub struct FineTuneConfig {
    /// LoRA, DoRA or full fine-tuning.
    pub fine_tune_type: FineTuneType,
    /// How many of the last blocks are trained (`-1` or `0`: all of them, as in mlx-lm).
    pub num_layers: i32,
    /// The adapters' settings (written as `null` for full fine-tuning, as mlx-lm does).
    pub lora_parameters: LoraParameters,
    /// The other fields of the file.
    pub extra: Map<String, Value>,
}

impl Default for FineTuneConfig {
    /// mlx-lm's defaults: LoRA on the last 16 blocks, rank 8, scale 20, no dropout.
    fn default() -> FineTuneConfig {
        FineTuneConfig {
            fine_tune_type: FineTuneType::Lora,
            num_layers: 16,
            lora_parameters: LoraParameters::default(),
            extra: Map::new(),
        }
    }
}

impl FineTuneConfig {
    /// The JSON object mlx-lm writes: `extra` plus the three fields, keys sorted.
    pub fn to_json(&self) -> Value {
        let mut all: Vec<(String, Value)> =
            self.extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.retain(|(k, _)| {
            !matches!(k.as_str(), "fine_tune_type" | "num_layers" | "lora_parameters")
        });
        all.push(("fine_tune_type".into(), Value::from(self.fine_tune_type.name())));
        all.push(("num_layers".into(), Value::from(self.num_layers)));
        let lora = match self.fine_tune_type {
            FineTuneType::Full => Value::Null,
            _ => self.lora_parameters.to_json(),
        };
        all.push(("lora_parameters".into(), lora));
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Object(all.into_iter().collect())
    }

    /// Parses the JSON of an `adapter_config.json` (`fine_tune_type` defaults to `"lora"`, as
    /// in mlx-lm's `load_adapters`); `file` names the source in errors.
    pub fn from_json(value: &Value, file: &str) -> Result<FineTuneConfig> {
        const OP: &str = "adapter_config";
        let Value::Object(m) = value else {
            return Err(err(OP, format!("{file}: must be a JSON object")));
        };
        let fine_tune_type = match m.get("fine_tune_type") {
            None | Some(Value::Null) => FineTuneType::Lora,
            Some(Value::String(s)) => FineTuneType::from_name(s).context(file)?,
            Some(v) => {
                return Err(err(OP, format!("{file}: `fine_tune_type` must be a string, got {v}")));
            }
        };
        let num_layers = match m.get("num_layers") {
            Some(v) => v.as_i64().and_then(|n| i32::try_from(n).ok()).ok_or_else(|| {
                err(OP, format!("{file}: `num_layers` must be an integer, got {v}"))
            })?,
            None => return Err(err(OP, format!("{file}: `num_layers` is missing"))),
        };
        let lora_parameters = match (fine_tune_type, m.get("lora_parameters")) {
            (FineTuneType::Full, _) => LoraParameters::default(),
            (_, Some(v)) => LoraParameters::from_json(v, file)?,
            (_, None) => return Err(err(OP, format!("{file}: `lora_parameters` is missing"))),
        };
        let extra = m
            .iter()
            .filter(|(k, _)| {
                !matches!(k.as_str(), "fine_tune_type" | "num_layers" | "lora_parameters")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(FineTuneConfig { fine_tune_type, num_layers, lora_parameters, extra })
    }

    /// Reads `dir/adapter_config.json`.
    pub fn load(dir: impl AsRef<Path>) -> Result<FineTuneConfig> {
        let path = dir.as_ref().join(ADAPTER_CONFIG);
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| err("load_adapters", format!("cannot read {file}: {e}")))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| err("load_adapters", format!("{file}: invalid JSON: {e}")))?;
        FineTuneConfig::from_json(&value, &file)
    }

    /// Writes `dir/adapter_config.json` (creating `dir`), indented by 4 as mlx-lm writes it.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let io = |e: std::io::Error| err("save_adapter_config", format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        serde::Serialize::serialize(&self.to_json(), &mut ser)
            .map_err(|e| err("save_adapter_config", e.to_string()))?;
        std::fs::write(dir.join(ADAPTER_CONFIG), out).map_err(io)
    }
}

/// The index of the block a path lies in (`model.layers.{i}.…`) and the rest of the path.
pub fn split_layer_path(path: &str) -> Option<(usize, &str)> {
    let rest = path.strip_prefix(LAYERS_PREFIX)?;
    let (index, inner) = rest.split_once('.').unwrap_or((rest, ""));
    Some((index.parse().ok()?, inner))
}

/// The first block trained when the last `num_layers` of `total` are (mlx-lm's
/// `model.layers[-max(num_layers, 0):]`: 0 and negative counts mean every block).
pub fn first_trained_layer(num_layers: i32, total: usize) -> usize {
    let n = num_layers.max(0) as usize;
    if n == 0 { 0 } else { total.saturating_sub(n) }
}

/// Adds adapters to the adaptable layers of the last `num_layers` blocks (mlx-lm's
/// `linear_to_lora_layers`): every projection, router and expert layer of those blocks, or
/// only those whose path inside the block is in `params.keys`; a key that names a layer
/// outside the blocks (such as `lm_head`) adapts that layer too. DoRA on expert layers is an
/// error, as in mlx-lm. Returns how many layers got an adapter.
///
/// This does not freeze the model (mlx-lm's `lora.py` freezes it first: see
/// [`prepare_model`]); the new adapter parameters are trainable.
pub fn linear_to_lora_layers(
    model: &mut dyn LanguageModel,
    num_layers: i32,
    params: &LoraParameters,
    use_dora: bool,
) -> Result<usize> {
    let total = model.num_layers();
    let first = first_trained_layer(num_layers, total);
    let keys: Option<HashSet<&str>> =
        params.keys.as_ref().map(|k| k.iter().map(String::as_str).collect());
    let config = AdapterConfig {
        kind: if use_dora { AdapterKind::DoRA } else { AdapterKind::LoRA },
        rank: params.rank,
        scale: params.scale,
        dropout: params.dropout,
    };
    nn::apply_adapters(
        model,
        |path| match (split_layer_path(path), &keys) {
            (Some((i, inner)), keys) if i >= first => {
                keys.as_ref().is_none_or(|k| k.contains(inner))
            }
            (_, Some(k)) => k.contains(path),
            _ => false,
        },
        config,
    )
}

/// Readies a freshly loaded model for training as mlx-lm's `train_model` does: freezes it,
/// then adds the adapters of `config` (LoRA/DoRA) or unfreezes the last `num_layers` blocks
/// (full fine-tuning). Errors when `num_layers` exceeds the model's blocks. Returns the
/// number of adapted layers (0 for full fine-tuning).
pub fn prepare_model(model: &mut dyn LanguageModel, config: &FineTuneConfig) -> Result<usize> {
    let total = model.num_layers();
    if config.num_layers > 0 && config.num_layers as usize > total {
        return Err(err(
            "prepare_model",
            format!(
                "requested to train {} layers but the model only has {total} layers",
                config.num_layers
            ),
        ));
    }
    model.freeze();
    match config.fine_tune_type {
        FineTuneType::Full => {
            unfreeze_last_layers(model, config.num_layers)?;
            Ok(0)
        }
        kind => linear_to_lora_layers(
            model,
            config.num_layers,
            &config.lora_parameters,
            kind == FineTuneType::Dora,
        ),
    }
}

/// Unfreezes every parameter of the last `num_layers` blocks (full fine-tuning).
pub fn unfreeze_last_layers(model: &mut dyn LanguageModel, num_layers: i32) -> Result<()> {
    let first = first_trained_layer(num_layers, model.num_layers());
    model.visit_parameters_mut(&mut String::new(), &mut |path, p| {
        if split_layer_path(path).is_some_and(|(i, _)| i >= first) {
            p.set_frozen(false);
        }
        Ok(())
    })
}

/// The trainable parameters as `adapters.safetensors` holds them (flat dotted keys).
pub fn adapter_weights(model: &dyn LanguageModel) -> HashMap<String, Array> {
    tree_flatten(&model.trainable_parameters()).into_iter().collect()
}

/// Writes the trainable parameters to `file` (what mlx-lm's trainer saves).
pub fn save_adapter_weights(model: &dyn LanguageModel, file: impl AsRef<Path>) -> Result<()> {
    let file = file.as_ref();
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| err("save_adapters", format!("{}: {e}", parent.display())))?;
    }
    let metadata = HashMap::from([("format", "mlx")]);
    mlx_rs::io::save_safetensors(file, &adapter_weights(model), &metadata)
        .with_context(|| format!("writing `{}`", file.display()))
}

/// Writes an adapter directory: `adapter_config.json` from `config` and the model's trainable
/// parameters as `adapters.safetensors`.
pub fn save_adapters(
    model: &dyn LanguageModel,
    config: &FineTuneConfig,
    dir: impl AsRef<Path>,
) -> Result<()> {
    let dir = dir.as_ref();
    config.save(dir)?;
    save_adapter_weights(model, dir.join(ADAPTER_WEIGHTS))
}

/// Loads adapter weights from `file` over the model's parameters (what mlx-lm does with
/// `--resume-adapter-file` and at the end of `load_adapters`): every tensor must name an
/// adapter parameter (`lora_a`, `lora_b`, `m`; any parameter when `full`) of the same shape,
/// else an error lists the incompatible tensors and nothing is loaded. Parameters the file
/// does not hold keep their values.
pub fn load_adapter_weights(
    model: &mut dyn LanguageModel,
    file: impl AsRef<Path>,
    full: bool,
) -> Result<()> {
    let file = file.as_ref();
    let (weights, _) = mlx_rs::io::load_safetensors(file)
        .with_context(|| format!("reading `{}`", file.display()))?;
    let params: HashMap<String, Vec<i32>> = model
        .named_parameters()
        .into_iter()
        .filter(|(name, _)| {
            full || matches!(name.rsplit('.').next(), Some("lora_a" | "lora_b" | "m"))
        })
        .map(|(name, a)| (name, a.shape().to_vec()))
        .collect();
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    let mut errors = Vec::new();
    for name in names {
        match params.get(name) {
            None => errors.push(format!("  {name}: not an adapter parameter in the model")),
            Some(shape) if shape.as_slice() != weights[name].shape() => errors.push(format!(
                "  {name}: adapter shape {:?} does not match model parameter shape {shape:?}",
                weights[name].shape()
            )),
            Some(_) => {}
        }
    }
    if !errors.is_empty() {
        return Err(err(
            "load_adapters",
            format!(
                "adapter at {} contains incompatible tensors:\n{}",
                file.display(),
                errors.join("\n")
            ),
        ));
    }
    model.update(&tree_unflatten(weights.into_iter().collect())?)
}

/// mlx-lm's `load_adapters(model, dir)`: reads `dir/adapter_config.json`, adds its adapters to
/// the last `num_layers` blocks (nothing for full fine-tuning), then loads
/// `dir/adapters.safetensors` (see [`load_adapter_weights`]). Returns the config.
pub fn load_adapters(
    model: &mut dyn LanguageModel,
    dir: impl AsRef<Path>,
) -> Result<FineTuneConfig> {
    let dir = dir.as_ref();
    if !dir.exists() {
        return Err(err(
            "load_adapters",
            format!("the adapter path does not exist: {}", dir.display()),
        ));
    }
    let config = FineTuneConfig::load(dir)?;
    let full = config.fine_tune_type == FineTuneType::Full;
    if !full {
        linear_to_lora_layers(
            model,
            config.num_layers,
            &config.lora_parameters,
            config.fine_tune_type == FineTuneType::Dora,
        )?;
    }
    load_adapter_weights(model, dir.join(ADAPTER_WEIGHTS), full)?;
    Ok(config)
}

/// Merges every adapter into its base layer (mlx-lm's `fuse`: `m.fuse(dequantize)` on each
/// adapted layer); quantized bases are re-quantized with their settings unless `dequantize`.
pub fn fuse_model(model: &mut dyn LanguageModel, dequantize: bool) -> Result<()> {
    nn::fuse_adapters(model, dequantize)
}

/// `model`'s parameters with every quantized weight dequantized (`{p}.weight` from
/// `{p}.weight`, `{p}.scales`, `{p}.biases` with the config's settings for `p`), as mlx-lm's
/// `dequantize_model` leaves them.
fn dequantized_parameters(
    model: &dyn Module,
    config: &ModelConfig,
) -> Result<Vec<(String, Array)>> {
    let params: HashMap<String, Array> = model.named_parameters().into_iter().collect();
    let Some(q) = &config.quantization else {
        return Ok(params.into_iter().collect());
    };
    let mut out = Vec::with_capacity(params.len());
    let mut skip = HashSet::new();
    for (name, scales) in &params {
        let Some(prefix) = name.strip_suffix(".scales") else { continue };
        let weight_name = format!("{prefix}.weight");
        let Some(weight) = params.get(&weight_name) else { continue };
        let settings = q.quantization_for(prefix).unwrap_or(q.default);
        let biases_name = format!("{prefix}.biases");
        let parts = Quantized {
            weights: weight.clone(),
            scales: scales.clone(),
            biases: params.get(&biases_name).cloned(),
        };
        let dense = quantization::dequantize(&parts, quantization_params(settings), None)
            .with_context(|| format!("dequantizing `{prefix}`"))?;
        out.push((weight_name.clone(), dense));
        skip.extend([weight_name, name.clone(), biases_name]);
    }
    out.extend(params.into_iter().filter(|(name, _)| !skip.contains(name)));
    Ok(out)
}

/// Tokenizer and generation files copied from a source model directory to a fused one.
const COPIED_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "chat_template.jinja",
    "chat_template.json",
];

/// Writes a (fused) model as a model directory that [`crate::load_model`] and mlx-lm load:
/// `config.json` (mlx-lm's `save_config`: keys sorted, `quantization_config` mirroring
/// `quantization`; both dropped when `dequantize`, with every quantized weight dequantized)
/// and `model.safetensors`. With `source_dir`, its tokenizer and generation files are copied.
pub fn save_fused_model(
    model: &dyn LanguageModel,
    config: &ModelConfig,
    dir: impl AsRef<Path>,
    dequantize: bool,
    source_dir: Option<&Path>,
) -> Result<()> {
    let dir = dir.as_ref();
    let mut raw = config.raw.clone();
    let weights: Vec<(String, Array)> = if dequantize {
        raw.remove("quantization");
        raw.remove("quantization_config");
        dequantized_parameters(model, config)?
    } else {
        if let Some(q) = raw.get("quantization").cloned() {
            raw.insert("quantization_config".into(), q);
        }
        model.named_parameters()
    };
    raw.remove("_name_or_path");
    let mut sorted: Vec<(String, Value)> = raw.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let raw: Map<String, Value> = sorted.into_iter().collect();
    let text = serde_json::to_string(&Value::Object(raw))
        .map_err(|e| err("save_fused_model", e.to_string()))?;
    let out_config =
        ModelConfig::from_json_str(&text, &dir.join("config.json").display().to_string())?;
    let params = weights.into_iter().map(|(n, a)| (n, nn::Param::frozen(a))).collect();
    save_model_dir(&ParamsOnly(params), &out_config, dir)?;
    if let Some(src) = source_dir {
        for name in COPIED_FILES {
            let from = src.join(name);
            if from.is_file() {
                std::fs::copy(&from, dir.join(name))
                    .map_err(|e| err("save_fused_model", format!("{}: {e}", from.display())))?;
            }
        }
    }
    Ok(())
}

/// A module that is only a flat list of named parameters (what [`save_model_dir`] writes).
struct ParamsOnly(Vec<(String, nn::Param)>);

impl Module for ParamsOnly {
    fn visit_parameters<'a>(&'a self, _path: &mut String, f: &mut dyn FnMut(&str, &'a nn::Param)) {
        for (name, p) in &self.0 {
            f(name, p);
        }
    }

    fn visit_parameters_mut(
        &mut self,
        _path: &mut String,
        f: &mut dyn FnMut(&str, &mut nn::Param) -> Result<()>,
    ) -> Result<()> {
        for (name, p) in &mut self.0 {
            f(name, p)?;
        }
        Ok(())
    }

    fn train(&mut self, _mode: bool) {}

    fn training_state(&self) -> Option<bool> {
        None
    }
}
