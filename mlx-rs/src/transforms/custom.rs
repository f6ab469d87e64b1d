//! Functions with user-defined derivatives and batching rules: `custom_function`, `custom_vjp`.

use std::ffi::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use mlx_sys as sys;

use super::Function;
use super::closure::{Closure, arrays_of, call_with_closures, guard, write_arrays};
use crate::error::Result;
use crate::{Array, ffi};

/// A vector-Jacobian product rule: `(primals, cotangents, outputs) -> cotangents of the primals`.
pub type VjpRule = dyn Fn(&[Array], &[Array], &[Array]) -> Result<Vec<Array>>;

/// A Jacobian-vector product rule: `(primals, tangents, argnums) -> tangents of the outputs`,
/// where `tangents[i]` belongs to `primals[argnums[i]]`.
pub type JvpRule = dyn Fn(&[Array], &[Array], &[i32]) -> Result<Vec<Array>>;

/// A batching rule: `(inputs, axes) -> (outputs, output axes)`, where `axes[i]` is the batch axis
/// of `inputs[i]` (-1 for none).
pub type VmapRule = dyn Fn(&[Array], &[i32]) -> Result<(Vec<Array>, Vec<i32>)>;

/// The optional rules of [`custom_function`].
#[derive(Default)]
pub struct CustomRules {
    /// Replaces the vector-Jacobian product (reverse mode).
    pub vjp: Option<Box<VjpRule>>,
    /// Replaces the Jacobian-vector product (forward mode).
    pub jvp: Option<Box<JvpRule>>,
    /// Replaces the batching rule of `vmap`.
    pub vmap: Option<Box<VmapRule>>,
}

extern "C" fn drop_boxed<T: ?Sized>(payload: *mut c_void) {
    // SAFETY: `payload` came from `Box::into_raw(Box::new(Box<T>))` and is freed once by mlx-c;
    // dropping user state must not unwind into C.
    let _ =
        catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(payload.cast::<Box<T>>()) })));
}

/// Reads `num` ints from a C array (empty when NULL).
fn ints(data: *const c_int, num: usize) -> Vec<i32> {
    if data.is_null() || num == 0 {
        return Vec::new();
    }
    // SAFETY: mlx-c passes `num` valid ints at `data` for the duration of the call.
    unsafe { std::slice::from_raw_parts(data, num) }.to_vec()
}

extern "C" fn vjp_trampoline(
    out: *mut sys::mlx_vector_array,
    primals: sys::mlx_vector_array,
    cotangents: sys::mlx_vector_array,
    outputs: sys::mlx_vector_array,
    payload: *mut c_void,
) -> c_int {
    let done = guard("custom_vjp", || {
        // SAFETY: the payload is the boxed rule of this trampoline, alive while MLX may call it.
        let rule = unsafe { &*payload.cast::<Box<VjpRule>>() };
        let grads = rule(&arrays_of(primals)?, &arrays_of(cotangents)?, &arrays_of(outputs)?)?;
        write_arrays(out, &grads)
    });
    if done.is_some() { 0 } else { 1 }
}

extern "C" fn jvp_trampoline(
    out: *mut sys::mlx_vector_array,
    primals: sys::mlx_vector_array,
    tangents: sys::mlx_vector_array,
    argnums: *const c_int,
    num: usize,
    payload: *mut c_void,
) -> c_int {
    let done = guard("custom_jvp", || {
        // SAFETY: the payload is the boxed rule of this trampoline, alive while MLX may call it.
        let rule = unsafe { &*payload.cast::<Box<JvpRule>>() };
        let result = rule(&arrays_of(primals)?, &arrays_of(tangents)?, &ints(argnums, num))?;
        write_arrays(out, &result)
    });
    if done.is_some() { 0 } else { 1 }
}

extern "C" fn vmap_trampoline(
    out: *mut sys::mlx_vector_array,
    out_axes: *mut sys::mlx_vector_int,
    inputs: sys::mlx_vector_array,
    axes: *const c_int,
    num: usize,
    payload: *mut c_void,
) -> c_int {
    let done = guard("custom_vmap", || {
        // SAFETY: the payload is the boxed rule of this trampoline, alive while MLX may call it.
        let rule = unsafe { &*payload.cast::<Box<VmapRule>>() };
        let (outputs, mut axes) = rule(&arrays_of(inputs)?, &ints(axes, num))?;
        write_arrays(out, &outputs)?;
        // SAFETY: `axes` holds `len` ints; mlx-c copies them into a new vector.
        let vector =
            ffi::call(|| unsafe { sys::mlx_vector_int_new_data(axes.as_mut_ptr(), axes.len()) });
        // SAFETY: `out_axes` is owned by mlx-c for this call and copies `vector`; then `vector`
        // is freed.
        let set =
            ffi::status("custom_vmap", || unsafe { sys::mlx_vector_int_set(out_axes, vector) });
        // SAFETY: `vector` was created above and is freed once.
        ffi::free(|| unsafe { sys::mlx_vector_int_free(vector) });
        set
    });
    if done.is_some() { 0 } else { 1 }
}

