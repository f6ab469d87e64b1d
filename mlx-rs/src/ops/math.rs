//! Element-wise unary math: absolute value and sign, powers and roots, exponentials and
//! logarithms, trigonometric and hyperbolic functions, `erf`, rounding, angle conversion and
//! `sigmoid`.
//!
//! Integer inputs of the transcendental functions are promoted to `float32`, as in MLX. Some
//! functions are not defined for complex inputs (`erf`, `floor`, ...) and return an error.

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::{Array, Result, Stream, ffi};

unary_ops! {
    /// Element-wise absolute value.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[-1.5f32, 2.0], &[2])?;
    /// assert_eq!(ops::abs(&a)?.to_vec::<f32>()?, [1.5, 2.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    abs_device, mlx_abs, "abs";
    /// Element-wise `-a`.
    ///
    /// Fails for boolean arrays (use `logical_not`).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1i32, -2], &[2])?;
    /// assert_eq!(ops::negative(&a)?.to_vec::<i32>()?, [-1, 2]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    negative_device, mlx_negative, "negative";
    /// Element-wise `+a`: the values unchanged.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1i32, -2], &[2])?;
    /// assert_eq!(ops::positive(&a)?.to_vec::<i32>()?, [1, -2]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    positive_device, mlx_positive, "positive";
    /// Element-wise sign: -1, 0 or 1 (for complex numbers, `a / |a|`).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[-3.0f32, 0.0, 2.0], &[3])?;
    /// assert_eq!(ops::sign(&a)?.to_vec::<f32>()?, [-1.0, 0.0, 1.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    sign_device, mlx_sign, "sign";
    /// Element-wise square root; integers give `float32`.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[4.0f32, 9.0], &[2])?;
    /// assert_eq!(ops::sqrt(&a)?.to_vec::<f32>()?, [2.0, 3.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    sqrt_device, mlx_sqrt, "sqrt";
    /// Element-wise reciprocal square root `1 / sqrt(a)`.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[4.0f32, 16.0], &[2])?;
    /// assert_eq!(ops::rsqrt(&a)?.to_vec::<f32>()?, [0.5, 0.25]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    rsqrt_device, mlx_rsqrt, "rsqrt";
    /// Element-wise `a * a`.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[3i32, -4], &[2])?;
    /// assert_eq!(ops::square(&a)?.to_vec::<i32>()?, [9, 16]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    square_device, mlx_square, "square";
    /// Element-wise `1 / a`.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[2.0f32, 4.0], &[2])?;
    /// assert_eq!(ops::reciprocal(&a)?.to_vec::<f32>()?, [0.5, 0.25]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    reciprocal_device, mlx_reciprocal, "reciprocal";
    /// Element-wise natural exponential.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::exp(&a)?.to_vec::<f32>()?, [1.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    exp_device, mlx_exp, "exp";
    /// Element-wise `exp(a) - 1`, accurate for small `a`.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::expm1(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    expm1_device, mlx_expm1, "expm1";
    /// Element-wise natural logarithm (`nan` below 0, `-inf` at 0).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.0f32], &[1])?;
    /// assert_eq!(ops::log(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    log_device, mlx_log, "log";
    /// Element-wise base-2 logarithm.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[8.0f32], &[1])?;
    /// assert_eq!(ops::log2(&a)?.to_vec::<f32>()?, [3.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    log2_device, mlx_log2, "log2";
    /// Element-wise base-10 logarithm.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1000.0f32], &[1])?;
    /// assert!((ops::log10(&a)?.item::<f32>()? - 3.0).abs() < 1e-6);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    log10_device, mlx_log10, "log10";
    /// Element-wise `log(1 + a)`, accurate for small `a`.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::log1p(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    log1p_device, mlx_log1p, "log1p";
    /// Element-wise sine (radians).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::sin(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    sin_device, mlx_sin, "sin";
    /// Element-wise cosine (radians).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::cos(&a)?.to_vec::<f32>()?, [1.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    cos_device, mlx_cos, "cos";
    /// Element-wise tangent (radians).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::tan(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    tan_device, mlx_tan, "tan";
    /// Element-wise inverse sine.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::arcsin(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    arcsin_device, mlx_arcsin, "arcsin";
    /// Element-wise inverse cosine.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.0f32], &[1])?;
    /// assert_eq!(ops::arccos(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    arccos_device, mlx_arccos, "arccos";
    /// Element-wise inverse tangent.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::arctan(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    arctan_device, mlx_arctan, "arctan";
    /// Element-wise hyperbolic sine.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::sinh(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    sinh_device, mlx_sinh, "sinh";
    /// Element-wise hyperbolic cosine.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::cosh(&a)?.to_vec::<f32>()?, [1.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    cosh_device, mlx_cosh, "cosh";
    /// Element-wise hyperbolic tangent.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::tanh(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    tanh_device, mlx_tanh, "tanh";
    /// Element-wise inverse hyperbolic sine.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::arcsinh(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    arcsinh_device, mlx_arcsinh, "arcsinh";
    /// Element-wise inverse hyperbolic cosine (`nan` below 1).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.0f32], &[1])?;
    /// assert_eq!(ops::arccosh(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    arccosh_device, mlx_arccosh, "arccosh";
    /// Element-wise inverse hyperbolic tangent.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::arctanh(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    arctanh_device, mlx_arctanh, "arctanh";
    /// Element-wise Gauss error function.
    ///
    /// Fails for complex inputs.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::erf(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    erf_device, mlx_erf, "erf";
    /// Element-wise inverse of [`erf`].
    ///
    /// Fails for complex inputs.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::erfinv(&a)?.to_vec::<f32>()?, [0.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    erfinv_device, mlx_erfinv, "erfinv";
    /// Element-wise floor.
    ///
    /// Fails for complex inputs.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.5f32, -1.5], &[2])?;
    /// assert_eq!(ops::floor(&a)?.to_vec::<f32>()?, [1.0, -2.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    floor_device, mlx_floor, "floor";
    /// Element-wise ceiling.
    ///
    /// Fails for complex inputs.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.5f32, -1.5], &[2])?;
    /// assert_eq!(ops::ceil(&a)?.to_vec::<f32>()?, [2.0, -1.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    ceil_device, mlx_ceil, "ceil";
    /// Element-wise rounding toward zero.
    ///
    /// Fails for complex inputs.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.5f32, -1.5], &[2])?;
    /// assert_eq!(ops::trunc(&a)?.to_vec::<f32>()?, [1.0, -1.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    trunc_device, mlx_trunc, "trunc";
    /// Converts radians to degrees.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[std::f32::consts::PI], &[1])?;
    /// assert!((ops::degrees(&a)?.item::<f32>()? - 180.0).abs() < 1e-4);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    degrees_device, mlx_degrees, "degrees";
    /// Converts degrees to radians.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[180.0f32], &[1])?;
    /// assert!((ops::radians(&a)?.item::<f32>()? - std::f32::consts::PI).abs() < 1e-6);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    radians_device, mlx_radians, "radians";
    /// Element-wise logistic sigmoid `1 / (1 + exp(-a))`.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0.0f32], &[1])?;
    /// assert_eq!(ops::sigmoid(&a)?.to_vec::<f32>()?, [0.5]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    sigmoid_device, mlx_sigmoid, "sigmoid";
}

/// Rounds to `decimals` decimal places (negative: to tens, hundreds, ...), halves to even.
///
/// Integer arrays are returned unchanged. Fails for complex inputs.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[0.5f32, 1.5, 2.345], &[3])?;
/// assert_eq!(ops::round(&a, 0)?.to_vec::<f32>()?, [0.0, 2.0, 2.0]);
/// let b = Array::from_slice(&[123.4f32, 155.0], &[2])?;
/// assert_eq!(ops::round(&b, -1)?.to_vec::<f32>()?, [120.0, 160.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn round_device(a: &Array, decimals: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("round", |out| unsafe { sys::mlx_round(out, a.raw(), decimals, stream.raw()) })
}
