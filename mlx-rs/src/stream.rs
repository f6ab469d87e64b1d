//! Streams: ordered queues of work on a device.
//!
//! Since MLX 0.31 a stream belongs to the thread that created it, and each thread has its own
//! default stream per device. [`Stream`] is therefore neither `Send` nor `Sync`: create streams on
//! the thread that uses them. Two kinds of stream can be shared between threads:
//! [`ThreadLocalStream`] (safe: each thread that uses it gets its own stream behind it) and
//! [`ThreadUnsafeStream`] (one stream for every thread, behind an `unsafe` constructor).

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use mlx_sys as sys;

use crate::device::{Device, DeviceType};
use crate::error::{Error, Result};
use crate::ffi;

/// Bumped after every change of a default device or stream made through the crate.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The calling thread's default stream, as last read from MLX, and the generation it was read in.
struct CachedDefault {
    generation: u64,
    stream: Rc<Stream>,
}

thread_local! {
    static THREAD_DEFAULT: RefCell<Option<CachedDefault>> = const { RefCell::new(None) };
}

/// Invalidates every thread's cached default stream. Called after (never before) a change, so a
/// thread that reads the old default cannot store it under the new generation.
pub(crate) fn default_changed() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// The calling thread's default stream, from the cache when it is current.
fn cached_thread_default() -> Result<Rc<Stream>> {
    // Read before asking MLX: a change that lands after this load bumps past it.
    let generation = GENERATION.load(Ordering::Acquire);
    let hit = THREAD_DEFAULT.try_with(|slot| {
        let slot = slot.try_borrow().ok()?;
        let cached = slot.as_ref()?;
        (cached.generation == generation).then(|| Rc::clone(&cached.stream))
    });
    if let Ok(Some(stream)) = hit {
        return Ok(stream);
    }
    let stream = Rc::new(Stream::thread_default()?);
    // Storing is best effort: during thread exit the slot may be gone.
    let _ = THREAD_DEFAULT.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = Some(CachedDefault { generation, stream: Rc::clone(&stream) });
        }
    });
    Ok(stream)
}

/// A stream of work on one device, owned by the thread that created it.
///
/// Equality is MLX's: two handles are equal when they name the same stream (same device, same
/// index).
///
/// ```
/// use mlx_rs::{Array, Device, Stream};
/// let stream = Stream::new(&Device::cpu())?;
/// let x = Array::from_slice(&[1.0f32, 2.0], &[2])?;
/// let y = mlx_rs::ops::add_device(&x, &x, &stream)?;
/// stream.synchronize()?;
/// assert_eq!(y.to_vec::<f32>()?, [2.0, 4.0]);
/// assert_ne!(stream, Stream::cpu()?);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub struct Stream {
    raw: sys::mlx_stream,
    /// Streams are tied to their thread.
    _thread_bound: PhantomData<*const ()>,
}

impl Stream {
    fn from_raw(raw: sys::mlx_stream) -> Stream {
        Stream { raw, _thread_bound: PhantomData }
    }

    /// A fresh empty handle, owned by the result, for mlx-c to fill.
    fn empty() -> Stream {
        ffi::init();
        // SAFETY: no preconditions; the handle is owned by the result.
        Stream::from_raw(ffi::call(|| unsafe { sys::mlx_stream_new() }))
    }

    /// An owned result of an mlx-c constructor that returns an empty handle on failure.
    fn from_constructor(op: &'static str, raw: sys::mlx_stream) -> Result<Stream> {
        let stream = Stream::from_raw(raw);
        if stream.raw.ctx.is_null() {
            return Err(ffi::failed(op));
        }
        Ok(stream)
    }

