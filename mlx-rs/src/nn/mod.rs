//! Neural-network layers and the [`Module`] trait, named as Python's `mlx.nn`, with the
//! losses ([`losses`], `mlx.nn.losses`) and the KV caches of LLM attention ([`cache`], as
//! mlx-lm's `models/cache.py`).
//!
//! A model is a struct of layers with `#[derive(Module)]`; its parameters are a
//! [`Tree`](crate::utils::Tree) with Python's dotted paths (`layers.3.self_attn.q_proj.weight`),
//! so checkpoints written by Python load one to one ([`Module::load_safetensors`]), strictly.
//!
//! # Forward convention
//! Every layer has an inherent `forward(&self, x: &Array) -> Result<Array>` (no trait import
//! needed); the [`Forward`] trait gives the same call to generic code and to [`Sequential`].
//! Layers that need more than one input take them as extra arguments
//! ([`RoPE::forward_at`]).
//!
//! ```
//! use mlx_rs::{Array, Dtype, Result, ops};
//! use mlx_rs::nn::{self, Linear, Module, RmsNorm};
//!
//! #[derive(Module)]
//! struct Mlp { gate_proj: Linear, up_proj: Linear, down_proj: Linear }
//!
//! impl Mlp {
//!     fn forward(&self, x: &Array) -> Result<Array> {
//!         let h = nn::swiglu(&self.gate_proj.forward(x)?, &self.up_proj.forward(x)?)?;
//!         self.down_proj.forward(&h)
//!     }
//! }
//!
//! #[derive(Module)]
//! struct Block { norm: RmsNorm, mlp: Mlp }
//!
//! let mlp = Mlp {
//!     gate_proj: Linear::new(8, 16, false)?,
//!     up_proj: Linear::new(8, 16, false)?,
//!     down_proj: Linear::new(16, 8, false)?,
//! };
//! let block = Block { norm: RmsNorm::new(8, 1e-5)?, mlp };
//! let x = ops::ones(&[2, 8], Dtype::Float32)?;
//! let y = block.mlp.forward(&block.norm.forward(&x)?)?;
//! assert_eq!(y.shape(), [2, 8]);
//! assert_eq!(block.parameters().paths(), [
//!     "norm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
//! ]);
//! # Ok::<(), mlx_rs::Error>(())
//! ```

mod activations;
mod adapter;
pub mod cache;
mod container;
mod distributed;
mod dora;
mod dropout;
mod embedding;
mod linear;
mod lora;
pub mod losses;
mod module;
mod normalization;
mod positional;
mod quantized;
mod switch;

pub use activations::{
    Gelu, GeluApprox, LeakyRelu, LogSoftmax, Relu, Sigmoid, Silu, Softmax, Tanh, gelu, gelu_approx,
    gelu_fast_approx, leaky_relu, log_softmax, relu, sigmoid, silu, softmax, swiglu, tanh,
};
pub use adapter::{
    Adaptable, AdaptableLinear, AdaptableSwitchLinear, AdapterConfig, AdapterKind, apply_adapters,
    fuse_adapters,
};
pub use container::{Layer, Sequential};
pub use distributed::{
    ShardedLinear, Sharding, all_sum_if, shard_array, shard_inplace, shard_linear,
};
pub use dora::{DoRAEmbedding, DoRALinear};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use linear::Linear;
pub use lora::{LoRALinear, LoRASwitchLinear};
/// `#[derive(Module)]`: see [`trait@Module`] for the rules and the misuse that fails to compile.
pub use mlx_macros::Module;
pub use module::{LoadReport, Mismatch, Module, Param, push_key, value_and_grad};
pub use normalization::{LayerNorm, RmsNorm};
pub use positional::{Llama3RopeScaling, RoPE, llama3_rope_frequencies};
pub use quantized::{
    MaybeQuantized, Quantizable, QuantizeDecision, QuantizedEmbedding, QuantizedLinear,
    ToQuantized, mode_defaults, quantize,
};
pub use switch::{GatherForward, QuantizedSwitchLinear, SORT_THRESHOLD, SwitchGlu, SwitchLinear};

use crate::{Array, Result};

/// A layer with one input and one output: `forward(x)`.
pub trait Forward {
    /// Applies the layer.
    fn forward(&self, x: &Array) -> Result<Array>;
}

/// Implements [`Forward`] by the type's inherent `forward`.
macro_rules! impl_forward {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::nn::Forward for $t {
            fn forward(&self, x: &$crate::Array) -> $crate::Result<$crate::Array> {
                <$t>::forward(self, x)
            }
        }
    )*};
}
pub(crate) use impl_forward;
