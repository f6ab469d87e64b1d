//! GLM-4.5 / GLM-4.6 mixture-of-experts models (mlx-lm's `glm4_moe.py`): grouped-query
//! attention with biases, optional q/k RMSNorm and partial rotary embeddings; dense MLP layers
//! first (`first_k_dense_replace`), then MoE layers with a sigmoid router, an expert-selection
//! correction bias, grouped top-k routing and shared experts.

use mlx_rs::distributed::Group;
use mlx_rs::kernels::{self, GroupedTopk};
use mlx_rs::nn::cache::{Cache, CacheMask};
use mlx_rs::nn::{
    AdaptableLinear, Embedding, Linear, MaybeQuantized, Module, Param, RmsNorm, RoPE, SwitchGlu,
};
use mlx_rs::ops::{self, BoundedIndices};
use mlx_rs::{Array, Context, Dtype, Error, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::llama::Mlp;
use crate::model::{
    Architecture, LanguageModel, LayerCache, Pipeline, Weights, attention_mask, cached_attention,
    check_shardable_heads, checkpointed_layer, layer_caches, pipeline_end, pipeline_range,
    pipeline_receive, shard_attention, shard_layers, shard_switch_glu, take_weight,
};

/// `config.json` fields of a GLM-4 MoE model (mlx-lm's `ModelArgs`).
#[derive(Clone, Debug, Deserialize)]
pub struct ModelArgs {
    /// Vocabulary size.
    pub vocab_size: i32,
    /// Width of the residual stream.
    pub hidden_size: i32,
    /// Width of the dense MLP layers.
    pub intermediate_size: i32,
    /// Width of each routed expert (and, times `n_shared_experts`, of the shared experts).
    pub moe_intermediate_size: i32,
    /// Normalise the selected experts' weights to sum to one.
    pub norm_topk_prob: bool,
    /// Query heads.
    pub num_attention_heads: i32,
    /// Groups of routed experts.
    pub n_group: i32,
    /// Per-head width.
    pub head_dim: i32,
    /// Groups kept per token before the top-k choice.
    pub topk_group: i32,
    /// Shared experts (run on every token); `None` for none.
    #[serde(default)]
    pub n_shared_experts: Option<i32>,
    /// Routed experts.
    pub n_routed_experts: i32,
    /// Factor on the routed experts' weights.
    pub routed_scaling_factor: f32,
    /// Experts per token.
    pub num_experts_per_tok: i32,
    /// The first layers that keep a dense MLP.
    pub first_k_dense_replace: i32,
    /// Number of transformer blocks (a checkpoint's multi-token-prediction layers come after).
    pub num_hidden_layers: i32,
    /// Key/value heads.
    pub num_key_value_heads: i32,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// RoPE base.
    pub rope_theta: f32,
    /// Unused by the model (as in mlx-lm).
    #[serde(default)]
    pub rope_scaling: Option<Map<String, Value>>,
    /// RMSNorm on each query and key head.
    pub use_qk_norm: bool,
    /// Unused: the model always has its own `lm_head` (as in mlx-lm).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Biases on the query, key and value projections.
    pub attention_bias: bool,
    /// The fraction of each head's features that is rotated.
    pub partial_rotary_factor: f64,
    /// Unused by the model (as in mlx-lm).
    #[serde(default)]
    pub max_position_embeddings: Option<i64>,
    /// The router's scoring function (mlx-lm always uses the sigmoid).
    #[serde(default = "default_scoring_func")]
    pub scoring_func: String,
    /// The routing method; only `noaux_tc` is supported.
    #[serde(default = "default_topk_method")]
    pub topk_method: String,
}

fn default_scoring_func() -> String {
    "sigmoid".to_owned()
}

fn default_topk_method() -> String {
    "noaux_tc".to_owned()
}

/// Grouped-query self-attention with optional q/k norms and a partial rotary embedding.
#[derive(Clone, Debug, Module)]
pub struct Attention {
    /// Query projection.
    pub q_proj: AdaptableLinear,
    /// Key projection.
    pub k_proj: AdaptableLinear,
    /// Value projection.
    pub v_proj: AdaptableLinear,
    /// Output projection (no bias).
    pub o_proj: AdaptableLinear,
    /// Per-head query norm, with `use_qk_norm`.
    pub q_norm: Option<RmsNorm>,
    /// Per-head key norm, with `use_qk_norm`.
    pub k_norm: Option<RmsNorm>,
    /// Rotary embedding over the first `head_dim * partial_rotary_factor` features.
    #[module(skip)]
    pub rope: RoPE,
    /// Query heads.
    #[module(skip)]
    pub n_heads: i32,
    /// Key/value heads.
    #[module(skip)]
    pub n_kv_heads: i32,
    /// `head_dim ** -0.5`.
    #[module(skip)]
    pub scale: f32,
}

impl Attention {
    fn new(args: &ModelArgs) -> Result<Attention> {
        let dim = args.hidden_size;
        let (n_heads, n_kv_heads, head_dim) =
            (args.num_attention_heads, args.num_key_value_heads, args.head_dim);
        let bias = args.attention_bias;
        let qk_norm = |on: bool| -> Result<Option<RmsNorm>> {
            on.then(|| RmsNorm::new(head_dim, args.rms_norm_eps)).transpose()
        };
        let rope_dims = (f64::from(head_dim) * args.partial_rotary_factor) as i32;
        Ok(Attention {
            q_proj: Linear::new(dim, n_heads * head_dim, bias)?.into(),
            k_proj: Linear::new(dim, n_kv_heads * head_dim, bias)?.into(),
            v_proj: Linear::new(dim, n_kv_heads * head_dim, bias)?.into(),
            o_proj: Linear::new(n_heads * head_dim, dim, false)?.into(),
            q_norm: qk_norm(args.use_qk_norm)?,
            k_norm: qk_norm(args.use_qk_norm)?,
            rope: RoPE::new(rope_dims, false, args.rope_theta, 1.0)?,
            n_heads,
            n_kv_heads,
            scale: (head_dim as f32).powf(-0.5),
        })
    }

    fn forward(&self, x: &Array, mask: &CacheMask, cache: LayerCache<'_>) -> Result<Array> {
        let (b, l) = (x.dim(0)?, x.dim(1)?);
        let mut queries = self.q_proj.forward(x)?.reshape([b, l, self.n_heads, -1])?;
        let mut keys = self.k_proj.forward(x)?.reshape([b, l, self.n_kv_heads, -1])?;
        if let (Some(q_norm), Some(k_norm)) = (&self.q_norm, &self.k_norm) {
            queries = q_norm.forward(&queries)?;
            keys = k_norm.forward(&keys)?;
        }
        let queries = queries.transpose([0, 2, 1, 3])?;
        let keys = keys.transpose([0, 2, 1, 3])?;
        let values = self
            .v_proj
            .forward(x)?
            .reshape([b, l, self.n_kv_heads, -1])?
            .transpose([0, 2, 1, 3])?;
        let offset = cache.as_ref().map_or(0, |c| c.offset());
        let queries = self.rope.forward_at(&queries, offset)?;
        let keys = self.rope.forward_at(&keys, offset)?;
        let out = cached_attention(&queries, &keys, &values, cache, self.scale, mask)?;
        self.o_proj.forward(&out.transpose([0, 2, 1, 3])?.reshape([b, l, -1])?)
    }

    /// Splits the heads across `group` (mlx-lm's `shard`: q/k/v all-to-sharded, o
    /// sharded-to-all, head counts divided by the group size).
    pub fn shard(&mut self, group: &Group) -> Result<()> {
        let projections = [&mut self.q_proj, &mut self.k_proj, &mut self.v_proj, &mut self.o_proj];
        shard_attention(projections, &mut self.n_heads, &mut self.n_kv_heads, group)
    }
}

/// mlx-lm's `group_expert_select`: the `top_k` experts of each token and their float32 weights
/// from the router's logits `gates` (`[..., experts]`), on MLX's plain (differentiable) ops; see
/// [`kernels::glm_topk`] for the rule. [`MoEGate::forward`] runs the same through the fused
/// kernel where it can.
pub fn group_expert_select(
    gates: &Array,
    e_score_correction_bias: &Array,
    top_k: i32,
    n_group: i32,
    topk_group: i32,
    routed_scaling_factor: f32,
    norm_topk_prob: bool,
) -> Result<(BoundedIndices, Array)> {
    let params = GroupedTopk { top_k, n_group, topk_group, routed_scaling_factor, norm_topk_prob };
    kernels::glm_topk(gates, e_score_correction_bias, &params, true)
}

/// The router: `weight` `[experts, hidden]` and the selection bias `e_score_correction_bias`
/// `[experts]` (float32 in converted checkpoints).
#[derive(Clone, Debug, Module)]
pub struct MoEGate {
    /// Router weight.
    pub weight: Param,
    /// Added to the scores for the choice of experts only.
    pub e_score_correction_bias: Param,
    /// Experts per token.
    #[module(skip)]
    pub top_k: i32,
    /// Normalise the chosen weights.
    #[module(skip)]
    pub norm_topk_prob: bool,
    /// Factor on the chosen weights.
    #[module(skip)]
    pub routed_scaling_factor: f32,
    /// Expert groups.
    #[module(skip)]
    pub n_group: i32,
    /// Groups kept per token.
    #[module(skip)]
    pub topk_group: i32,
}

impl MoEGate {
    fn new(args: &ModelArgs) -> Result<MoEGate> {
        let n = args.n_routed_experts;
        Ok(MoEGate {
            weight: Param::new(ops::zeros(&[n, args.hidden_size], Dtype::Float32)?),
            e_score_correction_bias: Param::new(ops::zeros(&[n], Dtype::Float32)?),
            top_k: args.num_experts_per_tok,
            norm_topk_prob: args.norm_topk_prob,
            routed_scaling_factor: args.routed_scaling_factor,
            n_group: args.n_group,
            topk_group: args.topk_group,
        })
    }

    /// The experts and weights of each token of `x` (see [`kernels::glm_topk`]; the fused
    /// kernel runs only outside `training`).
    pub fn forward(&self, x: &Array, training: bool) -> Result<(BoundedIndices, Array)> {
        let params = GroupedTopk {
            top_k: self.top_k,
            n_group: self.n_group,
            topk_group: self.topk_group,
            routed_scaling_factor: self.routed_scaling_factor,
            norm_topk_prob: self.norm_topk_prob,
        };
        let gates = x.matmul(self.weight.t()?)?;
        kernels::glm_topk(&gates, &self.e_score_correction_bias, &params, training)
    }
}

/// The mixture-of-experts block: routed experts (`switch_mlp`) weighted by the router, plus
/// the shared experts.
#[derive(Clone, Debug, Module)]
pub struct MoE {
    /// The routed experts, stacked.
    pub switch_mlp: SwitchGlu,
    /// The router.
    pub gate: MoEGate,
    /// One MLP of width `moe_intermediate_size * n_shared_experts`, when there are shared
    /// experts.
    pub shared_experts: Option<Mlp>,
    /// The group the experts are split across (set by `shard`): the block's output is
    /// summed over it.
    #[module(skip)]
    pub sharding_group: Option<Group>,
}

impl MoE {
    fn new(args: &ModelArgs) -> Result<MoE> {
        Ok(MoE {
            switch_mlp: SwitchGlu::new(
                args.hidden_size,
                args.moe_intermediate_size,
                args.n_routed_experts,
                false,
            )?,
            gate: MoEGate::new(args)?,
            shared_experts: args
                .n_shared_experts
                .map(|n| Mlp::new(args.hidden_size, args.moe_intermediate_size * n, false))
                .transpose()?,
            sharding_group: None,
        })
    }

    /// `sum_k weight_k * expert_k(x) (+ shared(x))`, in `x`'s dtype.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let training = self.training();
        let (inds, scores) = self.gate.forward(x, training)?;
        let y = self.switch_mlp.forward(x, &inds)?;
        let y = kernels::gather_add(&y, &scores, Some(y.dtype()), training)?;
        let y = match &self.shared_experts {
            Some(shared) => (&y + shared.forward(x)?)?,
            None => y,
        };
        mlx_rs::nn::all_sum_if(y, self.sharding_group.as_ref())
    }

    /// Splits the routed and shared experts' hidden features across `group` in place; the
    /// block sums its output over the group (mlx-lm's `sharding_group`). The router stays
    /// replicated.
    pub fn shard(&mut self, group: &Group) -> Result<()> {
        if let Some(shared) = &mut self.shared_experts {
            shared.shard(true, group).context("sharding `shared_experts`")?;
        }
        shard_switch_glu(&mut self.switch_mlp, group)?;
        self.sharding_group = Some(group.clone());
        Ok(())
    }
}

