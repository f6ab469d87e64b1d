//! What every model architecture provides: [`LanguageModel`] (the forward pass over a prompt
//! cache, as mlx-lm's `Model.__call__`) and [`Architecture`] (building from `config.json`,
//! mlx-lm's `sanitize` and `quant_predicate`).
//!
//! Models are built lazily: their freshly initialised parameters are never evaluated, so
//! building a model, quantizing its structure and then loading a checkpoint over it (see
//! [`crate::load`]) never materialises a float copy of a quantized checkpoint.

use std::collections::HashMap;

use mlx_rs::distributed::Group;
use mlx_rs::nn::cache::{
    Cache, CacheMask, KeysValues, PromptCache, create_causal_mask, make_prompt_cache,
    scaled_dot_product_attention,
};
use mlx_rs::nn::{AdaptableLinear, Module, Sharding};
use mlx_rs::quantization::{QuantizationMode, QuantizationParams};
use mlx_rs::{Array, Context, Error, Result};
use serde::de::DeserializeOwned;

use crate::config::{ModelConfig, QuantMode, QuantParams};

/// A checkpoint's tensors by name, as `mx.load` returns them (what `sanitize` rewrites).
pub type Weights = HashMap<String, Array>;

/// A causal language model: token ids in, next-token logits out.
pub trait LanguageModel: Module {
    /// The `model_type` this model was built for (`"llama"`, `"glm4_moe"`, ...).
    fn model_type(&self) -> &str;

    /// Logits `(batch, positions, vocab)` for the token ids `inputs` (`(batch, positions)`,
    /// integer), attending to and extending `cache` (one entry per layer, from
    /// [`LanguageModel::make_cache`]) when given.
    fn forward(&self, inputs: &Array, cache: Option<&mut [Box<dyn Cache>]>) -> Result<Array>;

    /// The number of transformer layers (one cache entry each).
    fn num_layers(&self) -> usize;

    /// The size of the vocabulary (the logits' last dimension).
    fn vocab_size(&self) -> i32;

    /// A fresh prompt cache for this model (mlx-lm's `make_prompt_cache(model)`): a
    /// [`mlx_rs::nn::cache::KVCache`] per layer unless the architecture needs other caches.
    fn make_cache(&self) -> Result<PromptCache> {
        make_prompt_cache(self.num_layers(), None)
    }

    /// Turns per-layer gradient checkpointing on or off (mlx-lm's `grad_checkpoint`): without a
    /// cache, each transformer block runs under [`checkpointed_layer`], so its intermediates
    /// are recomputed in the backward pass instead of kept. Turning it on is an error for an
    /// architecture that does not support it.
    fn set_grad_checkpoint(&mut self, on: bool) -> Result<()> {
        if !on {
            return Ok(());
        }
        Err(Error::invalid(
            "grad_checkpoint",
            format!("`{}` models do not support gradient checkpointing yet", self.model_type()),
        ))
    }

    /// Splits the model across `group` for tensor parallelism (mlx-lm's `Model.shard`): every
    /// attention block keeps `1/N` of the query and key/value heads (q/k/v all-to-sharded, o
    /// sharded-to-all), every MLP `1/N` of its hidden features (gate/up all-to-sharded, down
    /// sharded-to-all), every expert `1/N` of its hidden features with one all-sum per
    /// mixture-of-experts block; embeddings, norms, routers and the output head stay
    /// replicated. Each transformer block then costs two all-sums.
    ///
    /// Parameters are sliced lazily: shard a lazily loaded model before evaluating it (see
    /// [`crate::load::load_model_sharded`]) and each process only ever holds its part. An
    /// error when the group size does not divide the heads (checked before anything changes)
    /// or a split dimension, or for an architecture without tensor parallelism; after an error
    /// from a split dimension the model is left partly sharded and should be dropped.
    fn shard(&mut self, group: &Group) -> Result<()> {
        let _ = group;
        Err(Error::new(
            mlx_rs::ErrorKind::Unsupported,
            "shard",
            format!("`{}` models do not support tensor parallelism", self.model_type()),
        ))
    }

