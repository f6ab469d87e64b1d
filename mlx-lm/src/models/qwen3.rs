//! Qwen3 (mlx-lm's `qwen3.py`): grouped-query attention with an RMSNorm over each query and key
//! head before RoPE, a SwiGLU MLP, rope scaling through [`initialize_rope`] (including
//! transformers 5's nested `rope_parameters`), and tied or separate output embeddings.

use mlx_rs::distributed::Group;
use mlx_rs::nn::cache::{Cache, CacheMask};
use mlx_rs::nn::{AdaptableLinear, Embedding, Linear, MaybeQuantized, Module, RmsNorm, RoPE};
use mlx_rs::{Array, Error, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::model::{
    Architecture, LanguageModel, LayerCache, Pipeline, Weights, attention_mask, cached_attention,
    check_shardable_heads, checkpointed_layer, layer_caches, pipeline_end, pipeline_range,
    pipeline_receive, shard_attention, shard_layers,
};
use crate::models::llama::Mlp;
use crate::rope::initialize_rope;

/// `config.json` fields of a Qwen3 model (mlx-lm's `ModelArgs`; the fields without a default
/// are required there too).
#[derive(Clone, Debug, Deserialize)]
pub struct ModelArgs {
    /// Width of the residual stream.
    pub hidden_size: i32,
    /// Number of transformer blocks.
    pub num_hidden_layers: i32,
    /// Width of the MLP.
    pub intermediate_size: i32,
    /// Query heads.
    pub num_attention_heads: i32,
    /// RMSNorm epsilon (the block norms and the per-head q/k norms).
    pub rms_norm_eps: f32,
    /// Vocabulary size.
    pub vocab_size: i32,
    /// Key/value heads.
    pub num_key_value_heads: i32,
    /// The longest context the model was trained for.
    pub max_position_embeddings: i32,
    /// Per-head width.
    pub head_dim: i32,
    /// Output projection shares the embedding.
    pub tie_word_embeddings: bool,
    /// RoPE base (may instead come from `rope_parameters`).
    #[serde(default)]
    pub rope_theta: Option<f32>,
    /// `rope_scaling` (`linear`, `llama3`, ...).
    #[serde(default)]
    pub rope_scaling: Option<Map<String, Value>>,
    /// transformers >= 5 nests `rope_theta` and the scaling here.
    #[serde(default)]
    pub rope_parameters: Option<Map<String, Value>>,
}

impl ModelArgs {
    /// The RoPE base and scaling after mlx-lm's `__post_init__`: a non-empty
    /// `rope_parameters` supplies `rope_theta` and `rope_scaling` where they are missing; a
    /// missing `rope_theta` is an error.
    pub fn rope_config(&self) -> Result<(f32, Option<&Map<String, Value>>)> {
        let nested = self.rope_parameters.as_ref().filter(|p| !p.is_empty());
        let theta = match (self.rope_theta, nested.and_then(|p| p.get("rope_theta"))) {
            (Some(t), _) => Some(t),
            (None, Some(Value::Null)) | (None, None) => None,
            (None, Some(v)) => Some(v.as_f64().ok_or_else(|| {
                Error::invalid(
                    "qwen3",
                    format!("rope_parameters.rope_theta must be a number, got {v}"),
                )
            })? as f32),
        };
        let theta = theta.ok_or_else(|| {
            Error::invalid("qwen3", "rope_theta is missing from the model config")
        })?;
        Ok((theta, self.rope_scaling.as_ref().or(nested)))
    }
}

/// Grouped-query self-attention with per-head RMSNorm on queries and keys (shared by Qwen3 and
/// Qwen3-MoE, which differ only in their rotary embedding).
#[derive(Clone, Debug, Module)]
pub struct Attention {
    /// Query projection.
    pub q_proj: AdaptableLinear,
    /// Key projection.
    pub k_proj: AdaptableLinear,
    /// Value projection.
    pub v_proj: AdaptableLinear,
    /// Output projection.
    pub o_proj: AdaptableLinear,
    /// RMSNorm over each query head.
    pub q_norm: RmsNorm,
    /// RMSNorm over each key head.
    pub k_norm: RmsNorm,
    /// Rotary embedding.
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
    /// Bias-free projections `dim -> heads * head_dim`, q/k norms over `head_dim` with `eps`,
    /// and the given rotary embedding.
    pub fn new(
        dim: i32,
        n_heads: i32,
        n_kv_heads: i32,
        head_dim: i32,
        eps: f32,
        rope: RoPE,
    ) -> Result<Attention> {
        if n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0 {
            return Err(Error::invalid("Attention", "head counts and head_dim must be positive"));
        }
        Ok(Attention {
            q_proj: Linear::new(dim, n_heads * head_dim, false)?.into(),
            k_proj: Linear::new(dim, n_kv_heads * head_dim, false)?.into(),
            v_proj: Linear::new(dim, n_kv_heads * head_dim, false)?.into(),
            o_proj: Linear::new(n_heads * head_dim, dim, false)?.into(),
            q_norm: RmsNorm::new(head_dim, eps)?,
            k_norm: RmsNorm::new(head_dim, eps)?,
            rope,
            n_heads,
            n_kv_heads,
            scale: (head_dim as f32).powf(-0.5),
        })
    }

    /// Attention over `x` `(B, L, dim)` through the layer's cache slot.
    pub fn forward(&self, x: &Array, mask: &CacheMask, cache: LayerCache<'_>) -> Result<Array> {
        let (b, l) = (x.dim(0)?, x.dim(1)?);
        let queries = self
            .q_norm
            .forward(&self.q_proj.forward(x)?.reshape([b, l, self.n_heads, -1])?)?
            .transpose([0, 2, 1, 3])?;
        let keys = self
            .k_norm
            .forward(&self.k_proj.forward(x)?.reshape([b, l, self.n_kv_heads, -1])?)?
            .transpose([0, 2, 1, 3])?;
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

/// A pre-norm transformer block.
#[derive(Clone, Debug, Module)]
pub struct TransformerBlock {
    /// Attention.
    pub self_attn: Attention,
    /// Feed-forward (SwiGLU, no biases).
    pub mlp: Mlp,
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm,
}

impl TransformerBlock {
    fn forward(&self, x: &Array, mask: &CacheMask, cache: LayerCache<'_>) -> Result<Array> {
        let h = (x + self.self_attn.forward(&self.input_layernorm.forward(x)?, mask, cache)?)?;
        &h + self.mlp.forward(&self.post_attention_layernorm.forward(&h)?)?
    }
}

/// The decoder stack (`model.*` in checkpoints).
#[derive(Clone, Debug, Module)]
pub struct Qwen3Model {
    /// Token embedding.
    pub embed_tokens: MaybeQuantized<Embedding>,
    /// The blocks.
    pub layers: Vec<TransformerBlock>,
    /// Final norm.
    pub norm: RmsNorm,
}

/// A Qwen3 causal language model.
#[derive(Debug, Module)]
pub struct Model {
    /// The decoder.
    pub model: Qwen3Model,
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
            layer.mlp.shard(false, group)?;
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
        if args.vocab_size <= 0 {
            return Err(Error::invalid("qwen3", "vocab_size must be positive"));
        }
        let (theta, scaling) = args.rope_config()?;
        let layers = (0..args.num_hidden_layers.max(0))
            .map(|_| -> Result<TransformerBlock> {
                let rope = initialize_rope(args.head_dim, theta, false, scaling)?;
                Ok(TransformerBlock {
                    self_attn: Attention::new(
                        args.hidden_size,
                        args.num_attention_heads,
                        args.num_key_value_heads,
                        args.head_dim,
                        args.rms_norm_eps,
                        rope,
                    )?,
                    mlp: Mlp::new(args.hidden_size, args.intermediate_size, false)?,
                    input_layernorm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
                    post_attention_layernorm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Model {
            model: Qwen3Model {
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
        })
    }

    fn sanitize(&self, mut weights: Weights) -> Result<Weights> {
        if self.lm_head.is_none() {
            weights.remove("lm_head.weight");
        }
        Ok(weights)
    }
}