/// A layer's feed-forward block: a dense MLP (the first `first_k_dense_replace` layers) or the
/// mixture of experts.
// One per layer, built once: the size difference of the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Module)]
pub enum FeedForward {
    /// The dense SwiGLU MLP.
    Dense(Mlp),
    /// The mixture of experts.
    Moe(MoE),
}

impl FeedForward {
    /// The block applied to `x`.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        match self {
            FeedForward::Dense(mlp) => mlp.forward(x),
            FeedForward::Moe(moe) => moe.forward(x),
        }
    }
}

/// A pre-norm transformer block.
#[derive(Clone, Debug, Module)]
pub struct DecoderLayer {
    /// Attention.
    pub self_attn: Attention,
    /// Feed-forward.
    pub mlp: FeedForward,
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Norm before the feed-forward block.
    pub post_attention_layernorm: RmsNorm,
}

impl DecoderLayer {
    fn new(args: &ModelArgs, layer_idx: i32) -> Result<DecoderLayer> {
        let mlp = if layer_idx >= args.first_k_dense_replace {
            FeedForward::Moe(MoE::new(args)?)
        } else {
            FeedForward::Dense(Mlp::new(args.hidden_size, args.intermediate_size, false)?)
        };
        Ok(DecoderLayer {
            self_attn: Attention::new(args)?,
            mlp,
            input_layernorm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
            post_attention_layernorm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
        })
    }

