//! Products and contractions: `matmul`, `addmm`, `inner`, `outer`, `tensordot`, `einsum`,
//! `kron`, `vecdot`, `trace`.

use std::ffi::CString;

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::vector::VectorArray;
use crate::{Array, Dtype, Error, Result, Stream, ffi};

/// Matrix product with NumPy semantics: 1-D operands are treated as a row (first) or column
/// (second) vector and that axis is dropped from the result; leading (batch) axes broadcast.
/// Mismatched inner dimensions and 0-D operands are errors.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let b = Array::from_slice(&[1.0f32, 0.0, 0.0, 1.0], &[2, 2])?;
/// assert_eq!(ops::matmul(&a, &b)?.to_vec::<f32>()?, [1.0, 2.0, 3.0, 4.0]);
/// let v = Array::from_slice(&[1.0f32, 1.0], &[2])?;
/// assert_eq!(ops::matmul(&a, &v)?.to_vec::<f32>()?, [3.0, 7.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn matmul_device(a: &Array, b: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("matmul", |out| unsafe { sys::mlx_matmul(out, a.raw(), b.raw(), stream.raw()) })
}

/// `alpha * (a @ b) + beta * c`, with `c` broadcast to the product's shape (Python defaults:
/// `alpha = beta = 1`).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let eye = Array::from_slice(&[1.0f32, 0.0, 0.0, 1.0], &[2, 2])?;
/// let c = Array::scalar(1.0f32);
/// let r = ops::addmm(&c, &a, &eye, 2.0, 10.0)?;
/// assert_eq!(r.to_vec::<f32>()?, [12.0, 14.0, 16.0, 18.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn addmm_device(
    c: &Array,
    a: &Array,
    b: &Array,
    alpha: f32,
    beta: f32,
    stream: &Stream,
) -> Result<Array> {
    ffi::array_out("addmm", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe { sys::mlx_addmm(out, c.raw(), a.raw(), b.raw(), alpha, beta, stream.raw()) }
    })
}

/// Inner product over the last axes of `a` and `b` (an ordinary dot product for 1-D inputs).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3])?;
/// assert_eq!(ops::inner(&a, &a)?.item::<f32>()?, 14.0);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn inner_device(a: &Array, b: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("inner", |out| unsafe { sys::mlx_inner(out, a.raw(), b.raw(), stream.raw()) })
}

/// Outer product of the flattened `a` and `b`: shape `[a.size(), b.size()]`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1, 2], &[2])?;
/// let b = Array::from_slice(&[1, 10, 100], &[3])?;
/// let o = ops::outer(&a, &b)?;
/// assert_eq!(o.shape(), [2, 3]);
/// assert_eq!(o.to_vec::<i32>()?, [1, 10, 100, 2, 20, 200]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn outer_device(a: &Array, b: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("outer", |out| unsafe { sys::mlx_outer(out, a.raw(), b.raw(), stream.raw()) })
}

/// The Walsh-Hadamard transform along the last axis (whose size must be a power of two, or 12,
/// 20 or 28 times one), multiplied by `scale` (default `1 / sqrt(size)`, which makes it
/// orthonormal).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let x = Array::from_slice(&[1.0f32, 0.0], &[2])?;
/// let h = ops::hadamard_transform(&x, Some(1.0))?;
/// assert_eq!(h.to_vec::<f32>()?, [1.0, 1.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn hadamard_transform_device(a: &Array, scale: Option<f32>, stream: &Stream) -> Result<Array> {
    let scale = ffi::optional_float(scale);
    ffi::array_out("hadamard_transform", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe { sys::mlx_hadamard_transform(out, a.raw(), scale, stream.raw()) }
    })
}

/// Which axes [`tensordot`] contracts (Python's `axes` argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensordotAxes<'a> {
    /// The last `n` axes of `a` with the first `n` axes of `b` (Python `axes=n`, default 2).
    Count(i32),
    /// `a`'s axis `axes_a[i]` with `b`'s axis `axes_b[i]` (Python `axes=[axes_a, axes_b]`).
    Pairs(&'a [i32], &'a [i32]),
}

impl From<i32> for TensordotAxes<'_> {
    fn from(n: i32) -> Self {
        TensordotAxes::Count(n)
    }
}

impl<'a> From<(&'a [i32], &'a [i32])> for TensordotAxes<'a> {
    fn from((axes_a, axes_b): (&'a [i32], &'a [i32])) -> Self {
        TensordotAxes::Pairs(axes_a, axes_b)
    }
}

impl<'a, const N: usize> From<(&'a [i32; N], &'a [i32; N])> for TensordotAxes<'a> {
    fn from((axes_a, axes_b): (&'a [i32; N], &'a [i32; N])) -> Self {
        TensordotAxes::Pairs(axes_a, axes_b)
    }
}

