//! Loading a model directory in mlx-community format (mlx-lm's `load_model`): `config.json`
//! (and `generation_config.json`), every `model*.safetensors`, and the checkpoint's
//! quantization with its per-module overrides.
//!
//! The model is built lazily, its layers are replaced by quantized ones where the checkpoint
//! holds packed weights, and the checkpoint is then loaded strictly over it: nothing of the
//! initial float parameters is ever evaluated, so a 4-bit model costs its packed size.

use std::path::{Path, PathBuf};

use mlx_rs::distributed::{self, Group};
use mlx_rs::nn::{self, Module, QuantizeDecision};
use mlx_rs::utils::tree_unflatten;
use mlx_rs::{Array, Context, Dtype, Error, Result};

use crate::config::{ModelConfig, PackedWeightInfo, QuantizationConfig};
use crate::model::{Architecture, LanguageModel, Weights, quantization_params};
use crate::models;

/// A loaded model and the config it was built from.
pub struct LoadedModel {
    /// The model, ready for [`LanguageModel::forward`].
    pub model: Box<dyn LanguageModel>,
    /// The directory's config (EOS ids, quantization, the raw `config.json`).
    pub config: ModelConfig,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("model_type", &self.model.model_type())
            .field("num_layers", &self.model.num_layers())
            .finish_non_exhaustive()
    }
}

/// Loads the model in `dir`: an error for a missing directory, a config that does not parse,
/// an unknown `model_type` (listing the supported ones), no weight files, or a checkpoint that
/// does not match the config (naming the first key that differs).
pub fn load_model(dir: impl AsRef<Path>) -> Result<LoadedModel> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(Error::invalid(
            "load_model",
            format!("`{}` is not a model directory", dir.display()),
        ));
    }
    let config = ModelConfig::load(dir)?;
    models::check_supported(&config)?;
    let weights = read_weights(dir)?;
    let mut model = models::build(&config, Some(weights))?;
    // Evaluation mode, as mlx-lm's `load_model` leaves it (`model.eval()`).
    model.train(false);
    Ok(LoadedModel { model, config })
}

/// Loads this process's part of the model in `dir` for tensor parallelism over `group` (what
/// mlx-lm's `sharded_load` does): the model is built and the checkpoint attached lazily as in
/// [`load_model`], [`LanguageModel::shard`] slices every split parameter, and the parameters
/// are then evaluated one at a time, so that each checkpoint tensor is read, cut to this rank's
/// block and let go before the next: a process holds its shards and the replicated tensors,
/// plus at most one whole tensor while it is being cut. Ends with an all-sum over `group` so
/// that every rank is ready before the first forward pass.
///
/// Every process of `group` must call it with the same directory. An error (on every rank
/// alike, before any communication) when the architecture has no tensor parallelism or the
/// group size does not divide the heads or a split dimension.
pub fn load_model_sharded(dir: impl AsRef<Path>, group: &Group) -> Result<LoadedModel> {
    let mut loaded = load_model(dir)?;
    loaded.model.shard(group)?;
    evaluate_part(&loaded, group)?;
    Ok(loaded)
}

/// Loads this process's stage of the model in `dir` for pipeline parallelism over `group`
/// (mlx-lm's `pipeline_load`): as [`load_model_sharded`], with [`LanguageModel::pipeline`]
/// instead of [`LanguageModel::shard`], so that a process reads only its own layers (and the
/// embeddings, final norm and output head). Needs `send`/`recv`: the ring or MPI backend on
/// CPUs; on a CUDA device it is an error (MLX 0.32.2's NCCL backend has neither).
pub fn load_model_pipelined(dir: impl AsRef<Path>, group: &Group) -> Result<LoadedModel> {
    let mut loaded = load_model(dir)?;
    loaded.model.pipeline(group)?;
    evaluate_part(&loaded, group)?;
    Ok(loaded)
}

/// Evaluates the parameters one at a time, then waits for every rank.
fn evaluate_part(loaded: &LoadedModel, group: &Group) -> Result<()> {
    for (path, p) in loaded.model.named_parameters() {
        p.eval().with_context(|| format!("loading this rank's part of `{path}`"))?;
    }
    distributed::all_sum(&Array::from_slice(&[1.0f32], &[1])?, Some(group))?
        .eval()
        .context("waiting for the other ranks after loading")
}

/// The `model*.safetensors` files of `dir`, sorted by name (an error when there are none).
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::invalid("load_model", format!("{}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("model") && n.ends_with(".safetensors"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::invalid(
            "load_model",
            format!("no model*.safetensors in `{}`", dir.display()),
        ));
    }
    Ok(files)
}