    fn forward(&self, x: &Array, mask: &CacheMask, cache: LayerCache<'_>) -> Result<Array> {
        let r = self.self_attn.forward(&self.input_layernorm.forward(x)?, mask, cache)?;
        let h = (x + r)?;
        let r = self.mlp.forward(&self.post_attention_layernorm.forward(&h)?)?;
        &h + r
    }
}

/// The decoder stack (`model.*` in checkpoints).
#[derive(Debug, Module)]
pub struct Glm4MoeModel {
    /// Token embedding.
    pub embed_tokens: MaybeQuantized<Embedding>,
    /// The blocks.
    pub layers: Vec<DecoderLayer>,
    /// Final norm.
    pub norm: RmsNorm,
}

/// A GLM-4 MoE causal language model.
#[derive(Debug, Module)]
pub struct Model {
    /// The decoder.
    pub model: Glm4MoeModel,
    /// Output projection.
    pub lm_head: MaybeQuantized<Linear>,
    /// The config's `model_type`.
    #[module(skip)]
    pub model_type: String,
    /// Vocabulary size.
    #[module(skip)]
    pub vocab_size: i32,
    /// Routed experts per MoE layer (for `sanitize`).
    #[module(skip)]
    pub n_routed_experts: i32,
    /// Each block runs under `checkpointed_layer` when there is no cache.
    #[module(skip)]
    pub grad_checkpoint: bool,
    /// This rank's stage when the layers are split across processes (`pipeline`).
    #[module(skip)]
    pub pipeline: Option<Pipeline>,
}

