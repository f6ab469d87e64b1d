//! `Display` and `Debug` for [`Array`], in the style of Python MLX's repr.

use std::fmt;

use mlx_sys as sys;

use super::Array;
use crate::ffi;

impl fmt::Display for Array {
    /// Evaluates the array and prints it like Python: `array([1, 2], dtype=int32)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text =
            // SAFETY: the array handle is live; the string is owned by `string_out`.
            ffi::string_out("array_tostring", |s| unsafe { sys::mlx_array_tostring(s, self.raw()) });
        match text {
            Ok(text) => f.write_str(&text),
            Err(err) => write!(f, "<array shape={:?} dtype={}: {err}>", self.shape(), self.dtype()),
        }
    }
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
