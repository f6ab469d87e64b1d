//! Element-wise binary arithmetic with broadcasting and type promotion: `add`, `subtract`,
//! `multiply`, `divide`, `floor_divide`, `remainder`, `divmod`, `power`, `maximum`, `minimum`,
//! `logaddexp`, `arctan2`, plus `clip` and `nan_to_num`.
//!
//! # Integer division
//! - MLX's CPU backend divides integers natively, so a zero divisor (or `MIN / -1`) would raise
//!   `SIGFPE` and kill the process. [`floor_divide`], [`remainder`] and [`divmod`] therefore
//!   define those cases for integer results, as NumPy does: `x // 0 == 0`, `x % 0 == 0`, and
//!   `MIN // -1 == MIN` (wrapping). Floating-point division is unchanged (`x / 0.0` is `inf` or
//!   `nan`).
//! - As in MLX 0.32.2, integer [`floor_divide`] rounds toward zero (`-7 // 2 == -3`), while
//!   [`remainder`] and [`divmod`] round toward negative infinity (`divmod(-7, 2) == (-4, 1)`),
//!   like Python.

use mlx_macros::default_device;
use mlx_sys as sys;

use super::conversion::{Number, scalar_of};
use crate::{Array, Dtype, Error, Result, Stream, ffi};

binary_ops! {
    /// Element-wise `a + b` with broadcasting and type promotion.
    ///
    /// Fails when the shapes cannot be broadcast together.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1i32, 2, 3], &[3])?;
    /// let sum = ops::add(&a, &Array::scalar(10i32))?;
    /// assert_eq!(sum.to_vec::<i32>()?, [11, 12, 13]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    add_device, mlx_add, "add";
}

binary_ops! {
    /// Element-wise `a - b` with broadcasting and type promotion.
    ///
    /// Fails when the shapes cannot be broadcast together; booleans cannot be subtracted.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[5.0f32, 7.0], &[2])?;
    /// let b = Array::from_slice(&[1.0f32, 2.0], &[2])?;
    /// assert_eq!(ops::subtract(&a, &b)?.to_vec::<f32>()?, [4.0, 5.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    subtract_device, mlx_subtract, "subtract";
}

binary_ops! {
    /// Element-wise `a * b` with broadcasting and type promotion.
    ///
    /// Fails when the shapes cannot be broadcast together.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let b = Array::from_slice(&[10.0f32, 100.0], &[2])?;
    /// assert_eq!(ops::multiply(&a, &b)?.to_vec::<f32>()?, [10.0, 200.0, 30.0, 400.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    multiply_device, mlx_multiply, "multiply";
}

binary_ops! {
    /// Element-wise true division `a / b`; integer inputs give a floating-point result.
    ///
    /// Fails when the shapes cannot be broadcast together.
    ///
    /// ```
    /// use mlx_rs::{Array, Dtype, ops};
    /// let a = Array::from_slice(&[1i32, 3], &[2])?;
    /// let q = ops::divide(&a, &Array::scalar(2i32))?;
    /// assert_eq!(q.dtype(), Dtype::Float32);
    /// assert_eq!(q.to_vec::<f32>()?, [0.5, 1.5]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    divide_device, mlx_divide, "divide";
}

binary_ops! {
    /// Element-wise `a ** b` with broadcasting and type promotion.
    ///
    /// For integer arrays a negative exponent gives 0 (as in MLX, which does not raise).
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[2i32, 3], &[2])?;
    /// assert_eq!(ops::power(&a, &Array::scalar(3i32))?.to_vec::<i32>()?, [8, 27]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    power_device, mlx_power, "power";
}

binary_ops! {
    /// Element-wise maximum; NaNs propagate.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.0f32, 5.0], &[2])?;
    /// let b = Array::from_slice(&[3.0f32, 2.0], &[2])?;
    /// assert_eq!(ops::maximum(&a, &b)?.to_vec::<f32>()?, [3.0, 5.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    maximum_device, mlx_maximum, "maximum";
}

binary_ops! {
    /// Element-wise minimum; NaNs propagate.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1.0f32, 5.0], &[2])?;
    /// let b = Array::from_slice(&[3.0f32, 2.0], &[2])?;
    /// assert_eq!(ops::minimum(&a, &b)?.to_vec::<f32>()?, [1.0, 2.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    minimum_device, mlx_minimum, "minimum";
}

binary_ops! {
    /// Element-wise `log(exp(a) + exp(b))`, computed without overflow.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1000.0f32], &[1])?;
    /// let r = ops::logaddexp(&a, &a)?.item::<f32>()?;
    /// assert!((r - (1000.0 + std::f32::consts::LN_2)).abs() < 1e-3);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    logaddexp_device, mlx_logaddexp, "logaddexp";
}

