//! Memory management, as in `mlx.core`'s `get_active_memory`, `set_memory_limit`, ... and
//! `mlx.core.device_info`.
//!
//! MLX allocates buffers through one allocator per backend (the GPU's when the loaded MLX has one,
//! the CPU's otherwise) and keeps freed buffers in a cache for reuse. The numbers here are that
//! allocator's, in bytes, for the whole process: arrays made on every thread count.
//!
//! ```
//! use mlx_rs::{memory, ops, Array};
//! let a = ops::add(&Array::from_slice(&[1.0f32; 1024], &[1024])?, &Array::scalar(1.0f32))?;
//! a.eval()?;
//! assert!(memory::get_active_memory()? >= a.nbytes());
//! assert!(memory::get_peak_memory()? >= memory::get_active_memory()?);
//! drop(a);
//! memory::clear_cache()?;
//! assert_eq!(memory::get_cache_memory()?, 0);
//! # Ok::<(), mlx_rs::Error>(())
//! ```

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int};

use mlx_sys as sys;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::ffi;

/// Calls an mlx-c getter that writes a `size_t`.
fn size_out(op: &'static str, call: impl FnOnce(*mut usize) -> c_int) -> Result<usize> {
    let mut value = 0usize;
    ffi::status(op, || call(&mut value))?;
    Ok(value)
}

/// The bytes held by live arrays, as in `mlx.core.get_active_memory`. Excludes the cache.
pub fn get_active_memory() -> Result<usize> {
    // SAFETY: the call writes one `size_t` into a live local.
    size_out("get_active_memory", |out| unsafe { sys::mlx_get_active_memory(out) })
}

/// The most active memory seen since the start of the process or the last
/// [`reset_peak_memory`], as in `mlx.core.get_peak_memory`.
pub fn get_peak_memory() -> Result<usize> {
    // SAFETY: the call writes one `size_t` into a live local.
    size_out("get_peak_memory", |out| unsafe { sys::mlx_get_peak_memory(out) })
}

/// Resets the peak memory to zero, as in `mlx.core.reset_peak_memory`.
pub fn reset_peak_memory() -> Result<()> {
    // SAFETY: no arguments.
    ffi::status("reset_peak_memory", || unsafe { sys::mlx_reset_peak_memory() })
}

/// The bytes of freed buffers kept for reuse, as in `mlx.core.get_cache_memory`.
pub fn get_cache_memory() -> Result<usize> {
    // SAFETY: the call writes one `size_t` into a live local.
    size_out("get_cache_memory", |out| unsafe { sys::mlx_get_cache_memory(out) })
}

/// Frees the cached buffers, as in `mlx.core.clear_cache`.
pub fn clear_cache() -> Result<()> {
    // SAFETY: no arguments.
    ffi::status("clear_cache", || unsafe { sys::mlx_clear_cache() })
}

/// The memory limit in bytes: a guideline for the most memory MLX uses, past which it waits
/// for running work to finish (and frees the cache) before allocating more.
///
/// This crate also treats it as a hard bound on one array: an op whose result would need more
/// bytes than the limit returns an error when it is built, before anything is evaluated. (MLX
/// 0.32.2's CPU allocator hands a null buffer to the kernel when an allocation fails, which
/// crashes the process.) Views that share their input's buffer (`broadcast_to`, `as_strided`)
/// are exempt. Raise the limit with [`set_memory_limit`] to build larger arrays.
pub fn get_memory_limit() -> Result<usize> {
    // SAFETY: the call writes one `size_t` into a live local.
    size_out("get_memory_limit", |out| unsafe { sys::mlx_get_memory_limit(out) })
}

/// Sets the memory limit (see [`get_memory_limit`]) and returns the previous one, as in
/// `mlx.core.set_memory_limit`.
///
/// ```
/// use mlx_rs::memory;
/// let previous = memory::set_memory_limit(1 << 30)?;
/// assert_eq!(memory::get_memory_limit()?, 1 << 30);
/// memory::set_memory_limit(previous)?; // restore
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn set_memory_limit(limit: usize) -> Result<usize> {
    // SAFETY: the call writes one `size_t` into a live local.
    let previous =
        size_out("set_memory_limit", |out| unsafe { sys::mlx_set_memory_limit(out, limit) })?;
    ffi::set_output_limit(limit);
    Ok(previous)
}

