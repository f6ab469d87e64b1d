//! The thin layer every call into mlx-c goes through.
//!
//! mlx-c reports failure by returning non-zero and calling a process-global error handler. This
//! module installs that handler once per process; the handler stores the message in a
//! thread-local slot, so an error raised on one thread is never read by another. [`check`] turns a
//! status into a [`Result`], taking (and clearing) the calling thread's message.
//!
//! The helpers here allocate an op's outputs before the call and hand them to owning wrappers, so
//! outputs are freed on every path, including failures.

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::Once;

use mlx_sys as sys;

use crate::array::Array;
use crate::error::{Error, ErrorKind, Result};
use crate::vector::VectorArray;

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Receives MLX's error messages. Runs inside mlx-c's `catch` blocks, so it must not unwind: it
/// only copies the message into the calling thread's slot.
extern "C" fn record_error(message: *const c_char, _data: *mut c_void) {
    let text = if message.is_null() {
        "MLX reported an error without a message".to_owned()
    } else {
        // SAFETY: mlx-c passes a NUL-terminated message that lives for the duration of the call.
        unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
    };
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = Some(text);
        }
    });
}

/// Installs the error handler, once per process. Without it, mlx-c's default handler prints and
/// exits the process.
pub(crate) fn init() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: `record_error` has the handler signature, never unwinds and ignores `data`;
        // no destructor is needed for a null `data`.
        unsafe { sys::mlx_set_error_handler(Some(record_error), std::ptr::null_mut(), None) };
    });
}

/// Takes the calling thread's last MLX message, if any, clearing it.
fn take_message() -> Option<String> {
    LAST_ERROR.try_with(|slot| slot.try_borrow_mut().ok().and_then(|mut s| s.take())).ok().flatten()
}

/// Strips mlx-c's ` at /path/file.cpp:123` suffix, which names mlx-c's source, not the caller's.
fn clean(message: String) -> String {
    match message.rfind(" at ") {
        Some(at) if message[at..].contains(".cpp:") => message[..at].to_owned(),
        _ => message,
    }
}

/// Turns an mlx-c status into a `Result`.
pub(crate) fn check(op: &'static str, status: c_int) -> Result<()> {
    if status == 0 {
        return Ok(());
    }
    let message =
        take_message().map(clean).unwrap_or_else(|| format!("MLX returned status {status}"));
    Err(Error::new(ErrorKind::Mlx, op, message))
}

/// The error for an mlx-c call that signals failure by returning an empty handle.
pub(crate) fn failed(op: &'static str) -> Error {
    let message = take_message().map(clean).unwrap_or_else(|| "MLX returned no result".to_owned());
    Error::new(ErrorKind::Mlx, op, message)
}

/// Runs an mlx-c op that writes one array: allocates the output, calls `call` with it, and
/// returns it, or the error with the output freed. The output's shape is checked (see
/// [`check_output`]): every array an op of this crate makes passes through here.
pub(crate) fn array_out(
    op: &'static str,
    call: impl FnOnce(*mut sys::mlx_array) -> c_int,
) -> Result<Array> {
    let out = array_out_unchecked(op, call)?;
    check_output(op, &out, Output::Allocates)?;
    Ok(out)
}

/// As [`array_out`] for ops whose output is a view of their input's buffer (`broadcast_to`,
/// `as_strided`): its size may exceed memory, but its byte size must still be representable.
pub(crate) fn view_out(
    op: &'static str,
    call: impl FnOnce(*mut sys::mlx_array) -> c_int,
) -> Result<Array> {
    let out = array_out_unchecked(op, call)?;
    check_output(op, &out, Output::View)?;
    Ok(out)
}

/// [`array_out`] without the output check, for handles that are not new op outputs (an element
/// of a vector, which its maker checks).
pub(crate) fn array_out_unchecked(
    op: &'static str,
    call: impl FnOnce(*mut sys::mlx_array) -> c_int,
) -> Result<Array> {
    let mut out = new_array();
    let status = serialized(|| call(out.as_raw_mut()));
    check(op, status)?;
    Ok(out)
}

/// What evaluating an op's output costs, for [`check_output`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// Evaluation allocates a buffer of the output's byte size.
    Allocates,
    /// The output shares its input's buffer.
    View,
}