    /// This thread's default stream on the default device, as a new handle: what the `foo(..)`
    /// form of every op runs on. Ops themselves use the cached [`Stream::with_thread_default`].
    ///
    /// ```
    /// use mlx_rs::{Device, Stream};
    /// let stream = Stream::thread_default()?;
    /// assert_eq!(stream.device()?, Device::default_device()?);
    /// assert_eq!(stream, Stream::thread_default()?);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn thread_default() -> Result<Stream> {
        Stream::default_for(&Device::default_device()?)
    }

    /// Runs `f` with this thread's default stream on the default device: the stream every
    /// `foo(..)` op (written by `#[default_device]`) runs on.
    ///
    /// The stream comes from a per-thread cache, read with a thread-local access and one atomic
    /// load instead of asking MLX (two handle allocations and two FFI calls). Every change of a
    /// default made through this crate ([`Device::set_default`], [`Device::scoped_default`],
    /// [`Stream::scoped_default`], the guards' drops, [`Stream::clear_thread_streams`]) bumps a
    /// process-wide generation counter, so every thread's next op asks MLX again. Changes made
    /// behind the crate's back (C code calling `mlx_set_default_device`) are not seen until the
    /// next change made through the crate.
    ///
    /// `f` may itself run ops and nest further `with_thread_default` calls: the cache is not
    /// borrowed while `f` runs.
    ///
    /// ```
    /// use mlx_rs::{Array, Stream};
    /// let x = Array::from_slice(&[1.0f32, 2.0], &[2])?;
    /// let y = Stream::with_thread_default(|stream| mlx_rs::ops::add_device(&x, &x, stream))?;
    /// assert_eq!(y.to_vec::<f32>()?, [2.0, 4.0]);
    /// assert!(Stream::with_thread_default(|s| Ok::<_, mlx_rs::Error>(*s == Stream::thread_default()?))?);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn with_thread_default<T, E>(
        f: impl FnOnce(&Stream) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
    {
        let stream = cached_thread_default()?;
        f(&stream)
    }

    /// This thread's default stream on `device`, created by MLX on first use.
    pub fn default_for(device: &Device) -> Result<Stream> {
        let mut stream = Stream::empty();
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
        Stream::from_constructor("new_stream", unsafe { sys::mlx_stream_new_device(device.raw()) })
    }

    /// This thread's default stream on the CPU.
    ///
    /// ```
    /// use mlx_rs::{Device, Stream};
    /// assert_eq!(Stream::cpu()?, Stream::default_for(&Device::cpu())?);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn cpu() -> Result<Stream> {
        ffi::init();
        // SAFETY: no preconditions; mlx-c returns an empty handle on failure.
        Stream::from_constructor(
            "default_cpu_stream",
            ffi::call(|| unsafe { sys::mlx_default_cpu_stream_new() }),
        )
    }

    /// This thread's default stream on the first GPU; an error without a GPU backend.
    ///
    /// ```
    /// use mlx_rs::{Device, Stream};
    /// match Stream::gpu() {
    ///     Ok(stream) => assert_eq!(stream.device()?, Device::gpu()),
    ///     Err(err) => assert!(!Device::gpu().is_available(), "{err}"),
    /// }
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn gpu() -> Result<Stream> {
        ffi::init();
        // SAFETY: no preconditions; mlx-c returns an empty handle on failure.
        Stream::from_constructor(
            "default_gpu_stream",
            ffi::call(|| unsafe { sys::mlx_default_gpu_stream_new() }),
        )
    }

    /// The device this stream runs on.
    pub fn device(&self) -> Result<Device> {
        let mut raw = Device::empty_raw();
        // SAFETY: both handles are live; the call fills `raw`, which `from_filled` owns.
        let filled = ffi::status("stream_device", || unsafe {
            sys::mlx_stream_get_device(&mut raw, self.raw)
        });
        Device::from_filled("stream_device", raw, filled)
    }

    /// Another handle to the same stream (owned by this thread like this one).
    ///
    /// ```
    /// use mlx_rs::{Device, Stream};
    /// let a = Stream::new(&Device::cpu())?;
    /// let b = a.try_clone()?;
    /// assert_eq!(a, b);
    /// assert_eq!(a.index()?, b.index()?);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn try_clone(&self) -> Result<Stream> {
        let mut stream = Stream::empty();
        // SAFETY: both handles are live; the call copies the stream value into `stream`.
        ffi::status("stream_set", || unsafe { sys::mlx_stream_set(&mut stream.raw, self.raw) })?;
        Ok(stream)
    }

    /// The index of this stream: MLX numbers the streams of all devices and threads of the
    /// process in creation order, from 0 (the position in [`Stream::all`]).
    ///
    /// ```
    /// use mlx_rs::{Device, Stream};
    /// let a = Stream::new(&Device::cpu())?;
    /// let b = Stream::new(&Device::cpu())?;
    /// assert!(b.index()? > a.index()?);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn index(&self) -> Result<i32> {
        let mut index = 0;
        // SAFETY: `self.raw` is live; the call writes one int.
        ffi::status("stream_index", || unsafe { sys::mlx_stream_get_index(&mut index, self.raw) })?;
        Ok(index)
    }

    /// Every stream MLX has created in this process, on any thread and device, in creation order
    /// (so `Stream::all()?[s.index()? as usize] == s`).
    ///
    /// Streams created by other threads can be compared and printed here, but not run on: an op
    /// on one gives an error when it is evaluated ("There is no Stream(cpu, 3) in current
    /// thread").
    ///
    /// ```
    /// use mlx_rs::{Device, Stream};
    /// let mine = Stream::new(&Device::cpu())?;
    /// let all = Stream::all()?;
    /// assert_eq!(all[mine.index()? as usize], mine);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn all() -> Result<Vec<Stream>> {
        let mut vector = VectorStream::new();
        // SAFETY: the handle is live and owned by `vector`; the call replaces its contents.
        ffi::status("get_streams", || unsafe { sys::mlx_get_streams(&mut vector.0) })?;
        vector.to_streams()
    }

    /// Makes this stream the calling thread's default for its device until the returned guard is
    /// dropped, which restores the previous one. Ops run on it when its device is the default
    /// device.
    ///
    /// ```
    /// use mlx_rs::{Device, Stream};
    /// let mine = Stream::new(&Device::default_device()?)?;
    /// {
    ///     let _guard = mine.scoped_default()?;
    ///     assert_eq!(Stream::thread_default()?, mine);
    /// }
    /// assert_ne!(Stream::thread_default()?, mine);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn scoped_default(&self) -> Result<DefaultStreamGuard> {
        let previous = Stream::default_for(&self.device()?)?;
        // SAFETY: `self.raw` is live.
        let result =
            ffi::status("set_default_stream", || unsafe { sys::mlx_set_default_stream(self.raw) });
        default_changed();
        result?;
        Ok(DefaultStreamGuard { previous })
    }

    /// Waits until every operation queued on this stream has finished.
    pub fn synchronize(&self) -> Result<()> {
        // SAFETY: `self.raw` is live.
        ffi::status("synchronize", || unsafe { sys::mlx_synchronize(self.raw) })
    }

    /// Waits until every operation queued on this thread's default stream of the default device
    /// has finished, as `mlx.core.synchronize()`.
    ///
    /// ```
    /// use mlx_rs::{Array, Stream};
    /// let x = Array::from_slice(&[3.0f32], &[1])?;
    /// let y = mlx_rs::ops::multiply(&x, &x)?;
    /// mlx_rs::transforms::async_eval(&[&y])?;
    /// Stream::synchronize_default()?;
    /// assert_eq!(y.item::<f32>()?, 9.0);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn synchronize_default() -> Result<()> {
        // SAFETY: no arguments; MLX finds the stream itself.
        ffi::status("synchronize_default", || unsafe { sys::mlx_synchronize_default() })
    }

    /// Destroys every stream created on the calling thread (as `mlx.core.clear_streams`, which
    /// also waits for their GPU work and empties this thread's compile cache), then gives the
    /// thread fresh default streams on every available device, so that `foo(..)` ops keep
    /// working.
    ///
    /// Streams of this thread created before the call, and arrays not yet evaluated on them, are
    /// dead afterwards: evaluating such an array, or running an op on such a stream, returns an
    /// error. A [`DefaultStreamGuard`] alive across the call restores a dead stream when dropped.
    /// [`ThreadLocalStream`]s keep handing out their (now dead) stream on this thread.
    ///
    /// ```
    /// use mlx_rs::{Array, Device, Stream};
    /// let old = Stream::thread_default()?;
    /// let x = Array::from_slice(&[1.0f32], &[1])?;
    /// let pending = mlx_rs::ops::add(&x, &x)?;
    /// Stream::clear_thread_streams()?;
    /// assert!(pending.eval().is_err());
    /// assert_ne!(Stream::thread_default()?, old);
    /// assert_eq!(mlx_rs::ops::add(&x, &x)?.item::<f32>()?, 2.0);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn clear_thread_streams() -> Result<()> {
        // SAFETY: no arguments. On the CUDA main thread it also destroys the thread-unsafe
        // streams, whose constructor's contract forbids that while they are in use.
        let cleared = ffi::status("clear_streams", || unsafe { sys::mlx_clear_streams() });
        // MLX keeps naming the destroyed streams as this thread's defaults; replace them.
        let mut result = cleared;
        for kind in [DeviceType::Cpu, DeviceType::Gpu] {
            let count = match Device::count(kind) {
                Ok(count) => count,
                Err(err) => {
                    result = result.and(Err(err));
                    0
                }
            };
            for index in 0..count {
                let Ok(index) = i32::try_from(index) else { break };
                let fresh = Stream::new(&Device::new(kind, index)).and_then(|stream| {
                    // SAFETY: `stream.raw` is live.
                    ffi::status("set_default_stream", || unsafe {
                        sys::mlx_set_default_stream(stream.raw)
                    })
                });
                result = result.and(fresh);
            }
        }
        default_changed();
        result
    }

    pub(crate) fn raw(&self) -> sys::mlx_stream {
        self.raw
    }
}

