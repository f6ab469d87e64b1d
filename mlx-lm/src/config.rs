//! A model directory's `config.json` and `generation_config.json`, as mlx-lm reads them.
//!
//! [`ModelConfig`] keeps the whole `config.json` (architectures parse their own fields from it
//! with [`ModelConfig::parse_as`]) and types what every model shares: `model_type`, the EOS ids,
//! and the quantization (`quantization`, or the legacy `quantization_config`, with per-module
//! overrides) behind [`QuantizationConfig::quantization_for`].
//!
//! ```
//! use mlx_lm::config::{ModelConfig, QuantMode};
//! let config = ModelConfig::from_json_str(r#"{
//!     "model_type": "llama",
//!     "eos_token_id": [1, 2],
//!     "quantization": {"group_size": 64, "bits": 4,
//!                      "model.layers.0.mlp.gate": {"group_size": 64, "bits": 8},
//!                      "lm_head": false}
//! }"#, "config.json")?;
//! let q = config.quantization.as_ref().unwrap();
//! assert_eq!(q.quantization_for("model.layers.0.mlp.gate").unwrap().bits, 8);
//! assert_eq!(q.quantization_for("model.layers.1.self_attn.q_proj").unwrap().bits, 4);
//! assert_eq!(q.quantization_for("lm_head"), None);
//! assert_eq!(q.default.mode, QuantMode::Affine);
//! assert_eq!(config.eos_token_ids, [1, 2]);
//! # Ok::<(), mlx_rs::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use mlx_rs::{Error, Result};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A quantization mode, as MLX names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantMode {
    /// Scales and biases per group (`"affine"`).
    Affine,
    /// Microscaling FP4 (`"mxfp4"`).
    Mxfp4,
    /// NVIDIA FP4 (`"nvfp4"`).
    Nvfp4,
    /// Microscaling FP8 (`"mxfp8"`).
    Mxfp8,
}

impl QuantMode {
    /// The mode of MLX's name (`"affine"`, `"mxfp4"`, `"nvfp4"`, `"mxfp8"`).
    pub fn from_name(name: &str) -> Option<QuantMode> {
        match name {
            "affine" => Some(QuantMode::Affine),
            "mxfp4" => Some(QuantMode::Mxfp4),
            "nvfp4" => Some(QuantMode::Nvfp4),
            "mxfp8" => Some(QuantMode::Mxfp8),
            _ => None,
        }
    }

    /// MLX's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            QuantMode::Affine => "affine",
            QuantMode::Mxfp4 => "mxfp4",
            QuantMode::Nvfp4 => "nvfp4",
            QuantMode::Mxfp8 => "mxfp8",
        }
    }

    /// MLX's default `(group_size, bits)` of the mode (what `to_quantized` uses for a missing
    /// key): affine 64/4, mxfp4 32/4, nvfp4 16/4, mxfp8 32/8.
    pub fn defaults(self) -> (i32, i32) {
        match self {
            QuantMode::Affine => (64, 4),
            QuantMode::Mxfp4 => (32, 4),
            QuantMode::Nvfp4 => (16, 4),
            QuantMode::Mxfp8 => (32, 8),
        }
    }
}

/// How one module is quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QuantParams {
    /// Elements per group sharing a scale.
    pub group_size: i32,
    /// Bits per element.
    pub bits: i32,
    /// The mode.
    pub mode: QuantMode,
}

/// A per-module entry of the `quantization` map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleQuantization {
    /// `{group_size, bits, mode}` (missing keys take the mode's defaults).
    Params(QuantParams),
    /// `false`: the module stays unquantized.
    Skip,
    /// `true`: the top-level parameters.
    Default,
}

/// The quantization of a checkpoint: the top-level parameters and per-module overrides keyed by
/// the module's dotted path (`model.layers.0.mlp.gate`).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizationConfig {
    /// The parameters of every quantizable module not named in `overrides`.
    pub default: QuantParams,
    /// Per-module entries.
    pub overrides: BTreeMap<String, ModuleQuantization>,
}

