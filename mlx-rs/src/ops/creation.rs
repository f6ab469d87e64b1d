//! Array creation: constants, ranges, identity-like matrices, grids and window functions.

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::vector::VectorArray;
use crate::{Array, ArrayElement, Dtype, Error, Result, Stream, ffi};

/// An array of `shape` filled with zeros, as in `mlx.core.zeros`.
///
/// Errors if a dimension is negative.
///
/// ```
/// use mlx_rs::{Dtype, ops};
/// let z = ops::zeros(&[2, 3], Dtype::Float32)?;
/// assert_eq!(z.shape(), &[2, 3]);
/// assert_eq!(z.to_vec::<f32>()?, [0.0; 6]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn zeros_device(shape: &[i32], dtype: Dtype, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; `shape` is valid for `shape.len()` ints; the output is owned by
    // `array_out`.
    ffi::array_out("zeros", |out| unsafe {
        sys::mlx_zeros(out, shape.as_ptr(), shape.len(), dtype.to_raw(), stream.raw())
    })
}

/// An array of `shape` filled with ones, as in `mlx.core.ones`.
///
/// Errors if a dimension is negative.
///
/// ```
/// use mlx_rs::{Dtype, ops};
/// let o = ops::ones(&[3], Dtype::Int32)?;
/// assert_eq!(o.to_vec::<i32>()?, [1, 1, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn ones_device(shape: &[i32], dtype: Dtype, stream: &Stream) -> Result<Array> {
    // SAFETY: as in `zeros_device`.
    ffi::array_out("ones", |out| unsafe {
        sys::mlx_ones(out, shape.as_ptr(), shape.len(), dtype.to_raw(), stream.raw())
    })
}

/// An array of `shape` filled with `vals` (broadcast to `shape`), as in `mlx.core.full`.
///
/// `dtype` defaults to the dtype of `vals`. Errors if a dimension is negative or `vals` does
/// not broadcast to `shape`. For a scalar fill value see [`Array::full`].
///
/// ```
/// use mlx_rs::{Array, ops};
/// let row = Array::from_slice(&[1.0f32, 2.0], &[2])?;
/// let f = ops::full(&[2, 2], &row, None)?;
/// assert_eq!(f.to_vec::<f32>()?, [1.0, 2.0, 1.0, 2.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn full_device(
    shape: &[i32],
    vals: &Array,
    dtype: Option<Dtype>,
    stream: &Stream,
) -> Result<Array> {
    let dtype = dtype.unwrap_or_else(|| vals.dtype());
    // SAFETY: live handles; `shape` is valid for `shape.len()` ints; the output is owned by
    // `array_out`.
    ffi::array_out("full", |out| unsafe {
        sys::mlx_full(out, shape.as_ptr(), shape.len(), vals.raw(), dtype.to_raw(), stream.raw())
    })
}

