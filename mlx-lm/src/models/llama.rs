//! Llama and Mistral (mlx-lm's `llama.py`; `mistral` checkpoints load through it): grouped-query
//! attention with optional biases and `head_dim`, a SwiGLU MLP, Llama 3 rope scaling, tied or
//! separate output embeddings, and sliding-window layers from `layer_types`.

use mlx_rs::distributed::Group;
use mlx_rs::nn::cache::{Cache, KVCache, PromptCache, RotatingKVCache};
use mlx_rs::nn::{AdaptableLinear, Embedding, Linear, MaybeQuantized, Module, RmsNorm, RoPE};
use mlx_rs::{Array, Error, Result, kernels};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::model::{
    Architecture, LanguageModel, LayerCache, Pipeline, Weights, attention_mask, cached_attention,
    check_shardable_heads, checkpointed_layer, layer_caches, pipeline_end, pipeline_range,
    pipeline_receive, shard_attention, shard_layers, shard_mlp,
};
use crate::rope::initialize_rope;

/// `config.json` fields of a Llama / Mistral model (mlx-lm's `ModelArgs`).
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
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// Vocabulary size.
    pub vocab_size: i32,
    /// Per-head width (default `hidden_size / num_attention_heads`).
    #[serde(default)]
    pub head_dim: Option<i32>,
    /// Key/value heads (default: the query heads).
    #[serde(default)]
    pub num_key_value_heads: Option<i32>,
    /// Biases on the four attention projections.
    #[serde(default)]
    pub attention_bias: bool,
    /// Biases on the MLP projections.
    #[serde(default)]
    pub mlp_bias: bool,
    /// RoPE base.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f32,
    /// Rotate consecutive pairs.
    #[serde(default)]
    pub rope_traditional: bool,
    /// `rope_scaling` (`linear`, `llama3`, ...).
    #[serde(default)]
    pub rope_scaling: Option<Map<String, Value>>,
    /// Output projection shares the embedding (default true).
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// `full_attention` / `sliding_attention` per layer (default all full).
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// The window of sliding-attention layers.
    #[serde(default)]
    pub sliding_window: Option<i32>,
}

fn default_rope_theta() -> f32 {
    10000.0
}

fn default_true() -> bool {
    true
}

/// Grouped-query self-attention.
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
    fn new(args: &ModelArgs) -> Result<Attention> {
        let dim = args.hidden_size;
        let n_heads = args.num_attention_heads;
        let n_kv_heads = args.num_key_value_heads.unwrap_or(n_heads);
        let head_dim = args.head_dim.unwrap_or(dim / n_heads);
        let bias = args.attention_bias;
        Ok(Attention {
            q_proj: Linear::new(dim, n_heads * head_dim, bias)?.into(),
            k_proj: Linear::new(dim, n_kv_heads * head_dim, bias)?.into(),
            v_proj: Linear::new(dim, n_kv_heads * head_dim, bias)?.into(),
            o_proj: Linear::new(n_heads * head_dim, dim, bias)?.into(),
            rope: initialize_rope(
                head_dim,
                args.rope_theta,
                args.rope_traditional,
                args.rope_scaling.as_ref(),
            )?,
            n_heads,
            n_kv_heads,
            scale: (head_dim as f32).powf(-0.5),
        })
    }

    fn forward(
        &self,
        x: &Array,
        mask: &mlx_rs::nn::cache::CacheMask,
        cache: LayerCache<'_>,
    ) -> Result<Array> {
        let (b, l) = (x.dim(0)?, x.dim(1)?);
        let heads = |y: Array, n: i32| y.reshape([b, l, n, -1])?.transpose([0, 2, 1, 3]);
        let queries = heads(self.q_proj.forward(x)?, self.n_heads)?;
        let keys = heads(self.k_proj.forward(x)?, self.n_kv_heads)?;
        let values = heads(self.v_proj.forward(x)?, self.n_kv_heads)?;
        let offset = cache.as_ref().map_or(0, |c| c.offset());
        let queries = self.rope.forward_at(&queries, offset)?;
        let keys = self.rope.forward_at(&keys, offset)?;
        let out = cached_attention(&queries, &keys, &values, cache, self.scale, mask)?;
        self.o_proj.forward(&out.transpose([0, 2, 1, 3])?.reshape([b, l, -1])?)
    }
}

/// The SwiGLU feed-forward block.
#[derive(Clone, Debug, Module)]
pub struct Mlp {
    /// Gate projection.
    pub gate_proj: AdaptableLinear,
    /// Down projection.
    pub down_proj: AdaptableLinear,
    /// Up projection.
    pub up_proj: AdaptableLinear,
}

impl Mlp {
    /// `dim -> hidden -> dim`, with biases when `bias`.
    pub fn new(dim: i32, hidden: i32, bias: bool) -> Result<Mlp> {
        Ok(Mlp {
            gate_proj: Linear::new(dim, hidden, bias)?.into(),
            down_proj: Linear::new(hidden, dim, bias)?.into(),
            up_proj: Linear::new(dim, hidden, bias)?.into(),
        })
    }

    /// `down(silu(gate(x)) * up(x))`, the gate through [`kernels::swiglu`].
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let h = kernels::swiglu(&self.gate_proj.forward(x)?, &self.up_proj.forward(x)?)?;
        self.down_proj.forward(&h)
    }

    /// Splits the hidden features across `group` ([`shard_mlp`]): with its own all-sum, or
    /// only sliced when `in_place` (the caller sums).
    pub fn shard(&mut self, in_place: bool, group: &Group) -> Result<()> {
        let Mlp { gate_proj, down_proj, up_proj } = self;
        shard_mlp([gate_proj, up_proj, down_proj], in_place, group)
    }
}

