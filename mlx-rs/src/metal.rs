//! Metal-specific functions, as in `mlx.core.metal`. Off macOS they report that Metal is not
//! available, and the capture functions return an error from MLX.

use mlx_sys as sys;

use crate::error::Result;
use crate::ffi;

/// True when the loaded MLX runs on Metal.
pub fn is_available() -> bool {
    ffi::metal_available()
}

/// Starts a GPU trace capture written to `path` (a `.gputrace`); needs `MTL_CAPTURE_ENABLED=1`.
pub fn start_capture(path: &str) -> Result<()> {
    let path = ffi::c_string("metal_start_capture", path)?;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    ffi::status("metal_start_capture", || unsafe { sys::mlx_metal_start_capture(path.as_ptr()) })
}

/// Stops the capture started by [`start_capture`].
pub fn stop_capture() -> Result<()> {
    // SAFETY: no arguments.
    ffi::status("metal_stop_capture", || unsafe { sys::mlx_metal_stop_capture() })
}

/// Where MLX looks for its `mlx.metallib` kernel library.
pub fn metallib_path() -> Result<String> {
    // SAFETY: the string is owned by `string_out`.
    ffi::string_out("metal_metallib_path", |s| unsafe { sys::mlx_metal_get_metallib_path(s) })
}

/// Makes MLX load its kernels from the `mlx.metallib` at `path` (call before any GPU work).
pub fn set_metallib_path(path: &str) -> Result<()> {
    let path = ffi::c_string("metal_set_metallib_path", path)?;
    // SAFETY: `path` is NUL-terminated and outlives the call; mlx-c copies it.
    ffi::status("metal_set_metallib_path", || unsafe {
        sys::mlx_metal_set_metallib_path(path.as_ptr())
    })
}