/// What the checkpoint holds for one module, for [`QuantizationConfig::resolve`]: the shapes
/// and dtype mlx-lm's `infer_quant_config` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedWeightInfo {
    /// The module's unquantized input size (`weight.shape[-1]` of the float module).
    pub in_dims: i32,
    /// The last dimension of the packed `weight` (`uint32` words).
    pub packed_dims: i32,
    /// The last dimension of `scales`.
    pub scale_groups: i32,
    /// Whether `scales` is `uint8` (every mode but affine).
    pub scales_u8: bool,
}

impl QuantizationConfig {
    /// The parameters `path` is quantized with according to the config: its override if it has
    /// one (`false` gives `None`), else the top-level parameters.
    ///
    /// mlx-lm applies this to every module that can be quantized and has `{path}.scales` in the
    /// checkpoint; see [`QuantizationConfig::resolve`] for the full rule.
    pub fn quantization_for(&self, path: &str) -> Option<QuantParams> {
        match self.overrides.get(path) {
            Some(ModuleQuantization::Params(p)) => Some(*p),
            Some(ModuleQuantization::Skip) => None,
            Some(ModuleQuantization::Default) | None => Some(self.default),
        }
    }

    /// mlx-lm 0.32.0's `class_predicate`: an override names the parameters (or `false`); a
    /// module without `{path}.scales` in the checkpoint (`packed: None`) stays unquantized;
    /// otherwise the parameters are inferred from the packed shapes
    /// ([`infer_quant_params`]).
    pub fn resolve(
        &self,
        path: &str,
        packed: Option<PackedWeightInfo>,
    ) -> Result<Option<QuantParams>> {
        match self.overrides.get(path) {
            Some(ModuleQuantization::Params(p)) => Ok(Some(*p)),
            Some(ModuleQuantization::Skip) => Ok(None),
            Some(ModuleQuantization::Default) => Ok(Some(self.default)),
            None => match packed {
                None => Ok(None),
                Some(info) => infer_quant_params(path, info).map(Some),
            },
        }
    }

    /// Parses a `quantization` object (`{"group_size", "bits", "mode"?, "<path>": {...} | false}`);
    /// `file` names the file in errors.
    pub fn from_value(value: &Value, file: &str) -> Result<QuantizationConfig> {
        let obj = value
            .as_object()
            .ok_or_else(|| config_err(file, "quantization", "must be an object"))?;
        let default = params_from(obj, file, "quantization", true)?;
        let mut overrides = BTreeMap::new();
        for (key, v) in obj {
            if matches!(key.as_str(), "group_size" | "bits" | "mode") {
                continue;
            }
            let entry = match v {
                Value::Bool(false) => ModuleQuantization::Skip,
                Value::Bool(true) => ModuleQuantization::Default,
                Value::Object(o) => ModuleQuantization::Params(params_from(
                    o,
                    file,
                    &format!("quantization.{key}"),
                    false,
                )?),
                // Other scalar entries (e.g. `quant_method` copied from `quantization_config`)
                // are not module entries.
                _ => continue,
            };
            overrides.insert(key.clone(), entry);
        }
        Ok(QuantizationConfig { default, overrides })
    }
}

/// mlx-lm's `infer_quant_config`: the group size and bits a module was packed with, from its
/// shapes; the mode from the scales' dtype (non-affine modes each allow one `(bits, group)`).
pub fn infer_quant_params(path: &str, info: PackedWeightInfo) -> Result<QuantParams> {
    if info.scale_groups <= 0 || info.in_dims <= 0 {
        return Err(Error::invalid(
            "infer_quant_params",
            format!("cannot infer the quantization of {path}: empty weight or scales"),
        ));
    }
    let group_size = info.in_dims / info.scale_groups;
    let bits = (info.packed_dims * 32) / info.in_dims;
    let mode = if !info.scales_u8 {
        QuantMode::Affine
    } else {
        match (bits, group_size) {
            (4, 16) => QuantMode::Nvfp4,
            (4, 32) => QuantMode::Mxfp4,
            (8, 32) => QuantMode::Mxfp8,
            _ => {
                return Err(Error::invalid(
                    "infer_quant_params",
                    format!(
                        "Cannot infer the quantization mode of {path}: {bits} bits with group size {group_size}."
                    ),
                ));
            }
        }
    };
    Ok(QuantParams { group_size, bits, mode })
}