/// Sets the most memory the cache may hold and returns the previous limit, as in
/// `mlx.core.set_cache_limit`. `0` disables the cache; buffers beyond the limit are freed.
pub fn set_cache_limit(limit: usize) -> Result<usize> {
    // SAFETY: the call writes one `size_t` into a live local.
    size_out("set_cache_limit", |out| unsafe { sys::mlx_set_cache_limit(out, limit) })
}

/// Sets the wired (resident, never paged out) memory limit and returns the previous one, as in
/// `mlx.core.set_wired_limit`.
///
/// Only Metal (macOS 15+) wires memory; elsewhere MLX ignores the value and returns 0. On Metal
/// a limit above the system's wired-memory maximum is an error.
pub fn set_wired_limit(limit: usize) -> Result<usize> {
    // SAFETY: the call writes one `size_t` into a live local.
    size_out("set_wired_limit", |out| unsafe { sys::mlx_set_wired_limit(out, limit) })
}

/// One value of [`device_info`]: MLX reports either text or a size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceInfoValue {
    /// A text property, e.g. `device_name`.
    String(String),
    /// A numeric property, e.g. `memory_size` in bytes.
    Size(usize),
}

/// An owned `mlx_device_info`.
struct DeviceInfo(sys::mlx_device_info);

impl Drop for DeviceInfo {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_device_info_free(self.0) });
    }
}

/// The properties of `device`, as in `mlx.core.device_info`: always `device_name` and
/// `architecture`; GPU backends add more (e.g. `memory_size`, `max_recommended_working_set_size`).
///
/// ```
/// use mlx_rs::{memory::{self, DeviceInfoValue}, Device};
/// let info = memory::device_info(&Device::cpu())?;
/// assert!(matches!(info.get("device_name"), Some(DeviceInfoValue::String(_))));
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn device_info(device: &Device) -> Result<HashMap<String, DeviceInfoValue>> {
    const OP: &str = "device_info";
    // SAFETY: no preconditions; the handle is owned by `info` and freed on every path.
    let mut info = DeviceInfo(ffi::call(|| unsafe { sys::mlx_device_info_new() }));
    // SAFETY: both handles are live; the call fills `info`.
    ffi::status(OP, || unsafe { sys::mlx_device_info_get(&mut info.0, device.raw()) })?;
    let mut keys = crate::vector::VectorString::new();
    // SAFETY: both handles are live; the call fills `keys`.
    ffi::status(OP, || unsafe { sys::mlx_device_info_get_keys(keys.as_raw_mut(), info.0) })?;
    let mut out = HashMap::new();
    for key in keys.to_strings(OP)? {
        let c_key = ffi::c_string(OP, &key)?;
        let mut present = false;
        // SAFETY: live handle, NUL-terminated key; writes one bool.
        ffi::status(OP, || unsafe {
            sys::mlx_device_info_has_key(&mut present, info.0, c_key.as_ptr())
        })?;
        if !present {
            continue;
        }
        let mut is_string = false;
        // SAFETY: as above.
        ffi::status(OP, || unsafe {
            sys::mlx_device_info_is_string(&mut is_string, info.0, c_key.as_ptr())
        })?;
        let value = if is_string {
            let mut text: *const c_char = std::ptr::null();
            // SAFETY: as above; the string stays owned by `info`, which outlives its use here.
            ffi::status(OP, || unsafe {
                sys::mlx_device_info_get_string(&mut text, info.0, c_key.as_ptr())
            })?;
            if text.is_null() {
                return Err(Error::invalid(OP, format!("MLX returned no text for {key:?}")));
            }
            // SAFETY: non-NULL, NUL-terminated, owned by `info` (still live).
            DeviceInfoValue::String(unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned())
        } else {
            let mut size = 0usize;
            // SAFETY: as above; writes one `size_t`.
            ffi::status(OP, || unsafe {
                sys::mlx_device_info_get_size(&mut size, info.0, c_key.as_ptr())
            })?;
            DeviceInfoValue::Size(size)
        };
        out.insert(key, value);
    }
    Ok(out)
}