/// Every tensor of every weight file of `dir` (lazy: read when evaluated).
pub fn read_weights(dir: &Path) -> Result<Weights> {
    let mut weights = Weights::new();
    for file in weight_files(dir)? {
        let (arrays, _) = mlx_rs::io::load_safetensors(&file)
            .with_context(|| format!("reading `{}`", file.display()))?;
        weights.extend(arrays);
    }
    Ok(weights)
}

/// Builds an architecture from `config` and, with `weights`, loads them over it: sanitize,
/// quantize the layers the checkpoint holds packed, then a strict load. Without weights the
/// model keeps its (unevaluated) initial parameters, quantized as the config says.
pub fn build_architecture<A: Architecture>(
    config: &ModelConfig,
    weights: Option<Weights>,
) -> Result<Box<dyn LanguageModel>> {
    let mut model = A::from_config(config)?;
    match weights {
        Some(weights) => {
            let weights = model.sanitize(weights)?;
            if let Some(q) = &config.quantization {
                quantize_like(&mut model, q, &weights)?;
            }
            load_strict(&mut model, weights)?;
        }
        None => {
            if let Some(q) = &config.quantization {
                quantize_structure(&mut model, q)?;
            }
        }
    }
    Ok(Box::new(model))
}

/// Quantizes the layers of `model` that `weights` holds packed, with the parameters mlx-lm's
/// loader chooses (the config's override, else inferred from the packed shapes).
fn quantize_like<M: Module>(
    model: &mut M,
    q: &QuantizationConfig,
    weights: &Weights,
) -> Result<()> {
    let mut failure = None;
    nn::quantize(model, quantization_params(q.default), |path, layer| {
        if failure.is_some() {
            return QuantizeDecision::Skip;
        }
        let packed = packed_info(path, layer.weight_shape(), weights);
        match q.resolve(path, packed) {
            Ok(Some(p)) => QuantizeDecision::With(quantization_params(p)),
            Ok(None) => QuantizeDecision::Skip,
            Err(e) => {
                failure = Some(e);
                QuantizeDecision::Skip
            }
        }
    })?;
    failure.map_or(Ok(()), Err)
}

/// Quantizes every quantizable layer as the config says (for a model without a checkpoint:
/// random-weight presets).
pub fn quantize_structure<M: Module>(model: &mut M, q: &QuantizationConfig) -> Result<()> {
    nn::quantize(model, quantization_params(q.default), |path, _| match q.quantization_for(path) {
        Some(p) => QuantizeDecision::With(quantization_params(p)),
        None => QuantizeDecision::Skip,
    })
}

fn packed_info(path: &str, dense: Option<Vec<i32>>, weights: &Weights) -> Option<PackedWeightInfo> {
    let scales = weights.get(&format!("{path}.scales"))?;
    let weight = weights.get(&format!("{path}.weight"))?;
    Some(PackedWeightInfo {
        in_dims: *dense?.last()?,
        packed_dims: *weight.shape().last()?,
        scale_groups: *scales.shape().last()?,
        scales_u8: scales.dtype() == Dtype::Uint8,
    })
}

/// Loads `weights` over every parameter of `model` (mlx-lm's `load_weights(strict=True)`):
/// each parameter needs a tensor of its shape and each tensor a parameter; the tensors keep
/// their dtypes.
pub fn load_strict<M: Module>(model: &mut M, weights: Weights) -> Result<()> {
    let mut params = model.named_parameters();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, p) in &params {
        let w = weights.get(path).ok_or_else(|| {
            Error::invalid("load_model", format!("the checkpoint has no `{path}`"))
        })?;
        if w.shape() != p.shape() {
            return Err(Error::invalid(
                "load_model",
                format!(
                    "`{path}` has shape {:?} in the checkpoint but the model expects {:?}",
                    w.shape(),
                    p.shape()
                ),
            ));
        }
    }
    if weights.len() != params.len() {
        let known: std::collections::HashSet<&str> =
            params.iter().map(|(p, _)| p.as_str()).collect();
        let mut extra: Vec<&String> =
            weights.keys().filter(|k| !known.contains(k.as_str())).collect();
        extra.sort();
        if let Some(key) = extra.first() {
            return Err(Error::invalid(
                "load_model",
                format!("the checkpoint's `{key}` is not a parameter of the model"),
            ));
        }
    }
    let items: Vec<(String, Array)> = weights.into_iter().collect();
    model.update(&tree_unflatten(items)?)
}
