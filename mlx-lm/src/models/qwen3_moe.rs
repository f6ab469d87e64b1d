//! Qwen3-MoE (mlx-lm's `qwen3_moe.py`): Qwen3's attention (per-head q/k RMSNorm, plain RoPE)
//! with sparse mixture-of-experts blocks — a softmax router over every expert, the top
//! `num_experts_per_tok` experts (optionally renormalised) through a [`SwitchGlu`] — on the
//! layers `decoder_sparse_step` and `mlp_only_layers` select, dense SwiGLU MLPs elsewhere.

use mlx_rs::distributed::Group;
use mlx_rs::nn::cache::{Cache, CacheMask};
use mlx_rs::nn::{
    AdaptableLinear, Embedding, Linear, MaybeQuantized, Module, RmsNorm, RoPE, SwitchGlu,
};
use mlx_rs::{Array, Error, Result};
use mlx_rs::{kernels, ops};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{QuantMode, QuantParams};
use crate::model::{
    Architecture, LanguageModel, LayerCache, Pipeline, Weights, attention_mask,
    check_shardable_heads, checkpointed_layer, layer_caches, pipeline_end, pipeline_range,
    pipeline_receive, shard_layers, shard_switch_glu, take_weight,
};
use crate::models::llama::Mlp;
use crate::models::qwen3::Attention;

/// `config.json` fields of a Qwen3-MoE model (mlx-lm's `ModelArgs`; the fields without a
/// default are required there too).
#[derive(Clone, Debug, Deserialize)]
pub struct ModelArgs {
    /// Width of the residual stream.
    pub hidden_size: i32,
    /// Number of transformer blocks.
    pub num_hidden_layers: i32,
    /// Width of the dense MLPs.
    pub intermediate_size: i32,
    /// Query heads.
    pub num_attention_heads: i32,
    /// Experts per sparse block (`0`: every layer is dense).
    pub num_experts: i32,
    /// Experts each token is routed to.
    pub num_experts_per_tok: i32,
    /// Every `decoder_sparse_step`-th layer (counting from 1) is sparse.
    pub decoder_sparse_step: i32,
    /// Layers that stay dense whatever the step says.
    pub mlp_only_layers: Vec<i32>,
    /// Width of each expert's MLP.
    pub moe_intermediate_size: i32,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// Vocabulary size.
    pub vocab_size: i32,
    /// Key/value heads.
    pub num_key_value_heads: i32,
    /// Per-head width.
    pub head_dim: i32,
    /// RoPE base.
    pub rope_theta: f32,
    /// Output projection shares the embedding.
    pub tie_word_embeddings: bool,
    /// The longest context the model was trained for.
    pub max_position_embeddings: i32,
    /// Renormalise the top-k router probabilities to sum to one.
    pub norm_topk_prob: bool,
    /// Read (as mlx-lm's dataclass does) but unused: Qwen3-MoE applies plain RoPE.
    #[serde(default)]
    pub rope_scaling: Option<Map<String, Value>>,
}

impl ModelArgs {
    /// Whether layer `layer_idx` gets a sparse block (mlx-lm's `Qwen3MoeDecoderLayer`
    /// condition); a `decoder_sparse_step` of zero with experts is an error.
    pub fn is_sparse(&self, layer_idx: i32) -> Result<bool> {
        if self.mlp_only_layers.contains(&layer_idx) || self.num_experts <= 0 {
            return Ok(false);
        }
        if self.decoder_sparse_step <= 0 {
            return Err(Error::invalid("qwen3_moe", "decoder_sparse_step must be positive"));
        }
        Ok((layer_idx + 1) % self.decoder_sparse_step == 0)
    }
}

/// The sparse mixture-of-experts block (mlx-lm's `Qwen3MoeSparseMoeBlock`).
#[derive(Clone, Debug, Module)]
pub struct SparseMoeBlock {
    /// The router: one logit per expert.
    pub gate: AdaptableLinear,
    /// The experts' stacked SwiGLU weights.
    pub switch_mlp: SwitchGlu,
    /// Experts per token.
    #[module(skip)]
    pub top_k: i32,
    /// Renormalise the selected experts' probabilities.
    #[module(skip)]
    pub norm_topk_prob: bool,
    /// The group the experts are split across (set by `shard`): the block's output is
    /// summed over it.
    #[module(skip)]
    pub sharding_group: Option<Group>,
}