    /// Splits the model's layers into consecutive stages across `group` (pipeline parallelism,
    /// mlx-lm's `model.pipeline(group)`; see [`Pipeline`]): this rank keeps only its layers'
    /// parameters (the others become empty, so a lazily loaded checkpoint never reads them, see
    /// [`crate::load::load_model_pipelined`]); embeddings, the final norm and the output head
    /// stay on every rank. The prompt cache keeps one entry per layer; only this rank's are
    /// used. An error for fewer layers than ranks, on a CUDA device (MLX 0.32.2's NCCL backend
    /// has no send/recv), or for an architecture without pipelining.
    fn pipeline(&mut self, group: &Group) -> Result<()> {
        let _ = group;
        Err(Error::new(
            mlx_rs::ErrorKind::Unsupported,
            "pipeline",
            format!("`{}` models do not support pipeline parallelism", self.model_type()),
        ))
    }
}

/// An error unless `group`'s size divides `n_heads` query heads and `n_kv_heads` key/value
/// heads (what [`LanguageModel::shard`] needs).
pub fn check_shardable_heads(n_heads: i32, n_kv_heads: i32, group: &Group) -> Result<()> {
    let n = group.size();
    if n <= 0 || n_heads % n != 0 || n_kv_heads % n != 0 {
        return Err(Error::invalid(
            "shard",
            format!(
                "{n_heads} attention heads and {n_kv_heads} key/value heads cannot be split \
                 evenly across {n} processes"
            ),
        ));
    }
    Ok(())
}

/// Shards one attention block as mlx-lm does: `q`, `k`, `v` all-to-sharded, `o`
/// sharded-to-all, and the head counts divided by the group size (an error, before anything
/// changes, when it does not divide them).
pub fn shard_attention(
    [q, k, v, o]: [&mut AdaptableLinear; 4],
    n_heads: &mut i32,
    n_kv_heads: &mut i32,
    group: &Group,
) -> Result<()> {
    check_shardable_heads(*n_heads, *n_kv_heads, group)?;
    q.shard(Sharding::AllToSharded, group).context("sharding `q_proj`")?;
    k.shard(Sharding::AllToSharded, group).context("sharding `k_proj`")?;
    v.shard(Sharding::AllToSharded, group).context("sharding `v_proj`")?;
    o.shard(Sharding::ShardedToAll, group).context("sharding `o_proj`")?;
    *n_heads /= group.size();
    *n_kv_heads /= group.size();
    Ok(())
}

/// Shards a SwiGLU MLP as mlx-lm does: `gate` and `up` all-to-sharded, `down` sharded-to-all
/// (one all-sum). With `in_place` the layers are only sliced ([`mlx_rs::nn::shard_inplace`]):
/// the caller sums the block's output, as mixture-of-experts blocks do for their shared
/// experts.
pub fn shard_mlp(
    [gate, up, down]: [&mut AdaptableLinear; 3],
    in_place: bool,
    group: &Group,
) -> Result<()> {
    if in_place {
        gate.shard_inplace(Sharding::AllToSharded, group).context("sharding `gate_proj`")?;
        up.shard_inplace(Sharding::AllToSharded, group).context("sharding `up_proj`")?;
        down.shard_inplace(Sharding::ShardedToAll, group).context("sharding `down_proj`")
    } else {
        gate.shard(Sharding::AllToSharded, group).context("sharding `gate_proj`")?;
        up.shard(Sharding::AllToSharded, group).context("sharding `up_proj`")?;
        down.shard(Sharding::ShardedToAll, group).context("sharding `down_proj`")
    }
}

/// Slices the experts of a [`mlx_rs::nn::SwitchGlu`] in place (mlx-lm's `shard_inplace` on
/// `switch_mlp.{gate,up,down}_proj`): each rank keeps `1/N` of every expert's hidden features;
/// the block that owns it all-sums its output.
pub fn shard_switch_glu(glu: &mut mlx_rs::nn::SwitchGlu, group: &Group) -> Result<()> {
    let ctx = |name: &str| format!("sharding the experts' `{name}`");
    glu.gate_proj.shard_inplace(Sharding::AllToSharded, group).with_context(|| ctx("gate_proj"))?;
    glu.up_proj.shard_inplace(Sharding::AllToSharded, group).with_context(|| ctx("up_proj"))?;
    glu.down_proj.shard_inplace(Sharding::ShardedToAll, group).with_context(|| ctx("down_proj"))
}