/// An array of zeros with the shape of `a` and its dtype (or `dtype`), as in
/// `mlx.core.zeros_like`.
///
/// ```
/// use mlx_rs::{Array, Dtype, ops};
/// let a = Array::from_slice(&[1.5f32, 2.5], &[2])?;
/// let z = ops::zeros_like(&a, Some(Dtype::Int32))?;
/// assert_eq!(z.to_vec::<i32>()?, [0, 0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn zeros_like_device(a: &Array, dtype: Option<Dtype>, stream: &Stream) -> Result<Array> {
    match dtype {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("zeros_like", |out| unsafe {
            sys::mlx_zeros_like(out, a.raw(), stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(dtype) => ffi::array_out("zeros_like", |out| unsafe {
            sys::mlx_zeros_like_dtype(out, a.raw(), dtype.to_raw(), stream.raw())
        }),
    }
}

/// An array of ones with the shape of `a` and its dtype (or `dtype`), as in
/// `mlx.core.ones_like`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[7i32, 8], &[2])?;
/// assert_eq!(ops::ones_like(&a, None)?.to_vec::<i32>()?, [1, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn ones_like_device(a: &Array, dtype: Option<Dtype>, stream: &Stream) -> Result<Array> {
    match dtype {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("ones_like", |out| unsafe {
            sys::mlx_ones_like(out, a.raw(), stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(dtype) => ffi::array_out("ones_like", |out| unsafe {
            sys::mlx_ones_like_dtype(out, a.raw(), dtype.to_raw(), stream.raw())
        }),
    }
}

/// An array with the shape of `a` filled with `vals`, as in `mlx.core.full_like`.
///
/// `dtype` defaults to the dtype of `a`. Errors if `vals` does not broadcast to `a`'s shape.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3], &[3])?;
/// let f = ops::full_like(&a, &Array::scalar(2.7f32), None)?;
/// assert_eq!(f.to_vec::<i32>()?, [2, 2, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn full_like_device(
    a: &Array,
    vals: &Array,
    dtype: Option<Dtype>,
    stream: &Stream,
) -> Result<Array> {
    let dtype = dtype.unwrap_or_else(|| a.dtype());
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("full_like", |out| unsafe {
        sys::mlx_full_like(out, a.raw(), vals.raw(), dtype.to_raw(), stream.raw())
    })
}

/// Evenly spaced values in `[start, stop)` with spacing `step`, as in `mlx.core.arange`.
///
/// Errors if `step` is zero, a bound is not finite, `dtype` is `bool`, or the result would hold
/// more than `i32::MAX` elements.
///
/// ```
/// use mlx_rs::{Dtype, ops};
/// let r = ops::arange(1.0, 10.0, 3.0, Dtype::Int32)?;
/// assert_eq!(r.to_vec::<i32>()?, [1, 4, 7]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn arange_device(
    start: f64,
    stop: f64,
    step: f64,
    dtype: Dtype,
    stream: &Stream,
) -> Result<Array> {
    if step == 0.0 || step.is_nan() {
        return Err(Error::invalid("arange", "step must be nonzero"));
    }
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("arange", |out| unsafe {
        sys::mlx_arange(out, start, stop, step, dtype.to_raw(), stream.raw())
    })
}

/// `num` evenly spaced values from `start` to `stop`, as in `numpy.linspace`.
///
/// With `endpoint` the last value is `stop` (as `mlx.core.linspace` does); without it the
/// values stop one step short of `stop`. Errors if `num` is negative.
///
/// ```
/// use mlx_rs::{Dtype, ops};
/// let l = ops::linspace(0.0, 1.0, 5, true, Dtype::Float32)?;
/// assert_eq!(l.to_vec::<f32>()?, [0.0, 0.25, 0.5, 0.75, 1.0]);
/// let l = ops::linspace(0.0, 1.0, 4, false, Dtype::Float32)?;
/// assert_eq!(l.to_vec::<f32>()?, [0.0, 0.25, 0.5, 0.75]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn linspace_device(
    start: f64,
    stop: f64,
    num: i32,
    endpoint: bool,
    dtype: Dtype,
    stream: &Stream,
) -> Result<Array> {
    if num < 0 {
        return Err(Error::invalid(
            "linspace",
            format!("number of samples, {num}, must be non-negative"),
        ));
    }
    if endpoint {
        // SAFETY: live handles; the output is owned by `array_out`.
        ffi::array_out("linspace", |out| unsafe {
            sys::mlx_linspace(out, start, stop, num, dtype.to_raw(), stream.raw())
        })
    } else {
        // SAFETY: live handles; the output is owned by `array_out`.
        ffi::array_out("linspace", |out| unsafe {
            sys::mlx_linspace_endpoint(out, start, stop, num, false, dtype.to_raw(), stream.raw())
        })
    }
}

/// An `n x m` matrix (`m` defaults to `n`) with ones on the `k`-th diagonal, as in
/// `mlx.core.eye`.
///
/// Errors if `n` or `m` is not positive.
///
/// ```
/// use mlx_rs::{Dtype, ops};
/// let e = ops::eye(2, Some(3), 1, Dtype::Int32)?;
/// assert_eq!(e.to_vec::<i32>()?, [0, 1, 0, 0, 0, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn eye_device(n: i32, m: Option<i32>, k: i32, dtype: Dtype, stream: &Stream) -> Result<Array> {
    let m = m.unwrap_or(n);
    // MLX 0.32.2 negates `k` in `int` (so `i32::MIN` overflows, and the arange it then builds
    // took 8 GB; found by the `ops` fuzz target): a matrix without that diagonal is all zeros.
    let (n64, m64, k64) = (i64::from(n), i64::from(m), i64::from(k));
    if n >= 0 && m >= 0 && (n == 0 || m == 0 || k64 >= m64 || -k64 >= n64) {
        return zeros_device(&[n, m], dtype, stream);
    }
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("eye", |out| unsafe { sys::mlx_eye(out, n, m, k, dtype.to_raw(), stream.raw()) })
}

