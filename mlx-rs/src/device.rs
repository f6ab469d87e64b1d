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

/// A compute device, as in `mlx.core.Device`: a kind and an index among the devices of that kind.
///
/// Equality is MLX's (same kind and same index), and hashing agrees with it.
///
/// ```
/// use mlx_rs::{Device, DeviceType};
/// let cpu = Device::cpu();
/// assert_eq!(cpu, Device::new(DeviceType::Cpu, 0));
/// assert_ne!(cpu, Device::gpu());
/// assert_eq!((cpu.device_type(), cpu.index()), (DeviceType::Cpu, 0));
/// ```
pub struct Device {
    raw: sys::mlx_device,
    /// Read once, through checked calls, when the handle was filled.
    kind: DeviceType,
    index: i32,
}

// SAFETY: an mlx_device owns an immutable `mlx::core::Device` value (a type and an index); it is
// never mutated after creation, so sharing and sending it is sound. Tested in `tests/array.rs`
// (`devices_can_be_shared_across_threads`).
unsafe impl Send for Device {}
// SAFETY: as above; every method takes `&self` and only reads.
unsafe impl Sync for Device {}

impl Device {
    /// The device `index` of `kind`. MLX checks the index when the device is used
    /// ([`Device::is_available`] says whether it exists).
    pub fn new(kind: DeviceType, index: i32) -> Device {
        ffi::init();
        // SAFETY: no preconditions; the handle is owned by the result.
        let raw = unsafe { sys::mlx_device_new_type(kind.to_raw(), index) };
        Device { raw, kind, index }
    }

    /// The first CPU.
    pub fn cpu() -> Device {
        Device::new(DeviceType::Cpu, 0)
    }

    /// The first GPU.
    pub fn gpu() -> Device {
        Device::new(DeviceType::Gpu, 0)
    }

    /// How many devices of `kind` the loaded MLX has, as `mlx.core.device_count`: 1 for the CPU,
    /// the number of GPUs (0 without a GPU backend) for [`DeviceType::Gpu`].
    ///
    /// ```
    /// use mlx_rs::{Device, DeviceType};
    /// assert_eq!(Device::count(DeviceType::Cpu)?, 1);
    /// let gpus = Device::count(DeviceType::Gpu)?;
    /// assert_eq!(gpus > 0, Device::gpu().is_available());
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn count(kind: DeviceType) -> Result<usize> {
        let mut count = 0;
        // SAFETY: writes one int.
        ffi::status("device_count", || unsafe {
            sys::mlx_device_count(&mut count, kind.to_raw())
        })?;
        usize::try_from(count).map_err(|_| {
            Error::new(ErrorKind::Mlx, "device_count", format!("MLX reported {count} devices"))
        })
    }

    /// The current default device (process-wide).
    ///
    /// ```
    /// use mlx_rs::Device;
    /// // Unless changed, the GPU when the loaded MLX has one, else the CPU.
    /// let default = Device::default_device()?;
    /// assert!(default.is_available());
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn default_device() -> Result<Device> {
        let mut raw = Device::empty_raw();
        // SAFETY: `raw` is a live handle that the call fills.
        let filled =
            ffi::status("default_device", || unsafe { sys::mlx_get_default_device(&mut raw) });
        Device::from_filled("default_device", raw, filled)
    }

    /// Makes this device the default for the whole process: every thread's `foo(..)` ops run on
    /// it from their next op on.
    pub fn set_default(&self) -> Result<()> {
        if !self.is_available() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "set_default_device",
                format!("{self} is not available in this build of MLX"),
            ));
        }
        // SAFETY: `self.raw` is live.
        let result =
            ffi::status("set_default_device", || unsafe { sys::mlx_set_default_device(self.raw) });
        // After the change, so that no thread caches the old default under the new generation.
        crate::stream::default_changed();
        result
    }

    /// Makes this device the default until the returned guard is dropped, which restores the
    /// previous default. The default device is process-wide: other threads see the change too.
    ///
    /// ```
    /// use mlx_rs::Device;
    /// let before = Device::default_device()?;
    /// {
    ///     let _cpu = Device::cpu().scoped_default()?;
    ///     assert_eq!(Device::default_device()?, Device::cpu());
    /// }
    /// assert_eq!(Device::default_device()?, before);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn scoped_default(&self) -> Result<DefaultDeviceGuard> {
        let previous = Device::default_device()?;
        self.set_default()?;
        Ok(DefaultDeviceGuard { previous })
    }

    /// The kind of this device.
    pub fn device_type(&self) -> DeviceType {
        self.kind
    }

    /// The index of this device among those of its kind.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// True when the loaded MLX can run on this device (its backend is present and the index is
    /// below [`Device::count`]).
    ///
    /// ```
    /// use mlx_rs::{Device, DeviceType};
    /// assert!(Device::cpu().is_available());
    /// assert!(!Device::new(DeviceType::Cpu, 1).is_available());
    /// ```
    pub fn is_available(&self) -> bool {
        let mut available = false;
        // SAFETY: `self.raw` is live; the call writes one bool. A failure (which MLX does not
        // raise for a live handle) reads as "not available", its message taken and cleared.
        let checked = ffi::status("device_is_available", || unsafe {
            sys::mlx_device_is_available(&mut available, self.raw)
        });
        checked.is_ok() && available
    }

    /// An empty handle for mlx-c to fill; owned by the caller until passed to `from_filled`.
    pub(crate) fn empty_raw() -> sys::mlx_device {
        ffi::init();
        // SAFETY: no preconditions; the caller owns the handle.
        ffi::call(|| unsafe { sys::mlx_device_new() })
    }

    /// Takes ownership of `raw`, which an mlx-c call has filled if `filled` is `Ok`; reads its
    /// kind and index through checked calls. `raw` is freed on every error path.
    pub(crate) fn from_filled(
        op: &'static str,
        raw: sys::mlx_device,
        filled: Result<()>,
    ) -> Result<Device> {
        /// Frees the handle unless it is handed on.
        struct Owned(sys::mlx_device);
        impl Drop for Owned {
            fn drop(&mut self) {
                // SAFETY: owned handle, freed once.
                ffi::free(|| unsafe { sys::mlx_device_free(self.0) });
            }
        }
        let owned = Owned(raw);
        filled?;
        let mut kind = sys::MLX_CPU;
        // SAFETY: the handle is live; the call writes one enum value.
        ffi::status(op, || unsafe { sys::mlx_device_get_type(&mut kind, owned.0) })?;
        let mut index = 0;
        // SAFETY: the handle is live; the call writes one int.
        ffi::status(op, || unsafe { sys::mlx_device_get_index(&mut index, owned.0) })?;
        let kind = if kind == sys::MLX_GPU { DeviceType::Gpu } else { DeviceType::Cpu };
        let raw = owned.0;
        std::mem::forget(owned);
        Ok(Device { raw, kind, index })
    }

    pub(crate) fn raw(&self) -> sys::mlx_device {
        self.raw
    }
}

impl Clone for Device {
    fn clone(&self) -> Device {
        Device::new(self.kind, self.index)
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Device) -> bool {
        // SAFETY: both handles are live; the call only reads them and cannot fail.
        unsafe { sys::mlx_device_equal(self.raw, other.raw) }
    }
}

impl Eq for Device {}

impl std::hash::Hash for Device {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // MLX's equality compares exactly these two.
        self.kind.hash(state);
        self.index.hash(state);
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_device_free(self.raw) });
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