/// Runs `shard` on every layer, naming the layer in an error.
pub fn shard_layers<L>(
    layers: &mut [L],
    mut shard: impl FnMut(&mut L) -> Result<()>,
) -> Result<()> {
    for (i, layer) in layers.iter_mut().enumerate() {
        shard(layer).with_context(|| format!("sharding `model.layers.{i}`"))?;
    }
    Ok(())
}

/// `forward(layer, x)` under [`mlx_rs::transforms::checkpoint`], with the layer's trainable
/// parameters as inputs of the checkpointed function (as mlx-lm's `grad_checkpoint` passes
/// `model.trainable_parameters()`), so that gradients reach them while the layer's
/// intermediates are recomputed during the backward pass.
pub fn checkpointed_layer<L: Module + Clone + 'static>(
    layer: &L,
    x: &Array,
    forward: impl Fn(&L, &Array) -> Result<Array> + 'static,
) -> Result<Array> {
    let params = layer.trainable_parameters();
    let structure = params.map(|_| Ok(()))?;
    let mut inner = layer.clone();
    let f = mlx_rs::transforms::checkpoint(move |inputs: &[Array]| {
        let (x, leaves) =
            inputs.split_first().ok_or_else(|| Error::invalid("checkpointed_layer", "no input"))?;
        inner.update(&structure.with_leaves(leaves.iter().cloned())?)?;
        Ok(vec![forward(&inner, x)?])
    })?;
    let mut inputs = vec![x.clone()];
    inputs.extend(params.leaves().into_iter().cloned());
    f.apply(&inputs)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid("checkpointed_layer", "the layer returned nothing"))
}

/// An architecture: how a model of one family is built from its config and how checkpoints are
/// adapted to it.
pub trait Architecture: LanguageModel + Sized + 'static {
    /// The architecture's arguments, parsed from `config.json` (mlx-lm's `ModelArgs`).
    type Args: DeserializeOwned;

    /// Builds the model with freshly initialised (unevaluated) float parameters.
    fn new(args: &Self::Args, model_type: &str) -> Result<Self>;

    /// Builds the model from a config (parses [`Architecture::Args`] first).
    fn from_config(config: &ModelConfig) -> Result<Self> {
        let args: Self::Args = config.parse_as()?;
        Self::new(&args, &config.model_type)
    }

    /// mlx-lm's `sanitize`: renames, stacks or drops checkpoint tensors so that their names
    /// match the model's parameters.
    fn sanitize(&self, weights: Weights) -> Result<Weights> {
        Ok(weights)
    }

    /// mlx-lm's `quant_predicate`, used when a float model is quantized (a converted
    /// checkpoint records the result in `config.json`): `Some(params)` overrides the settings
    /// for the layer at `path`, `Some(None)` keeps it dense, `None` takes the defaults.
    fn quant_predicate(&self, path: &str) -> Option<Option<QuantParams>> {
        let _ = path;
        None
    }
}

/// The [`QuantizationParams`] of a config's [`QuantParams`].
pub fn quantization_params(p: QuantParams) -> QuantizationParams {
    let mode = match p.mode {
        QuantMode::Affine => QuantizationMode::Affine,
        QuantMode::Mxfp4 => QuantizationMode::Mxfp4,
        QuantMode::Nvfp4 => QuantizationMode::Nvfp4,
        QuantMode::Mxfp8 => QuantizationMode::Mxfp8,
    };
    QuantizationParams { group_size: Some(p.group_size), bits: Some(p.bits), mode }
}

/// Removes and returns `key` from `weights`, or an error naming it.
pub fn take_weight(weights: &mut Weights, key: &str) -> Result<Array> {
    weights
        .remove(key)
        .ok_or_else(|| Error::invalid("sanitize", format!("the checkpoint has no `{key}`")))
}

