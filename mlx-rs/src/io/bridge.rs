//! The bridge from Rust's `Read + Seek` / `Write` to mlx-c's `mlx_io_reader` / `mlx_io_writer`.
//!
//! mlx-c calls a table of `extern "C"` callbacks with an opaque descriptor. Here the descriptor
//! is a boxed `Arc<Bridge<T>>`; the caller keeps another `Arc`. The bridge holds a raw pointer
//! to the caller's reader or writer only while the load or save call runs: [`Attached`] detaches
//! it (under the bridge's lock, so no callback is using it) before the borrow ends. MLX may keep
//! its reader object alive longer (arrays hold it until they are dropped); callbacks arriving
//! after detaching find no target and report failure, and the boxed descriptor is freed by the
//! `free` callback whenever MLX lets go.
//!
//! Every callback runs inside `catch_unwind` and reports failure through its return value. The
//! first I/O error or panic is kept in the bridge and reported by the load or save call in place
//! of MLX's generic "unable to read" message.

use std::ffi::{CString, c_char, c_int, c_void};
use std::io::{Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard};

use mlx_sys as sys;

use crate::error::{Error, ErrorKind, Result};
use crate::ffi;

/// What the callbacks of one direction do with the caller's object.
pub(crate) trait Target: Send {
    /// Reads up to `buf.len()` bytes at the current position.
    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Writes all of `data`.
    fn write_all_of(&mut self, data: &[u8]) -> std::io::Result<()>;
    /// Moves the position.
    fn seek_to(&mut self, pos: SeekFrom) -> std::io::Result<u64>;
    /// The current position.
    fn position(&mut self) -> std::io::Result<u64>;
}

/// A reader: `Read + Seek`.
pub(crate) struct ReaderTarget<R>(pub(crate) R);

impl<R: Read + Seek + Send> Target for ReaderTarget<R> {
    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
    fn write_all_of(&mut self, _data: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("this stream is open for reading only"))
    }
    fn seek_to(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
    fn position(&mut self) -> std::io::Result<u64> {
        self.0.stream_position()
    }
}

/// A writer: `Write` only. The position is the count of bytes written; seeking is supported
/// only to where the writer already is.
pub(crate) struct WriterTarget<W> {
    pub(crate) inner: W,
    pub(crate) written: u64,
}

impl<W: Write + Send> Target for WriterTarget<W> {
    fn read_some(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("this stream is open for writing only"))
    }
    fn write_all_of(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }
    fn seek_to(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::Current(delta) => self.written.checked_add_signed(delta),
            SeekFrom::End(_) => None,
        };
        match target {
            Some(at) if at == self.written => Ok(at),
            _ => Err(std::io::Error::other("the writer does not support seeking")),
        }
    }
    fn position(&mut self) -> std::io::Result<u64> {
        Ok(self.written)
    }
}

/// The state shared between the caller and mlx-c's descriptor.
pub(crate) struct Bridge<T> {
    /// The caller's reader or writer while attached; `None` once detached.
    target: Mutex<Option<*mut T>>,
    /// The first I/O error or panic a callback met.
    error: Mutex<Option<String>>,
    /// What MLX calls the stream in its messages.
    label: CString,
}

// SAFETY: `target` points at a `T: Send` that the caller lends for the duration of one call and
// that is only reached under the mutex; it is detached before the loan ends. The other fields are
// `Send + Sync` on their own.
unsafe impl<T: Send> Send for Bridge<T> {}
// SAFETY: as above: every access to the pointer goes through the mutex.
unsafe impl<T: Send> Sync for Bridge<T> {}