/// The memory limit that bounds one output's byte size (0 until first read).
static OUTPUT_LIMIT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The most bytes one allocating output may take: MLX's memory limit
/// (`memory::get_memory_limit`), read once and updated by `memory::set_memory_limit`.
fn output_limit() -> usize {
    use std::sync::atomic::Ordering;
    let cached = OUTPUT_LIMIT.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let mut limit = 0usize;
    // SAFETY: writes one `size_t` into a live local.
    let status = serialized(|| unsafe { sys::mlx_get_memory_limit(&mut limit) });
    if check("get_memory_limit", status).is_err() || limit == 0 {
        return usize::MAX;
    }
    OUTPUT_LIMIT.store(limit, Ordering::Relaxed);
    limit
}

/// Records a new memory limit for [`output_limit`] (0 restores MLX's reading).
pub(crate) fn set_output_limit(limit: usize) {
    OUTPUT_LIMIT.store(limit, std::sync::atomic::Ordering::Relaxed);
}

/// Checks an op's output before anyone can evaluate it.
///
/// MLX 0.32.2 accepts shapes whose element count times item size overflows (the product wraps,
/// so later reads run past a small buffer), and its CPU allocator hands a null buffer to the
/// kernel when `malloc` fails. Both crash the process on evaluation. Here an output with a
/// negative size or a byte size past `i64::MAX` is an error, and so is an allocating output larger
/// than the memory limit.
pub(crate) fn check_output(op: &'static str, array: &Array, output: Output) -> Result<()> {
    let shape = array.shape();
    let itemsize = array.itemsize() as u64;
    let mut bytes = Some(itemsize);
    for &d in shape {
        let Ok(d) = u64::try_from(d) else {
            return Err(Error::invalid(
                op,
                format!("the result's shape {shape:?} has a negative size"),
            ));
        };
        bytes = bytes.and_then(|b| b.checked_mul(d));
    }
    let bytes = match bytes {
        Some(bytes) if bytes <= i64::MAX as u64 => bytes,
        _ => {
            return Err(Error::invalid(
                op,
                format!(
                    "the result's shape {shape:?} holds more bytes than a 64-bit size can count \
                     ({itemsize} bytes per element)"
                ),
            ));
        }
    };
    if output == Output::Allocates && bytes > 0 {
        let limit = output_limit();
        if usize::try_from(bytes).map_or(true, |b| b > limit) {
            return Err(Error::invalid(
                op,
                format!(
                    "cannot allocate {bytes} bytes for the result of shape {shape:?}: more than \
                     the memory limit of {limit} bytes (see memory::set_memory_limit)"
                ),
            ));
        }
        if bytes >= FREE_MEMORY_CHECK_FROM
            && let Some(free) = host_free_memory()
            && bytes > free
        {
            return Err(Error::invalid(
                op,
                format!(
                    "cannot allocate {bytes} bytes for the result of shape {shape:?}: more than \
                     the {free} bytes of memory free on this machine (MemAvailable + SwapFree)"
                ),
            ));
        }
    }
    Ok(())
}

/// What MLX holds per array it creates (its descriptor and handle), for [`check_output_count`].
const ARRAY_OVERHEAD_BYTES: u64 = 256;

/// Checks that an op may create `count` arrays: an op whose number of outputs comes from an
/// argument or an empty dimension (`split` of an empty axis into `i32::MAX` parts, `unstack` of
/// `[1 << 30, 0]`) would have MLX allocate a descriptor per output first, tens of GB, so the
/// descriptors' bytes are held to the memory limit as one output's bytes are.
pub(crate) fn check_output_count(op: &'static str, count: u64) -> Result<()> {
    let bytes = count.saturating_mul(ARRAY_OVERHEAD_BYTES);
    let limit = output_limit();
    if usize::try_from(bytes).map_or(true, |b| b > limit) {
        return Err(Error::invalid(
            op,
            format!(
                "{count} results: their arrays alone would take more than the memory limit of \
                 {limit} bytes"
            ),
        ));
    }
    Ok(())
}

/// Outputs from this many bytes are also checked against the machine's free memory.
const FREE_MEMORY_CHECK_FROM: u64 = 1 << 30;

