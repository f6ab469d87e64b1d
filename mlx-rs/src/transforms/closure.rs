//! The bridge between Rust closures and mlx-c closures.
//!
//! A Rust closure is boxed into a payload that mlx-c calls through an `extern "C"` trampoline.
//! The trampoline never unwinds: it runs the closure inside `catch_unwind`, and on an `Err` or a
//! panic it stores the error in a thread-local slot and returns non-zero, which makes MLX abort
//! the transform with a generic message. The transform's wrapper then returns the stored error,
//! so the closure's own message wins over MLX's.
//!
//! Closures handed to a transform that only runs during the call (`vjp`, `jvp`, `vmap`) may
//! borrow: their payload holds a liveness flag that is cleared when the call returns, so a late
//! call from MLX gets an error instead of a dangling closure. Closures that MLX keeps (compiled
//! functions, `value_and_grad`, custom functions) must be `'static`.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use mlx_sys as sys;

use crate::error::{Error, ErrorKind, Result};
use crate::vector::VectorArray;
use crate::{Array, ffi};

/// The signature of every array function: arrays in, arrays out.
pub(crate) type ArrayFn<'a> = dyn FnMut(&[Array]) -> Result<Vec<Array>> + 'a;

thread_local! {
    static CLOSURE_ERROR: RefCell<Option<Error>> = const { RefCell::new(None) };
}

/// Remembers the first error a closure raised during the current transform call.
pub(crate) fn record_closure_error(err: Error) {
    let _ = CLOSURE_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut()
            && slot.is_none()
        {
            *slot = Some(err);
        }
    });
}

fn take_closure_error() -> Option<Error> {
    CLOSURE_ERROR
        .try_with(|slot| slot.try_borrow_mut().ok().and_then(|mut s| s.take()))
        .ok()
        .flatten()
}

/// Runs an mlx-c call that may invoke Rust closures, preferring a closure's error over MLX's.
pub(crate) fn call_with_closures<T>(
    op: &'static str,
    call: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let _stale = take_closure_error();
    let result = call();
    match (result, take_closure_error()) {
        (Err(_), Some(closure_err)) => Err(closure_err),
        (Err(mlx_err), None) => Err(Error::new(mlx_err.kind(), op, mlx_err.message())),
        (Ok(value), _) => Ok(value),
    }
}

/// Runs user code from a trampoline: converts a panic into an error.
pub(crate) fn guard<T>(what: &'static str, body: impl FnOnce() -> Result<T>) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Some(value),
        Ok(Err(err)) => {
            record_closure_error(err);
            None
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic payload".to_owned());
            record_closure_error(Error::new(
                ErrorKind::Closure,
                what,
                format!("the closure panicked: {message}"),
            ));
            None
        }
    }
}

/// Copies the arrays of a borrowed `mlx_vector_array` (each shares its buffer).
pub(crate) fn arrays_of(vector: sys::mlx_vector_array) -> Result<Vec<Array>> {
    // SAFETY: the vector is live for the duration of the trampoline call.
    let len = unsafe { sys::mlx_vector_array_size(vector) };
    (0..len)
        .map(|i| {
            // SAFETY: `i` is in range; the output is owned by `array_out`.
            ffi::array_out("closure_input", |out| unsafe {
                sys::mlx_vector_array_get(out, vector, i)
            })
        })
        .collect()
}

/// Writes `arrays` into an mlx-c output vector.
pub(crate) fn write_arrays(out: *mut sys::mlx_vector_array, arrays: &[Array]) -> Result<()> {
    let vector = VectorArray::from_arrays(arrays);
    // SAFETY: `out` points at a vector handle owned by mlx-c for this call; it copies `vector`.
    ffi::status("closure_output", || unsafe { sys::mlx_vector_array_set(out, vector.raw()) })
}

