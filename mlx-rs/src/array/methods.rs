//! Methods on [`Array`] for the ops model code chains, as on `mlx.core.array`.
//!
//! Each method is the [`ops`](crate::ops) function of the same name applied to `self`, with the
//! same arguments and errors, in two forms like every op: `x.sum(..)` on the default stream and
//! `x.sum_device(.., &stream)`. They let model code read top to bottom:
//!
//! ```
//! use mlx_rs::{Array, Dtype, ops};
//! // Multi-head attention's shape plumbing: [B, L, H*D] -> [B, H, L, D] -> scores.
//! let (b, l, h, d) = (1, 3, 2, 4);
//! let x = ops::arange(0.0, f64::from(b * l * h * d), 1.0, Dtype::Float32)?
//!     .reshape([b, l, h * d])?;
//! let q = x.reshape([b, l, h, d])?.transpose([0, 2, 1, 3])?;
//! let k = q.clone();
//! let scores = q.matmul(k.swapaxes(-1, -2)?)?.softmax(-1, true)?;
//! assert_eq!(scores.shape(), [b, h, l, l]);
//! let rows = scores.sum(-1, false)?;
//! assert!(rows.to_vec::<f32>()?.iter().all(|&r| (r - 1.0).abs() < 1e-5));
//! # Ok::<(), mlx_rs::Error>(())
//! ```

use mlx_macros::default_device;

use crate::ops::{self, Axes};
use crate::{Array, Dtype, Result, Stream};

/// Writes methods `name_device(&self, args.., stream)` over `ops::name_device(self, args..,
/// stream)`; `#[default_device]` adds `name(&self, args..)`.
macro_rules! methods {
    ($($name:ident, $device:ident ($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        impl Array {$(
            #[doc = concat!(
                "[`ops::", stringify!($name), "`](crate::ops::", stringify!($name),
                ") of this array (see the [methods](crate::Array#methods) overview)."
            )]
            #[default_device]
            pub fn $device(&self, $($arg: $ty,)* stream: &Stream) -> Result<$ret> {
                ops::$device(self, $($arg,)* stream)
            }
        )*}
    };
}

/// Writes methods `name_device(&self, other, stream)` over `ops::name_device(self, other,
/// stream)` for binary ops; `other` is anything that is or refers to an array, so that a
/// temporary needs no `&` (`q.matmul(k.t()?)`).
macro_rules! binary_methods {
    ($($name:ident, $device:ident;)*) => {
        impl Array {$(
            #[doc = concat!(
                "[`ops::", stringify!($name), "`](crate::ops::", stringify!($name),
                ") of this array and `other` (see the [methods](crate::Array#methods) overview)."
            )]
            #[default_device]
            pub fn $device(&self, other: impl AsRef<Array>, stream: &Stream) -> Result<Array> {
                ops::$device(self, other.as_ref(), stream)
            }
        )*}
    };
}

methods! {
    // Shape.
    reshape, reshape_device(shape: impl AsRef<[i32]>) -> Array;
    flatten, flatten_device(start_axis: i32, end_axis: i32) -> Array;
    unflatten, unflatten_device(axis: i32, shape: impl AsRef<[i32]>) -> Array;
    squeeze, squeeze_device(axes: impl Into<Axes>) -> Array;
    expand_dims, expand_dims_device(axes: impl Into<Axes>) -> Array;
    transpose, transpose_device(axes: impl Into<Axes>) -> Array;
    swapaxes, swapaxes_device(axis1: i32, axis2: i32) -> Array;
    moveaxis, moveaxis_device(source: i32, destination: i32) -> Array;
    broadcast_to, broadcast_to_device(shape: impl AsRef<[i32]>) -> Array;
    split, split_device(num_splits: i32, axis: i32) -> Vec<Array>;
    split_sections, split_sections_device(indices: &[i32], axis: i32) -> Vec<Array>;
    // Reductions.
    sum, sum_device(axes: impl Into<Axes>, keepdims: bool) -> Array;
    mean, mean_device(axes: impl Into<Axes>, keepdims: bool) -> Array;
    max, max_device(axes: impl Into<Axes>, keepdims: bool) -> Array;
    min, min_device(axes: impl Into<Axes>, keepdims: bool) -> Array;
    prod, prod_device(axes: impl Into<Axes>, keepdims: bool) -> Array;
    all, all_device(axes: impl Into<Axes>, keepdims: bool) -> Array;
    any, any_device(axes: impl Into<Axes>, keepdims: bool) -> Array;
    logsumexp, logsumexp_device(axes: impl Into<Axes>, keepdims: bool) -> Array;
    var, var_device(axes: impl Into<Axes>, keepdims: bool, ddof: i32) -> Array;
    std, std_device(axes: impl Into<Axes>, keepdims: bool, ddof: i32) -> Array;
    argmax, argmax_device(axis: impl Into<Axes>, keepdims: bool) -> Array;
    argmin, argmin_device(axis: impl Into<Axes>, keepdims: bool) -> Array;
    softmax, softmax_device(axes: impl Into<Axes>, precise: bool) -> Array;
    // Element-wise math.
    abs, abs_device() -> Array;
    negative, negative_device() -> Array;
    sign, sign_device() -> Array;
    sqrt, sqrt_device() -> Array;
    rsqrt, rsqrt_device() -> Array;
    square, square_device() -> Array;
    reciprocal, reciprocal_device() -> Array;
    exp, exp_device() -> Array;
    log, log_device() -> Array;
    log2, log2_device() -> Array;
    log10, log10_device() -> Array;
    log1p, log1p_device() -> Array;
    sin, sin_device() -> Array;
    cos, cos_device() -> Array;
    tanh, tanh_device() -> Array;
    sigmoid, sigmoid_device() -> Array;
    erf, erf_device() -> Array;
    floor, floor_device() -> Array;
    ceil, ceil_device() -> Array;
    round, round_device(decimals: i32) -> Array;
    // Types.
    astype, astype_device(dtype: Dtype) -> Array;
    view, view_device(dtype: Dtype) -> Array;
}

binary_methods! {
    matmul, matmul_device;
    maximum, maximum_device;
    minimum, minimum_device;
    power, power_device;
    equal, equal_device;
    not_equal, not_equal_device;
    less, less_device;
    less_equal, less_equal_device;
    greater, greater_device;
    greater_equal, greater_equal_device;
}

impl Array {
    /// This array with its axes reversed (Python's `a.T`; the transpose of a matrix).
    ///
    /// ```
    /// let w = mlx_rs::Array::zeros::<f32>(&[4, 3])?;
    /// assert_eq!(w.t()?.shape(), [3, 4]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    #[default_device]
    pub fn t_device(&self, stream: &Stream) -> Result<Array> {
        ops::transpose_device(self, .., stream)
    }

    /// The complex conjugate; see [`conjugate`](crate::ops::conjugate).
    #[default_device]
    pub fn conj_device(&self, stream: &Stream) -> Result<Array> {
        ops::conjugate_device(self, stream)
    }
}