impl PartialEq for Stream {
    fn eq(&self, other: &Stream) -> bool {
        // SAFETY: both handles are live; the call only reads them and cannot fail.
        unsafe { sys::mlx_stream_equal(self.raw, other.raw) }
    }
}

impl Eq for Stream {}

impl Drop for Stream {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_stream_free(self.raw) });
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
        let _ = ffi::status("set_default_stream", || unsafe {
            sys::mlx_set_default_stream(self.previous.raw)
        });
        default_changed();
    }
}

/// An owned `mlx_vector_stream`.
struct VectorStream(sys::mlx_vector_stream);

impl VectorStream {
    fn new() -> VectorStream {
        ffi::init();
        // SAFETY: no preconditions; freed in `Drop`.
        VectorStream(ffi::call(|| unsafe { sys::mlx_vector_stream_new() }))
    }

    fn to_streams(&self) -> Result<Vec<Stream>> {
        // SAFETY: the handle is live.
        let len = unsafe { sys::mlx_vector_stream_size(self.0) };
        (0..len)
            .map(|i| {
                let mut stream = Stream::empty();
                // SAFETY: `i` is in range; `stream` owns the handle the call fills.
                ffi::status("get_streams", || unsafe {
                    sys::mlx_vector_stream_get(&mut stream.raw, self.0, i)
                })?;
                Ok(stream)
            })
            .collect()
    }
}

