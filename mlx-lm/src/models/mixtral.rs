//! Mixtral (mlx-lm's `mixtral.py`): grouped-query attention with plain RoPE and a sparse
//! mixture-of-experts feed-forward block (`block_sparse_moe`) whose router picks the top
//! `num_experts_per_tok` experts per token and mixes their SwiGLU outputs by a softmax over the
//! selected router logits.

use mlx_rs::distributed::Group;
use mlx_rs::nn::cache::{Cache, CacheMask};
use mlx_rs::nn::{
    AdaptableLinear, Embedding, Linear, MaybeQuantized, Module, RmsNorm, RoPE, SwitchGlu,
};
use mlx_rs::{Array, Error, Result};
use mlx_rs::{kernels, ops};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::model::{
    Architecture, LanguageModel, LayerCache, Pipeline, Weights, attention_mask, cached_attention,
    check_shardable_heads, checkpointed_layer, layer_caches, pipeline_end, pipeline_range,
    pipeline_receive, shard_attention, shard_layers, shard_switch_glu, take_weight,
};

/// `config.json` fields of a Mixtral model (mlx-lm's `ModelArgs`, with its defaults).
#[derive(Clone, Debug, Deserialize)]
pub struct ModelArgs {
    /// Vocabulary size.
    #[serde(default = "default_vocab_size")]
    pub vocab_size: i32,
    /// Width of the residual stream.
    #[serde(default = "default_hidden_size")]
    pub hidden_size: i32,
    /// Width of each expert's MLP.
    #[serde(default = "default_intermediate_size")]
    pub intermediate_size: i32,
    /// Number of transformer blocks.
    #[serde(default = "default_num_layers")]
    pub num_hidden_layers: i32,
    /// Query heads.
    #[serde(default = "default_num_heads")]
    pub num_attention_heads: i32,
    /// Experts each token is routed to.
    #[serde(default = "default_experts_per_tok")]
    pub num_experts_per_tok: i32,
    /// Key/value heads (8 when absent; an explicit `null` means the query heads).
    #[serde(default = "default_num_kv_heads")]
    pub num_key_value_heads: Option<i32>,
    /// Experts per layer.
    #[serde(default = "default_num_local_experts")]
    pub num_local_experts: i32,
    /// RMSNorm epsilon.
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f32,
    /// RoPE base.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f32,
    /// Rotate consecutive pairs.
    #[serde(default)]
    pub rope_traditional: bool,
    /// `rope_scaling` as the config gives it (read but not applied, as in mlx-lm's Mixtral,
    /// which uses plain RoPE).
    #[serde(default)]
    pub rope_scaling: Option<Map<String, Value>>,
    /// Output projection shares the embedding (default false).
    #[serde(default)]
    pub tie_word_embeddings: bool,
}

fn default_vocab_size() -> i32 {
    32000
}

fn default_hidden_size() -> i32 {
    4096
}

fn default_intermediate_size() -> i32 {
    14336
}

fn default_num_layers() -> i32 {
    32
}

fn default_num_heads() -> i32 {
    32
}

fn default_experts_per_tok() -> i32 {
    2
}

fn default_num_kv_heads() -> Option<i32> {
    Some(8)
}

fn default_num_local_experts() -> i32 {
    8
}

fn default_rms_norm_eps() -> f32 {
    1e-5
}

fn default_rope_theta() -> f32 {
    1e6
}

/// Grouped-query self-attention without biases, `head_dim = hidden_size / heads`.
#[derive(Clone, Debug, Module)]
pub struct MixtralAttention {
    /// Query projection.
    pub q_proj: AdaptableLinear,
    /// Key projection.
    pub k_proj: AdaptableLinear,
    /// Value projection.
    pub v_proj: AdaptableLinear,
    /// Output projection.
    pub o_proj: AdaptableLinear,
    /// Rotary embedding (plain RoPE over the whole head).
    #[module(skip)]
    pub rope: RoPE,
    /// Query heads.
    #[module(skip)]
    pub num_heads: i32,
    /// Key/value heads.
    #[module(skip)]
    pub num_key_value_heads: i32,
    /// `head_dim ** -0.5`.
    #[module(skip)]
    pub scale: f32,
}