binary_ops! {
    /// Element-wise arc tangent of `a / b`, using the signs of both to pick the quadrant.
    ///
    /// Fails for complex inputs.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let y = Array::from_slice(&[1.0f32, -1.0], &[2])?;
    /// let x = Array::from_slice(&[-1.0f32, -1.0], &[2])?;
    /// let t = ops::arctan2(&y, &x)?.to_vec::<f32>()?;
    /// assert!((t[0] - 3.0 * std::f32::consts::FRAC_PI_4).abs() < 1e-6);
    /// assert!((t[1] + 3.0 * std::f32::consts::FRAC_PI_4).abs() < 1e-6);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    arctan2_device, mlx_arctan2, "arctan2";
}

/// Element-wise `floor(a / b)` for floats; for integers, as in MLX, the quotient rounded toward
/// zero.
///
/// For integer results a zero divisor gives 0 instead of crashing (see the module docs). Fails
/// for complex inputs and shapes that cannot be broadcast.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[7.0f32, -7.0], &[2])?;
/// assert_eq!(ops::floor_divide(&a, &Array::scalar(2.0f32))?.to_vec::<f32>()?, [3.0, -4.0]);
/// let i = Array::from_slice(&[7i32, -7, 5], &[3])?;
/// let d = Array::from_slice(&[2i32, 2, 0], &[3])?;
/// assert_eq!(ops::floor_divide(&i, &d)?.to_vec::<i32>()?, [3, -3, 0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn floor_divide_device(a: &Array, b: &Array, stream: &Stream) -> Result<Array> {
    if !integer_division(a, b) {
        return raw_floor_divide(a, b, stream);
    }
    let safe = SafeDivisor::new("floor_divide", b, stream)?;
    let quotient = raw_floor_divide(a, &safe.divisor, stream)?;
    safe.fix_quotient(a, b, &quotient, stream)
}

/// The remainder of `floor_divide`, with the sign of the divisor (Python's `%`), element-wise.
///
/// For integer results a zero divisor gives 0 instead of crashing (see the module docs). Fails
/// for complex inputs and shapes that cannot be broadcast.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[7i32, -7, 7], &[3])?;
/// let b = Array::from_slice(&[3i32, 3, -3], &[3])?;
/// assert_eq!(ops::remainder(&a, &b)?.to_vec::<i32>()?, [1, 2, -2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn remainder_device(a: &Array, b: &Array, stream: &Stream) -> Result<Array> {
    if !integer_division(a, b) {
        return raw_remainder(a, b, stream);
    }
    // With 0 and -1 replaced by 1 the remainder there is 0, which is the defined result.
    let safe = SafeDivisor::new("remainder", b, stream)?;
    raw_remainder(a, &safe.divisor, stream)
}

/// The floored quotient and the remainder, `(q, r)` with `q * b + r == a` (Python's `divmod`).
///
/// Both round toward negative infinity, also for integers. For integer results a zero divisor
/// gives `(0, 0)` instead of crashing (see the module docs). Fails for complex inputs and shapes
/// that cannot be broadcast.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[7i32, -7], &[2])?;
/// let (q, r) = ops::divmod(&a, &Array::scalar(2i32))?;
/// assert_eq!(q.to_vec::<i32>()?, [3, -4]);
/// assert_eq!(r.to_vec::<i32>()?, [1, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn divmod_device(a: &Array, b: &Array, stream: &Stream) -> Result<(Array, Array)> {
    if !integer_division(a, b) {
        return raw_divmod(a, b, stream);
    }
    // The remainder by the safe divisor is already the defined 0 where it was 0 or -1.
    let safe = SafeDivisor::new("divmod", b, stream)?;
    let (quotient, remainder) = raw_divmod(a, &safe.divisor, stream)?;
    Ok((safe.fix_quotient(a, b, &quotient, stream)?, remainder))
}

fn raw_divmod(a: &Array, b: &Array, stream: &Stream) -> Result<(Array, Array)> {
    // SAFETY: live handles; the output vector is owned by `arrays_out`.
    let parts = ffi::arrays_out("divmod", |out| unsafe {
        sys::mlx_divmod(out, a.raw(), b.raw(), stream.raw())
    })?;
    match <[Array; 2]>::try_from(parts) {
        Ok([quotient, remainder]) => Ok((quotient, remainder)),
        Err(parts) => Err(Error::new(
            crate::ErrorKind::Mlx,
            "divmod",
            format!("expected 2 outputs, MLX returned {}", parts.len()),
        )),
    }
}

