//! Reading elements out of an [`Array`]: `item`, `to_vec` and `as_slice`.
//!
//! mlx-c hands out the raw buffer without checking the dtype, and the buffer is in storage order
//! (a transposed, sliced or broadcast view is not in logical order). So every read here checks the
//! dtype first, evaluates, and reads only row-contiguous buffers.

use mlx_sys as sys;

use super::Array;
use crate::dtype::ArrayElement;
use crate::error::{Error, ErrorKind, Result};
use crate::ffi;

impl Array {
    fn check_dtype<T: ArrayElement>(&self, op: &'static str) -> Result<()> {
        if self.dtype() == T::DTYPE {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::DtypeMismatch,
                op,
                format!(
                    "the array is {} but was read as {} (convert it with astype first)",
                    self.dtype(),
                    T::DTYPE
                ),
            ))
        }
    }

    /// The start of the evaluated buffer, or NULL for an empty array.
    fn data_ptr<T: ArrayElement>(&self) -> *const T {
        // SAFETY: the array is live and evaluated by the callers; MLX returns its buffer as bytes
        // (offset included). The element type was checked by the callers.
        unsafe { sys::mlx_array_data_uint8(self.raw()) }.cast()
    }

    /// True when the buffer holds the elements in row-major order with no gaps.
    fn is_row_contiguous(&self) -> bool {
        let mut expected = 1usize;
        for (&dim, &stride) in self.shape().iter().zip(self.strides()).rev() {
            if dim != 1 && stride != expected {
                return false;
            }
            expected *= dim as usize;
        }
        true
    }

    /// The single element of a one-element array, evaluating it first.
    ///
    /// Fails if the array has more than one element or if `T` is not its dtype.
    pub fn item<T: ArrayElement>(&self) -> Result<T> {
        self.check_dtype::<T>("item")?;
        if self.size() != 1 {
            return Err(Error::invalid(
                "item",
                format!(
                    "item needs an array of one element, this one has shape {:?}",
                    self.shape()
                ),
            ));
        }
        self.eval()?;
        let ptr = self.data_ptr::<T>();
        if ptr.is_null() {
            return Err(ffi::failed("item"));
        }
        if T::DTYPE == crate::Dtype::Bool {
            // SAFETY: the evaluated buffer holds at least one byte at `ptr`.
            let byte = unsafe { ptr.cast::<u8>().read() };
            return from_bools::<T>(vec![byte != 0]).pop().ok_or_else(|| ffi::failed("item"));
        }
        // SAFETY: the evaluated buffer holds at least one element of type `T` at `ptr`, and every
        // bit pattern is a valid `T` (bools were handled above).
        Ok(unsafe { ptr.read_unaligned() })
    }

    /// The elements in row-major (logical) order, evaluating first.
    ///
    /// Works for any layout: views are made contiguous before copying. Fails if `T` is not the
    /// array's dtype.
    pub fn to_vec<T: ArrayElement>(&self) -> Result<Vec<T>> {
        self.check_dtype::<T>("to_vec")?;
        self.eval()?;
        if self.size() == 0 {
            return Ok(Vec::new());
        }
        if self.is_row_contiguous() {
            return self.copy_contiguous::<T>("to_vec");
        }
        let contiguous = crate::Stream::with_thread_default(|stream| {
            // SAFETY: live handles; the output is owned by `array_out`.
            ffi::array_out("to_vec", |out| unsafe {
                sys::mlx_contiguous(out, self.raw(), false, stream.raw())
            })
        })?;
        contiguous.eval()?;
        contiguous.copy_contiguous::<T>("to_vec")
    }

    /// Copies the elements of an evaluated, row-contiguous, non-empty array of dtype `T`. The
    /// buffer may be unaligned for `T` (a `view` as a wider dtype of a slice at an odd offset),
    /// so it is copied as bytes; bool bytes other than 0 and 1 (from a `view` or a file) are
    /// read as `true`, never handed out as invalid `bool`s.
    fn copy_contiguous<T: ArrayElement>(&self, op: &'static str) -> Result<Vec<T>> {
        let ptr = self.data_ptr::<T>();
        if ptr.is_null() {
            return Err(ffi::failed(op));
        }
        let n = self.size();
        if T::DTYPE == crate::Dtype::Bool {
            // SAFETY: the buffer is evaluated and holds `n` bytes (bool elements) at `ptr`.
            let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), n) };
            return Ok(from_bools(bytes.iter().map(|&b| b != 0).collect()));
        }
        let mut out = Vec::<T>::with_capacity(n);
        // SAFETY: the buffer holds `n` elements of `T` (dtype checked) at `ptr`, possibly
        // unaligned, so it is copied bytewise into `out`'s capacity of `n` elements; every bit
        // pattern is a valid `T` for the non-bool element types.
        unsafe {
            std::ptr::copy_nonoverlapping(
                ptr.cast::<u8>(),
                out.as_mut_ptr().cast::<u8>(),
                n * std::mem::size_of::<T>(),
            );
            out.set_len(n);
        }
        Ok(out)
    }

    /// The elements, borrowed from the evaluated buffer, in row-major order.
    ///
    /// Evaluates first. Fails if `T` is not the dtype, or if the array is a non-contiguous view
    /// (transposed, strided or broadcast): use [`Array::to_vec`] for those.
    pub fn as_slice<T: ArrayElement>(&self) -> Result<&[T]> {
        self.check_dtype::<T>("as_slice")?;
        self.eval()?;
        if self.size() == 0 {
            return Ok(&[]);
        }
        if !self.is_row_contiguous() {
            return Err(Error::invalid(
                "as_slice",
                "the array is a non-contiguous view; use to_vec, or make it contiguous first",
            ));
        }
        let ptr = self.data_ptr::<T>();
        if ptr.is_null() {
            return Err(ffi::failed("as_slice"));
        }
        if !ptr.is_aligned() {
            return Err(Error::invalid(
                "as_slice",
                format!(
                    "the buffer is not aligned for {} (a view at an offset that is not a \
                     multiple of its size); use to_vec",
                    T::DTYPE
                ),
            ));
        }
        if T::DTYPE == crate::Dtype::Bool {
            // SAFETY: the buffer is evaluated and holds `size` bytes at `ptr`.
            let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), self.size()) };
            if let Some(b) = bytes.iter().find(|&&b| b > 1) {
                return Err(Error::invalid(
                    "as_slice",
                    format!("the buffer holds the byte {b}, which is not a bool; use to_vec"),
                ));
            }
        }
        // SAFETY: the buffer is evaluated, row-contiguous, aligned, holds `size` elements of `T`
        // (dtype checked) and is immutable while `self` is borrowed.
        Ok(unsafe { std::slice::from_raw_parts(ptr, self.size()) })
    }
}

/// `values` as a `Vec<T>` where `T` is `bool` (the callers check `T::DTYPE`).
fn from_bools<T: ArrayElement>(values: Vec<bool>) -> Vec<T> {
    let boxed: Box<dyn std::any::Any> = Box::new(values);
    match boxed.downcast::<Vec<T>>() {
        Ok(v) => *v,
        // Unreachable: `T::DTYPE` is `Bool` only for `bool`.
        Err(_) => Vec::new(),
    }
}