/// `{group_size, bits, mode}` from `obj`; `required`: group_size and bits must be present (the
/// top level, as mlx-lm indexes them), else they take the mode's defaults.
fn params_from(
    obj: &Map<String, Value>,
    file: &str,
    at: &str,
    required: bool,
) -> Result<QuantParams> {
    let mode = match obj.get("mode") {
        None | Some(Value::Null) => QuantMode::Affine,
        Some(Value::String(s)) => QuantMode::from_name(s).ok_or_else(|| {
            config_err(
                file,
                &format!("{at}.mode"),
                &format!("unknown mode {s:?} (expected affine, mxfp4, nvfp4 or mxfp8)"),
            )
        })?,
        Some(_) => return Err(config_err(file, &format!("{at}.mode"), "must be a string")),
    };
    let (dg, db) = mode.defaults();
    let int = |key: &str, default: i32| -> Result<i32> {
        match obj.get(key) {
            None | Some(Value::Null) if !required => Ok(default),
            None | Some(Value::Null) => Err(config_err(file, &format!("{at}.{key}"), "is missing")),
            Some(v) => {
                v.as_i64().and_then(|n| i32::try_from(n).ok()).filter(|&n| n > 0).ok_or_else(|| {
                    config_err(
                        file,
                        &format!("{at}.{key}"),
                        &format!("must be a positive integer, got {v}"),
                    )
                })
            }
        }
    };
    Ok(QuantParams { group_size: int("group_size", dg)?, bits: int("bits", db)?, mode })
}

fn config_err(file: &str, key: &str, msg: &str) -> Error {
    Error::invalid("config", format!("{file}: `{key}` {msg}"))
}

/// A model's `config.json`, with what every architecture shares typed.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// `model_type` (`"llama"`, `"qwen3_moe"`, ...).
    pub model_type: String,
    /// The quantization, from `quantization` or else a legacy `quantization_config` (also looked
    /// up under `text_config`), as mlx-lm reads them; `None` for a float checkpoint.
    pub quantization: Option<QuantizationConfig>,
    /// EOS ids: `generation_config.json`'s `eos_token_id` when present (and not empty), else
    /// `config.json`'s; an int or a list, as a list.
    pub eos_token_ids: Vec<u32>,
    /// The whole `config.json` object.
    pub raw: Map<String, Value>,
    /// The file the config came from (for error messages).
    pub file: String,
}

impl ModelConfig {
    /// Reads `dir/config.json`, and `dir/generation_config.json` when it exists (mlx-lm's
    /// `load_config`: a generation config that is not valid JSON is ignored).
    pub fn load(dir: impl AsRef<Path>) -> Result<ModelConfig> {
        let dir = dir.as_ref();
        let path = dir.join("config.json");
        let text = read_text(&path)?;
        let mut config = ModelConfig::from_json_str(&text, &path.display().to_string())?;
        let gen_path = dir.join("generation_config.json");
        if gen_path.exists() {
            let text = read_text(&gen_path)?;
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                let ids = eos_ids_of(&value, &gen_path.display().to_string())?;
                if !ids.is_empty() {
                    config.eos_token_ids = ids;
                }
            }
        }
        Ok(config)
    }

    /// Parses the text of a `config.json`; `file` names it in errors.
    pub fn from_json_str(text: &str, file: &str) -> Result<ModelConfig> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid("config", format!("{file}: invalid JSON: {e}")))?;
        let Value::Object(raw) = value else {
            return Err(Error::invalid("config", format!("{file}: must be a JSON object")));
        };
        let model_type = match raw.get("model_type") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => {
                return Err(config_err(file, "model_type", &format!("must be a string, got {v}")));
            }
            None => return Err(config_err(file, "model_type", "is missing")),
        };
        let quantization = quantization_from(&raw, file)?;
        let eos_token_ids = eos_ids_of(&Value::Object(raw.clone()), file)?;
        Ok(ModelConfig { model_type, quantization, eos_token_ids, raw, file: file.to_string() })
    }

    /// Deserializes the whole config into an architecture's argument struct (serde), with an
    /// error naming the file and the failing field.
    pub fn parse_as<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(Value::Object(self.raw.clone()))
            .map_err(|e| Error::invalid("config", format!("{}: {e}", self.file)))
    }

    /// The raw value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.raw.get(key)
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::invalid("config", format!("cannot read {}: {e}", path.display())))
}