/// Limits the values of `a` to `[a_min, a_max]`; either bound may be `None` (but not both).
///
/// The bounds broadcast against `a`, and take part in type promotion. Fails when both bounds
/// are `None` or a bound's shape does not broadcast.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[-2.0f32, 0.5, 3.0], &[3])?;
/// let lo = Array::scalar(0.0f32);
/// let hi = Array::scalar(1.0f32);
/// assert_eq!(ops::clip(&a, Some(&lo), Some(&hi))?.to_vec::<f32>()?, [0.0, 0.5, 1.0]);
/// assert_eq!(ops::clip(&a, None, Some(&hi))?.to_vec::<f32>()?, [-2.0, 0.5, 1.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn clip_device(
    a: &Array,
    a_min: Option<&Array>,
    a_max: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    let (low, high) = (ffi::optional_array(a_min), ffi::optional_array(a_max));
    // SAFETY: live handles, or empty handles for absent bounds; the output is owned by
    // `array_out`.
    ffi::array_out("clip", |out| unsafe { sys::mlx_clip(out, a.raw(), low, high, stream.raw()) })
}

/// Replaces NaN with `nan`, +inf with `posinf` and -inf with `neginf` (`mlx.core.nan_to_num`).
///
/// An absent `posinf` / `neginf` means the largest / lowest finite value of the dtype. Integer
/// arrays are returned unchanged.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0], &[4])?;
/// let b = ops::nan_to_num(&a, 0.0, Some(100.0), None)?.to_vec::<f32>()?;
/// assert_eq!(b, [0.0, 100.0, f32::MIN, 1.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn nan_to_num_device(
    a: &Array,
    nan: f32,
    posinf: Option<f32>,
    neginf: Option<f32>,
    stream: &Stream,
) -> Result<Array> {
    let (posinf, neginf) = (ffi::optional_float(posinf), ffi::optional_float(neginf));
    // SAFETY: live handles; the optionals are plain values; the output is owned by `array_out`.
    ffi::array_out("nan_to_num", |out| unsafe {
        sys::mlx_nan_to_num(out, a.raw(), nan, posinf, neginf, stream.raw())
    })
}

pub(crate) fn raw_floor_divide(a: &Array, b: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("floor_divide", |out| unsafe {
        sys::mlx_floor_divide(out, a.raw(), b.raw(), stream.raw())
    })
}

fn raw_remainder(a: &Array, b: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("remainder", |out| unsafe {
        sys::mlx_remainder(out, a.raw(), b.raw(), stream.raw())
    })
}

/// `where(condition, x, y)`, for the division guards.
fn select(condition: &Array, x: &Array, y: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("where", |out| unsafe {
        sys::mlx_where(out, condition.raw(), x.raw(), y.raw(), stream.raw())
    })
}

fn is_signed(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::Int8 | Dtype::Int16 | Dtype::Int32 | Dtype::Int64)
}

/// True when dividing `a` by `b` happens in an integer dtype (MLX's promotion: two booleans stay
/// boolean, which MLX handles; `uint64` with a signed integer promotes to `float32`).
fn integer_division(a: &Array, b: &Array) -> bool {
    let (x, y) = (a.dtype(), b.dtype());
    let integral = |d: Dtype| d == Dtype::Bool || d.is_integer();
    integral(x)
        && integral(y)
        && !(x == Dtype::Bool && y == Dtype::Bool)
        && !(x == Dtype::Uint64 && is_signed(y))
        && !(y == Dtype::Uint64 && is_signed(x))
}

/// An integer divisor with its zeros (and, if signed, its -1s) replaced by 1, plus the masks
/// needed to put the defined results back.
struct SafeDivisor {
    divisor: Array,
    /// True where the original divisor is not zero.
    nonzero: Array,
    /// True where the original divisor is -1 (signed divisors only).
    minus_one: Option<Array>,
}

impl SafeDivisor {
    fn new(op: &'static str, b: &Array, stream: &Stream) -> Result<SafeDivisor> {
        let dtype = b.dtype();
        let zero = scalar_of(op, Number::Int(0), dtype)?;
        let one = scalar_of(op, Number::Int(1), dtype)?;
        let nonzero = super::not_equal_device(b, &zero, stream)?;
        let (keep, minus_one) = if is_signed(dtype) {
            let minus_one =
                super::equal_device(b, &scalar_of(op, Number::Int(-1), dtype)?, stream)?;
            let keep = super::logical_and_device(
                &nonzero,
                &super::logical_not_device(&minus_one, stream)?,
                stream,
            )?;
            (keep, Some(minus_one))
        } else {
            (nonzero.clone(), None)
        };
        let divisor = select(&keep, b, &one, stream)?;
        Ok(SafeDivisor { divisor, nonzero, minus_one })
    }

    /// Puts the defined results into a quotient computed with the safe divisor: `x // 0 == 0`
    /// and `x // -1 == -x`, wrapping for the minimum (`a * b` is that, in the result dtype).
    fn fix_quotient(
        &self,
        a: &Array,
        b: &Array,
        quotient: &Array,
        stream: &Stream,
    ) -> Result<Array> {
        let quotient = match &self.minus_one {
            Some(minus_one) => {
                select(minus_one, &multiply_device(a, b, stream)?, quotient, stream)?
            }
            None => quotient.clone(),
        };
        multiply_device(&quotient, &self.nonzero, stream)
    }
}
