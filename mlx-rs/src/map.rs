//! Owned wrappers of mlx-c's string-keyed maps (`mlx_map_string_to_array`,
//! `mlx_map_string_to_string`), converted to and from Rust `HashMap`s at the boundary.

use std::collections::HashMap;
use std::ffi::{CStr, c_char};

use mlx_sys as sys;

use crate::array::Array;
use crate::error::{Error, Result};
use crate::ffi;

/// What mlx-c's map iterators return past the last entry.
const END: std::ffi::c_int = 2;

/// Decodes a key or value that mlx-c handed out; non-UTF-8 text is an error of `op`.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string that is live for the duration of the call.
unsafe fn decode(op: &'static str, text: *const c_char) -> Result<String> {
    if text.is_null() {
        return Err(Error::invalid(op, "MLX returned a NULL string"));
    }
    // SAFETY: non-NULL and NUL-terminated per the contract of this function.
    let text = unsafe { CStr::from_ptr(text) };
    text.to_str()
        .map(str::to_owned)
        .map_err(|_| Error::invalid(op, format!("{text:?} is not valid UTF-8")))
}

/// An owned `mlx_map_string_to_array`.
pub(crate) struct MapStringToArray(sys::mlx_map_string_to_array);

impl MapStringToArray {
    /// An empty map, to be filled by an mlx-c call or by [`MapStringToArray::insert`].
    pub(crate) fn new() -> MapStringToArray {
        // SAFETY: no preconditions; freed in `Drop`.
        MapStringToArray(ffi::call(|| unsafe { sys::mlx_map_string_to_array_new() }))
    }

    /// A map sharing the given arrays (MLX references, not copies).
    pub(crate) fn from_map<K: AsRef<str>>(
        op: &'static str,
        arrays: &HashMap<K, Array>,
    ) -> Result<MapStringToArray> {
        let map = MapStringToArray::new();
        for (key, value) in arrays {
            map.insert(op, key.as_ref(), value)?;
        }
        Ok(map)
    }

    /// Inserts (or replaces) `key`.
    pub(crate) fn insert(&self, op: &'static str, key: &str, value: &Array) -> Result<()> {
        let key = ffi::c_string(op, key)?;
        // SAFETY: the map and the array are live; `key` is NUL-terminated and mlx-c copies it.
        ffi::status(op, || unsafe {
            sys::mlx_map_string_to_array_insert(self.0, key.as_ptr(), value.raw())
        })
    }

    /// The raw handle, borrowed.
    pub(crate) fn raw(&self) -> sys::mlx_map_string_to_array {
        self.0
    }

    /// A pointer to the raw handle, for mlx-c calls that fill it.
    pub(crate) fn as_raw_mut(&mut self) -> *mut sys::mlx_map_string_to_array {
        &mut self.0
    }

    /// The entries, each array sharing the map's.
    pub(crate) fn to_map(&self, op: &'static str) -> Result<HashMap<String, Array>> {
        // SAFETY: the map is live; the iterator is freed by `Iter`'s `Drop` before the map.
        let iter =
            ArrayIter(ffi::call(|| unsafe { sys::mlx_map_string_to_array_iterator_new(self.0) }));
        let mut out = HashMap::new();
        loop {
            let mut key: *const c_char = std::ptr::null();
            let mut value = ffi::new_array();
            // SAFETY: the iterator and the output handles are live. mlx-c returns `END` past
            // the last entry.
            let status = ffi::call(|| unsafe {
                sys::mlx_map_string_to_array_iterator_next(&mut key, value.as_raw_mut(), iter.0)
            });
            if status == END {
                break;
            }
            ffi::check(op, status)?;
            // SAFETY: `key` points into the map's entry, which lives while `self` does.
            let key = unsafe { decode(op, key) }?;
            out.insert(key, value);
        }
        Ok(out)
    }
}

impl Drop for MapStringToArray {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_map_string_to_array_free(self.0) });
    }
}

/// An owned `mlx_map_string_to_array_iterator`.
struct ArrayIter(sys::mlx_map_string_to_array_iterator);

impl Drop for ArrayIter {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_map_string_to_array_iterator_free(self.0) });
    }
}

/// An owned `mlx_map_string_to_string`.
pub(crate) struct MapStringToString(sys::mlx_map_string_to_string);

impl MapStringToString {
    /// An empty map, to be filled by an mlx-c call or by [`MapStringToString::insert`].
    pub(crate) fn new() -> MapStringToString {
        // SAFETY: no preconditions; freed in `Drop`.
        MapStringToString(ffi::call(|| unsafe { sys::mlx_map_string_to_string_new() }))
    }

    /// A map holding copies of the given entries.
    pub(crate) fn from_map<K: AsRef<str>, V: AsRef<str>>(
        op: &'static str,
        entries: &HashMap<K, V>,
    ) -> Result<MapStringToString> {
        let map = MapStringToString::new();
        for (key, value) in entries {
            map.insert(op, key.as_ref(), value.as_ref())?;
        }
        Ok(map)
    }

    /// Inserts (or replaces) `key`.
    pub(crate) fn insert(&self, op: &'static str, key: &str, value: &str) -> Result<()> {
        let key = ffi::c_string(op, key)?;
        let value = ffi::c_string(op, value)?;
        // SAFETY: the map is live; both strings are NUL-terminated and mlx-c copies them.
        ffi::status(op, || unsafe {
            sys::mlx_map_string_to_string_insert(self.0, key.as_ptr(), value.as_ptr())
        })
    }

    /// The raw handle, borrowed.
    pub(crate) fn raw(&self) -> sys::mlx_map_string_to_string {
        self.0
    }

    /// A pointer to the raw handle, for mlx-c calls that fill it.
    pub(crate) fn as_raw_mut(&mut self) -> *mut sys::mlx_map_string_to_string {
        &mut self.0
    }

    /// The entries, copied.
    pub(crate) fn to_map(&self, op: &'static str) -> Result<HashMap<String, String>> {
        // SAFETY: the map is live; the iterator is freed by `Drop` before the map.
        let iter =
            StringIter(ffi::call(|| unsafe { sys::mlx_map_string_to_string_iterator_new(self.0) }));
        let mut out = HashMap::new();
        loop {
            let mut key: *const c_char = std::ptr::null();
            let mut value: *const c_char = std::ptr::null();
            // SAFETY: the iterator is live; mlx-c returns `END` past the last entry.
            let status = ffi::call(|| unsafe {
                sys::mlx_map_string_to_string_iterator_next(&mut key, &mut value, iter.0)
            });
            if status == END {
                break;
            }
            ffi::check(op, status)?;
            // SAFETY: both point into the map's entry, which lives while `self` does.
            let (key, value) = unsafe { (decode(op, key)?, decode(op, value)?) };
            out.insert(key, value);
        }
        Ok(out)
    }
}

impl Drop for MapStringToString {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_map_string_to_string_free(self.0) });
    }
}

/// An owned `mlx_map_string_to_string_iterator`.
struct StringIter(sys::mlx_map_string_to_string_iterator);

impl Drop for StringIter {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_map_string_to_string_iterator_free(self.0) });
    }
}

/// Reads a map that mlx-c owns and lends to a callback, without freeing it.
pub(crate) fn read_borrowed_array_map(
    op: &'static str,
    raw: sys::mlx_map_string_to_array,
) -> Result<HashMap<String, Array>> {
    std::mem::ManuallyDrop::new(MapStringToArray(raw)).to_map(op)
}
