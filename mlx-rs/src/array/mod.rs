//! [`Array`]: MLX's lazily evaluated N-dimensional array.

mod element_io;
mod fmt;
mod indexing;
mod methods;
mod operators;

pub use indexing::{Ellipsis, Index, IntoIndex, NewAxis, Slice};

use std::ffi::c_int;

use mlx_sys as sys;

use crate::dtype::{ArrayElement, Dtype};
use crate::error::{Error, Result};
use crate::ffi;

/// An N-dimensional array, as in `mlx.core.array`.
///
/// Arrays are lazy: operations record a graph, and the values are computed when they are needed
/// ([`Array::eval`], [`Array::item`], [`Array::to_vec`], printing) or explicitly evaluated.
/// `Clone` is cheap and shares the underlying buffer; [`Array::deep_copy`] makes an independent
/// copy.
///
/// The arithmetic, bitwise and shift operators work on arrays and Rust scalars and return
/// `Result<Array>` (`((&a + &b)? * 2.0)?`); see [`ScalarOperand`](crate::ops::ScalarOperand).
///
/// # Methods
/// The ops that model code chains are methods too, each the [`ops`](crate::ops) function of the
/// same name applied to `self` (`x.reshape([b, l, h, d])?.transpose([0, 2, 1, 3])?`): shape
/// (`reshape`, `flatten`, `unflatten`, `squeeze`, `expand_dims`, `transpose`, `t`, `swapaxes`,
/// `moveaxis`, `broadcast_to`, `split`, `split_sections`), `matmul`, reductions (`sum`, `mean`,
/// `max`, `min`, `prod`, `all`, `any`, `logsumexp`, `var`, `std`, `argmax`, `argmin`,
/// `softmax`), element-wise math (`abs`, `negative`, `sign`, `sqrt`, `rsqrt`, `square`,
/// `reciprocal`, `exp`, `log`, `log2`, `log10`, `log1p`, `sin`, `cos`, `tanh`, `sigmoid`, `erf`,
/// `floor`, `ceil`, `round`, `maximum`, `minimum`, `power`), comparisons (`equal`, `not_equal`,
/// `less`, `less_equal`, `greater`, `greater_equal`), `astype`, `view`, `conj` and
/// [`index`](Array::index). Each also has a `_device` form taking a stream.
pub struct Array {
    raw: sys::mlx_array,
}

impl Array {
    /// Wraps a handle returned by mlx-c; the result owns it.
    pub(crate) fn from_raw(raw: sys::mlx_array) -> Array {
        Array { raw }
    }

    /// The raw handle, borrowed.
    pub(crate) fn raw(&self) -> sys::mlx_array {
        self.raw
    }

    /// A pointer to the raw handle, for mlx-c calls that fill it.
    pub(crate) fn as_raw_mut(&mut self) -> *mut sys::mlx_array {
        &mut self.raw
    }

