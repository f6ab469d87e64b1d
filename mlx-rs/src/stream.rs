//! Streams: ordered queues of work on a device.
//!
//! Since MLX 0.31 a stream belongs to the thread that created it, and each thread has its own
//! default stream per device. [`Stream`] is therefore neither `Send` nor `Sync`: create streams on
//! the thread that uses them.

use std::fmt;
use std::marker::PhantomData;

use mlx_sys as sys;

use crate::device::Device;
use crate::error::Result;
use crate::ffi;

/// A stream of work on one device, owned by the thread that created it.
pub struct Stream {
    raw: sys::mlx_stream,
    /// Streams are tied to their thread.
    _thread_bound: PhantomData<*const ()>,
}

impl Stream {
    fn from_raw(raw: sys::mlx_stream) -> Stream {
        Stream { raw, _thread_bound: PhantomData }
    }

    /// This thread's default stream on the default device: what the `foo(..)` form of every op
    /// runs on.
    pub fn thread_default() -> Result<Stream> {
        Stream::default_for(&Device::default_device()?)
    }

    /// This thread's default stream on `device`.
    pub fn default_for(device: &Device) -> Result<Stream> {
        ffi::init();
        // SAFETY: a fresh handle owned by `stream`, filled by the call.
        let mut stream = Stream::from_raw(unsafe { sys::mlx_stream_new() });
        // SAFETY: both handles are live.
        ffi::status("default_stream", || unsafe {
            sys::mlx_get_default_stream(&mut stream.raw, device.raw())
        })?;
        Ok(stream)
    }

    /// A new stream on `device`, owned by this thread.
    pub fn new(device: &Device) -> Result<Stream> {
        ffi::init();
        // SAFETY: `device` is live; mlx-c returns an empty handle on failure.
        let stream = Stream::from_raw(unsafe { sys::mlx_stream_new_device(device.raw()) });
        if stream.raw.ctx.is_null() {
            return Err(ffi::failed("new_stream"));
        }
        Ok(stream)
    }

    /// This thread's default stream on the CPU.
    pub fn cpu() -> Result<Stream> {
        Stream::default_for(&Device::cpu())
    }

    /// The device this stream runs on.
    pub fn device(&self) -> Result<Device> {
        let mut device = Device::empty();
        // SAFETY: both handles are live; the call fills `device`, which owns the result.
        ffi::status("stream_device", || unsafe {
            sys::mlx_stream_get_device(device.raw_mut(), self.raw)
        })?;
        Ok(device)
    }

    /// Makes this stream the calling thread's default for its device until the returned guard is
    /// dropped, which restores the previous one.
    pub fn scoped_default(&self) -> Result<DefaultStreamGuard> {
        let previous = Stream::default_for(&self.device()?)?;
        // SAFETY: `self.raw` is live.
        ffi::status("set_default_stream", || unsafe { sys::mlx_set_default_stream(self.raw) })?;
        Ok(DefaultStreamGuard { previous })
    }

    /// Waits until every operation queued on this stream has finished.
    pub fn synchronize(&self) -> Result<()> {
        // SAFETY: `self.raw` is live.
        ffi::status("synchronize", || unsafe { sys::mlx_synchronize(self.raw) })
    }

    pub(crate) fn raw(&self) -> sys::mlx_stream {
        self.raw
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        unsafe { sys::mlx_stream_free(self.raw) };
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: `self.raw` is live; the string is owned by `string_out`.
        match ffi::string_out("stream_tostring", |s| unsafe {
            sys::mlx_stream_tostring(s, self.raw)
        }) {
            Ok(text) => f.write_str(&text),
            Err(_) => f.write_str("Stream(?)"),
        }
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Restores the previous default stream when dropped (see [`Stream::scoped_default`]).
#[derive(Debug)]
#[must_use = "the previous default comes back when the guard is dropped"]
pub struct DefaultStreamGuard {
    previous: Stream,
}

impl Drop for DefaultStreamGuard {
    fn drop(&mut self) {
        // SAFETY: the stream is live; restoring a stream that was the default cannot fail.
        let _ = unsafe { sys::mlx_set_default_stream(self.previous.raw) };
    }
}