/// The bytes a new allocation can take without the kernel's OOM killer, where MLX allocates in
/// host memory that the memory limit does not bound by what is free: a CPU-only MLX on Linux
/// (MLX's CPU limit is a share of the installed memory, however much other processes hold).
/// `None` elsewhere (Metal and CUDA limits follow the device's memory) or when unreadable.
fn host_free_memory() -> Option<u64> {
    static CPU_ONLY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let cpu_only = *CPU_ONLY.get_or_init(|| {
        cfg!(target_os = "linux") && !crate::cuda::is_available() && !crate::metal::is_available()
    });
    if !cpu_only {
        return None;
    }
    free_memory(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// `MemAvailable + SwapFree` in bytes from the text of `/proc/meminfo`.
fn free_memory(meminfo: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        let kib = line[name.len()..].trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
        kib.checked_mul(1024)
    };
    field("MemAvailable:")?.checked_add(field("SwapFree:").unwrap_or(0))
}

/// Runs an mlx-c op that writes two arrays, returning both or the error (outputs freed).
pub(crate) fn pair_out(
    op: &'static str,
    call: impl FnOnce(*mut sys::mlx_array, *mut sys::mlx_array) -> c_int,
) -> Result<(Array, Array)> {
    let mut second = None;
    let first = array_out(op, |first| {
        let mut status = 0;
        second = Some(array_out(op, |second| {
            status = call(first, second);
            status
        }));
        status
    });
    // The inner call took MLX's message, so its error is the one to report.
    match (first, second) {
        (_, Some(Err(err))) => Err(err),
        (Ok(first), Some(Ok(second))) => Ok((first, second)),
        (Err(err), _) => Err(err),
        (Ok(_), None) => Err(Error::new(ErrorKind::Mlx, op, "MLX returned no result")),
    }
}

/// Runs an mlx-c op that writes a list of arrays, returning them (each checked as in
/// [`array_out`]).
pub(crate) fn arrays_out(
    op: &'static str,
    call: impl FnOnce(*mut sys::mlx_vector_array) -> c_int,
) -> Result<Vec<Array>> {
    checked_arrays_out(op, call, Output::Allocates)
}

/// As [`arrays_out`] for ops whose outputs are views of their inputs (`broadcast_arrays`).
pub(crate) fn views_out(
    op: &'static str,
    call: impl FnOnce(*mut sys::mlx_vector_array) -> c_int,
) -> Result<Vec<Array>> {
    checked_arrays_out(op, call, Output::View)
}

fn checked_arrays_out(
    op: &'static str,
    call: impl FnOnce(*mut sys::mlx_vector_array) -> c_int,
    output: Output,
) -> Result<Vec<Array>> {
    let mut out = VectorArray::new();
    check(op, serialized(|| call(out.as_raw_mut())))?;
    let arrays = out.to_arrays()?;
    for array in &arrays {
        check_output(op, array, output)?;
    }
    Ok(arrays)
}

/// Runs an mlx-c op that writes two lists of arrays, returning both.
pub(crate) fn two_vectors_out(
    op: &'static str,
    call: impl FnOnce(*mut sys::mlx_vector_array, *mut sys::mlx_vector_array) -> c_int,
) -> Result<(Vec<Array>, Vec<Array>)> {
    let mut first = VectorArray::new();
    let mut second = VectorArray::new();
    check(op, serialized(|| call(first.as_raw_mut(), second.as_raw_mut())))?;
    let (first, second) = (first.to_arrays()?, second.to_arrays()?);
    for array in first.iter().chain(&second) {
        check_output(op, array, Output::Allocates)?;
    }
    Ok((first, second))
}

/// Evaluates `arrays` together (`mlx_eval`); a failure is an error of `op`.
pub(crate) fn eval_all<A: AsRef<Array>>(op: &'static str, arrays: &[A]) -> Result<()> {
    let vector = VectorArray::from_arrays(arrays);
    // SAFETY: the vector is live.
    status(op, || unsafe { sys::mlx_eval(vector.raw()) })
}

/// Runs an mlx-c call that only returns a status.
pub(crate) fn status(op: &'static str, call: impl FnOnce() -> c_int) -> Result<()> {
    init();
    check(op, serialized(call))
}

/// An mlx-c handle: a struct holding one `ctx` pointer, empty when that pointer is null.
pub(crate) trait RawHandle: Copy {
    /// The empty handle ("none" for optional arguments; owns nothing).
    fn empty() -> Self;
    /// True for the empty handle.
    fn is_empty(self) -> bool;
}

macro_rules! raw_handles {
    ($($name:ident),* $(,)?) => {$(
        impl RawHandle for sys::$name {
            fn empty() -> Self {
                sys::$name { ctx: std::ptr::null_mut() }
            }
            fn is_empty(self) -> bool {
                self.ctx.is_null()
            }
        }
    )*};
}

raw_handles!(
    mlx_array,
    mlx_closure,
    mlx_closure_custom,
    mlx_closure_custom_jvp,
    mlx_closure_custom_vmap,
    mlx_closure_kwargs,
    mlx_device,
    mlx_distributed_group,
    mlx_fast_cuda_kernel,
    mlx_fast_metal_kernel,
    mlx_function_exporter,
    mlx_imported_function,
    mlx_io_gguf,
    mlx_node_namer,
    mlx_stream,
);

/// The empty handle of type `H`, for optional arguments and for handles an mlx-c call fills.
pub(crate) fn empty<H: RawHandle>() -> H {
    H::empty()
}

/// Runs an mlx-c constructor that returns a handle and signals failure with an empty one.
/// `own` wraps the handle into its owning type first, so nothing leaks on either path; an empty
/// result is the error of `op` with MLX's message.
pub(crate) fn handle_out<H: RawHandle, W>(
    op: &'static str,
    call: impl FnOnce() -> H,
    own: impl FnOnce(H) -> W,
) -> Result<W> {
    init();
    let raw = serialized(call);
    let owned = own(raw);
    if raw.is_empty() {
        return Err(failed(op));
    }
    Ok(owned)
}

/// A new empty array handle (`mlx_array_new`), owned by the result; for mlx-c calls that fill it.
/// It allocates nothing (the handle is a null pointer until filled), so it skips the lock: it is
/// on the path of every op.
pub(crate) fn new_array() -> Array {
    init();
    // SAFETY: no preconditions; the handle is owned by the result and freed in its `Drop`.
    Array::from_raw(unsafe { sys::mlx_array_new() })
}

/// Runs a raw mlx-c call under the CUDA lock, with the error handler installed, and returns what
/// it returns. For calls with no status (constructors of empty handles), calls whose status
/// cannot signal a failure (sharing a live handle, appending to a vector), and calls whose status
/// the caller reads itself (map iterators); everything else goes through the guards above.
pub(crate) fn call<T>(call: impl FnOnce() -> T) -> T {
    init();
    serialized(call)
}

/// Frees a handle from a `Drop` impl, under the CUDA lock. The status (where the free returns
/// one) is dropped: a free of a live handle cannot fail, and a destructor has nobody to report to.
pub(crate) fn free<T>(call: impl FnOnce() -> T) {
    let _ = serialized(call);
}

/// An owned `mlx_string`.
pub(crate) struct MlxString(sys::mlx_string);

impl MlxString {
    /// A new empty string, to be filled by an mlx-c call.
    pub(crate) fn new() -> MlxString {
        // SAFETY: no preconditions; freed in `Drop`.
        MlxString(call(|| unsafe { sys::mlx_string_new() }))
    }

    /// A pointer to the raw handle, for mlx-c calls that fill it.
    pub(crate) fn as_raw_mut(&mut self) -> *mut sys::mlx_string {
        &mut self.0
    }

    /// The contents, lossily decoded as UTF-8.
    pub(crate) fn to_string_lossy(&self) -> String {
        // SAFETY: the handle is live; mlx-c returns NULL or a NUL-terminated buffer it owns.
        let data = unsafe { sys::mlx_string_data(self.0) };
        if data.is_null() {
            return String::new();
        }
        // SAFETY: checked non-NULL above; the buffer lives as long as `self`.
        unsafe { CStr::from_ptr(data) }.to_string_lossy().into_owned()
    }
}

impl Drop for MlxString {
    fn drop(&mut self) {
        // SAFETY: the handle is owned and freed exactly once.
        free(|| unsafe { sys::mlx_string_free(self.0) });
    }
}

/// Calls an mlx-c function that writes a string, and returns it.
pub(crate) fn string_out(
    op: &'static str,
    call: impl FnOnce(*mut sys::mlx_string) -> c_int,
) -> Result<String> {
    init();
    let mut out = MlxString::new();
    check(op, serialized(|| call(out.as_raw_mut())))?;
    Ok(out.to_string_lossy())
}

/// The handle mlx-c takes for an optional array argument: the array, or an empty handle for
/// "none" (which owns nothing and needs no freeing).
pub(crate) fn optional_array(array: Option<&Array>) -> sys::mlx_array {
    array.map_or_else(empty, Array::raw)
}

/// mlx-c's optional int.
pub(crate) fn optional_int(value: Option<i32>) -> sys::mlx_optional_int {
    sys::mlx_optional_int { value: value.unwrap_or(0), has_value: value.is_some() }
}

/// mlx-c's optional float.
pub(crate) fn optional_float(value: Option<f32>) -> sys::mlx_optional_float {
    sys::mlx_optional_float { value: value.unwrap_or(0.0), has_value: value.is_some() }
}

/// mlx-c's optional dtype (the value of an absent one is a placeholder MLX does not read).
pub(crate) fn optional_dtype(value: Option<crate::Dtype>) -> sys::mlx_optional_dtype {
    sys::mlx_optional_dtype {
        value: value.map_or(sys::MLX_FLOAT32, crate::Dtype::to_raw),
        has_value: value.is_some(),
    }
}

/// `text` as a C string; a NUL byte inside is an invalid-argument error of `op`.
pub(crate) fn c_string(op: &'static str, text: &str) -> Result<std::ffi::CString> {
    std::ffi::CString::new(text)
        .map_err(|_| Error::invalid(op, format!("{text:?} contains a NUL byte")))
}

/// True when the loaded MLX runs on CUDA. The one detection of the crate (`cuda::is_available`,
/// kernels and the lock below ask here); checked once, since the library cannot change.
pub(crate) fn cuda_available() -> bool {
    static CUDA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CUDA.get_or_init(|| {
        init();
        let mut available = false;
        // SAFETY: writes one bool. Called raw, not through `status`: `serialized` asks here.
        check("cuda_is_available", unsafe { sys::mlx_cuda_is_available(&mut available) }).is_ok()
            && available
    })
}

/// True when the loaded MLX runs on Metal (checked once, as [`cuda_available`]).
pub(crate) fn metal_available() -> bool {
    static METAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *METAL.get_or_init(|| {
        let mut available = false;
        // SAFETY: writes one bool.
        status("metal_is_available", || unsafe { sys::mlx_metal_is_available(&mut available) })
            .is_ok()
            && available
    })
}

/// Runs `call` while no other thread is inside MLX, on the CUDA backend.
///
/// MLX 0.32.2's CUDA backend records work into CUDA graphs with stream capture in global mode: a
/// device allocation, free or capture on another thread during a capture invalidates it, and MLX
/// then aborts the process ("operation failed due to a previous error during capture"). Every
/// call of this crate that can allocate, free or evaluate goes through this process-wide lock,
/// which the same thread may take again (closures called by MLX run inside a locked call). Other
/// backends do not need it and do not take it.
pub(crate) fn serialized<T>(call: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    thread_local! {
        static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    /// Counts this thread's nesting; the guard (if any) is released after the count drops.
    struct Hold {
        _guard: Option<std::sync::MutexGuard<'static, ()>>,
    }
    impl Drop for Hold {
        fn drop(&mut self) {
            let _ = DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    if !cuda_available() {
        return call();
    }
    // A poisoned lock only means a thread panicked inside; it protects no data.
    let lock = || LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Ok(depth) = DEPTH.try_with(|d| d.replace(d.get() + 1)) else {
        // Thread-local storage is gone (a value dropped during thread exit): lock plainly.
        let _guard = lock();
        return call();
    };
    let _hold = Hold { _guard: if depth == 0 { Some(lock()) } else { None } };
    call()
}

#[cfg(test)]
mod tests {
    use super::free_memory;

    #[test]
    fn free_memory_adds_available_and_free_swap() {
        let text = "MemTotal:       24576000 kB\nMemFree:          512000 kB\n\
                    MemAvailable:   20000000 kB\nSwapTotal:       2048000 kB\n\
                    SwapFree:        1024000 kB\n";
        assert_eq!(free_memory(text), Some((20_000_000 + 1_024_000) * 1024));
        let no_swap = "MemAvailable:   100 kB\n";
        assert_eq!(free_memory(no_swap), Some(100 * 1024));
        assert_eq!(free_memory("MemTotal: 5 kB\n"), None);
        assert_eq!(free_memory("MemAvailable: many kB\n"), None);
    }
}