/// What a closure payload calls.
enum Callee {
    /// A closure that MLX may keep.
    Owned(Box<ArrayFn<'static>>),
    /// A closure borrowed for the lifetime of a [`Closure`]; `alive` is cleared when it drops.
    Borrowed { f: *mut ArrayFn<'static>, alive: Rc<Cell<bool>> },
}

struct Payload {
    /// Borrowed mutably while the closure runs: a re-entrant call (the closure applying itself)
    /// finds it borrowed and fails instead of aliasing the closure.
    callee: RefCell<Callee>,
}

extern "C" fn trampoline(
    out: *mut sys::mlx_vector_array,
    input: sys::mlx_vector_array,
    payload: *mut c_void,
) -> c_int {
    let done = guard("closure", || {
        // SAFETY: `payload` is the `Payload` this module boxed; MLX keeps it alive while it may
        // call the closure. Only shared references to it are made.
        let payload = unsafe { &*payload.cast::<Payload>() };
        let Ok(mut callee) = payload.callee.try_borrow_mut() else {
            return Err(Error::new(ErrorKind::Closure, "closure", "a closure cannot call itself"));
        };
        let inputs = arrays_of(input)?;
        let outputs = match &mut *callee {
            Callee::Owned(f) => f(&inputs)?,
            Callee::Borrowed { f, alive } => {
                if !alive.get() {
                    return Err(Error::new(
                        ErrorKind::Closure,
                        "closure",
                        "MLX called a closure after the transform that borrowed it returned",
                    ));
                }
                // SAFETY: `alive` is set only while the `Closure` that borrows the Rust closure
                // exists, so the closure is live; the `RefCell` guard makes this the only access.
                unsafe { (**f)(&inputs)? }
            }
        };
        write_arrays(out, &outputs)
    });
    if done.is_some() { 0 } else { 1 }
}

extern "C" fn drop_payload(payload: *mut c_void) {
    // Dropping user state must not unwind into C.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: called once by mlx-c with the pointer from `Box::into_raw`.
        drop(unsafe { Box::from_raw(payload.cast::<Payload>()) })
    }));
}

/// An owned `mlx_closure`; `'a` is the lifetime of a borrowed Rust closure behind it.
pub(crate) struct Closure<'a> {
    raw: sys::mlx_closure,
    /// Cleared on drop for borrowed closures.
    alive: Option<Rc<Cell<bool>>>,
    _borrow: PhantomData<&'a mut ()>,
}

impl Closure<'static> {
    /// Wraps a closure that MLX may keep and call later.
    pub(crate) fn owned(f: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static) -> Result<Self> {
        Closure::from_payload(Payload { callee: RefCell::new(Callee::Owned(Box::new(f))) }, None)
    }

    /// Wraps a raw closure returned by mlx-c.
    pub(crate) fn from_raw(raw: sys::mlx_closure) -> Self {
        Closure { raw, alive: None, _borrow: PhantomData }
    }

    /// An empty handle to be filled by mlx-c.
    pub(crate) fn empty() -> Self {
        // SAFETY: no preconditions; freed in `Drop`.
        Closure::from_raw(ffi::call(|| unsafe { sys::mlx_closure_new() }))
    }
}

impl<'a> Closure<'a> {
    fn from_payload(payload: Payload, alive: Option<Rc<Cell<bool>>>) -> Result<Self> {
        let payload = Box::into_raw(Box::new(payload));
        ffi::handle_out(
            "closure",
            // SAFETY: the trampoline matches the payload type; mlx-c owns the payload from here
            // and frees it with `drop_payload` (also on failure).
            || unsafe {
                sys::mlx_closure_new_func_payload(
                    Some(trampoline),
                    payload.cast(),
                    Some(drop_payload),
                )
            },
            |raw| Closure { raw, alive, _borrow: PhantomData },
        )
    }

    /// Wraps a closure borrowed for `'a`; calls after the returned handle is dropped fail
    /// instead of touching `f`.
    pub(crate) fn borrowed(f: &'a mut ArrayFn<'_>) -> Result<Self> {
        let alive = Rc::new(Cell::new(true));
        let f: *mut ArrayFn<'_> = f;
        // SAFETY: only the lifetime is erased. The pointer is followed only while `alive` is
        // set, and `Drop` of the returned handle (which cannot outlive `'a`) clears it.
        let f: *mut ArrayFn<'static> = unsafe { std::mem::transmute(f) };
        let callee = Callee::Borrowed { f, alive: alive.clone() };
        Closure::from_payload(Payload { callee: RefCell::new(callee) }, Some(alive))
    }

    pub(crate) fn raw(&self) -> sys::mlx_closure {
        self.raw
    }

    pub(crate) fn as_raw_mut(&mut self) -> *mut sys::mlx_closure {
        &mut self.raw
    }

    /// Calls the closure.
    pub(crate) fn apply<A: AsRef<Array>>(&self, inputs: &[A]) -> Result<Vec<Array>> {
        let inputs = VectorArray::from_arrays(inputs);
        call_with_closures("apply", || {
            ffi::arrays_out("apply", |out| {
                // SAFETY: live handles; the outputs are owned by `arrays_out`.
                unsafe { sys::mlx_closure_apply(out, self.raw, inputs.raw()) }
            })
        })
    }
}

impl Drop for Closure<'_> {
    fn drop(&mut self) {
        if let Some(alive) = &self.alive {
            alive.set(false);
        }
        // SAFETY: owned handle, freed once; MLX frees the payload when its last copy goes.
        ffi::free(|| unsafe { sys::mlx_closure_free(self.raw) });
    }
}
