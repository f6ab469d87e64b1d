//! Dtype conversions and layout copies: `astype`, `view`, `real`, `imag`, `conjugate`,
//! `contiguous`, `copy`.

use std::rc::Rc;

use half::{bf16, f16};
use mlx_macros::default_device;
use mlx_sys as sys;
use num_complex::Complex32;

use crate::{Array, Dtype, Error, Result, Stream, ffi};

/// Converts `a` to `dtype` (a copy with each element cast, as `mlx.core.array.astype`).
///
/// Floats cast to integers truncate toward zero; casting to `bool` tests for non-zero; casting
/// a complex array to a real dtype keeps the real part.
///
/// ```
/// use mlx_rs::{Array, Dtype, ops};
/// let a = Array::from_slice(&[1.7f32, -2.5, 0.0], &[3])?;
/// let i = ops::astype(&a, Dtype::Int32)?;
/// assert_eq!(i.to_vec::<i32>()?, [1, -2, 0]);
/// assert_eq!(a.astype(Dtype::Bool)?.to_vec::<bool>()?, [true, true, false]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn astype_device(a: &Array, dtype: Dtype, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("astype", |out| unsafe {
        sys::mlx_astype(out, a.raw(), dtype.to_raw(), stream.raw())
    })
}

/// Reinterprets the bytes of `a` as `dtype` without converting them (`mlx.core.view`).
///
/// When the new dtype is larger or smaller, the last axis shrinks or grows accordingly. Fails
/// when the size in bytes of the last axis is not a multiple of the new element size.
///
/// ```
/// use mlx_rs::{Array, Dtype, ops};
/// let a = Array::from_slice(&[1.0f32], &[1])?;
/// let bits = ops::view(&a, Dtype::Uint32)?;
/// assert_eq!(bits.to_vec::<u32>()?, [0x3f80_0000]);
/// let bytes = ops::view(&a, Dtype::Uint8)?;
/// assert_eq!(bytes.shape(), &[4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn view_device(a: &Array, dtype: Dtype, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("view", |out| unsafe {
        sys::mlx_view(out, a.raw(), dtype.to_raw(), stream.raw())
    })
}

/// The real part of a complex array as `float32`; a real array is returned unchanged.
///
/// ```
/// use mlx_rs::{Array, ops};
/// use num_complex::Complex32;
/// let z = Array::from_slice(&[Complex32::new(1.0, 2.0), Complex32::new(3.0, -4.0)], &[2])?;
/// assert_eq!(ops::real(&z)?.to_vec::<f32>()?, [1.0, 3.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn real_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("real", |out| unsafe { sys::mlx_real(out, a.raw(), stream.raw()) })
}

/// The imaginary part of a complex array as `float32`; zeros of the same dtype for a real array.
///
/// ```
/// use mlx_rs::{Array, ops};
/// use num_complex::Complex32;
/// let z = Array::from_slice(&[Complex32::new(1.0, 2.0), Complex32::new(3.0, -4.0)], &[2])?;
/// assert_eq!(ops::imag(&z)?.to_vec::<f32>()?, [2.0, -4.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn imag_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("imag", |out| unsafe { sys::mlx_imag(out, a.raw(), stream.raw()) })
}

/// The complex conjugate; a real array is returned unchanged (`mlx.core.conjugate`).
///
/// ```
/// use mlx_rs::{Array, ops};
/// use num_complex::Complex32;
/// let z = Array::from_slice(&[Complex32::new(1.0, 2.0)], &[1])?;
/// assert_eq!(ops::conjugate(&z)?.to_vec::<Complex32>()?, [Complex32::new(1.0, -2.0)]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn conjugate_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("conjugate", |out| unsafe { sys::mlx_conjugate(out, a.raw(), stream.raw()) })
}

/// The same values in a row-contiguous buffer (`mlx.core.contiguous`).
///
/// With `allow_col_major`, an array that is already column-contiguous is kept as it is.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4], &[2, 2])?;
/// let c = ops::contiguous(&a, false)?;
/// assert_eq!(c.to_vec::<i32>()?, [1, 2, 3, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn contiguous_device(a: &Array, allow_col_major: bool, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("contiguous", |out| unsafe {
        sys::mlx_contiguous(out, a.raw(), allow_col_major, stream.raw())
    })
}

/// A copy of `a` with its own buffer (MLX's C++ `copy`; Python has no such function), the same
/// as [`Array::deep_copy`].
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0], &[2])?;
/// assert_eq!(ops::copy(&a)?.to_vec::<f32>()?, [1.0, 2.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn copy_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("copy", |out| unsafe { sys::mlx_copy(out, a.raw(), stream.raw()) })
}

