//! Safe, fallible Rust bindings to [MLX](https://ml-explore.github.io/mlx/), Apple's array
//! framework, on Linux (CPU and NVIDIA CUDA) and macOS (Metal).
//!
//! ```
//! use mlx_rs::Array;
//! let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3])?;
//! let b = Array::from_slice(&[10.0f32, 20.0, 30.0], &[3])?;
//! let c = mlx_rs::ops::add(&a, &b)?;
//! assert_eq!(c.to_vec::<f32>()?, [11.0, 22.0, 33.0]);
//! # Ok::<(), mlx_rs::Error>(())
//! ```
//!
//! # Model code
//! Ops chain as methods ([`Array#methods`](Array#methods)), axes read as in Python ([`ops::Axes`]:
//! `-1`, `[0, 2]`, `..`), and parameters live in trees with Python's dotted paths
//! ([`utils::Tree`]), over which [`transforms::value_and_grad_tree`] takes gradients. An
//! attention block (grouped-query, rotary positions, causal mask) reads top to bottom:
//!
//! ```
//! use mlx_rs::{Array, Dtype, Result, fast, random, utils::Tree};
//!
//! /// `x`: [batch, length, hidden]; weights in `p` under Python's names.
//! fn attention(p: &Tree, x: &Array, heads: i32, kv_heads: i32) -> Result<Array> {
//!     let (b, l) = (x.dim(0)?, x.dim(1)?);
//!     let head_dim = x.dim(2)? / heads;
//!     let q = x.matmul(p.leaf("q_proj.weight")?.t()?)?;
//!     let k = x.matmul(p.leaf("k_proj.weight")?.t()?)?;
//!     let v = x.matmul(p.leaf("v_proj.weight")?.t()?)?;
//!     let q = q.reshape([b, l, heads, head_dim])?.transpose([0, 2, 1, 3])?;
//!     let k = k.reshape([b, l, kv_heads, head_dim])?.transpose([0, 2, 1, 3])?;
//!     let v = v.reshape([b, l, kv_heads, head_dim])?.transpose([0, 2, 1, 3])?;
//!     let q = fast::rope(&q, fast::RopeOptions::new(head_dim))?;
//!     let k = fast::rope(&k, fast::RopeOptions::new(head_dim))?;
//!     let scale = 1.0 / (head_dim as f32).sqrt();
//!     let mask = fast::AttentionMask::Causal;
//!     let out = fast::scaled_dot_product_attention(&q, &k, &v, scale, mask, None)?;
//!     out.transpose([0, 2, 1, 3])?.reshape([b, l, heads * head_dim])?
//!         .matmul(p.leaf("o_proj.weight")?.t()?)
//! }
//!
//! let (hidden, heads, kv_heads) = (64, 4, 2);
//! let kv = hidden / heads * kv_heads;
//! let mut p = Tree::new();
//! for (name, rows) in [("q_proj", hidden), ("k_proj", kv), ("v_proj", kv), ("o_proj", hidden)] {
//!     let w = random::normal(&[rows, hidden], Dtype::Float32, 0.0, 0.02, None)?;
//!     p.insert(&format!("{name}.weight"), w)?;
//! }
//! let x = random::normal(&[2, 7, hidden], Dtype::Float32, 0.0, 1.0, None)?;
//! assert_eq!(attention(&p, &x, heads, kv_heads)?.shape(), [2, 7, hidden]);
//! # Ok::<(), mlx_rs::Error>(())
//! ```
//!
//! # Lazy evaluation
//! Operations build a graph; nothing is computed until a value is needed ([`Array::item`],
//! [`Array::to_vec`], printing) or [`Array::eval`] is called.
//!
//! # Devices and streams
//! Every op exists twice: `foo_device(.., &stream)` runs on the given [`Stream`], and `foo(..)`
//! runs on the calling thread's default stream of the default [`Device`] (the GPU when the loaded
//! MLX has one). Streams belong to the thread that created them and are neither `Send` nor `Sync`.
//!
//! # Errors
//! Every fallible call returns [`Result`]. Bad shapes, axes, dtypes and arguments give an
//! [`Error`] naming the op and carrying MLX's message; nothing in the safe API panics or aborts
//! the process on bad input. Where MLX 0.32.2 itself would crash (integer division by zero,
//! out-of-range index values, empty matrices in some `linalg` ops), the wrappers check or clamp
//! first; each such place says so in its documentation.
//!
//! # Thread safety
//! - [`Device`] is `Send + Sync`.
//! - [`Array`], [`Stream`] and the function objects of [`transforms`] are neither `Send` nor
//!   `Sync`: since MLX 0.31 a stream belongs to the thread that created it, and graphs built on
//!   one thread's streams are evaluated there. Move data between threads as Rust values
//!   (`to_vec`, then `from_slice`).
//! - Several threads may each build and evaluate their own graphs on their own streams at the
//!   same time. MLX's CUDA backend cannot capture work from two threads at once, so on CUDA the
//!   evaluation calls of this crate take a process-wide lock; other backends run in parallel.
//! - MLX's error handler is process-wide; this crate keeps each thread's last error separately.
//!
//! # Modules
//! Named as in Python's `mlx.core`: [`ops`] (the `mlx.core` operations), [`random`], [`linalg`],
//! [`utils`] (parameter trees, as `mlx.utils`), [`nn`] (layers, `#[derive(Module)]`, losses and
//! KV caches, as `mlx.nn`), [`optimizers`] (as `mlx.optimizers`), [`fft`], [`fast`] (fused kernels and custom CUDA/Metal kernels), [`quantization`],
//! [`transforms`] (eval, grad, vjp, jvp, vmap, compile), [`export`], [`io`], [`memory`],
//! [`distributed`], [`graph`], [`cuda`], [`metal`] and [`kernels`] (the crate's own GPU kernels for model hot paths).

extern crate self as mlx_rs;

mod array;
pub mod cuda;
mod device;
pub mod distributed;
mod dtype;
mod error;
pub mod export;
pub mod fast;
mod ffi;
pub mod fft;
pub mod graph;
pub mod io;
pub mod kernels;
pub mod linalg;
mod map;
pub mod memory;
pub mod metal;
pub mod nn;
pub mod ops;
pub mod optimizers;
pub mod quantization;
pub mod random;
mod stream;
pub mod transforms;
pub mod utils;
mod vector;

pub use array::{Array, Ellipsis, Index, IntoIndex, NewAxis, Slice};
pub use device::{DefaultDeviceGuard, Device, DeviceType};
pub use dtype::{ArrayElement, Dtype};
pub use error::{Context, Error, ErrorKind, Result};
pub use stream::{DefaultStreamGuard, Stream};
pub use stream::{ThreadLocalStream, ThreadUnsafeStream};

/// The version of the MLX library loaded at run time, e.g. `"0.32.2"`.
pub fn version() -> Result<String> {
    // SAFETY: the string is owned by `string_out`.
    ffi::string_out("version", |s| unsafe { mlx_sys::mlx_version(s) })
}
