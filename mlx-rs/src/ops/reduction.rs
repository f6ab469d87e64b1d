//! Reductions over axes (`sum`, `mean`, `max`, `var`, `logsumexp`, `argmax`, ...) and `softmax`.
//!
//! Each reduction takes its axes as an [`Axes`] (Python's `axis=None | int | list`): `..`
//! reduces over every axis, `-1` over one, `[0, 2]` (or a slice or `Vec`) over the listed ones
//! (negative axes count from the end; an empty list reduces nothing). With `keepdims` the reduced axes stay as size-1 axes. Axes out
//! of range or listed twice give an [`Error`](crate::Error).

use mlx_macros::default_device;
use mlx_sys as sys;

use super::Axes;
use crate::{Array, Error, Result, Stream, ffi};

/// The most elements one reduction may combine. MLX 0.32.2's CPU reductions count the reduced
/// elements in a 32-bit integer: from 2^31 elements on the count wraps and the result is silently
/// wrong (Python: `mx.broadcast_to(mx.array([1.0]), (2, 2**30)).sum()` is `0.0`).
const MAX_REDUCED: u64 = i32::MAX as u64;

/// Fails when reducing `a` over `axes` (`None`: all of them) would combine more than
/// [`MAX_REDUCED`] elements into one result. Axes out of range are left for MLX to report.
fn check_reduced(op: &'static str, a: &Array, axes: Option<&[i32]>) -> Result<()> {
    let shape = a.shape();
    let ndim = shape.len() as i64;
    let count = match axes {
        None => a.size() as u64,
        Some(axes) => {
            let mut count = 1u64;
            for &axis in axes {
                let axis = i64::from(axis);
                let index = if axis < 0 { axis + ndim } else { axis };
                let Some(&d) = usize::try_from(index).ok().and_then(|i| shape.get(i)) else {
                    return Ok(());
                };
                count = count.saturating_mul(u64::try_from(d).unwrap_or(0));
            }
            count
        }
    };
    if count > MAX_REDUCED {
        return Err(Error::invalid(
            op,
            format!(
                "reducing {count} elements of shape {shape:?} into one value: MLX counts them in \
                 32 bits (at most {MAX_REDUCED}) and would give a wrong result; reduce in parts"
            ),
        ));
    }
    Ok(())
}