impl SparseMoeBlock {
    /// A block of `args.num_experts` experts of width `args.moe_intermediate_size`.
    pub fn new(args: &ModelArgs) -> Result<SparseMoeBlock> {
        let (dim, experts, k) = (args.hidden_size, args.num_experts, args.num_experts_per_tok);
        if k <= 0 || k > experts {
            return Err(Error::invalid(
                "qwen3_moe",
                format!("num_experts_per_tok must be in 1..={experts}, got {k}"),
            ));
        }
        Ok(SparseMoeBlock {
            gate: Linear::new(dim, experts, false)?.into(),
            switch_mlp: SwitchGlu::new(dim, args.moe_intermediate_size, experts, false)?,
            top_k: k,
            norm_topk_prob: args.norm_topk_prob,
            sharding_group: None,
        })
    }

    /// Routes each position of `x` `(..., dim)` to its top-k experts and mixes their outputs by
    /// the router's (softmax, accumulated in float32) probabilities.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let training = self.training();
        let gates = self.gate.forward(x)?;
        let (inds, scores) =
            kernels::softmax_topk(&gates, self.top_k, self.norm_topk_prob, training)?;
        let y = self.switch_mlp.forward(x, &inds)?;
        let y = kernels::gather_add(&y, &scores, Some(y.dtype()), training)?;
        mlx_rs::nn::all_sum_if(y, self.sharding_group.as_ref())
    }

    /// Splits every expert's hidden features across `group` in place; the block sums its
    /// output over the group (mlx-lm's `sharding_group`). The router stays replicated.
    pub fn shard(&mut self, group: &Group) -> Result<()> {
        shard_switch_glu(&mut self.switch_mlp, group)?;
        self.sharding_group = Some(group.clone());
        Ok(())
    }
}

/// A layer's feed-forward block: dense or sparse.
#[derive(Clone, Debug, Module)]
pub enum FeedForward {
    /// A dense SwiGLU MLP.
    Dense(Mlp),
    /// A mixture of experts.
    Sparse(SparseMoeBlock),
}

impl FeedForward {
    fn forward(&self, x: &Array) -> Result<Array> {
        match self {
            FeedForward::Dense(mlp) => mlp.forward(x),
            FeedForward::Sparse(moe) => moe.forward(x),
        }
    }
}

/// A pre-norm decoder layer (mlx-lm's `Qwen3MoeDecoderLayer`).
#[derive(Clone, Debug, Module)]
pub struct DecoderLayer {
    /// Attention.
    pub self_attn: Attention,
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Norm before the feed-forward block.
    pub post_attention_layernorm: RmsNorm,
    /// Feed-forward: dense or mixture of experts.
    pub mlp: FeedForward,
}

impl DecoderLayer {
    fn forward(&self, x: &Array, mask: &CacheMask, cache: LayerCache<'_>) -> Result<Array> {
        let h = (x + self.self_attn.forward(&self.input_layernorm.forward(x)?, mask, cache)?)?;
        &h + self.mlp.forward(&self.post_attention_layernorm.forward(&h)?)?
    }
}

/// The decoder stack (`model.*` in checkpoints).
#[derive(Clone, Debug, Module)]
pub struct Qwen3MoeModel {
    /// Token embedding.
    pub embed_tokens: MaybeQuantized<Embedding>,
    /// The layers.
    pub layers: Vec<DecoderLayer>,
    /// Final norm.
    pub norm: RmsNorm,
}

/// A Qwen3-MoE causal language model.
#[derive(Debug, Module)]
pub struct Model {
    /// The decoder.
    pub model: Qwen3MoeModel,
    /// Output projection, absent when tied to the embedding.
    pub lm_head: Option<MaybeQuantized<Linear>>,
    /// The config's `model_type`.
    #[module(skip)]
    pub model_type: String,
    /// Vocabulary size.
    #[module(skip)]
    pub vocab_size: i32,
    /// Each block runs under `checkpointed_layer` when there is no cache.
    #[module(skip)]
    pub grad_checkpoint: bool,
    /// Experts per sparse block (what `sanitize` stacks).
    #[module(skip)]
    pub num_experts: i32,
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
        let out = self.model.norm.forward(&h)?;
        match &self.lm_head {
            Some(head) => head.forward(&out),
            None => self.model.embed_tokens.as_linear(&out),
        }
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
                FeedForward::Sparse(moe) => moe.shard(group)?,
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

/// The per-expert projections `sanitize` stacks, in mlx-lm's order.
const EXPERT_PROJECTIONS: [&str; 3] = ["up_proj", "down_proj", "gate_proj"];

/// The tensors of a (possibly quantized) projection.
const PROJECTION_TENSORS: [&str; 3] = ["weight", "scales", "biases"];

impl Architecture for Model {
    type Args = ModelArgs;

