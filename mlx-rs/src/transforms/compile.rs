//! Compilation of array functions into fused graphs (`mlx.core.compile`).

use mlx_sys as sys;

use super::Function;
use super::closure::{Closure, call_with_closures};
use crate::error::{Error, Result};
use crate::{Array, ffi};

/// How much `compile` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompileMode {
    /// No compilation: compiled functions run as written.
    Disabled,
    /// Trace and fuse, but skip graph simplification.
    NoSimplify,
    /// Trace and simplify, but do not fuse kernels.
    NoFuse,
    /// Everything (the default).
    Enabled,
}

/// `f` compiled: traced once per input shape and dtype, with its graph simplified and
/// element-wise chains fused.
///
/// `f` must be a pure function of its inputs: arrays it captures are treated as constants of the
/// trace.
///
/// ```
/// use mlx_rs::{Array, ops, transforms};
/// let f = transforms::compile(|x: &[Array]| Ok(vec![ops::add(&x[0], &x[0])?]))?;
/// let y = f.apply(&[Array::scalar(2.0f32)])?;
/// assert_eq!(y[0].item::<f32>()?, 4.0);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn compile(f: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static) -> Result<Function> {
    compile_with(f, false)
}

/// `f` compiled once for inputs of every shape (`mlx.core.compile(.., shapeless=True)`).
///
/// # Safety
/// MLX 0.32.2 reuses the first trace for inputs of other shapes, including the index bounds and
/// slice sizes it computed from the traced shapes. If `f` gathers, takes, scatters or slices
/// (directly or through indexing) along axes whose size changes between calls, a later call reads
/// or writes outside its arrays. The caller guarantees that `f` has no such operation on axes
/// that change size; element-wise, reduction and matmul-style functions are fine. Use
/// [`compile`] when in doubt: it retraces per shape.
pub unsafe fn compile_shapeless(
    f: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static,
) -> Result<Function> {
    compile_with(f, true)
}

fn compile_with(
    f: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static,
    shapeless: bool,
) -> Result<Function> {
    let fun = Closure::owned(f)?;
    let mut out = Closure::empty();
    call_with_closures("compile", || {
        // SAFETY: live handles; the result is owned by `out`.
        ffi::status("compile", || unsafe {
            sys::mlx_compile(out.as_raw_mut(), fun.raw(), shapeless)
        })
    })?;
    Ok(Function::from_closure(out))
}

/// A compiled function with state arrays that it reads and replaces on every call (model
/// parameters, optimizer or RNG state), as `mlx.core.compile(fun, inputs=state, outputs=state)`.
///
/// Captured arrays are constants of a trace; state that changes between calls must instead flow
/// through the function, which this type does for you: `f(inputs, state)` returns
/// `(outputs, new_state)`, and the new state is fed to the next call without retracing.
///
/// ```
/// use mlx_rs::{Array, ops, transforms};
/// // A running sum: returns x + total and keeps the new total.
/// let mut f = transforms::compile_with_state(
///     |x: &[Array], total: &[Array]| {
///         let sum = ops::add(&x[0], &total[0])?;
///         Ok((vec![sum.clone()], vec![sum]))
///     },
///     vec![Array::scalar(0.0f32)],
/// )?;
/// f.apply(&[Array::scalar(2.0f32)])?;
/// let out = f.apply(&[Array::scalar(3.0f32)])?;
/// assert_eq!(out[0].item::<f32>()?, 5.0);
/// assert_eq!(f.state()[0].item::<f32>()?, 5.0);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn compile_with_state(
    mut f: impl FnMut(&[Array], &[Array]) -> Result<(Vec<Array>, Vec<Array>)> + 'static,
    state: Vec<Array>,
) -> Result<StatefulFunction> {
    let state_len = state.len();
    let compiled = compile(move |all: &[Array]| {
        let (inputs, state) = all.split_at(all.len().saturating_sub(state_len));
        let (mut outputs, new_state) = f(inputs, state)?;
        if new_state.len() != state_len {
            return Err(Error::invalid(
                "compile_with_state",
                format!(
                    "the function returned {} state arrays, expected {state_len}",
                    new_state.len()
                ),
            ));
        }
        outputs.extend(new_state);
        Ok(outputs)
    })?;
    Ok(StatefulFunction { compiled, state })
}

/// See [`compile_with_state`].
#[derive(Debug)]
pub struct StatefulFunction {
    compiled: Function,
    state: Vec<Array>,
}

impl StatefulFunction {
    /// Calls the function on `inputs` and the current state, keeps the new state, and returns
    /// the outputs.
    pub fn apply<A: AsRef<Array>>(&mut self, inputs: &[A]) -> Result<Vec<Array>> {
        let all: Vec<&Array> = inputs.iter().map(AsRef::as_ref).chain(&self.state).collect();
        let mut outputs = self.compiled.apply(&all)?;
        let split = outputs.len().checked_sub(self.state.len()).ok_or_else(|| {
            Error::invalid(
                "compile_with_state",
                "the function returned fewer arrays than its state",
            )
        })?;
        self.state = outputs.split_off(split);
        Ok(outputs)
    }

    /// The current state.
    pub fn state(&self) -> &[Array] {
        &self.state
    }

    /// Replaces the state (same number of arrays; other shapes or dtypes retrace).
    pub fn set_state(&mut self, state: Vec<Array>) -> Result<()> {
        if state.len() != self.state.len() {
            return Err(Error::invalid(
                "compile_with_state",
                format!("{} state arrays given, expected {}", state.len(), self.state.len()),
            ));
        }
        self.state = state;
        Ok(())
    }
}

/// Sets how much compilation does, for the whole process.
pub fn set_compile_mode(mode: CompileMode) -> Result<()> {
    let raw = match mode {
        CompileMode::Disabled => sys::MLX_COMPILE_MODE_DISABLED,
        CompileMode::NoSimplify => sys::MLX_COMPILE_MODE_NO_SIMPLIFY,
        CompileMode::NoFuse => sys::MLX_COMPILE_MODE_NO_FUSE,
        CompileMode::Enabled => sys::MLX_COMPILE_MODE_ENABLED,
    };
    // SAFETY: plain value argument.
    ffi::status("set_compile_mode", || unsafe { sys::mlx_set_compile_mode(raw) })
}

/// Turns compilation off for the whole process (compiled functions run uncompiled).
pub fn disable_compile() -> Result<()> {
    // SAFETY: no arguments.
    ffi::status("disable_compile", || unsafe { sys::mlx_disable_compile() })
}

/// Turns compilation back on.
pub fn enable_compile() -> Result<()> {
    // SAFETY: no arguments.
    ffi::status("enable_compile", || unsafe { sys::mlx_enable_compile() })
}

/// Drops every compiled trace MLX has cached, freeing the memory their constants hold.
pub fn clear_compile_cache() -> Result<()> {
    struct Cache(sys::mlx_compile_cache);
    impl Drop for Cache {
        fn drop(&mut self) {
            // SAFETY: owned handle, freed once.
            ffi::free(|| unsafe { sys::mlx_compile_cache_free(self.0) });
        }
    }
    // SAFETY: no preconditions; freed by `Cache`'s drop.
    let mut cache = Cache(ffi::call(|| unsafe { sys::mlx_compile_cache_new() }));
    // SAFETY: the handle is live; the call points it at MLX's global cache.
    ffi::status("clear_compile_cache", || unsafe { sys::mlx_detail_compile_cache(&mut cache.0) })?;
    // SAFETY: the handle is live.
    ffi::status("clear_compile_cache", || unsafe { sys::mlx_detail_compile_clear_cache(cache.0) })
}