/// A pre-norm transformer block.
#[derive(Clone, Debug, Module)]
pub struct TransformerBlock {
    /// Attention.
    pub self_attn: Attention,
    /// Feed-forward.
    pub mlp: Mlp,
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm,
    /// A sliding-window layer.
    #[module(skip)]
    pub use_sliding: bool,
}

impl TransformerBlock {
    fn forward(
        &self,
        x: &Array,
        mask: &mlx_rs::nn::cache::CacheMask,
        cache: LayerCache<'_>,
    ) -> Result<Array> {
        let h = (x + self.self_attn.forward(&self.input_layernorm.forward(x)?, mask, cache)?)?;
        &h + self.mlp.forward(&self.post_attention_layernorm.forward(&h)?)?
    }
}

/// The decoder stack (`model.*` in checkpoints).
#[derive(Debug, Module)]
pub struct LlamaModel {
    /// Token embedding.
    pub embed_tokens: MaybeQuantized<Embedding>,
    /// The blocks.
    pub layers: Vec<TransformerBlock>,
    /// Final norm.
    pub norm: RmsNorm,
    /// The sliding window of sliding layers.
    #[module(skip)]
    pub sliding_window: Option<i32>,
}

/// A Llama / Mistral causal language model.
#[derive(Debug, Module)]
pub struct Model {
    /// The decoder.
    pub model: LlamaModel,
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
        let n = h.dim(1)?;
        let range = pipeline_range(self.pipeline.as_ref(), layers.len());
        let local = || layers[range.clone()].iter();
        let full = local().position(|l| !l.use_sliding).map(|i| i + range.start);
        let sliding = local().position(|l| l.use_sliding).map(|i| i + range.start);
        let mask_at = |i: Option<usize>, window, caches: &[LayerCache<'_>]| {
            let cache = i.and_then(|i| caches[i].as_deref());
            attention_mask(n, cache, window, false)
        };
        let full_mask = mask_at(full, None, &caches)?;
        let sliding_mask = match sliding {
            Some(_) => Some(mask_at(sliding, self.model.sliding_window, &caches)?),
            None => None,
        };
        h = pipeline_receive(self.pipeline.as_ref(), h)?;
        for (layer, cache) in layers[range.clone()].iter().zip(caches[range.clone()].iter_mut()) {
            let mask = match (&sliding_mask, layer.use_sliding) {
                (Some(m), true) => m,
                _ => &full_mask,
            };
            h = match cache {
                None if self.grad_checkpoint => {
                    let mask = mask.clone();
                    checkpointed_layer(layer, &h, move |l, x| l.forward(x, &mask, None))?
                }
                _ => layer.forward(&h, mask, cache.as_deref_mut())?,
            };
        }
        h = pipeline_end(self.pipeline.as_ref(), h, &mut caches)?;
        let out = self.model.norm.forward(&h)?;
        match &self.lm_head {
            Some(head) => head.forward(&out),
            None => self.model.embed_tokens.as_linear(&out),
        }
    }

    fn num_layers(&self) -> usize {
        self.model.layers.len()
    }

    fn vocab_size(&self) -> i32 {
        self.vocab_size
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
            let a = &mut layer.self_attn;
            let projections = [&mut a.q_proj, &mut a.k_proj, &mut a.v_proj, &mut a.o_proj];
            shard_attention(projections, &mut a.n_heads, &mut a.n_kv_heads, group)?;
            layer.mlp.shard(false, group)?;
            Ok(())
        })
    }

    fn make_cache(&self) -> Result<PromptCache> {
        self.model
            .layers
            .iter()
            .map(|l| -> Result<Box<dyn Cache>> {
                match (l.use_sliding, self.model.sliding_window) {
                    (true, Some(w)) => Ok(Box::new(RotatingKVCache::new(w, 0)?)),
                    _ => Ok(Box::new(KVCache::new())),
                }
            })
            .collect()
    }
}

impl Architecture for Model {
    type Args = ModelArgs;

    fn new(args: &ModelArgs, model_type: &str) -> Result<Model> {
        if args.vocab_size <= 0 || args.num_attention_heads <= 0 {
            return Err(Error::invalid(
                "llama",
                "vocab_size and num_attention_heads must be positive",
            ));
        }
        let types = match &args.layer_types {
            Some(t) => t.clone(),
            None => vec!["full_attention".to_owned(); args.num_hidden_layers.max(0) as usize],
        };
        if !types.iter().any(|t| t == "full_attention") {
            return Err(Error::invalid("llama", "layer_types has no full_attention layer"));
        }
        let layers = types
            .iter()
            .map(|t| -> Result<TransformerBlock> {
                let use_sliding = match t.as_str() {
                    "full_attention" => false,
                    "sliding_attention" => true,
                    other => {
                        return Err(Error::invalid(
                            "llama",
                            format!("unknown layer type `{other}`"),
                        ));
                    }
                };
                Ok(TransformerBlock {
                    self_attn: Attention::new(args)?,
                    mlp: Mlp::new(args.hidden_size, args.intermediate_size, args.mlp_bias)?,
                    input_layernorm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
                    post_attention_layernorm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
                    use_sliding,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Model {
            model: LlamaModel {
                embed_tokens: Embedding::new(args.vocab_size, args.hidden_size)?.into(),
                layers,
                norm: RmsNorm::new(args.hidden_size, args.rms_norm_eps)?,
                sliding_window: args.sliding_window,
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
        weights.retain(|k, _| !k.contains("self_attn.rotary_emb.inv_freq"));
        if self.lm_head.is_none() {
            weights.remove("lm_head.weight");
        }
        Ok(weights)
    }
}