impl MixtralAttention {
    fn new(args: &ModelArgs, num_key_value_heads: i32) -> Result<MixtralAttention> {
        let dim = args.hidden_size;
        let num_heads = args.num_attention_heads;
        let head_dim = dim / num_heads;
        Ok(MixtralAttention {
            q_proj: Linear::new(dim, num_heads * head_dim, false)?.into(),
            k_proj: Linear::new(dim, num_key_value_heads * head_dim, false)?.into(),
            v_proj: Linear::new(dim, num_key_value_heads * head_dim, false)?.into(),
            o_proj: Linear::new(num_heads * head_dim, dim, false)?.into(),
            rope: RoPE::new(head_dim, args.rope_traditional, args.rope_theta, 1.0)?,
            num_heads,
            num_key_value_heads,
            scale: (head_dim as f32).powf(-0.5),
        })
    }

    fn forward(&self, x: &Array, mask: &CacheMask, cache: LayerCache<'_>) -> Result<Array> {
        let (b, l) = (x.dim(0)?, x.dim(1)?);
        let heads = |y: Array, n: i32| y.reshape([b, l, n, -1])?.transpose([0, 2, 1, 3]);
        let queries = heads(self.q_proj.forward(x)?, self.num_heads)?;
        let keys = heads(self.k_proj.forward(x)?, self.num_key_value_heads)?;
        let values = heads(self.v_proj.forward(x)?, self.num_key_value_heads)?;
        let offset = cache.as_ref().map_or(0, |c| c.offset());
        let queries = self.rope.forward_at(&queries, offset)?;
        let keys = self.rope.forward_at(&keys, offset)?;
        let out = cached_attention(&queries, &keys, &values, cache, self.scale, mask)?;
        self.o_proj.forward(&out.transpose([0, 2, 1, 3])?.reshape([b, l, -1])?)
    }

    /// Splits the heads across `group` (q/k/v all-to-sharded, o sharded-to-all, head counts
    /// divided by the group size).
    pub fn shard(&mut self, group: &Group) -> Result<()> {
        let projections = [&mut self.q_proj, &mut self.k_proj, &mut self.v_proj, &mut self.o_proj];
        shard_attention(projections, &mut self.num_heads, &mut self.num_key_value_heads, group)
    }
}

/// The sparse mixture-of-experts block: a linear router (`gate`) and the experts
/// (`switch_mlp`, one SwiGLU MLP per expert).
#[derive(Clone, Debug, Module)]
pub struct MixtralSparseMoeBlock {
    /// Router: one logit per expert.
    pub gate: AdaptableLinear,
    /// The experts.
    pub switch_mlp: SwitchGlu,
    /// Experts each token is routed to.
    #[module(skip)]
    pub num_experts_per_tok: i32,
    /// The group the experts are split across (set by `shard`): the block's output is
    /// summed over it.
    #[module(skip)]
    pub sharding_group: Option<Group>,
}

impl MixtralSparseMoeBlock {
    fn new(args: &ModelArgs) -> Result<MixtralSparseMoeBlock> {
        let (dim, experts) = (args.hidden_size, args.num_local_experts);
        Ok(MixtralSparseMoeBlock {
            gate: Linear::new(dim, experts, false)?.into(),
            switch_mlp: SwitchGlu::new(dim, args.intermediate_size, experts, false)?,
            num_experts_per_tok: args.num_experts_per_tok,
            sharding_group: None,
        })
    }

    /// Routes each token of `x` (`[..., hidden]`) to its top-k experts and sums their outputs
    /// weighted by the softmax of the selected router logits.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let training = self.training();
        let gates = self.gate.forward(x)?;
        let (inds, scores) = kernels::topk_softmax(&gates, self.num_experts_per_tok, training)?;
        let y = self.switch_mlp.forward(x, &inds)?;
        let y = kernels::gather_add(&y, &scores, None, training)?;
        mlx_rs::nn::all_sum_if(y, self.sharding_group.as_ref())
    }

    /// Splits every expert's hidden features across `group` in place; the block sums its
    /// output over the group (as mlx-lm's Qwen3-MoE does; mlx-lm 0.32.0's Mixtral has no
    /// `shard`). The router stays replicated.
    pub fn shard(&mut self, group: &Group) -> Result<()> {
        shard_switch_glu(&mut self.switch_mlp, group)?;
        self.sharding_group = Some(group.clone());
        Ok(())
    }
}

/// A pre-norm transformer block with a sparse MoE feed-forward.
#[derive(Clone, Debug, Module)]
pub struct MixtralDecoderLayer {
    /// Attention.
    pub self_attn: MixtralAttention,
    /// Mixture-of-experts feed-forward.
    pub block_sparse_moe: MixtralSparseMoeBlock,
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Norm before the MoE block.
    pub post_attention_layernorm: RmsNorm,
}

