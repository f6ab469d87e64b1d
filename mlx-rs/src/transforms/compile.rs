//! Compilation of array functions into fused graphs (`mlx.core.compile`).

use mlx_sys as sys;

use super::Function;
use super::closure::{Closure, call_with_closures};
use crate::error::Result;
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
            unsafe { sys::mlx_compile_cache_free(self.0) };
        }
    }
    ffi::init();
    // SAFETY: no preconditions; freed by `Cache`'s drop.
    let mut cache = Cache(unsafe { sys::mlx_compile_cache_new() });
    // SAFETY: the handle is live; the call points it at MLX's global cache.
    ffi::status("clear_compile_cache", || unsafe { sys::mlx_detail_compile_cache(&mut cache.0) })?;
    // SAFETY: the handle is live.
    ffi::status("clear_compile_cache", || unsafe { sys::mlx_detail_compile_clear_cache(cache.0) })
}
