//! Devices: where arrays are computed.
//!
//! The default device is the GPU when the loaded MLX has one (CUDA on Linux, Metal on macOS) and
//! the CPU otherwise. MLX keeps one default device for the whole process.

use std::fmt;

use mlx_sys as sys;

use crate::error::{Error, ErrorKind, Result};
use crate::ffi;

/// The kind of a [`Device`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceType {
    /// The CPU.
    Cpu,
    /// A GPU (CUDA or Metal).
    Gpu,
}

impl DeviceType {
    fn to_raw(self) -> sys::mlx_device_type {
        match self {
            DeviceType::Cpu => sys::MLX_CPU,
            DeviceType::Gpu => sys::MLX_GPU,
        }
    }
}

/// A compute device, as in `mlx.core.Device`.
pub struct Device {
    raw: sys::mlx_device,
}

// SAFETY: an mlx_device owns an immutable `mlx::core::Device` value (a type and an index); it is
// never mutated after creation, so sharing and sending it is sound. Tested in `tests/array.rs`
// (`devices_can_be_shared_across_threads`).
unsafe impl Send for Device {}
// SAFETY: as above; every method takes `&self` and only reads.
unsafe impl Sync for Device {}

impl Device {
    /// The device `index` of `kind`. MLX checks the index when the device is used.
    pub fn new(kind: DeviceType, index: i32) -> Device {
        ffi::init();
        // SAFETY: no preconditions; the handle is owned by the result.
        let raw = unsafe { sys::mlx_device_new_type(kind.to_raw(), index) };
        Device { raw }
    }

    /// The first CPU.
    pub fn cpu() -> Device {
        Device::new(DeviceType::Cpu, 0)
    }

    /// The first GPU.
    pub fn gpu() -> Device {
        Device::new(DeviceType::Gpu, 0)
    }

    /// The current default device.
    pub fn default_device() -> Result<Device> {
        let mut device = Device::empty();
        // SAFETY: `device.raw` is a live handle that the call fills.
        ffi::status("default_device", || unsafe { sys::mlx_get_default_device(device.raw_mut()) })?;
        Ok(device)
    }

    /// Makes this device the default for the whole process.
    pub fn set_default(&self) -> Result<()> {
        if !self.is_available() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "set_default_device",
                format!("{self} is not available in this build of MLX"),
            ));
        }
        // SAFETY: `self.raw` is live.
        ffi::status("set_default_device", || unsafe { sys::mlx_set_default_device(self.raw) })
    }

    /// Makes this device the default until the returned guard is dropped, which restores the
    /// previous default. The default device is process-wide: other threads see the change too.
    pub fn scoped_default(&self) -> Result<DefaultDeviceGuard> {
        let previous = Device::default_device()?;
        self.set_default()?;
        Ok(DefaultDeviceGuard { previous })
    }

    /// The kind of this device.
    pub fn device_type(&self) -> DeviceType {
        let mut kind = sys::MLX_CPU;
        // SAFETY: `self.raw` is live; the call only reads it. It cannot fail for a live handle.
        unsafe { sys::mlx_device_get_type(&mut kind, self.raw) };
        if kind == sys::MLX_GPU { DeviceType::Gpu } else { DeviceType::Cpu }
    }

    /// The index of this device among those of its kind.
    pub fn index(&self) -> i32 {
        let mut index = 0;
        // SAFETY: `self.raw` is live; the call only reads it.
        unsafe { sys::mlx_device_get_index(&mut index, self.raw) };
        index
    }

    /// True when the loaded MLX can run on this device.
    pub fn is_available(&self) -> bool {
        let mut available = false;
        // SAFETY: `self.raw` is live; the call only reads it.
        let status = unsafe { sys::mlx_device_is_available(&mut available, self.raw) };
        status == 0 && available
    }

    /// An empty handle for mlx-c to fill.
    pub(crate) fn empty() -> Device {
        ffi::init();
        // SAFETY: no preconditions; the handle is owned by the result.
        let raw = unsafe { sys::mlx_device_new() };
        Device { raw }
    }

    pub(crate) fn raw(&self) -> sys::mlx_device {
        self.raw
    }

    pub(crate) fn raw_mut(&mut self) -> *mut sys::mlx_device {
        &mut self.raw
    }
}

impl Clone for Device {
    fn clone(&self) -> Device {
        Device::new(self.device_type(), self.index())
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Device) -> bool {
        self.device_type() == other.device_type() && self.index() == other.index()
    }
}

impl Eq for Device {}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        unsafe { sys::mlx_device_free(self.raw) };
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: `self.raw` is live; the string is owned by `string_out`.
        match ffi::string_out("device_tostring", |s| unsafe {
            sys::mlx_device_tostring(s, self.raw)
        }) {
            Ok(text) => f.write_str(&text),
            Err(_) => write!(f, "Device({:?}, {})", self.device_type(), self.index()),
        }
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Restores the previous default device when dropped (see [`Device::scoped_default`]).
#[derive(Debug)]
#[must_use = "the previous default comes back when the guard is dropped"]
pub struct DefaultDeviceGuard {
    previous: Device,
}

impl Drop for DefaultDeviceGuard {
    fn drop(&mut self) {
        // The previous default was available when it was the default; nothing to report.
        let _ = self.previous.set_default();
    }
}