fn lock<X>(mutex: &Mutex<X>) -> MutexGuard<'_, X> {
    // A panic inside a user's reader poisons nothing we rely on: the data stays consistent.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T: Target> Bridge<T> {
    fn record(&self, message: String) {
        let mut slot = lock(&self.error);
        if slot.is_none() {
            *slot = Some(message);
        }
    }

    fn failed(&self) -> bool {
        lock(&self.error).is_some()
    }

    /// Runs `f` on the attached target, recording an I/O error; `None` when detached or failed.
    fn with_target<X>(&self, f: impl FnOnce(&mut T) -> std::io::Result<X>) -> Option<X> {
        let guard = lock(&self.target);
        let Some(pointer) = *guard else {
            drop(guard);
            self.record("the stream was used after the call that lent it returned".to_owned());
            return None;
        };
        // SAFETY: while attached, `pointer` is the caller's exclusive borrow, live until
        // `detach`, which takes this same lock first; holding the lock makes this the only access.
        let target = unsafe { &mut *pointer };
        match f(target) {
            Ok(value) => Some(value),
            Err(error) => {
                drop(guard);
                self.record(error.to_string());
                None
            }
        }
    }

    /// Reads exactly `buf.len()` bytes unless the stream ends or fails; returns the count read.
    fn read_fully(&self, buf: &mut [u8], at: Option<u64>) -> usize {
        self.with_target(|target| {
            if let Some(at) = at {
                target.seek_to(SeekFrom::Start(at))?;
            }
            let mut done = 0;
            while done < buf.len() {
                match target.read_some(&mut buf[done..]) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(done)
        })
        .unwrap_or(0)
    }
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// Runs one call of the caller's reader or writer made by the crate itself (not through mlx-c):
/// an I/O error is an [`ErrorKind::Io`] error of `op` prefixed with `what`, and a panic is one
/// too, so every use of a lent stream reports failure the same way.
pub(crate) fn user_io<X>(
    op: &'static str,
    what: &str,
    call: impl FnOnce() -> std::io::Result<X>,
) -> Result<X> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Error::new(ErrorKind::Io, op, format!("{what}: {e}"))),
        Err(payload) => Err(Error::new(
            ErrorKind::Io,
            op,
            format!("{what}: the stream panicked: {}", panic_text(&*payload)),
        )),
    }
}

/// Runs a callback body, turning a panic into a recorded error and the `failure` value.
fn guarded<T: Target, X>(desc: *mut c_void, failure: X, body: impl FnOnce(&Bridge<T>) -> X) -> X {
    if desc.is_null() {
        return failure;
    }
    // SAFETY: mlx-c passes back the descriptor given to `mlx_io_*_new`: a live
    // `Box<Arc<Bridge<T>>>`, freed only by the `free` callback, after every other callback.
    let bridge: &Bridge<T> = unsafe { &*desc.cast::<Arc<Bridge<T>>>() };
    match catch_unwind(AssertUnwindSafe(|| body(bridge))) {
        Ok(value) => value,
        Err(payload) => {
            let what = panic_text(&*payload);
            // Recording cannot panic except on allocation failure, which aborts anyway.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                bridge.record(format!("the stream panicked: {what}"))
            }));
            failure
        }
    }
}

extern "C" fn is_open<T: Target>(desc: *mut c_void) -> bool {
    guarded::<T, _>(desc, false, |_| true)
}

extern "C" fn good<T: Target>(desc: *mut c_void) -> bool {
    guarded::<T, _>(desc, false, |bridge| !bridge.failed())
}

extern "C" fn tell<T: Target>(desc: *mut c_void) -> usize {
    guarded::<T, _>(desc, 0, |bridge| {
        bridge.with_target(|t| t.position()).map_or(0, |p| usize::try_from(p).unwrap_or(usize::MAX))
    })
}

extern "C" fn seek<T: Target>(desc: *mut c_void, offset: i64, whence: c_int) -> c_int {
    guarded::<T, _>(desc, -1, |bridge| {
        let pos = match whence {
            libc::SEEK_SET => match u64::try_from(offset) {
                Ok(at) => SeekFrom::Start(at),
                Err(_) => return -1,
            },
            libc::SEEK_CUR => SeekFrom::Current(offset),
            libc::SEEK_END => SeekFrom::End(offset),
            _ => return -1,
        };
        bridge.with_target(|t| t.seek_to(pos)).map_or(-1, |_| 0)
    })
}

