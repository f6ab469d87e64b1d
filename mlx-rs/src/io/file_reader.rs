//! The mlx-c reader of a file the crate opens itself, for the lazy path loads.
//!
//! MLX 0.32.2's own file reader does not advance its offset after a short `pread`, so a file
//! cut inside its data after loading is read as `Ok` with repeated bytes. This reader reads
//! with positioned reads and reports every short read: mlx-c then raises an error inside
//! MLX's `Load` primitive, and the evaluation fails.
//!
//! The descriptor given to mlx-c is a boxed `Arc<Source>`; [`FileReader`] keeps another `Arc`
//! (for the crate's own checks of the file) and mlx-c's handle. MLX's lazily loaded arrays keep
//! mlx-c's reader object, and with it the file, open until they are dropped; the `free`
//! callback then drops the box. MLX calls `read_at_offset` from its I/O threads, several at a
//! time: the file is only read with positioned reads, and the position of the sequential
//! `read` (used while the header is parsed) sits behind a mutex. Every callback runs inside
//! `catch_unwind`; a panic reports failure through the return value.

use std::ffi::{CString, c_char, c_int, c_void};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex};

use mlx_sys as sys;

use crate::error::{Error, ErrorKind, Result};
use crate::ffi;

/// Reads of at least twice this many bytes are split into parts read in parallel, as MLX's own
/// reader does (it reads 32 MiB batches on a pool of 4 threads).
const PART_BYTES: usize = 32 << 20;
/// The most parts one read is split into.
const MAX_PARTS: usize = 4;

/// What mlx-c's callbacks reach through the descriptor.
struct Source {
    file: File,
    /// The position of the sequential `read`.
    position: Mutex<u64>,
    /// What MLX calls the file in its messages (the path).
    label: CString,
}

impl Source {
    fn position(&self) -> u64 {
        *self.position.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_position(&self, at: u64) {
        *self.position.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = at;
    }
}

/// Reads `buf` from `offset` of `file` until it is full or the file ends; returns the count
/// read.
pub(super) fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let Some(at) = offset.checked_add(done as u64) else { break };
        match file.read_at(&mut buf[done..], at) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// [`read_up_to`] for a callback: a failed read counts as nothing read.
fn read_range(file: &File, buf: &mut [u8], offset: u64) -> usize {
    read_up_to(file, buf, offset).unwrap_or(0)
}

/// [`read_range`], in up to [`MAX_PARTS`] parts read in parallel for a large `buf` (the first
/// on this thread). A part whose thread cannot be started counts as unread, so the read fails.
fn read_parallel(file: &File, buf: &mut [u8], offset: u64) -> usize {
    let parts = (buf.len() / PART_BYTES).clamp(1, MAX_PARTS);
    let part_len = buf.len().div_ceil(parts);
    let mut chunks = buf.chunks_mut(part_len);
    let Some(first) = chunks.next() else { return 0 };
    std::thread::scope(|scope| {
        let others: Vec<_> = chunks
            .enumerate()
            .map(|(i, part)| {
                let at = offset + ((i + 1) * part_len) as u64;
                std::thread::Builder::new().spawn_scoped(scope, move || read_range(file, part, at))
            })
            .collect();
        let done = read_range(file, first, offset);
        done + others
            .into_iter()
            .map(|started| started.ok().and_then(|h| h.join().ok()).unwrap_or(0))
            .sum::<usize>()
    })
}

/// Runs a callback body on the descriptor's source; `failure` on a null descriptor or a panic.
fn guarded<X>(desc: *mut c_void, failure: X, body: impl FnOnce(&Source) -> X) -> X {
    if desc.is_null() {
        return failure;
    }
    // SAFETY: mlx-c passes back the descriptor given to `mlx_io_reader_new`: a live
    // `Box<Arc<Source>>`, freed only by the `free` callback, after every other callback.
    let source: &Source = unsafe { &*desc.cast::<Arc<Source>>() };
    catch_unwind(AssertUnwindSafe(|| body(source))).unwrap_or(failure)
}

extern "C" fn is_open(desc: *mut c_void) -> bool {
    guarded(desc, false, |_| true)
}

extern "C" fn good(desc: *mut c_void) -> bool {
    guarded(desc, false, |_| true)
}

extern "C" fn tell(desc: *mut c_void) -> usize {
    guarded(desc, 0, |source| usize::try_from(source.position()).unwrap_or(usize::MAX))
}

extern "C" fn seek(desc: *mut c_void, offset: i64, whence: c_int) -> c_int {
    guarded(desc, -1, |source| {
        let base = match whence {
            libc::SEEK_SET => 0,
            libc::SEEK_CUR => source.position(),
            libc::SEEK_END => match source.file.metadata() {
                Ok(metadata) => metadata.len(),
                Err(_) => return -1,
            },
            _ => return -1,
        };
        match base.checked_add_signed(offset) {
            Some(at) => {
                source.set_position(at);
                0
            }
            None => -1,
        }
    })
}

extern "C" fn read(desc: *mut c_void, data: *mut c_char, n: usize) -> usize {
    guarded(desc, 0, |source| {
        if n == 0 || data.is_null() {
            return 0;
        }
        // SAFETY: MLX passes a writable buffer of `n` bytes that lives for the call.
        let buf = unsafe { std::slice::from_raw_parts_mut(data.cast::<u8>(), n) };
        let mut position = source.position.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let done = read_range(&source.file, buf, *position);
        *position += done as u64;
        done
    })
}

extern "C" fn read_at_offset(
    desc: *mut c_void,
    data: *mut c_char,
    n: usize,
    offset: usize,
) -> usize {
    guarded(desc, 0, |source| {
        if n == 0 || data.is_null() {
            return 0;
        }
        // SAFETY: MLX passes a writable buffer of `n` bytes that lives for the call.
        let buf = unsafe { std::slice::from_raw_parts_mut(data.cast::<u8>(), n) };
        read_parallel(&source.file, buf, offset as u64)
    })
}

extern "C" fn write(_desc: *mut c_void, _data: *const c_char, _n: usize) -> usize {
    0
}

extern "C" fn describe(desc: *mut c_void) -> *const c_char {
    static FALLBACK: &std::ffi::CStr = c"a file";
    guarded(desc, FALLBACK.as_ptr(), |source| source.label.as_ptr())
}

extern "C" fn free(desc: *mut c_void) {
    if desc.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: the descriptor is the `Box<Arc<Source>>` leaked in `FileReader::open`; mlx-c
        // calls `free` once, when its reader object is destroyed.
        drop(unsafe { Box::from_raw(desc.cast::<Arc<Source>>()) });
    });
}