/// The `n x n` identity matrix, as in `mlx.core.identity`.
///
/// ```
/// use mlx_rs::{Dtype, ops};
/// assert_eq!(ops::identity(2, Dtype::Float32)?.to_vec::<f32>()?, [1.0, 0.0, 0.0, 1.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn identity_device(n: i32, dtype: Dtype, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("identity", |out| unsafe {
        sys::mlx_identity(out, n, dtype.to_raw(), stream.raw())
    })
}

/// An `n x m` matrix (`m` defaults to `n`) with ones at and below the `k`-th diagonal and
/// zeros elsewhere, as in `mlx.core.tri`.
///
/// ```
/// use mlx_rs::{Dtype, ops};
/// let t = ops::tri(2, None, 0, Dtype::Int32)?;
/// assert_eq!(t.to_vec::<i32>()?, [1, 0, 1, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn tri_device(n: i32, m: Option<i32>, k: i32, dtype: Dtype, stream: &Stream) -> Result<Array> {
    let m = m.unwrap_or(n);
    // MLX 0.32.2 builds `arange(-k, m - k)` in `int`, which overflows for extreme `k` (as in
    // `eye`). Every `k <= -n` gives all zeros and every `k >= m` all ones, so `k` is clamped
    // to `-n..=m`, which changes no result.
    // It also builds `arange(m - k)`: with `k` clamped that stays below `n + m`, which must fit
    // `int` (`tri(i32::MAX, i32::MAX, -2)` wrapped to an empty range and came back `[n, 0]`
    // after evaluating an 8 GB `arange(n)`; found by the `ops` fuzz target).
    if i64::from(n) + i64::from(m) > i64::from(i32::MAX) {
        return Err(Error::invalid(
            "tri",
            format!("a {n} x {m} triangle overflows MLX's 32-bit index arithmetic"),
        ));
    }
    let k = if n >= 0 && m >= 0 {
        i32::try_from(i64::from(k).clamp(-i64::from(n), i64::from(m))).unwrap_or(k)
    } else {
        k
    };
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("tri", |out| unsafe { sys::mlx_tri(out, n, m, k, dtype.to_raw(), stream.raw()) })
}

/// The lower triangle of the last two axes of `x` (at and below diagonal `k`), zeros
/// elsewhere, as in `mlx.core.tril`.
///
/// Errors if `x` has fewer than two dimensions.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let x = Array::from_slice(&[1i32, 2, 3, 4], &[2, 2])?;
/// assert_eq!(ops::tril(&x, 0)?.to_vec::<i32>()?, [1, 0, 3, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn tril_device(x: &Array, k: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("tril", |out| unsafe { sys::mlx_tril(out, x.raw(), k, stream.raw()) })
}

/// The upper triangle of the last two axes of `x` (at and above diagonal `k`), zeros
/// elsewhere, as in `mlx.core.triu`.
///
/// Errors if `x` has fewer than two dimensions.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let x = Array::from_slice(&[1i32, 2, 3, 4], &[2, 2])?;
/// assert_eq!(ops::triu(&x, 0)?.to_vec::<i32>()?, [1, 2, 0, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn triu_device(x: &Array, k: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("triu", |out| unsafe { sys::mlx_triu(out, x.raw(), k, stream.raw()) })
}

