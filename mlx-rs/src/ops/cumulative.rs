//! Scans (`cumsum`, `cumprod`, `cummax`, `cummin`, `logcumsumexp`) and `diff`.
//!
//! Every scan takes `axis: Option<i32>` (`None`: scan the flattened array, as Python's
//! `axis=None`), `reverse` (scan from the end) and `inclusive` (include the current element; an
//! exclusive scan starts from the identity: `0` for sums, `1` for products). An axis out of range
//! gives an [`Error`](crate::Error).

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::{Array, Dtype, Result, Stream, ffi};

/// Cumulative sum along `axis` (`None`: the flattened array). `dtype` sets the accumulation and
/// result type (`None`: as MLX promotes the input, e.g. `bool_` sums as `int32`).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1, 2, 3, 4], &[4])?;
/// assert_eq!(ops::cumsum(&a, Some(0), false, true, None)?.to_vec::<i32>()?, [1, 3, 6, 10]);
/// assert_eq!(ops::cumsum(&a, None, true, false, None)?.to_vec::<i32>()?, [9, 7, 4, 0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn cumsum_device(
    a: &Array,
    axis: Option<i32>,
    reverse: bool,
    inclusive: bool,
    dtype: Option<Dtype>,
    stream: &Stream,
) -> Result<Array> {
    let dtype = ffi::optional_dtype(dtype);
    let out = match axis {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("cumsum", |out| unsafe {
            sys::mlx_cumsum(out, a.raw(), reverse, inclusive, dtype, stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(axis) => ffi::array_out("cumsum", |out| unsafe {
            sys::mlx_cumsum_axis(out, a.raw(), axis, reverse, inclusive, dtype, stream.raw())
        }),
    };
    super::empty_safe(out, stream)
}

/// Cumulative product along `axis` (`None`: the flattened array). `dtype` sets the
/// accumulation and result type (`None`: as MLX promotes the input).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let p = ops::cumprod(&a, Some(1), false, true, None)?;
/// assert_eq!(p.to_vec::<f32>()?, [1.0, 2.0, 3.0, 12.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn cumprod_device(
    a: &Array,
    axis: Option<i32>,
    reverse: bool,
    inclusive: bool,
    dtype: Option<Dtype>,
    stream: &Stream,
) -> Result<Array> {
    let dtype = ffi::optional_dtype(dtype);
    let out = match axis {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("cumprod", |out| unsafe {
            sys::mlx_cumprod(out, a.raw(), reverse, inclusive, dtype, stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(axis) => ffi::array_out("cumprod", |out| unsafe {
            sys::mlx_cumprod_axis(out, a.raw(), axis, reverse, inclusive, dtype, stream.raw())
        }),
    };
    super::empty_safe(out, stream)
}

/// Defines scans without a dtype argument that mlx-c has in two forms: over the flattened array
/// and along one axis.
macro_rules! scan_ops {
    ($($(#[$doc:meta])* $device:ident, $op:literal, $flat:ident, $axis:ident;)*) => {$(
        $(#[$doc])*
        #[default_device]
        pub fn $device(
            a: &Array,
            axis: Option<i32>,
            reverse: bool,
            inclusive: bool,
            stream: &Stream,
        ) -> Result<Array> {
            let out = match axis {
                // SAFETY: live handles; the output is owned by `array_out`.
                None => ffi::array_out($op, |out| unsafe {
                    sys::$flat(out, a.raw(), reverse, inclusive, stream.raw())
                }),
                // SAFETY: live handles; the output is owned by `array_out`.
                Some(axis) => ffi::array_out($op, |out| unsafe {
                    sys::$axis(out, a.raw(), axis, reverse, inclusive, stream.raw())
                }),
            };
            super::empty_safe(out, stream)
        }
    )*};
}

scan_ops! {
    /// Cumulative maximum along `axis` (`None`: the flattened array).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[2, 1, 5, 3], &[4])?;
    /// assert_eq!(ops::cummax(&a, Some(0), false, true)?.to_vec::<i32>()?, [2, 2, 5, 5]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    cummax_device, "cummax", mlx_cummax, mlx_cummax_axis;

    /// Cumulative minimum along `axis` (`None`: the flattened array).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[2, 1, 5, 0], &[4])?;
    /// assert_eq!(ops::cummin(&a, Some(0), false, true)?.to_vec::<i32>()?, [2, 1, 1, 0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    cummin_device, "cummin", mlx_cummin, mlx_cummin_axis;

    /// Cumulative `log(sum(exp(a)))` along `axis` (`None`: the flattened array), without
    /// overflow.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32, 0.0], &[2])?;
    /// let l = ops::logcumsumexp(&a, Some(0), false, true)?.to_vec::<f32>()?;
    /// assert!(l[0] == 0.0 && (l[1] - 2f32.ln()).abs() < 1e-6);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    logcumsumexp_device, "logcumsumexp", mlx_logcumsumexp, mlx_logcumsumexp_axis;
}

/// The `n`-th discrete difference along `axis` (Python defaults: `n = 1`, `axis = -1`):
/// `a[1:] - a[:-1]` applied `n` times. `n = 0` returns the input; `n` at least the axis length
/// gives an empty axis; a negative `n` is an error.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1, 4, 9, 16], &[4])?;
/// assert_eq!(ops::diff(&a, 1, -1)?.to_vec::<i32>()?, [3, 5, 7]);
/// assert_eq!(ops::diff(&a, 2, -1)?.to_vec::<i32>()?, [2, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn diff_device(a: &Array, n: i32, axis: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("diff", |out| unsafe { sys::mlx_diff(out, a.raw(), n, axis, stream.raw()) })
}