    /// An array of `shape` holding a copy of `data` (row-major).
    ///
    /// ```
    /// use mlx_rs::Array;
    /// let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(a.shape(), &[2, 2]);
    /// assert_eq!(a.to_vec::<f32>()?, [1.0, 2.0, 3.0, 4.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn from_slice<T: ArrayElement>(data: &[T], shape: &[i32]) -> Result<Array> {
        let expected = element_count("from_slice", shape)?;
        if expected != data.len() {
            return Err(Error::invalid(
                "from_slice",
                format!("shape {shape:?} holds {expected} elements but {} were given", data.len()),
            ));
        }
        let ndim = c_int::try_from(shape.len())
            .map_err(|_| Error::invalid("from_slice", "too many dimensions"))?;
        ffi::handle_out(
            "from_slice",
            // SAFETY: `data` holds exactly `expected` elements of `T`, whose layout matches
            // `T::DTYPE`; `shape` holds `ndim` non-negative sizes. mlx-c copies both.
            || unsafe {
                sys::mlx_array_new_data(
                    data.as_ptr().cast(),
                    shape.as_ptr(),
                    ndim,
                    T::DTYPE.to_raw(),
                )
            },
            Array::from_raw,
        )
    }

    /// An array of `shape` that takes ownership of `data` without copying it where MLX can use
    /// host memory directly (CPU, and Apple GPUs with unified memory); MLX frees the vector when
    /// the last array using it is dropped. With MLX's CUDA backend, whose kernels cannot read
    /// ordinary host memory, the data is copied instead.
    ///
    /// ```
    /// use mlx_rs::Array;
    /// let a = Array::from_vec_owned(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(a.to_vec::<f32>()?, [1.0, 2.0, 3.0, 4.0]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn from_vec_owned<T: ArrayElement>(data: Vec<T>, shape: &[i32]) -> Result<Array> {
        let expected = element_count("from_vec_owned", shape)?;
        if expected != data.len() {
            return Err(Error::invalid(
                "from_vec_owned",
                format!("shape {shape:?} holds {expected} elements but {} were given", data.len()),
            ));
        }
        if data.is_empty() || ffi::cuda_available() {
            return Array::from_slice(&data, shape);
        }
        extern "C" fn drop_vec<T>(payload: *mut std::ffi::c_void) {
            // Dropping a Vec of plain elements cannot unwind.
            // SAFETY: `payload` is the `Box<Vec<T>>` leaked below, handed back once by MLX.
            drop(unsafe { Box::from_raw(payload.cast::<Vec<T>>()) });
        }
        let ndim = c_int::try_from(shape.len())
            .map_err(|_| Error::invalid("from_vec_owned", "too many dimensions"))?;
        let mut boxed = Box::new(data);
        let ptr = boxed.as_mut_ptr().cast::<std::ffi::c_void>();
        let payload = Box::into_raw(boxed).cast::<std::ffi::c_void>();
        ffi::handle_out(
            "from_vec_owned",
            // SAFETY: `ptr` points at `expected` elements of `T` (layout of `T::DTYPE`) owned by
            // the payload, which stays alive (the heap buffer does not move) until MLX calls
            // `drop_vec`. Shape and length were checked, so construction does not fail.
            || unsafe {
                sys::mlx_array_new_data_managed_payload(
                    ptr,
                    shape.as_ptr(),
                    ndim,
                    T::DTYPE.to_raw(),
                    payload,
                    Some(drop_vec::<T>),
                )
            },
            Array::from_raw,
        )
    }

    /// A one-dimensional array holding a copy of `data`.
    pub fn from_vec<T: ArrayElement>(data: Vec<T>) -> Result<Array> {
        let len = i32::try_from(data.len())
            .map_err(|_| Error::invalid("from_vec", "more than i32::MAX elements"))?;
        Array::from_slice(&data, &[len])
    }

    /// A zero-dimensional array holding `value`.
    ///
    /// ```
    /// let x = mlx_rs::Array::scalar(2.5f32);
    /// assert_eq!(x.ndim(), 0);
    /// assert_eq!(x.item::<f32>()?, 2.5);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn scalar<T: ArrayElement>(value: T) -> Array {
        // SAFETY: one element of `T`, zero dimensions; mlx-c copies the value.
        let raw = ffi::call(|| unsafe {
            sys::mlx_array_new_data((&value as *const T).cast(), [0].as_ptr(), 0, T::DTYPE.to_raw())
        });
        Array::from_raw(raw)
    }

    /// The dimensions.
    pub fn shape(&self) -> &[i32] {
        let ndim = self.ndim();
        if ndim == 0 {
            return &[];
        }
        // SAFETY: mlx-c returns a pointer to the array's `ndim` dimensions, which live as long
        // as the array and never change (arrays are immutable once made; `&self` keeps it alive).
        unsafe { std::slice::from_raw_parts(sys::mlx_array_shape(self.raw), ndim) }
    }

    /// The size of dimension `axis`; negative axes count from the end.
    pub fn dim(&self, axis: i32) -> Result<i32> {
        Ok(self.shape()[normalize_axis("dim", axis, self.ndim())?])
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        // SAFETY: `self.raw` is live.
        unsafe { sys::mlx_array_ndim(self.raw) }
    }

    /// The number of elements.
    pub fn size(&self) -> usize {
        // SAFETY: `self.raw` is live.
        unsafe { sys::mlx_array_size(self.raw) }
    }

    /// The number of bytes of the elements.
    pub fn nbytes(&self) -> usize {
        // SAFETY: `self.raw` is live.
        unsafe { sys::mlx_array_nbytes(self.raw) }
    }

    /// The size of one element in bytes.
    pub fn itemsize(&self) -> usize {
        // SAFETY: `self.raw` is live.
        unsafe { sys::mlx_array_itemsize(self.raw) }
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        // SAFETY: `self.raw` is live.
        let raw = unsafe { sys::mlx_array_dtype(self.raw) };
        // Every dtype MLX 0.32.2 has is in `Dtype`; the fallback is unreachable in practice.
        Dtype::from_raw("dtype", raw).unwrap_or(Dtype::Float32)
    }

    /// The strides of the underlying buffer in elements (valid after evaluation).
    pub fn strides(&self) -> &[usize] {
        let ndim = self.ndim();
        if ndim == 0 {
            return &[];
        }
        // SAFETY: mlx-c returns a pointer to `ndim` strides owned by the array.
        unsafe { std::slice::from_raw_parts(sys::mlx_array_strides(self.raw), ndim) }
    }

    /// Computes the array's value now.
    pub fn eval(&self) -> Result<()> {
        // SAFETY: `self.raw` is live.
        ffi::status("eval", || unsafe { sys::mlx_array_eval(self.raw) })
    }

    /// An independent copy with its own buffer.
    pub fn deep_copy(&self) -> Result<Array> {
        crate::Stream::with_thread_default(|stream| {
            // SAFETY: all handles are live; the output is owned by `array_out`.
            ffi::array_out("copy", |out| unsafe { sys::mlx_copy(out, self.raw, stream.raw()) })
        })
    }
}

