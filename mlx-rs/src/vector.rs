//! `mlx_vector_array`: the owned list of arrays that mlx-c takes and returns.

use mlx_sys as sys;

use crate::array::Array;
use crate::error::Result;
use crate::ffi;

/// An owned `mlx_vector_array`.
pub(crate) struct VectorArray(sys::mlx_vector_array);

impl VectorArray {
    /// An empty vector, to be filled by an mlx-c call.
    pub(crate) fn new() -> VectorArray {
        // SAFETY: no preconditions; freed in `Drop`.
        VectorArray(ffi::call(|| unsafe { sys::mlx_vector_array_new() }))
    }

    /// A vector sharing the given arrays (MLX references, not copies).
    pub(crate) fn from_arrays<A: AsRef<Array>>(arrays: &[A]) -> VectorArray {
        let vector = VectorArray::new();
        ffi::call(|| {
            for array in arrays {
                // SAFETY: both handles are live; the vector takes its own reference.
                unsafe { sys::mlx_vector_array_append_value(vector.0, array.as_ref().raw()) };
            }
        });
        vector
    }

    /// The raw handle, borrowed.
    pub(crate) fn raw(&self) -> sys::mlx_vector_array {
        self.0
    }

    /// A pointer to the raw handle, for mlx-c calls that fill it.
    pub(crate) fn as_raw_mut(&mut self) -> *mut sys::mlx_vector_array {
        &mut self.0
    }

    /// The number of arrays.
    pub(crate) fn len(&self) -> usize {
        // SAFETY: the handle is live.
        unsafe { sys::mlx_vector_array_size(self.0) }
    }

    /// The arrays, each sharing the vector's element.
    pub(crate) fn to_arrays(&self) -> Result<Vec<Array>> {
        (0..self.len())
            .map(|i| {
                ffi::array_out_unchecked("vector_get", |out| {
                    // SAFETY: `i` is in range; the output is owned by `array_out`.
                    unsafe { sys::mlx_vector_array_get(out, self.0, i) }
                })
            })
            .collect()
    }
}

impl Drop for VectorArray {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_vector_array_free(self.0) });
    }
}

impl AsRef<Array> for Array {
    fn as_ref(&self) -> &Array {
        self
    }
}

/// An owned `mlx_vector_string`.
pub(crate) struct VectorString(sys::mlx_vector_string);

impl VectorString {
    /// A vector holding copies of `items`; fails if one contains a NUL byte.
    pub(crate) fn from_strs(op: &'static str, items: &[impl AsRef<str>]) -> Result<VectorString> {
        let vector = VectorString::new();
        for item in items {
            let c = ffi::c_string(op, item.as_ref())?;
            // SAFETY: the vector is live and `c` is NUL-terminated; mlx-c copies it.
            ffi::status(op, || unsafe {
                sys::mlx_vector_string_append_value(vector.0, c.as_ptr())
            })?;
        }
        Ok(vector)
    }

    /// The raw handle, borrowed.
    pub(crate) fn raw(&self) -> sys::mlx_vector_string {
        self.0
    }

    /// An empty vector, to be filled by an mlx-c call.
    pub(crate) fn new() -> VectorString {
        // SAFETY: no preconditions; freed in `Drop`.
        VectorString(ffi::call(|| unsafe { sys::mlx_vector_string_new() }))
    }

    /// A pointer to the raw handle, for mlx-c calls that fill it.
    pub(crate) fn as_raw_mut(&mut self) -> *mut sys::mlx_vector_string {
        &mut self.0
    }

    /// The strings, copied; text that is not UTF-8 is an error of `op`.
    pub(crate) fn to_strings(&self, op: &'static str) -> Result<Vec<String>> {
        // SAFETY: the handle is live.
        let len = unsafe { sys::mlx_vector_string_size(self.0) };
        (0..len)
            .map(|i| {
                let mut text: *mut std::ffi::c_char = std::ptr::null_mut();
                // SAFETY: `i` is in range; mlx-c points `text` at the vector's own string.
                ffi::status(op, || unsafe { sys::mlx_vector_string_get(&mut text, self.0, i) })?;
                if text.is_null() {
                    return Err(crate::Error::invalid(op, "MLX returned a NULL string"));
                }
                // SAFETY: non-NULL and NUL-terminated; owned by the vector, live while `self` is.
                let text = unsafe { std::ffi::CStr::from_ptr(text) };
                text.to_str()
                    .map(str::to_owned)
                    .map_err(|_| crate::Error::invalid(op, format!("{text:?} is not valid UTF-8")))
            })
            .collect()
    }
}

impl Drop for VectorString {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_vector_string_free(self.0) });
    }
}