impl Drop for VectorStream {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_vector_stream_free(self.0) });
    }
}

/// A stream that is one stream per thread, as `mlx.core.new_thread_local_stream` (mlx-lm's
/// generation stream is one).
///
/// It is `Send` and `Sync`: share one (by reference or in an `Arc`) and each thread that uses it
/// gets its own concrete [`Stream`] on the same device, created by MLX on that thread's first
/// [`ThreadLocalStream::stream`] and the same on every later call there. Work queued through it
/// on one thread is therefore never ordered with work of another thread.
///
/// ```
/// use mlx_rs::{Array, Device, ThreadLocalStream};
/// let generation = ThreadLocalStream::new(&Device::cpu())?;
/// let here = generation.stream()?;
/// assert_eq!(here, generation.stream()?);
/// let elsewhere = std::thread::scope(|s| {
///     s.spawn(|| generation.stream().and_then(|t| t.index())).join().unwrap()
/// })?;
/// assert_ne!(elsewhere, here.index()?);
///
/// let x = Array::from_slice(&[2.0f32], &[1])?;
/// let y = mlx_rs::ops::multiply_device(&x, &x, &here)?;
/// generation.synchronize()?;
/// assert_eq!(y.item::<f32>()?, 4.0);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub struct ThreadLocalStream {
    raw: sys::mlx_stream_thread_local,
    device: Device,
}

// SAFETY: the handle owns an immutable `mlx::core::ThreadLocalStream` value (a device and an
// index in MLX's mutex-guarded registry); MLX maps it to a stream through a `thread_local` map of
// the calling thread, so using it from several threads at once is what it is made for. Tested in
// `tests/devices_streams.rs` (`thread_local_streams_are_one_per_thread`).
unsafe impl Send for ThreadLocalStream {}
// SAFETY: as above; every method takes `&self` and only reads the handle.
unsafe impl Sync for ThreadLocalStream {}

impl ThreadLocalStream {
    /// A new thread-local stream on `device`.
    pub fn new(device: &Device) -> Result<ThreadLocalStream> {
        ffi::init();
        // SAFETY: `device` is live; mlx-c returns an empty handle on failure.
        let raw = unsafe { sys::mlx_stream_thread_local_new(device.raw()) };
        if raw.ctx.is_null() {
            return Err(ffi::failed("new_thread_local_stream"));
        }
        Ok(ThreadLocalStream { raw, device: device.clone() })
    }

    /// The device of its streams.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The calling thread's stream behind this one (created on the first call on each thread).
    /// Make it the thread's default with [`Stream::scoped_default`], as Python's
    /// `with mx.stream(generation_stream)`.
    pub fn stream(&self) -> Result<Stream> {
        let mut stream = Stream::empty();
        // SAFETY: both handles are live; `stream` owns the handle the call fills.
        ffi::status("stream_from_thread_local", || unsafe {
            sys::mlx_stream_from_thread_local(&mut stream.raw, self.raw)
        })?;
        Ok(stream)
    }