    fn new(args: &ModelArgs, model_type: &str) -> Result<Model> {
        if args.vocab_size <= 0 {
            return Err(Error::invalid("qwen3_moe", "vocab_size must be positive"));
        }
        let layers = (0..args.num_hidden_layers.max(0))
            .map(|i| -> Result<DecoderLayer> {
                let rope = RoPE::new(args.head_dim, false, args.rope_theta, 1.0)?;
                let mlp = match args.is_sparse(i)? {
                    true => FeedForward::Sparse(SparseMoeBlock::new(args)?),
                    false => FeedForward::Dense(Mlp::new(
                        args.hidden_size,
                        args.intermediate_size,
                        false,
                    )?),
                };
                Ok(DecoderLayer {
                    self_attn: Attention::new(
                        args.hidden_size,
                        args.num_attention_heads,
                        args.num_key_value_heads,
                        args.head_dim,
                        args.rms_norm_eps,
                        rope,
                    )?,
                    input_layernorm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
                    post_attention_layernorm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
                    mlp,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Model {
            model: Qwen3MoeModel {
                embed_tokens: Embedding::new(args.vocab_size, args.hidden_size)?.into(),
                layers,
                norm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
            },
            lm_head: match args.tie_word_embeddings {
                true => None,
                false => Some(Linear::new(args.hidden_size, args.vocab_size, false)?.into()),
            },
            model_type: model_type.to_owned(),
            vocab_size: args.vocab_size,
            grad_checkpoint: false,
            pipeline: None,
            num_experts: args.num_experts,
        })
    }

    /// mlx-lm's `sanitize`: drops a tied `lm_head.weight` and, in every layer that has
    /// `model.layers.{l}.mlp.experts.0.up_proj.weight`, stacks the experts'
    /// `mlp.experts.{e}.{up,down,gate}_proj.weight` (`e` in `0..num_experts`, in order) into
    /// `mlp.switch_mlp.{up,down,gate}_proj.weight`. Per-expert `scales` and `biases` of a
    /// quantized checkpoint are stacked the same way (mlx-lm stacks only `weight`).
    fn sanitize(&self, mut weights: Weights) -> Result<Weights> {
        if self.lm_head.is_none() {
            weights.remove("lm_head.weight");
        }
        let mut moe_layers = Vec::new();
        for key in weights.keys() {
            let Some(rest) = key.strip_prefix("model.layers.") else { continue };
            if !key.ends_with(".mlp.experts.0.up_proj.weight") {
                continue;
            }
            let layer = rest.split('.').next().unwrap_or_default();
            let layer: u32 = layer.parse().map_err(|_| {
                Error::invalid("sanitize", format!("`{key}`: `{layer}` is not a layer index"))
            })?;
            moe_layers.push(layer);
        }
        moe_layers.sort_unstable();
        for l in moe_layers {
            let prefix = format!("model.layers.{l}.mlp");
            for n in EXPERT_PROJECTIONS {
                for t in PROJECTION_TENSORS {
                    if t != "weight"
                        && !weights.contains_key(&format!("{prefix}.experts.0.{n}.{t}"))
                    {
                        continue;
                    }
                    let experts = (0..self.num_experts)
                        .map(|e| {
                            take_weight(&mut weights, &format!("{prefix}.experts.{e}.{n}.{t}"))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    weights
                        .insert(format!("{prefix}.switch_mlp.{n}.{t}"), ops::stack(&experts, 0)?);
                }
            }
        }
        Ok(weights)
    }

    /// mlx-lm's `quant_predicate`: the routers (`*mlp.gate`) get 8 bits with groups of 64;
    /// everything else takes the defaults.
    fn quant_predicate(&self, path: &str) -> Option<Option<QuantParams>> {
        path.ends_with("mlp.gate").then_some(Some(QuantParams {
            group_size: 64,
            bits: 8,
            mode: QuantMode::Affine,
        }))
    }
}