/// Defines a reduction over `axes: impl Into<Axes>` that mlx-c has in three forms: over every
/// axis, over one axis, and over a list of axes.
macro_rules! axes_reduction {
    ($(#[$doc:meta])* $device:ident, $op:literal, $whole:ident, $axis:ident, $axes:ident;) => {
        $(#[$doc])*
        #[default_device]
        pub fn $device(
            a: &Array,
            axes: impl Into<Axes>,
            keepdims: bool,
            stream: &Stream,
        ) -> Result<Array> {
            let axes = axes.into();
            check_reduced($op, a, axes.as_slice())?;
            match axes.as_slice() {
                // SAFETY: live handles; the output is owned by `array_out`.
                None => ffi::array_out($op, |out| unsafe {
                    sys::$whole(out, a.raw(), keepdims, stream.raw())
                }),
                // SAFETY: live handles; the output is owned by `array_out`.
                Some(&[axis]) => ffi::array_out($op, |out| unsafe {
                    sys::$axis(out, a.raw(), axis, keepdims, stream.raw())
                }),
                // SAFETY: live handles; `axes` is valid for `axes.len()` reads during the call
                // (mlx-c copies it); the output is owned by `array_out`.
                Some(axes) => ffi::array_out($op, |out| unsafe {
                    sys::$axes(out, a.raw(), axes.as_ptr(), axes.len(), keepdims, stream.raw())
                }),
            }
        }
    };
}

axes_reduction! {
    /// Whether every element is true (non-zero) over `axes` (`..`: all axes). Returns `bool_`.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[true, false, true, true], &[2, 2])?;
    /// assert_eq!(ops::all(&a, .., false)?.item::<bool>()?, false);
    /// assert_eq!(ops::all(&a, &[0], false)?.to_vec::<bool>()?, [true, false]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    all_device, "all", mlx_all, mlx_all_axis, mlx_all_axes;
}

axes_reduction! {
    /// Whether any element is true (non-zero) over `axes` (`..`: all axes). Returns `bool_`.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0, 0, 0, 3], &[2, 2])?;
    /// assert!(ops::any(&a, .., false)?.item::<bool>()?);
    /// assert_eq!(ops::any(&a, &[1], false)?.to_vec::<bool>()?, [false, true]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    any_device, "any", mlx_any, mlx_any_axis, mlx_any_axes;
}

axes_reduction! {
    /// Sum over `axes` (`..`: all axes). Booleans and small integers sum as MLX promotes them.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1i32, 2, 3, 4, 5, 6], &[2, 3])?;
    /// assert_eq!(ops::sum(&a, .., false)?.item::<i32>()?, 21);
    /// let rows = ops::sum(&a, &[-1], true)?;
    /// assert_eq!(rows.shape(), [2, 1]);
    /// assert_eq!(rows.to_vec::<i32>()?, [6, 15]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    sum_device, "sum", mlx_sum, mlx_sum_axis, mlx_sum_axes;
}

axes_reduction! {
    /// Product over `axes` (`..`: all axes).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(ops::prod(&a, .., false)?.item::<f32>()?, 24.0);
    /// assert_eq!(ops::prod(&a, &[0], false)?.to_vec::<f32>()?, [3.0, 8.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    prod_device, "prod", mlx_prod, mlx_prod_axis, mlx_prod_axes;
}

axes_reduction! {
    /// Arithmetic mean over `axes` (`..`: all axes). Integer inputs give a floating result.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(ops::mean(&a, .., false)?.item::<f32>()?, 2.5);
    /// assert_eq!(ops::mean(&a, &[1], false)?.to_vec::<f32>()?, [1.5, 3.5]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    mean_device, "mean", mlx_mean, mlx_mean_axis, mlx_mean_axes;
}

axes_reduction! {
    /// Maximum over `axes` (`..`: all axes). Reducing an axis of size 0 is an error.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[3, 9, 4, 1], &[2, 2])?;
    /// assert_eq!(ops::max(&a, .., false)?.item::<i32>()?, 9);
    /// assert_eq!(ops::max(&a, &[0], false)?.to_vec::<i32>()?, [4, 9]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    max_device, "max", mlx_max, mlx_max_axis, mlx_max_axes;
}

axes_reduction! {
    /// Minimum over `axes` (`..`: all axes). Reducing an axis of size 0 is an error.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[3, 9, 4, 1], &[2, 2])?;
    /// assert_eq!(ops::min(&a, .., false)?.item::<i32>()?, 1);
    /// assert_eq!(ops::min(&a, &[1], false)?.to_vec::<i32>()?, [3, 1]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    min_device, "min", mlx_min, mlx_min_axis, mlx_min_axes;
}

axes_reduction! {
    /// Median over `axes` (`..`: all axes). Reducing an axis of size 0 is an error.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[5.0f32, 1.0, 3.0, 2.0], &[4])?;
    /// assert_eq!(ops::median(&a, .., false)?.item::<f32>()?, 2.5);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    median_device, "median", mlx_median, mlx_median_axis, mlx_median_axes;
}

axes_reduction! {
    /// `log(sum(exp(a)))` over `axes` (`..`: all axes), computed without overflow.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1000.0f32, 1000.0], &[2])?;
    /// let l = ops::logsumexp(&a, .., false)?.item::<f32>()?;
    /// assert!((l - (1000.0 + 2f32.ln())).abs() < 1e-3);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    logsumexp_device, "logsumexp", mlx_logsumexp, mlx_logsumexp_axis, mlx_logsumexp_axes;
}

/// The number of non-zero (true) elements over `axes` (`..`: all axes), as `int32`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[0, 2, 0, 4, 5, 0], &[2, 3])?;
/// assert_eq!(ops::count_nonzero(&a, .., false)?.item::<i32>()?, 3);
/// assert_eq!(ops::count_nonzero(&a, &[1], false)?.to_vec::<i32>()?, [1, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn count_nonzero_device(
    a: &Array,
    axes: impl Into<Axes>,
    keepdims: bool,
    stream: &Stream,
) -> Result<Array> {
    let axes = axes.into();
    check_reduced("count_nonzero", a, axes.as_slice())?;
    match axes.as_slice() {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("count_nonzero", |out| unsafe {
            sys::mlx_count_nonzero(out, a.raw(), keepdims, stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(&[axis]) => ffi::array_out("count_nonzero", |out| unsafe {
            sys::mlx_count_nonzero_axis(out, a.raw(), axis, keepdims, stream.raw())
        }),
        // SAFETY: live handles; `axes` is valid for `axes.len()` reads during the call (mlx-c
        // copies it); the output is owned by `array_out`.
        Some(axes) => ffi::array_out("count_nonzero", |out| unsafe {
            sys::mlx_count_nonzero_axes(
                out,
                a.raw(),
                axes.as_ptr(),
                axes.len(),
                keepdims,
                stream.raw(),
            )
        }),
    }
}

/// Variance over `axes` (`..`: all axes), dividing by `N - ddof` (`ddof = 0`: population
/// variance, `1`: the unbiased estimate). When `N - ddof <= 0` the result is `inf`, as in MLX.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[4])?;
/// assert_eq!(ops::var(&a, .., false, 0)?.item::<f32>()?, 1.25);
/// let unbiased = ops::var(&a, &[0], false, 1)?.item::<f32>()?;
/// assert!((unbiased - 5.0 / 3.0).abs() < 1e-6);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn var_device(
    a: &Array,
    axes: impl Into<Axes>,
    keepdims: bool,
    ddof: i32,
    stream: &Stream,
) -> Result<Array> {
    let axes = axes.into();
    check_reduced("var", a, axes.as_slice())?;
    match axes.as_slice() {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("var", |out| unsafe {
            sys::mlx_var(out, a.raw(), keepdims, ddof, stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(&[axis]) => ffi::array_out("var", |out| unsafe {
            sys::mlx_var_axis(out, a.raw(), axis, keepdims, ddof, stream.raw())
        }),
        // SAFETY: live handles; `axes` is valid for `axes.len()` reads during the call (mlx-c
        // copies it); the output is owned by `array_out`.
        Some(axes) => ffi::array_out("var", |out| unsafe {
            sys::mlx_var_axes(out, a.raw(), axes.as_ptr(), axes.len(), keepdims, ddof, stream.raw())
        }),
    }
}

/// Standard deviation over `axes` (`..`: all axes): the square root of [`var`] with the same
/// `ddof`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[2.0f32, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], &[8])?;
/// assert_eq!(ops::std(&a, .., false, 0)?.item::<f32>()?, 2.0);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn std_device(
    a: &Array,
    axes: impl Into<Axes>,
    keepdims: bool,
    ddof: i32,
    stream: &Stream,
) -> Result<Array> {
    let axes = axes.into();
    check_reduced("std", a, axes.as_slice())?;
    match axes.as_slice() {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("std", |out| unsafe {
            sys::mlx_std(out, a.raw(), keepdims, ddof, stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(&[axis]) => ffi::array_out("std", |out| unsafe {
            sys::mlx_std_axis(out, a.raw(), axis, keepdims, ddof, stream.raw())
        }),
        // SAFETY: live handles; `axes` is valid for `axes.len()` reads during the call (mlx-c
        // copies it); the output is owned by `array_out`.
        Some(axes) => ffi::array_out("std", |out| unsafe {
            sys::mlx_std_axes(out, a.raw(), axes.as_ptr(), axes.len(), keepdims, ddof, stream.raw())
        }),
    }
}

/// Index of the maximum along `axis` (`..`: of the flattened array), as `uint32`. Ties give
/// the first index; an empty array is an error.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 7.0, 3.0, 9.0, 2.0, 0.0], &[2, 3])?;
/// assert_eq!(ops::argmax(&a, .., false)?.item::<u32>()?, 3);
/// assert_eq!(ops::argmax(&a, 1, false)?.to_vec::<u32>()?, [1, 0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn argmax_device(
    a: &Array,
    axis: impl Into<Axes>,
    keepdims: bool,
    stream: &Stream,
) -> Result<Array> {
    match axis.into().single("argmax")? {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("argmax", |out| unsafe {
            sys::mlx_argmax(out, a.raw(), keepdims, stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(axis) => ffi::array_out("argmax", |out| unsafe {
            sys::mlx_argmax_axis(out, a.raw(), axis, keepdims, stream.raw())
        }),
    }
}

/// Index of the minimum along `axis` (`..`: of the flattened array), as `uint32`. Ties give
/// the first index; an empty array is an error.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 7.0, 3.0, 9.0, 2.0, 0.0], &[2, 3])?;
/// assert_eq!(ops::argmin(&a, .., false)?.item::<u32>()?, 5);
/// assert_eq!(ops::argmin(&a, 0, false)?.to_vec::<u32>()?, [0, 1, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn argmin_device(
    a: &Array,
    axis: impl Into<Axes>,
    keepdims: bool,
    stream: &Stream,
) -> Result<Array> {
    match axis.into().single("argmin")? {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("argmin", |out| unsafe {
            sys::mlx_argmin(out, a.raw(), keepdims, stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(axis) => ffi::array_out("argmin", |out| unsafe {
            sys::mlx_argmin_axis(out, a.raw(), axis, keepdims, stream.raw())
        }),
    }
}

/// Softmax over `axes` (`..`: over all axes jointly): `exp(a - max) / sum(exp(a - max))`.
/// With `precise`, half-precision inputs are accumulated in float32. Integer inputs give float32.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[0.0f32, 0.0, 1.0, 1.0], &[2, 2])?;
/// let s = ops::softmax(&a, &[-1], false)?;
/// assert_eq!(s.to_vec::<f32>()?, [0.5, 0.5, 0.5, 0.5]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn softmax_device(
    a: &Array,
    axes: impl Into<Axes>,
    precise: bool,
    stream: &Stream,
) -> Result<Array> {
    let axes = axes.into();
    check_reduced("softmax", a, axes.as_slice())?;
    match axes.as_slice() {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("softmax", |out| unsafe {
            sys::mlx_softmax(out, a.raw(), precise, stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(&[axis]) => ffi::array_out("softmax", |out| unsafe {
            sys::mlx_softmax_axis(out, a.raw(), axis, precise, stream.raw())
        }),
        // SAFETY: live handles; `axes` is valid for `axes.len()` reads during the call (mlx-c
        // copies it); the output is owned by `array_out`.
        Some(axes) => ffi::array_out("softmax", |out| unsafe {
            sys::mlx_softmax_axes(out, a.raw(), axes.as_ptr(), axes.len(), precise, stream.raw())
        }),
    }
}