impl LanguageModel for Model {
    fn model_type(&self) -> &str {
        &self.model_type
    }

    fn forward(&self, inputs: &Array, cache: Option<&mut [Box<dyn Cache>]>) -> Result<Array> {
        let layers = &self.model.layers;
        let mut caches = layer_caches(cache, layers.len())?;
        let mut h = self.model.embed_tokens.forward(inputs)?;
        let range = pipeline_range(self.pipeline.as_ref(), layers.len());
        let first = caches.get(range.start).and_then(|c| c.as_deref());
        let mask = attention_mask(h.dim(1)?, first, None, false)?;
        h = pipeline_receive(self.pipeline.as_ref(), h)?;
        for (layer, cache) in layers[range.clone()].iter().zip(caches[range.clone()].iter_mut()) {
            h = match cache {
                None if self.grad_checkpoint => {
                    let mask = mask.clone();
                    checkpointed_layer(layer, &h, move |l, x| l.forward(x, &mask, None))?
                }
                _ => layer.forward(&h, &mask, cache.as_deref_mut())?,
            };
        }
        h = pipeline_end(self.pipeline.as_ref(), h, &mut caches)?;
        self.lm_head.forward(&self.model.norm.forward(&h)?)
    }

    fn set_grad_checkpoint(&mut self, on: bool) -> Result<()> {
        self.grad_checkpoint = on;
        Ok(())
    }

    fn pipeline(&mut self, group: &Group) -> Result<()> {
        self.pipeline = Some(Pipeline::split_layers(&mut self.model.layers, group)?);
        Ok(())
    }

    fn shard(&mut self, group: &Group) -> Result<()> {
        for layer in &self.model.layers {
            check_shardable_heads(layer.self_attn.n_heads, layer.self_attn.n_kv_heads, group)?;
        }
        shard_layers(&mut self.model.layers, |layer| {
            layer.self_attn.shard(group)?;
            match &mut layer.mlp {
                FeedForward::Dense(mlp) => mlp.shard(false, group)?,
                FeedForward::Moe(moe) => moe.shard(group)?,
            }
            Ok(())
        })
    }