/// `quantization`, else a legacy `quantization_config` (top level or in `text_config`).
fn quantization_from(raw: &Map<String, Value>, file: &str) -> Result<Option<QuantizationConfig>> {
    if let Some(q) = raw.get("quantization").filter(|v| !v.is_null()) {
        return QuantizationConfig::from_value(q, file).map(Some);
    }
    let legacy = raw
        .get("quantization_config")
        .or_else(|| raw.get("text_config").and_then(|t| t.get("quantization_config")));
    let Some(qc) = legacy else { return Ok(None) };
    // mlx-lm tests this key for truth: `false`, `null`, `{}` mean none.
    let obj = match qc {
        Value::Object(o) if !o.is_empty() => o,
        Value::Null | Value::Bool(false) => return Ok(None),
        Value::Object(_) => return Ok(None),
        _ => return Err(config_err(file, "quantization_config", "must be an object")),
    };
    let method = match obj.get("quant_method") {
        Some(Value::String(s)) => s.as_str(),
        // mlx-community checkpoints often repeat `quantization` here without a method.
        None if obj.contains_key("bits") => {
            return QuantizationConfig::from_value(qc, file).map(Some);
        }
        _ => return Err(config_err(file, "quantization_config.quant_method", "is missing")),
    };
    let preset = |group_size, bits, mode| {
        Ok(Some(QuantizationConfig {
            default: QuantParams { group_size, bits, mode },
            overrides: BTreeMap::new(),
        }))
    };
    match method {
        "mxfp4" => preset(32, 4, QuantMode::Mxfp4),
        "mxfp8" => preset(32, 8, QuantMode::Mxfp8),
        "fp8"
            if obj.get("scale_fmt").and_then(Value::as_str) == Some("ue8m0")
                && obj.get("weight_block_size") == Some(&serde_json::json!([32, 32])) =>
        {
            preset(32, 8, QuantMode::Mxfp8)
        }
        other => Err(config_err(
            file,
            "quantization_config.quant_method",
            &format!(
                "{other:?} is not supported (supported: mxfp4, mxfp8, fp8 with ue8m0 32x32 blocks)"
            ),
        )),
    }
}

/// `eos_token_id` of a config object: absent or `null` gives no ids; an int or a list of ints.
pub(crate) fn eos_ids_of(value: &Value, file: &str) -> Result<Vec<u32>> {
    let one = |v: &Value| {
        v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
            config_err(
                file,
                "eos_token_id",
                &format!("must be a token id or a list of them, got {v}"),
            )
        })
    };
    match value.get("eos_token_id") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(v) => Ok(vec![one(v)?]),
    }
}

/// The EOS ids of a `generation_config.json` file (an int or a list; none when absent).
pub fn generation_eos_ids(path: impl AsRef<Path>) -> Result<Vec<u32>> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let file = path.display().to_string();
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Error::invalid("config", format!("{file}: invalid JSON: {e}")))?;
    eos_ids_of(&value, &file)
}