/// A Rust scalar that can stand next to an [`Array`] as an operand of its operators.
///
/// # Operators on arrays
///
/// [`Array`] implements `+ - * / % & | ^ << >>`, unary `-` and `!`. Every operator returns
/// [`Result<Array>`](crate::Result) (bad shapes or dtypes give an `Err`, never a panic) and runs
/// on the calling thread's default stream. Both sides may be `Array` or `&Array` in any
/// combination, and one side may be a Rust scalar:
///
/// ```
/// use mlx_rs::{Array, Dtype};
/// let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3])?;
/// let b = Array::from_slice(&[10.0f32, 20.0, 30.0], &[3])?;
/// let c = ((&a + &b)? * 2.0)?;
/// assert_eq!(c.to_vec::<f32>()?, [22.0, 44.0, 66.0]);
/// assert_eq!((1.0 - &a)?.to_vec::<f32>()?, [0.0, -1.0, -2.0]);
/// assert_eq!((-a)?.to_vec::<f32>()?, [-1.0, -2.0, -3.0]);
///
/// // A scalar takes the array's dtype when it is of the same kind, as Python scalars do in
/// // MLX: a float next to a float16 array stays float16; next to an int32 array it is float32.
/// let h = b.astype(Dtype::Float16)?;
/// assert_eq!((&h * 0.5)?.dtype(), Dtype::Float16);
/// let i = Array::from_slice(&[1i32, 2], &[2])?;
/// assert_eq!((&i * 0.5)?.dtype(), Dtype::Float32);
/// assert_eq!((&i << 3)?.to_vec::<i32>()?, [8, 16]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
///
/// | operator | op                                                         |
/// |----------|------------------------------------------------------------|
/// | `a + b`  | [`add`](crate::ops::add)                                   |
/// | `a - b`  | [`subtract`](crate::ops::subtract)                         |
/// | `a * b`  | [`multiply`](crate::ops::multiply)                         |
/// | `a / b`  | [`divide`](crate::ops::divide) (true division)             |
/// | `a % b`  | [`remainder`](crate::ops::remainder) (sign of `b`)         |
/// | `a & b`  | [`bitwise_and`](crate::ops::bitwise_and)                   |
/// | `a \| b` | [`bitwise_or`](crate::ops::bitwise_or)                     |
/// | `a ^ b`  | [`bitwise_xor`](crate::ops::bitwise_xor)                   |
/// | `a << b` | [`left_shift`](crate::ops::left_shift)                     |
/// | `a >> b` | [`right_shift`](crate::ops::right_shift)                   |
/// | `-a`     | [`negative`](crate::ops::negative)                         |
/// | `!a`     | [`bitwise_invert`](crate::ops::bitwise_invert) (Python's `~`) |
///
/// `!a` is Python's `~`: bitwise not for integers, logical not for `bool`, an error for floats.
///
/// # Scalars
///
/// Implemented (sealed) for `bool`, `i8`..`i64`, `u8`..`u64`, `f32` and `f64`, which may stand on
/// the right of any operator. On the left, `bool`, `i32` and `f32` are accepted (one type per
/// kind, so that unsuffixed literals such as `1.0 - &a` infer).
///
/// The dtype of a scalar follows Python MLX: a `bool` takes the array's dtype; an integer takes
/// the array's dtype unless the array is `bool` (then `int32`), and is an error if its value does
/// not fit (`uint8` array `+ 300`); a float takes the array's dtype if that is floating point or
/// complex, else it is `float32`. For another dtype, make the scalar array yourself
/// ([`Array::scalar`]).
pub trait ScalarOperand: Copy + sealed::Value {}

pub(crate) use sealed::Number;

mod sealed {
    /// The value of a scalar operand (sealed: only this crate implements it).
    pub trait Value {
        fn number(self) -> Number;
    }

    /// A plain number, to be made into a zero-dimensional array of a dtype chosen later (used for
    /// scalar operands, which take the dtype of the array they meet, as Python scalars do in MLX).
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Number {
        /// A boolean.
        Bool(bool),
        /// An integer of any Rust integer type.
        Int(i128),
        /// A floating-point value.
        Float(f64),
    }
}

/// The value of a scalar operand.
pub(crate) fn number_of<T: ScalarOperand>(value: T) -> Number {
    sealed::Value::number(value)
}