/// One layer's slot of a prompt cache (`None` when the model runs without a cache).
pub type LayerCache<'a> = Option<&'a mut (dyn Cache + 'static)>;

/// One cache slot per layer from a model's optional prompt cache (all `None` without one); a
/// cache with another number of entries than `num_layers` is an error.
pub fn layer_caches(
    cache: Option<&mut [Box<dyn Cache>]>,
    num_layers: usize,
) -> Result<Vec<LayerCache<'_>>> {
    match cache {
        None => Ok((0..num_layers).map(|_| None).collect()),
        Some(c) if c.len() == num_layers => Ok(c.iter_mut().map(|c| Some(c.as_mut())).collect()),
        Some(c) => Err(Error::invalid(
            "forward",
            format!(
                "the prompt cache has {} entries but the model has {num_layers} layers",
                c.len()
            ),
        )),
    }
}

/// mlx-lm's `create_attention_mask(h, cache, window_size, return_array)` for `n` new
/// positions: the cache's own mask when there is a cache, else none for one position and the
/// causal mask otherwise (an array when asked for or when a window is shorter than `n`).
pub fn attention_mask(
    n: i32,
    cache: Option<&dyn Cache>,
    window_size: Option<i32>,
    return_array: bool,
) -> Result<CacheMask> {
    if let Some(cache) = cache {
        return cache.make_mask(n, window_size, return_array);
    }
    if n == 1 {
        Ok(CacheMask::None)
    } else if return_array || window_size.is_some_and(|w| n > w) {
        Ok(CacheMask::Array(create_causal_mask(n, 0, window_size)?))
    } else {
        Ok(CacheMask::Causal)
    }
}

/// Attention of `queries` over `keys` and `values` (`(batch, heads, positions, head_dim)`,
/// roped) through `cache` when given (mlx-lm's `cache.update_and_fetch` followed by
/// `scaled_dot_product_attention`, quantized caches included).
pub fn cached_attention(
    queries: &Array,
    keys: &Array,
    values: &Array,
    cache: LayerCache<'_>,
    scale: f32,
    mask: &CacheMask,
) -> Result<Array> {
    let kv = match cache {
        Some(cache) => cache.update_and_fetch(keys, values)?,
        None => KeysValues::Dense { keys: keys.clone(), values: values.clone() },
    };
    scaled_dot_product_attention(queries, &kv, scale, mask.as_attention_mask(), None)
}

/// The layers one process runs when a model is split into consecutive stages across a group
/// (pipeline parallelism, mlx-lm's `PipelineMixin`): rank `r` runs the layers after those of
/// ranks `r + 1 .. size`, so the last rank runs the first layers and rank 0 the last ones. Each
/// stage receives the hidden state from the rank above, runs its layers, sends the result to
/// the rank below, and the output of rank 0 is broadcast to every rank (an all-gather) so that
/// all of them produce the same logits.
///
/// It needs point-to-point `send`/`recv`, which MLX's ring and MPI backends have and MLX
/// 0.32.2's CUDA backend (NCCL) does not: [`Pipeline::new`] refuses a CUDA default device.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// The group of stages.
    pub group: Group,
    /// The first layer of this rank.
    pub start: usize,
    /// One past this rank's last layer.
    pub end: usize,
}

impl Pipeline {
    /// An even split of `num_layers` layers over `group` (the low ranks get the extra layers,
    /// as in mlx-lm). An error when there are fewer layers than ranks, or when the default
    /// device is a CUDA GPU (no `send`/`recv` there in MLX 0.32.2).
    pub fn new(num_layers: usize, group: &Group) -> Result<Pipeline> {
        let on_cuda = !cfg!(target_os = "macos")
            && mlx_rs::Device::default_device()
                .is_ok_and(|d| d.device_type() == mlx_rs::DeviceType::Gpu);
        if on_cuda && group.size() > 1 {
            return Err(Error::new(
                mlx_rs::ErrorKind::Unsupported,
                "pipeline",
                "pipeline parallelism needs send/recv, which MLX 0.32.2's CUDA backend (NCCL) \
                 does not have: use tensor parallelism (`shard`) on GPUs, or run the pipeline \
                 on the CPU over the ring or MPI backend",
            ));
        }
        let (size, rank) = (group.size().max(1) as usize, group.rank().max(0) as usize);
        if num_layers < size {
            return Err(Error::invalid(
                "pipeline",
                format!("{num_layers} layers cannot be split into {size} pipeline stages"),
            ));
        }
        let (base, extra) = (num_layers / size, num_layers % size);
        let count = |r: usize| base + usize::from(r < extra);
        let start: usize = (rank + 1..size).map(count).sum();
        Ok(Pipeline { group: group.clone(), start, end: start + count(rank) })
    }

