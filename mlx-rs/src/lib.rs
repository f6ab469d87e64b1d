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
//! the process on bad input.

extern crate self as mlx_rs;

mod array;
mod device;
mod dtype;
mod error;
mod ffi;
pub mod ops;
mod stream;

pub use array::Array;
pub use device::{Device, DeviceType};
pub use dtype::{ArrayElement, Dtype};
pub use error::{Error, ErrorKind, Result};
pub use stream::Stream;

/// The version of the MLX library loaded at run time, e.g. `"0.32.2"`.
pub fn version() -> Result<String> {
    // SAFETY: the string is owned by `string_out`.
    ffi::string_out("version", |s| unsafe { mlx_sys::mlx_version(s) })
}