/// `axis` as an index into `ndim` dimensions (negative axes count from the end), or an error of
/// `op` for an axis out of range.
pub(crate) fn normalize_axis(op: &'static str, axis: i32, ndim: usize) -> Result<usize> {
    let index = if axis < 0 {
        usize::try_from(axis.unsigned_abs()).ok().and_then(|back| ndim.checked_sub(back))
    } else {
        usize::try_from(axis).ok().filter(|&index| index < ndim)
    };
    index.ok_or_else(|| {
        let valid = match ndim {
            0 => "it has no axes".to_owned(),
            _ => format!("valid axes are -{ndim} to {}", ndim - 1),
        };
        Error::invalid(
            op,
            format!("axis {axis} is out of bounds for an array of {ndim} dimensions ({valid})"),
        )
    })
}

/// The number of elements of `shape`, checking that sizes are non-negative and do not overflow.
pub(crate) fn element_count(op: &'static str, shape: &[i32]) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        let d = usize::try_from(d)
            .map_err(|_| Error::invalid(op, format!("shape {shape:?} has a negative size")))?;
        acc.checked_mul(d)
            .ok_or_else(|| Error::invalid(op, format!("shape {shape:?} has too many elements")))
    })
}

impl Clone for Array {
    /// Shares the buffer (an MLX reference, not a copy).
    fn clone(&self) -> Array {
        let mut out = ffi::new_array();
        // SAFETY: `out` is empty and `self` live; the call gives `out` its own reference to
        // `self`'s array. Setting from a live array cannot fail.
        ffi::call(|| unsafe { sys::mlx_array_set(out.as_raw_mut(), self.raw) });
        out
    }
}

impl Drop for Array {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once (freeing an empty handle is a no-op).
        ffi::free(|| unsafe { sys::mlx_array_free(self.raw) });
    }
}