/// Tensor dot product: sums the products over the contracted axes (see [`TensordotAxes`]; an
/// `i32` or a pair of axis lists converts into it). The result has `a`'s free axes followed by
/// `b`'s. Contracted axes of different sizes, lists of different lengths, and a negative count
/// are errors.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// let b = Array::from_slice(&[1.0f32, 1.0, 1.0], &[3])?;
/// assert_eq!(ops::tensordot(&a, &b, 1)?.to_vec::<f32>()?, [6.0, 15.0]);
/// let t = ops::tensordot(&a, &a, (&[0, 1], &[0, 1]))?;
/// assert_eq!(t.item::<f32>()?, 91.0);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn tensordot_device<'a>(
    a: &Array,
    b: &Array,
    axes: impl Into<TensordotAxes<'a>>,
    stream: &Stream,
) -> Result<Array> {
    match axes.into() {
        // SAFETY: live handles; the output is owned by `array_out`.
        TensordotAxes::Count(n) => ffi::array_out("tensordot", |out| unsafe {
            sys::mlx_tensordot_axis(out, a.raw(), b.raw(), n, stream.raw())
        }),
        TensordotAxes::Pairs(axes_a, axes_b) => {
            if axes_a.len() != axes_b.len() {
                return Err(Error::invalid(
                    "tensordot",
                    format!(
                        "axes must have the same size, got {} axes of a and {} of b",
                        axes_a.len(),
                        axes_b.len()
                    ),
                ));
            }
            ffi::array_out("tensordot", |out| {
                // SAFETY: live handles; both slices are valid for their lengths during the call
                // (mlx-c copies them); the output is owned by `array_out`.
                unsafe {
                    sys::mlx_tensordot(
                        out,
                        a.raw(),
                        b.raw(),
                        axes_a.as_ptr(),
                        axes_a.len(),
                        axes_b.as_ptr(),
                        axes_b.len(),
                        stream.raw(),
                    )
                }
            })
        }
    }
}

/// Einstein summation, e.g. `"ij,jk->ik"` (matrix product), `"bij,bjk->bik"`, `"ii->"` (trace).
/// Bad subscripts, a subscript count that does not match the operands, and a string containing
/// a NUL byte are errors.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// assert_eq!(ops::einsum("ii->", &[&a])?.item::<f32>()?, 5.0);
/// let ab = ops::einsum("ij,jk->ik", &[&a, &a])?;
/// assert_eq!(ab.to_vec::<f32>()?, [7.0, 10.0, 15.0, 22.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn einsum_device<A: AsRef<Array>>(
    subscripts: &str,
    operands: &[A],
    stream: &Stream,
) -> Result<Array> {
    let subscripts = CString::new(subscripts)
        .map_err(|_| Error::invalid("einsum", "subscripts must not contain a NUL byte"))?;
    let operands = VectorArray::from_arrays(operands);
    ffi::array_out("einsum", |out| {
        // SAFETY: live handles; `subscripts` is NUL-terminated and outlives the call; the output
        // is owned by `array_out`.
        unsafe { sys::mlx_einsum(out, subscripts.as_ptr(), operands.raw(), stream.raw()) }
    })
}

/// Kronecker product: every element of `a` times the whole of `b`, tiled.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1, 2], &[2])?;
/// let b = Array::from_slice(&[1, 10], &[2])?;
/// assert_eq!(ops::kron(&a, &b)?.to_vec::<i32>()?, [1, 10, 2, 20]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn kron_device(a: &Array, b: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("kron", |out| unsafe { sys::mlx_kron(out, a.raw(), b.raw(), stream.raw()) })
}

/// Vector dot product along `axis` (Python default `-1`) after broadcasting `a` and `b`;
/// complex `a` is conjugated. In MLX 0.32.2 both inputs must have the same number of axes
/// (size-1 axes broadcast; missing leading axes give an "axis is out of bounds" error).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let b = Array::from_slice(&[1.0f32, 1.0], &[1, 2])?;
/// assert_eq!(ops::vecdot(&a, &b, -1)?.to_vec::<f32>()?, [3.0, 7.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn vecdot_device(a: &Array, b: &Array, axis: i32, stream: &Stream) -> Result<Array> {
    ffi::array_out("vecdot", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe { sys::mlx_vecdot(out, a.raw(), b.raw(), axis, stream.raw()) }
    })
}

/// Sum along the diagonal at `offset` of the planes given by `axis1` and `axis2` (Python
/// defaults: `0, 0, 1`). With `dtype` the diagonal is cast to it before summing; the sum then
/// promotes as [`sum`](crate::ops::sum) does (small integers to `int32`), as in MLX. Equal or
/// out-of-range axes are errors.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9], &[3, 3])?;
/// assert_eq!(ops::trace(&a, 0, 0, 1, None)?.item::<i32>()?, 15);
/// assert_eq!(ops::trace(&a, 1, 0, 1, None)?.item::<i32>()?, 8);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn trace_device(
    a: &Array,
    offset: i32,
    axis1: i32,
    axis2: i32,
    dtype: Option<Dtype>,
    stream: &Stream,
) -> Result<Array> {
    if (offset, axis1, axis2, dtype) == (0, 0, 1, None) {
        // SAFETY: live handles; the output is owned by `array_out`.
        return ffi::array_out("trace", |out| unsafe {
            sys::mlx_trace(out, a.raw(), stream.raw())
        });
    }
    let dtype = dtype.unwrap_or_else(|| a.dtype()).to_raw();
    ffi::array_out("trace", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe { sys::mlx_trace_axes(out, a.raw(), offset, axis1, axis2, dtype, stream.raw()) }
    })
}