/// Owned handles of the optional rule closures; freed on every path.
struct RuleHandles {
    vjp: sys::mlx_closure_custom,
    jvp: sys::mlx_closure_custom_jvp,
    vmap: sys::mlx_closure_custom_vmap,
}

impl RuleHandles {
    /// Handles of the given rules (empty handles for the missing ones); a rule closure that
    /// mlx-c cannot make is an error of `op`, with the handles made so far freed.
    fn new(op: &'static str, rules: CustomRules) -> Result<RuleHandles> {
        let mut handles = RuleHandles { vjp: ffi::empty(), jvp: ffi::empty(), vmap: ffi::empty() };
        // The trampolines match their payload types; mlx-c owns each payload and frees it with
        // `drop_boxed` when its last copy goes.
        if let Some(rule) = rules.vjp {
            let payload = Box::into_raw(Box::new(rule)).cast();
            handles.vjp = ffi::handle_out(
                op,
                // SAFETY: as above.
                || unsafe {
                    sys::mlx_closure_custom_new_func_payload(
                        Some(vjp_trampoline),
                        payload,
                        Some(drop_boxed::<VjpRule>),
                    )
                },
                |raw| raw,
            )?;
        }
        if let Some(rule) = rules.jvp {
            let payload = Box::into_raw(Box::new(rule)).cast();
            handles.jvp = ffi::handle_out(
                op,
                // SAFETY: as above.
                || unsafe {
                    sys::mlx_closure_custom_jvp_new_func_payload(
                        Some(jvp_trampoline),
                        payload,
                        Some(drop_boxed::<JvpRule>),
                    )
                },
                |raw| raw,
            )?;
        }
        if let Some(rule) = rules.vmap {
            let payload = Box::into_raw(Box::new(rule)).cast();
            handles.vmap = ffi::handle_out(
                op,
                // SAFETY: as above.
                || unsafe {
                    sys::mlx_closure_custom_vmap_new_func_payload(
                        Some(vmap_trampoline),
                        payload,
                        Some(drop_boxed::<VmapRule>),
                    )
                },
                |raw| raw,
            )?;
        }
        Ok(handles)
    }
}

impl Drop for RuleHandles {
    fn drop(&mut self) {
        // SAFETY: owned handles (or empty ones, which free as no-ops), freed once.
        ffi::free(|| unsafe { sys::mlx_closure_custom_free(self.vjp) });
        // SAFETY: as above.
        ffi::free(|| unsafe { sys::mlx_closure_custom_jvp_free(self.jvp) });
        // SAFETY: as above.
        ffi::free(|| unsafe { sys::mlx_closure_custom_vmap_free(self.vmap) });
    }
}

/// `f` with its derivatives and batching replaced by `rules` (`mlx.core.custom_function`).
///
/// ```
/// use mlx_rs::{Array, ops, transforms::{self, CustomRules}};
/// // Identity whose gradient is doubled.
/// let rules = CustomRules {
///     vjp: Some(Box::new(|_p, cot, _o| cot.iter().map(|c| ops::add(c, c)).collect())),
///     ..CustomRules::default()
/// };
/// let f = transforms::custom_function(|x| Ok(x.to_vec()), rules)?;
/// let (_, vjps) = transforms::vjp(|x| f.apply(x), &[Array::scalar(3.0f32)], &[Array::scalar(1.0f32)])?;
/// assert_eq!(vjps[0].item::<f32>()?, 2.0);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn custom_function(
    f: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static,
    rules: CustomRules,
) -> Result<Function> {
    let fun = Closure::owned(f)?;
    let handles = RuleHandles::new("custom_function", rules)?;
    let mut out = Closure::empty();
    call_with_closures("custom_function", || {
        // SAFETY: live handles; the result is owned by `out`.
        ffi::status("custom_function", || unsafe {
            sys::mlx_custom_function(
                out.as_raw_mut(),
                fun.raw(),
                handles.vjp,
                handles.jvp,
                handles.vmap,
            )
        })
    })?;
    Ok(Function::from_closure(out))
}

/// `f` with its vector-Jacobian product replaced by `vjp` (`mlx.core.custom_vjp`).
pub fn custom_vjp(
    f: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static,
    vjp: impl Fn(&[Array], &[Array], &[Array]) -> Result<Vec<Array>> + 'static,
) -> Result<Function> {
    let fun = Closure::owned(f)?;
    let rules = CustomRules { vjp: Some(Box::new(vjp)), ..CustomRules::default() };
    let handles = RuleHandles::new("custom_vjp", rules)?;
    let mut out = Closure::empty();
    call_with_closures("custom_vjp", || {
        // SAFETY: live handles; the result is owned by `out`.
        ffi::status("custom_vjp", || unsafe {
            sys::mlx_custom_vjp(out.as_raw_mut(), fun.raw(), handles.vjp)
        })
    })?;
    Ok(Function::from_closure(out))
}