impl MixtralDecoderLayer {
    fn forward(&self, x: &Array, mask: &CacheMask, cache: LayerCache<'_>) -> Result<Array> {
        let r = self.self_attn.forward(&self.input_layernorm.forward(x)?, mask, cache)?;
        let h = (x + r)?;
        let r = self.block_sparse_moe.forward(&self.post_attention_layernorm.forward(&h)?)?;
        &h + r
    }
}

/// The decoder stack (`model.*` in checkpoints).
#[derive(Clone, Debug, Module)]
pub struct MixtralModel {
    /// Token embedding.
    pub embed_tokens: MaybeQuantized<Embedding>,
    /// The blocks.
    pub layers: Vec<MixtralDecoderLayer>,
    /// Final norm.
    pub norm: RmsNorm,
}

/// A Mixtral causal language model.
#[derive(Debug, Module)]
pub struct Model {
    /// The decoder.
    pub model: MixtralModel,
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
    /// Experts per layer (how many per-expert tensors `sanitize` stacks).
    #[module(skip)]
    pub num_local_experts: i32,
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
        let h = self.model.embed_tokens.forward(inputs)?;
        let range = pipeline_range(self.pipeline.as_ref(), layers.len());
        let first = caches.get(range.start).and_then(|c| c.as_deref());
        let mask = attention_mask(h.dim(1)?, first, None, false)?;
        let mut h = h;
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
            let a = &layer.self_attn;
            check_shardable_heads(a.num_heads, a.num_key_value_heads, group)?;
        }
        shard_layers(&mut self.model.layers, |layer| {
            layer.self_attn.shard(group)?;
            layer.block_sparse_moe.shard(group)?;
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

impl Architecture for Model {
    type Args = ModelArgs;

    fn new(args: &ModelArgs, model_type: &str) -> Result<Model> {
        let heads = args.num_attention_heads;
        if args.vocab_size <= 0 || heads <= 0 || args.hidden_size % heads != 0 {
            return Err(Error::invalid(
                "mixtral",
                "vocab_size and num_attention_heads must be positive and divide hidden_size",
            ));
        }
        let kv_heads = args.num_key_value_heads.unwrap_or(heads);
        if kv_heads <= 0 || heads % kv_heads != 0 {
            return Err(Error::invalid(
                "mixtral",
                format!("num_key_value_heads {kv_heads} must be positive and divide {heads}"),
            ));
        }
        let (k, experts) = (args.num_experts_per_tok, args.num_local_experts);
        if k <= 0 || k > experts {
            return Err(Error::invalid(
                "mixtral",
                format!("num_experts_per_tok {k} must be in 1..={experts} (num_local_experts)"),
            ));
        }
        let layers = (0..args.num_hidden_layers.max(0))
            .map(|_| -> Result<MixtralDecoderLayer> {
                Ok(MixtralDecoderLayer {
                    self_attn: MixtralAttention::new(args, kv_heads)?,
                    block_sparse_moe: MixtralSparseMoeBlock::new(args)?,
                    input_layernorm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
                    post_attention_layernorm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Model {
            model: MixtralModel {
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
            num_local_experts: experts,
        })
    }

    /// Drops a tied `lm_head.weight`; stacks Hugging Face's per-expert
    /// `block_sparse_moe.experts.{e}.{w1,w2,w3}.{weight,scales,biases}` into
    /// `block_sparse_moe.switch_mlp.{gate_proj,down_proj,up_proj}.*` (`[experts, ...]`).
    fn sanitize(&self, mut weights: Weights) -> Result<Weights> {
        if self.lm_head.is_none() {
            weights.remove("lm_head.weight");
        }
        if !weights.contains_key("model.layers.0.block_sparse_moe.experts.0.w1.weight") {
            return Ok(weights);
        }
        for l in 0..self.model.layers.len() {
            let prefix = format!("model.layers.{l}.block_sparse_moe");
            for (n, m) in [("w1", "gate_proj"), ("w2", "down_proj"), ("w3", "up_proj")] {
                for k in ["weight", "scales", "biases"] {
                    if !weights.contains_key(&format!("{prefix}.experts.0.{n}.{k}")) {
                        continue;
                    }
                    let to_join = (0..self.num_local_experts)
                        .map(|e| {
                            take_weight(&mut weights, &format!("{prefix}.experts.{e}.{n}.{k}"))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    weights
                        .insert(format!("{prefix}.switch_mlp.{m}.{k}"), ops::stack(&to_join, 0)?);
                }
            }
        }
        Ok(weights)
    }
}