/// An open file as an mlx-c reader. Dropping it releases the crate's handle; arrays MLX
/// loaded through it keep the file open until they are dropped.
pub(crate) struct FileReader {
    source: Arc<Source>,
    handle: sys::mlx_io_reader,
}

impl FileReader {
    /// Opens the file at `path` for reading; `label` is its name in MLX's messages.
    ///
    /// Errors ([`ErrorKind::Io`]): the file cannot be opened.
    pub(crate) fn open(op: &'static str, path: &Path, label: CString) -> Result<FileReader> {
        let file = File::open(path).map_err(|e| {
            Error::new(ErrorKind::Io, op, format!("Failed to open {}: {e}", path.display()))
                .with_source(e)
        })?;
        let source = Arc::new(Source { file, position: Mutex::new(0), label });
        let desc = Box::into_raw(Box::new(Arc::clone(&source))).cast::<c_void>();
        let vtable = sys::mlx_io_vtable {
            is_open: Some(is_open),
            good: Some(good),
            tell: Some(tell),
            seek: Some(seek),
            read: Some(read),
            read_at_offset: Some(read_at_offset),
            write: Some(write),
            label: Some(describe),
            free: Some(free),
        };
        // SAFETY: `desc` is a leaked `Box<Arc<Source>>` matching the callbacks' type; on
        // success mlx-c owns it and frees it through `free`.
        let handle = ffi::call(|| unsafe { sys::mlx_io_reader_new(desc, vtable) });
        if handle.ctx.is_null() {
            // Out of memory in mlx-c: whether it built its reader object (and so freed the
            // descriptor) cannot be told, so the small box is leaked rather than freed twice.
            return Err(Error::new(ErrorKind::Io, op, ffi::failed(op).message()));
        }
        Ok(FileReader { source, handle })
    }

    /// The open file, for the crate's own checks.
    pub(crate) fn file(&self) -> &File {
        &self.source.file
    }

    /// The mlx-c reader handle.
    pub(crate) fn raw(&self) -> sys::mlx_io_reader {
        self.handle
    }
}

impl Drop for FileReader {
    fn drop(&mut self) {
        // SAFETY: the handle is owned by `self` and released once; MLX's arrays keep their
        // own references to the reader object.
        ffi::free(|| unsafe { sys::mlx_io_reader_free(self.handle) });
    }
}