    /// Waits until the work queued on the calling thread's stream behind this one has finished.
    pub fn synchronize(&self) -> Result<()> {
        // SAFETY: `self.raw` is live.
        ffi::status("synchronize_thread_local", || unsafe {
            sys::mlx_synchronize_thread_local(self.raw)
        })
    }
}

impl Drop for ThreadLocalStream {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once. The streams MLX made for it stay registered.
        ffi::free(|| unsafe { sys::mlx_stream_thread_local_free(self.raw) });
    }
}

impl fmt::Debug for ThreadLocalStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ThreadLocalStream({})", self.device)
    }
}

/// One stream that every thread may run on, as `mlx.core.new_thread_unsafe_stream`: MLX registers
/// it process-wide instead of for the creating thread, and applies no synchronization to it.
///
/// It is `Send` and `Sync`; each thread gets its handle with [`ThreadUnsafeStream::stream`].
/// Creating one is `unsafe` because MLX 0.32.2 gives the safe API no way to rule out the data
/// races described under [`ThreadUnsafeStream::new`].
pub struct ThreadUnsafeStream {
    raw: sys::mlx_stream,
}

// SAFETY: the handle owns an immutable `mlx::core::Stream` value (an index and a device). What
// using the stream from several threads requires is the contract of the `unsafe` constructor.
unsafe impl Send for ThreadUnsafeStream {}
// SAFETY: as above; every method takes `&self` and only reads the handle.
unsafe impl Sync for ThreadUnsafeStream {}

impl ThreadUnsafeStream {
    /// A new stream on `device` that any thread may run on.
    ///
    /// # Safety
    /// MLX keeps these streams' command encoders in one process-wide table with no lock, and
    /// each encoder's state is unsynchronized. The caller must ensure that:
    /// - no other thread is calling into MLX while this runs (the table is written here, and
    ///   read by any thread that evaluates on a stream it did not create), e.g. create these
    ///   streams at start-up, before other threads use MLX;
    /// - no two threads build ops on, evaluate on or synchronize the stream at the same time
    ///   (hand it over with a lock or a channel);
    /// - on the CUDA backend, [`Stream::clear_thread_streams`] is not called on the process's
    ///   main thread while the stream may still be used (there it destroys these streams too).
    ///
    /// ```
    /// use mlx_rs::{Array, Device, ThreadUnsafeStream};
    /// // SAFETY: no other thread uses MLX yet; the threads below use the stream one at a time.
    /// let shared = unsafe { ThreadUnsafeStream::new(&Device::cpu())? };
    /// let on_other_thread = std::thread::scope(|s| {
    ///     s.spawn(|| -> mlx_rs::Result<f32> {
    ///         let x = Array::from_slice(&[3.0f32], &[1])?;
    ///         mlx_rs::ops::add_device(&x, &x, &shared.stream()?)?.item()
    ///     })
    ///     .join()
    ///     .unwrap()
    /// })?;
    /// assert_eq!(on_other_thread, 6.0);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub unsafe fn new(device: &Device) -> Result<ThreadUnsafeStream> {
        ffi::init();
        // SAFETY: `device` is live; mlx-c returns an empty handle on failure. The caller upholds
        // the contract above.
        let raw = unsafe { sys::mlx_stream_new_thread_unsafe(device.raw()) };
        let stream = Stream::from_constructor("new_thread_unsafe_stream", raw)?;
        let raw = stream.raw;
        std::mem::forget(stream);
        Ok(ThreadUnsafeStream { raw })
    }

    /// A handle to the stream for the calling thread.
    pub fn stream(&self) -> Result<Stream> {
        // A borrowed view of the raw handle; `try_clone` makes the owned copy and the view is
        // not dropped (this value keeps owning the raw handle).
        let view = std::mem::ManuallyDrop::new(Stream::from_raw(self.raw));
        view.try_clone()
    }
}

impl Drop for ThreadUnsafeStream {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once. MLX keeps the stream registered.
        ffi::free(|| unsafe { sys::mlx_stream_free(self.raw) });
    }
}

impl fmt::Debug for ThreadUnsafeStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: `self.raw` is live; the string is owned by `string_out`.
        match ffi::string_out("stream_tostring", |s| unsafe {
            sys::mlx_stream_tostring(s, self.raw)
        }) {
            Ok(text) => write!(f, "ThreadUnsafeStream({text})"),
            Err(_) => f.write_str("ThreadUnsafeStream(?)"),
        }
    }
}
