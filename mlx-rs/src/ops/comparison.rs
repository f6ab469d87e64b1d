//! Element-wise comparisons (`equal`, `less`, ...), closeness tests (`isclose`, `allclose`,
//! `array_equal`) and floating-point classification (`isnan`, `isinf`, ...).
//!
//! Every result is a `bool` array. Binary comparisons broadcast and promote like arithmetic.

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::{Array, Result, Stream, ffi};

binary_ops! {
    /// Element-wise `a == b`. Fails when the shapes cannot be broadcast together.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1i32, 2, 3], &[3])?;
    /// assert_eq!(ops::equal(&a, &Array::scalar(2i32))?.to_vec::<bool>()?, [false, true, false]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    equal_device, mlx_equal, "equal";
    /// Element-wise `a != b`. Fails when the shapes cannot be broadcast together.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1i32, 2, 3], &[3])?;
    /// let r = ops::not_equal(&a, &Array::scalar(2i32))?;
    /// assert_eq!(r.to_vec::<bool>()?, [true, false, true]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    not_equal_device, mlx_not_equal, "not_equal";
    /// Element-wise `a < b`. Fails when the shapes cannot be broadcast together.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3])?;
    /// assert_eq!(ops::less(&a, &Array::scalar(2.0f32))?.to_vec::<bool>()?, [true, false, false]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    less_device, mlx_less, "less";
    /// Element-wise `a <= b`. Fails when the shapes cannot be broadcast together.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3])?;
    /// let r = ops::less_equal(&a, &Array::scalar(2.0f32))?;
    /// assert_eq!(r.to_vec::<bool>()?, [true, true, false]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    less_equal_device, mlx_less_equal, "less_equal";
    /// Element-wise `a > b`. Fails when the shapes cannot be broadcast together.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3])?;
    /// let r = ops::greater(&a, &Array::scalar(2.0f32))?;
    /// assert_eq!(r.to_vec::<bool>()?, [false, false, true]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    greater_device, mlx_greater, "greater";
    /// Element-wise `a >= b`. Fails when the shapes cannot be broadcast together.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3])?;
    /// let r = ops::greater_equal(&a, &Array::scalar(2.0f32))?;
    /// assert_eq!(r.to_vec::<bool>()?, [false, true, true]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    greater_equal_device, mlx_greater_equal, "greater_equal";
}

unary_ops! {
    /// Element-wise test for NaN (always false for integer arrays).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[f32::NAN, 1.0, f32::INFINITY], &[3])?;
    /// assert_eq!(ops::isnan(&a)?.to_vec::<bool>()?, [true, false, false]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    isnan_device, mlx_isnan, "isnan";
    /// Element-wise test for positive or negative infinity.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[f32::NAN, f32::NEG_INFINITY, f32::INFINITY], &[3])?;
    /// assert_eq!(ops::isinf(&a)?.to_vec::<bool>()?, [false, true, true]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    isinf_device, mlx_isinf, "isinf";
    /// Element-wise test for finite values (neither infinite nor NaN).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[f32::NAN, 1.0, f32::INFINITY], &[3])?;
    /// assert_eq!(ops::isfinite(&a)?.to_vec::<bool>()?, [false, true, false]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    isfinite_device, mlx_isfinite, "isfinite";
    /// Element-wise test for positive infinity.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[f32::NEG_INFINITY, f32::INFINITY], &[2])?;
    /// assert_eq!(ops::isposinf(&a)?.to_vec::<bool>()?, [false, true]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    isposinf_device, mlx_isposinf, "isposinf";
    /// Element-wise test for negative infinity.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[f32::NEG_INFINITY, f32::INFINITY], &[2])?;
    /// assert_eq!(ops::isneginf(&a)?.to_vec::<bool>()?, [true, false]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    isneginf_device, mlx_isneginf, "isneginf";
}

/// Element-wise `|a - b| <= atol + rtol * |b|` (`mlx.core.isclose`).
///
/// NaNs compare equal only with `equal_nan`. Python's defaults are `rtol = 1e-5`,
/// `atol = 1e-8`, `equal_nan = false`. Fails when the shapes cannot be broadcast together.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0, f32::NAN], &[3])?;
/// let b = Array::from_slice(&[1.0f32 + 1e-7, 2.1, f32::NAN], &[3])?;
/// let r = ops::isclose(&a, &b, 1e-5, 1e-8, true)?;
/// assert_eq!(r.to_vec::<bool>()?, [true, false, true]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn isclose_device(
    a: &Array,
    b: &Array,
    rtol: f64,
    atol: f64,
    equal_nan: bool,
    stream: &Stream,
) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("isclose", |out| unsafe {
        sys::mlx_isclose(out, a.raw(), b.raw(), rtol, atol, equal_nan, stream.raw())
    })
}

/// Whether every element pair is close in the sense of [`isclose`]: a scalar `bool` array.
///
/// Python's defaults are `rtol = 1e-5`, `atol = 1e-8`, `equal_nan = false`. Fails when the
/// shapes cannot be broadcast together.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0], &[2])?;
/// let b = Array::from_slice(&[1.0f32, 2.0 + 1e-6], &[2])?;
/// assert!(ops::allclose(&a, &b, 1e-5, 1e-8, false)?.item::<bool>()?);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn allclose_device(
    a: &Array,
    b: &Array,
    rtol: f64,
    atol: f64,
    equal_nan: bool,
    stream: &Stream,
) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("allclose", |out| unsafe {
        sys::mlx_allclose(out, a.raw(), b.raw(), rtol, atol, equal_nan, stream.raw())
    })
}

/// Whether `a` and `b` have the same shape and equal values: a scalar `bool` array.
///
/// Dtypes may differ. Arrays of different shapes are simply not equal (no error). NaNs are equal
/// to each other only with `equal_nan`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2], &[2])?;
/// let b = Array::from_slice(&[1.0f32, 2.0], &[2])?;
/// assert!(ops::array_equal(&a, &b, false)?.item::<bool>()?);
/// let c = Array::from_slice(&[1i32, 2, 3], &[3])?;
/// assert!(!ops::array_equal(&a, &c, false)?.item::<bool>()?);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn array_equal_device(a: &Array, b: &Array, equal_nan: bool, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("array_equal", |out| unsafe {
        sys::mlx_array_equal(out, a.raw(), b.raw(), equal_nan, stream.raw())
    })
}