extern "C" fn read<T: Target>(desc: *mut c_void, data: *mut c_char, n: usize) -> usize {
    guarded::<T, _>(desc, 0, |bridge| {
        if n == 0 {
            return 0;
        }
        if data.is_null() {
            return 0;
        }
        // SAFETY: MLX passes a writable buffer of `n` bytes that lives for the call.
        let buf = unsafe { std::slice::from_raw_parts_mut(data.cast::<u8>(), n) };
        bridge.read_fully(buf, None)
    })
}

extern "C" fn read_at_offset<T: Target>(
    desc: *mut c_void,
    data: *mut c_char,
    n: usize,
    offset: usize,
) -> usize {
    guarded::<T, _>(desc, 0, |bridge| {
        if n == 0 {
            return 0;
        }
        if data.is_null() {
            return 0;
        }
        // SAFETY: MLX passes a writable buffer of `n` bytes that lives for the call.
        let buf = unsafe { std::slice::from_raw_parts_mut(data.cast::<u8>(), n) };
        bridge.read_fully(buf, Some(offset as u64))
    })
}

extern "C" fn write<T: Target>(desc: *mut c_void, data: *const c_char, n: usize) -> usize {
    guarded::<T, _>(desc, 0, |bridge| {
        if n == 0 {
            return 0;
        }
        if data.is_null() {
            return 0;
        }
        // SAFETY: MLX passes `n` readable bytes that live for the call.
        let buf = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) };
        bridge.with_target(|t| t.write_all_of(buf)).map_or(0, |()| n)
    })
}

extern "C" fn label<T: Target>(desc: *mut c_void) -> *const c_char {
    static FALLBACK: &std::ffi::CStr = c"a Rust stream";
    guarded::<T, _>(desc, FALLBACK.as_ptr(), |bridge| bridge.label.as_ptr())
}

extern "C" fn free<T: Target>(desc: *mut c_void) {
    if desc.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: the descriptor is the `Box<Arc<Bridge<T>>>` leaked in `Attached::new`; mlx-c
        // calls `free` once, when its reader or writer object is destroyed.
        drop(unsafe { Box::from_raw(desc.cast::<Arc<Bridge<T>>>()) });
    });
}

fn vtable<T: Target>() -> sys::mlx_io_vtable {
    sys::mlx_io_vtable {
        is_open: Some(is_open::<T>),
        good: Some(good::<T>),
        tell: Some(tell::<T>),
        seek: Some(seek::<T>),
        read: Some(read::<T>),
        read_at_offset: Some(read_at_offset::<T>),
        write: Some(write::<T>),
        label: Some(label::<T>),
        free: Some(free::<T>),
    }
}

/// Which mlx-c handle an [`Attached`] bridge is.
#[derive(Clone, Copy)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// A Rust reader or writer lent to mlx-c for one call. Dropping it detaches the target and
/// releases mlx-c's handle.
pub(crate) struct Attached<'a, T: Target> {
    bridge: Arc<Bridge<T>>,
    handle: *mut c_void,
    direction: Direction,
    _borrow: PhantomData<&'a mut T>,
}