macro_rules! scalar_operand {
    ($variant:ident, $convert:expr => $($t:ty),*) => {$(
        impl sealed::Value for $t {
            fn number(self) -> Number {
                Number::$variant($convert(self))
            }
        }
        impl ScalarOperand for $t {}
    )*};
}

scalar_operand!(Bool, |b| b => bool);
scalar_operand!(Int, i128::from => i8, i16, i32, i64, u8, u16, u32, u64);
scalar_operand!(Float, f64::from => f32, f64);

/// A zero-dimensional array of `dtype` holding `value`.
///
/// Integers that do not fit an integer dtype are an error (as in Python MLX); a float never
/// silently becomes an integer or a boolean.
pub(crate) fn scalar_of(op: &'static str, value: Number, dtype: Dtype) -> Result<Array> {
    let overflow =
        |v: i128| Error::invalid(op, format!("converting {v} to {dtype} would result in overflow"));
    macro_rules! int {
        ($t:ty) => {
            match value {
                Number::Bool(b) => Array::scalar(<$t>::from(b)),
                Number::Int(v) => Array::scalar(<$t>::try_from(v).map_err(|_| overflow(v))?),
                Number::Float(f) => {
                    return Err(Error::invalid(
                        op,
                        format!("the float {f} cannot be used as a {dtype} scalar"),
                    ));
                }
            }
        };
    }
    let real = match value {
        Number::Bool(b) => f64::from(u8::from(b)),
        Number::Int(v) => v as f64,
        Number::Float(f) => f,
    };
    Ok(match dtype {
        Dtype::Bool => match value {
            Number::Bool(b) => Array::scalar(b),
            Number::Int(v) => Array::scalar(v != 0),
            Number::Float(f) => {
                return Err(Error::invalid(
                    op,
                    format!("the float {f} cannot be used as a bool scalar"),
                ));
            }
        },
        Dtype::Uint8 => int!(u8),
        Dtype::Uint16 => int!(u16),
        Dtype::Uint32 => int!(u32),
        Dtype::Uint64 => int!(u64),
        Dtype::Int8 => int!(i8),
        Dtype::Int16 => int!(i16),
        Dtype::Int32 => int!(i32),
        Dtype::Int64 => int!(i64),
        Dtype::Float16 => Array::scalar(f16::from_f64(real)),
        Dtype::Bfloat16 => Array::scalar(bf16::from_f64(real)),
        Dtype::Float32 => Array::scalar(real as f32),
        Dtype::Float64 => Array::scalar(real),
        Dtype::Complex64 => Array::scalar(Complex32::new(real as f32, 0.0)),
    })
}

/// How many scalar constants each thread keeps (see [`cached_scalar`]).
const SCALAR_CACHE_LEN: usize = 32;

thread_local! {
    /// This thread's recently used scalar constants, most recent last.
    static SCALARS: std::cell::RefCell<Vec<(ScalarKey, Rc<Array>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A scalar constant's identity: the value's kind and bits, and the dtype.
#[derive(Clone, Copy, PartialEq, Eq)]
struct ScalarKey {
    kind: u8,
    bits: u128,
    dtype: Dtype,
}

/// [`scalar_of`], served from a small per-thread cache of the constants used last, so that the
/// scalar operand of `&x + 1.0` is not made anew by every op. A scalar array is an immutable
/// leaf of every graph it appears in, so sharing one between graphs changes nothing they
/// compute. An `Rc` is handed out, so that a hit costs no MLX handle of its own.
pub(crate) fn cached_scalar(op: &'static str, value: Number, dtype: Dtype) -> Result<Rc<Array>> {
    let (kind, bits) = match value {
        Number::Bool(b) => (0, u128::from(b)),
        Number::Int(v) => (1, v as u128),
        Number::Float(f) => (2, u128::from(f.to_bits())),
    };
    let key = ScalarKey { kind, bits, dtype };
    let hit = SCALARS
        .try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            cache.iter().rev().find(|(k, _)| *k == key).map(|(_, a)| Rc::clone(a))
        })
        .ok()
        .flatten();
    if let Some(array) = hit {
        return Ok(array);
    }
    let array = Rc::new(scalar_of(op, value, dtype)?);
    let _ = SCALARS.try_with(|cache| {
        if let Ok(mut cache) = cache.try_borrow_mut() {
            if cache.len() == SCALAR_CACHE_LEN {
                cache.remove(0);
            }
            cache.push((key, Rc::clone(&array)));
        }
    });
    Ok(array)
}