    /// [`Pipeline::new`] for `layers`, whose layers this rank does not run are emptied (see
    /// [`Pipeline::drop_other_layers`]): what each model's `LanguageModel::pipeline` does.
    pub fn split_layers<L: Module>(layers: &mut [L], group: &Group) -> Result<Pipeline> {
        let pipeline = Pipeline::new(layers.len(), group)?;
        pipeline.drop_other_layers(layers)?;
        Ok(pipeline)
    }

    /// This rank's layers.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }

    /// The hidden state this stage starts from: `h` on the last rank (which runs the first
    /// layers), else what the rank above sends (shaped like `h`).
    pub fn receive(&self, h: Array) -> Result<Array> {
        let (rank, size) = (self.group.rank(), self.group.size());
        if rank < size - 1 {
            mlx_rs::distributed::recv_like(&h, rank + 1, Some(&self.group))
        } else {
            Ok(h)
        }
    }

    /// Sends this stage's output to the rank below (all but rank 0), then gives every rank the
    /// output of rank 0, the last stage. The send is made a dependency of `last_cache` (this
    /// stage's last layer's cache, when there is one), so that evaluating the cache alone, as
    /// prefilling does, sends too (an error for a cache type that cannot take a dependency).
    pub fn send_and_broadcast(&self, h: Array, last_cache: LayerCache<'_>) -> Result<Array> {
        let (rank, size) = (self.group.rank(), self.group.size());
        let batch = h.dim(0)?;
        let h = if rank != 0 {
            let sent = mlx_rs::distributed::send(&h, rank - 1, Some(&self.group))?;
            if let Some(cache) = last_cache
                && !cache.add_dependency(std::slice::from_ref(&sent))?
            {
                return Err(Error::invalid(
                    "pipeline",
                    format!("a {} cannot hold a pipeline stage's send", cache.class_name()),
                ));
            }
            sent
        } else {
            h
        };
        if size == 1 {
            return Ok(h);
        }
        mlx_rs::distributed::all_gather(&h, Some(&self.group))?.index(..batch)
    }

    /// Replaces the parameters of every layer this rank does not run by empty arrays, so that
    /// their (lazily loaded) weights are never read.
    pub fn drop_other_layers<L: Module>(&self, layers: &mut [L]) -> Result<()> {
        for (i, layer) in layers.iter_mut().enumerate() {
            if self.range().contains(&i) {
                continue;
            }
            layer.visit_parameters_mut(&mut String::new(), &mut |_, p| {
                p.set(mlx_rs::ops::zeros(&[0], p.dtype())?);
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// The layers a model runs: all of them, or this rank's stage of a pipeline.
pub fn pipeline_range(pipeline: Option<&Pipeline>, num_layers: usize) -> std::ops::Range<usize> {
    pipeline.map_or(0..num_layers, Pipeline::range)
}

/// The hidden state the layers start from: `h`, or (in a pipeline) what the rank above sends.
pub fn pipeline_receive(pipeline: Option<&Pipeline>, h: Array) -> Result<Array> {
    match pipeline {
        Some(p) => p.receive(h),
        None => Ok(h),
    }
}

/// The hidden state after the layers: as it is, or (in a pipeline) rank 0's, on every rank
/// (`caches`: the model's, one slot per layer).
pub fn pipeline_end(
    pipeline: Option<&Pipeline>,
    h: Array,
    caches: &mut [LayerCache<'_>],
) -> Result<Array> {
    match pipeline {
        Some(p) => {
            let last = p.end.checked_sub(1).and_then(|i| caches.get_mut(i));
            p.send_and_broadcast(h, last.and_then(|c| c.as_deref_mut()))
        }
        None => Ok(h),
    }
}