impl<'a, T: Target + 'a> Attached<'a, T> {
    /// Lends `target` to a new mlx-c reader or writer labelled `name`.
    pub(crate) fn new(
        op: &'static str,
        target: &'a mut T,
        direction: Direction,
        name: &str,
    ) -> Result<Attached<'a, T>> {
        let label = CString::new(name).unwrap_or_else(|_| c"a Rust stream".to_owned());
        let bridge = Arc::new(Bridge {
            target: Mutex::new(Some(target as *mut T)),
            error: Mutex::new(None),
            label,
        });
        let desc = Box::into_raw(Box::new(Arc::clone(&bridge))).cast::<c_void>();
        // SAFETY: `desc` is a leaked `Box<Arc<Bridge<T>>>` matching the callbacks' type; on
        // success mlx-c owns it and frees it through `free`.
        let handle = ffi::call(|| unsafe {
            match direction {
                Direction::Read => sys::mlx_io_reader_new(desc, vtable::<T>()).ctx,
                Direction::Write => sys::mlx_io_writer_new(desc, vtable::<T>()).ctx,
            }
        });
        if handle.is_null() {
            // mlx-c failed (out of memory). Whether its reader object was built, and so freed
            // the descriptor through `free`, cannot be told: leak the small box rather than risk
            // freeing it twice. Detaching makes the leaked state harmless.
            *lock(&bridge.target) = None;
            return Err(ffi::failed(op));
        }
        let attached = Attached { bridge, handle, direction, _borrow: PhantomData };
        if !attached.descriptor_matches() {
            return Err(Error::new(ErrorKind::Io, op, "MLX lost track of the stream's descriptor"));
        }
        Ok(attached)
    }

    /// The mlx-c reader handle.
    pub(crate) fn reader(&self) -> sys::mlx_io_reader {
        sys::mlx_io_reader { ctx: self.handle }
    }

    /// The mlx-c writer handle.
    pub(crate) fn writer(&self) -> sys::mlx_io_writer {
        sys::mlx_io_writer { ctx: self.handle }
    }

    /// The I/O error or panic a callback recorded, as an [`ErrorKind::Io`] error of `op`.
    pub(crate) fn recorded(&self, op: &'static str) -> Option<Error> {
        let message = lock(&self.bridge.error).clone()?;
        let message = match self.describe() {
            Ok(label) if !label.is_empty() => format!("{message} (in {label})"),
            _ => message,
        };
        Some(Error::new(ErrorKind::Io, op, message))
    }

    /// Turns an mlx-c status into a `Result`, preferring a recorded I/O error to MLX's message.
    pub(crate) fn check(&self, op: &'static str, status: c_int) -> Result<()> {
        self.check_result(op, ffi::check(op, status))
    }

    /// `result` as an I/O error, replaced by the recorded I/O error if there is one (also when
    /// `result` is `Ok`: MLX does not always notice a failed read).
    pub(crate) fn check_result<X>(&self, op: &'static str, result: Result<X>) -> Result<X> {
        match self.recorded(op) {
            Some(error) => Err(error),
            None => super::io_error(result),
        }
    }

    /// MLX's description of the stream (its label).
    fn describe(&self) -> Result<String> {
        match self.direction {
            // SAFETY: the handle is live; the string is owned by `string_out`.
            Direction::Read => ffi::string_out("io_reader_tostring", |s| unsafe {
                sys::mlx_io_reader_tostring(s, self.reader())
            }),
            // SAFETY: as above.
            Direction::Write => ffi::string_out("io_writer_tostring", |s| unsafe {
                sys::mlx_io_writer_tostring(s, self.writer())
            }),
        }
    }

    /// Checks that mlx-c hands back this bridge's descriptor.
    fn descriptor_matches(&self) -> bool {
        let mut desc: *mut c_void = std::ptr::null_mut();
        // SAFETY: the handle is live; the call writes one pointer.
        let found = ffi::status("io_descriptor", || unsafe {
            match self.direction {
                Direction::Read => sys::mlx_io_reader_descriptor(&mut desc, self.reader()),
                Direction::Write => sys::mlx_io_writer_descriptor(&mut desc, self.writer()),
            }
        });
        if found.is_err() || desc.is_null() {
            return false;
        }
        // SAFETY: the descriptor is our live `Box<Arc<Bridge<T>>>` (mlx-c still holds it).
        let theirs: &Arc<Bridge<T>> = unsafe { &*desc.cast::<Arc<Bridge<T>>>() };
        Arc::ptr_eq(theirs, &self.bridge)
    }
}

impl<T: Target> Drop for Attached<'_, T> {
    fn drop(&mut self) {
        // Detach first: waits for a callback in progress, then no callback can reach the target.
        *lock(&self.bridge.target) = None;
        // SAFETY: the handle is owned by `self` and released once. MLX may keep its reader
        // object (and so the descriptor) alive longer; it then calls `free` itself.
        ffi::free(|| unsafe {
            match self.direction {
                Direction::Read => sys::mlx_io_reader_free(self.reader()),
                Direction::Write => sys::mlx_io_writer_free(self.writer()),
            }
        });
    }
}