/// How [`meshgrid`] orders its outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MeshIndexing {
    /// Cartesian (`"xy"`, the default): the first two output axes are swapped.
    #[default]
    Xy,
    /// Matrix (`"ij"`): output axis `i` follows input `i`.
    Ij,
}

/// Coordinate grids from one-dimensional coordinate arrays, as in `mlx.core.meshgrid`.
///
/// With `sparse` the outputs keep size-1 axes instead of being broadcast to the full grid.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let x = Array::from_slice(&[1i32, 2, 3], &[3])?;
/// let y = Array::from_slice(&[4i32, 5], &[2])?;
/// let grids = ops::meshgrid(&[x, y], false, ops::MeshIndexing::Xy)?;
/// assert_eq!(grids[0].shape(), &[2, 3]);
/// assert_eq!(grids[1].to_vec::<i32>()?, [4, 4, 4, 5, 5, 5]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn meshgrid_device<A: AsRef<Array>>(
    arrays: &[A],
    sparse: bool,
    indexing: MeshIndexing,
    stream: &Stream,
) -> Result<Vec<Array>> {
    let inputs = VectorArray::from_arrays(arrays);
    let indexing = match indexing {
        MeshIndexing::Xy => c"xy",
        MeshIndexing::Ij => c"ij",
    };
    // SAFETY: live handles; `indexing` is NUL-terminated and static; the output vector is owned
    // by `arrays_out`.
    ffi::arrays_out("meshgrid", |out| unsafe {
        sys::mlx_meshgrid(out, inputs.raw(), sparse, indexing.as_ptr(), stream.raw())
    })
}

/// The Bartlett (triangular) window of size `m`, as in `mlx.core.bartlett`.
///
/// ```
/// let w = mlx_rs::ops::bartlett(5)?;
/// assert_eq!(w.to_vec::<f32>()?, [0.0, 0.5, 1.0, 0.5, 0.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn bartlett_device(m: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("bartlett", |out| unsafe { sys::mlx_bartlett(out, m, stream.raw()) })
}

/// The Blackman window of size `m`, as in `mlx.core.blackman`.
///
/// ```
/// let w = mlx_rs::ops::blackman(3)?;
/// assert_eq!(w.shape(), &[3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn blackman_device(m: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("blackman", |out| unsafe { sys::mlx_blackman(out, m, stream.raw()) })
}

/// The Hamming window of size `m`, as in `mlx.core.hamming`.
///
/// ```
/// let w = mlx_rs::ops::hamming(3)?;
/// assert_eq!(w.shape(), &[3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn hamming_device(m: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("hamming", |out| unsafe { sys::mlx_hamming(out, m, stream.raw()) })
}

/// The Hann window of size `m`, as in `mlx.core.hanning`.
///
/// ```
/// let w = mlx_rs::ops::hanning(3)?;
/// assert_eq!(w.shape(), &[3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn hanning_device(m: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("hanning", |out| unsafe { sys::mlx_hanning(out, m, stream.raw()) })
}

impl Array {
    /// An array of `shape` filled with zeros of element type `T`, on the default stream.
    ///
    /// ```
    /// let z = mlx_rs::Array::zeros::<i32>(&[2])?;
    /// assert_eq!(z.to_vec::<i32>()?, [0, 0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn zeros<T: ArrayElement>(shape: &[i32]) -> Result<Array> {
        zeros(shape, T::DTYPE)
    }

    /// An array of `shape` filled with ones of element type `T`, on the default stream.
    ///
    /// ```
    /// let o = mlx_rs::Array::ones::<f32>(&[2])?;
    /// assert_eq!(o.to_vec::<f32>()?, [1.0, 1.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn ones<T: ArrayElement>(shape: &[i32]) -> Result<Array> {
        ones(shape, T::DTYPE)
    }

    /// An array of `shape` filled with `value`, on the default stream.
    ///
    /// ```
    /// let f = mlx_rs::Array::full(&[2, 2], 7u8)?;
    /// assert_eq!(f.to_vec::<u8>()?, [7, 7, 7, 7]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn full<T: ArrayElement>(shape: &[i32], value: T) -> Result<Array> {
        full(shape, &Array::scalar(value), None)
    }
}