    fn num_layers(&self) -> usize {
        self.model.layers.len()
    }

    fn vocab_size(&self) -> i32 {
        self.vocab_size
    }
}

/// The transformer-layer index of a checkpoint key `model.layers.{i}.…`, if it is one.
fn layer_index(key: &str) -> Option<i64> {
    let rest = key.strip_prefix("model.layers.")?;
    let digits = rest.split('.').next()?;
    digits.parse().ok()
}

impl Architecture for Model {
    type Args = ModelArgs;

    fn new(args: &ModelArgs, model_type: &str) -> Result<Model> {
        let positive = [
            ("vocab_size", args.vocab_size),
            ("hidden_size", args.hidden_size),
            ("num_attention_heads", args.num_attention_heads),
            ("num_key_value_heads", args.num_key_value_heads),
            ("head_dim", args.head_dim),
            ("n_routed_experts", args.n_routed_experts),
            ("num_experts_per_tok", args.num_experts_per_tok),
            ("n_group", args.n_group),
            ("topk_group", args.topk_group),
        ];
        if let Some((name, v)) = positive.iter().find(|(_, v)| *v <= 0) {
            return Err(Error::invalid("glm4_moe", format!("{name} must be positive, got {v}")));
        }
        if args.topk_method != "noaux_tc" {
            return Err(Error::invalid(
                "glm4_moe",
                format!("unsupported topk_method `{}` (only `noaux_tc`)", args.topk_method),
            ));
        }
        if args.num_experts_per_tok > args.n_routed_experts {
            return Err(Error::invalid(
                "glm4_moe",
                format!(
                    "num_experts_per_tok {} exceeds n_routed_experts {}",
                    args.num_experts_per_tok, args.n_routed_experts
                ),
            ));
        }
        if args.n_group > 1
            && (args.n_routed_experts % args.n_group != 0 || args.topk_group > args.n_group)
        {
            return Err(Error::invalid(
                "glm4_moe",
                format!(
                    "n_routed_experts {} must split into n_group {} groups, of which topk_group {} \
                     are kept",
                    args.n_routed_experts, args.n_group, args.topk_group
                ),
            ));
        }
        if !(0.0..=1.0).contains(&args.partial_rotary_factor) {
            return Err(Error::invalid(
                "glm4_moe",
                format!(
                    "partial_rotary_factor must be in [0, 1], got {}",
                    args.partial_rotary_factor
                ),
            ));
        }
        let layers = (0..args.num_hidden_layers.max(0))
            .map(|i| DecoderLayer::new(args, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Model {
            model: Glm4MoeModel {
                embed_tokens: Embedding::new(args.vocab_size, args.hidden_size)?.into(),
                layers,
                norm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
            },
            lm_head: Linear::new(args.hidden_size, args.vocab_size, false)?.into(),
            model_type: model_type.to_owned(),
            vocab_size: args.vocab_size,
            n_routed_experts: args.n_routed_experts,
            grad_checkpoint: false,
            pipeline: None,
        })
    }

    /// Stacks the per-expert tensors `model.layers.{l}.mlp.experts.{e}.{gate,up,down}_proj.
    /// {weight,scales,biases}` into `model.layers.{l}.mlp.switch_mlp.*` (a missing expert is an
    /// error naming it) and drops the multi-token-prediction layers, `model.layers.{i}.*` with
    /// `i >= num_hidden_layers`.
    fn sanitize(&self, mut weights: Weights) -> Result<Weights> {
        let num_layers = self.model.layers.len();
        for l in 0..num_layers {
            let prefix = format!("model.layers.{l}.mlp");
            for m in ["gate_proj", "down_proj", "up_proj"] {
                for k in ["weight", "scales", "biases"] {
                    if !weights.contains_key(&format!("{prefix}.experts.0.{m}.{k}")) {
                        continue;
                    }
                    let to_join = (0..self.n_routed_experts)
                        .map(|e| {
                            take_weight(&mut weights, &format!("{prefix}.experts.{e}.{m}.{k}"))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    weights
                        .insert(format!("{prefix}.switch_mlp.{m}.{k}"), ops::stack(&to_join, 0)?);
                }
            }
        }
        weights.retain(|k, _| layer_index(k).is_none_or(|i| i < num_layers as i64));
        Ok(weights)
    }
}
