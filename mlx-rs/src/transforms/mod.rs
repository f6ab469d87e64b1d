//! Function transformations, as in `mlx.core`: evaluation, automatic differentiation (`vjp`,
//! `jvp`, `grad`, `value_and_grad`), vectorization (`vmap`), compilation, checkpointing and
//! custom derivatives.
//!
//! Functions are Rust closures from `&[Array]` to `Result<Vec<Array>>`. A closure that returns
//! `Err` or panics makes the transform return that error (a panic becomes an
//! [`ErrorKind::Closure`](crate::ErrorKind::Closure) error); nothing unwinds through MLX. One-shot
//! transforms (`vjp`, `jvp`, `vmap`) accept closures that borrow; transforms that return a
//! reusable function (`value_and_grad`, `compile`, `checkpoint`, `custom_function`) need
//! `'static` closures (capture arrays by value: cloning an [`Array`] is cheap).

pub(crate) mod closure;
mod compile;
mod custom;
mod keyed;

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::error::{Error, Result};
use crate::vector::VectorArray;
use crate::{Array, Stream, ffi};
use closure::{ArrayFn, Closure, call_with_closures};

pub use compile::{
    CompileMode, StatefulFunction, clear_compile_cache, compile, compile_shapeless,
    compile_with_state, disable_compile, enable_compile, set_compile_mode,
};
pub use custom::{CustomRules, JvpRule, VjpRule, VmapRule, custom_function, custom_vjp};
pub use keyed::{TreeStatefulFunction, compile_with_tree_state, grad_tree, value_and_grad_tree};

/// A function built by a transform (compiled, checkpointed, custom), callable many times.
///
/// Not `Send`: call it on the thread that made it.
pub struct Function {
    closure: Closure<'static>,
}

impl Function {
    pub(crate) fn from_closure(closure: Closure<'static>) -> Function {
        Function { closure }
    }

    /// Calls the function.
    pub fn apply<A: AsRef<Array>>(&self, inputs: &[A]) -> Result<Vec<Array>> {
        self.closure.apply(inputs)
    }
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Function")
    }
}

/// Evaluates `outputs` (and everything they depend on) now.
///
/// Takes any slice of arrays or references (`&[a, b]`, `&[&a, &b]`, `&vec`), as every list
/// argument of this crate does.
pub fn eval<A: AsRef<Array>>(outputs: &[A]) -> Result<()> {
    ffi::eval_all("eval", outputs)
}

/// Starts evaluating `outputs` in the background and returns at once.
///
/// Reading a value (`item`, `to_vec`) or calling [`eval`] waits for it. The usual decode loop
/// starts the next token with `async_eval` before reading the previous one, so the host and the
/// device overlap.
pub fn async_eval<A: AsRef<Array>>(outputs: &[A]) -> Result<()> {
    let vector = VectorArray::from_arrays(outputs);
    // SAFETY: the vector is live.
    ffi::status("async_eval", || unsafe { sys::mlx_async_eval(vector.raw()) })
}

/// Outputs of `f` at `primals`, and the vector-Jacobian products with `cotangents` (one per
/// output) for each primal.
///
/// ```
/// use mlx_rs::{Array, ops, transforms};
/// // d(x*x)/dx at 3 is 6.
/// let square = |x: &[Array]| Ok(vec![ops::multiply(&x[0], &x[0])?]);
/// let (out, vjps) = transforms::vjp(square, &[Array::scalar(3.0f32)], &[Array::scalar(1.0f32)])?;
/// assert_eq!(out[0].item::<f32>()?, 9.0);
/// assert_eq!(vjps[0].item::<f32>()?, 6.0);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn vjp<A: AsRef<Array>, B: AsRef<Array>>(
    mut f: impl FnMut(&[Array]) -> Result<Vec<Array>>,
    primals: &[A],
    cotangents: &[B],
) -> Result<(Vec<Array>, Vec<Array>)> {
    let f: &mut ArrayFn<'_> = &mut f;
    let closure = Closure::borrowed(f)?;
    let (primals, cotangents) =
        (VectorArray::from_arrays(primals), VectorArray::from_arrays(cotangents));
    two_vectors("vjp", |outputs, vjps| {
        // SAFETY: live handles; both outputs are owned by `two_vectors`.
        unsafe { sys::mlx_vjp(outputs, vjps, closure.raw(), primals.raw(), cotangents.raw()) }
    })
}

/// Outputs of `f` at `primals`, and the Jacobian-vector products with `tangents` (one per primal)
/// for each output.
pub fn jvp<A: AsRef<Array>, B: AsRef<Array>>(
    mut f: impl FnMut(&[Array]) -> Result<Vec<Array>>,
    primals: &[A],
    tangents: &[B],
) -> Result<(Vec<Array>, Vec<Array>)> {
    let f: &mut ArrayFn<'_> = &mut f;
    let closure = Closure::borrowed(f)?;
    let (primals, tangents) =
        (VectorArray::from_arrays(primals), VectorArray::from_arrays(tangents));
    two_vectors("jvp", |outputs, jvps| {
        // SAFETY: live handles; both outputs are owned by `two_vectors`.
        unsafe { sys::mlx_jvp(outputs, jvps, closure.raw(), primals.raw(), tangents.raw()) }
    })
}

/// Runs an mlx-c call with two output vectors, with closure errors taking precedence.
fn two_vectors(
    op: &'static str,
    call: impl FnOnce(*mut sys::mlx_vector_array, *mut sys::mlx_vector_array) -> std::ffi::c_int,
) -> Result<(Vec<Array>, Vec<Array>)> {
    call_with_closures(op, || ffi::two_vectors_out(op, call))
}

/// `f` and its gradient with respect to the inputs `argnums`, as one reusable function.
///
/// The first output of `f` must be a scalar (the loss); [`ValueAndGrad::apply`] returns all
/// outputs and the gradients of the first one. A function that returns no outputs is an error.
/// For gradients over a parameter tree, with a closure that may borrow, see
/// [`value_and_grad_tree`].
pub fn value_and_grad(
    mut f: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static,
    argnums: &[i32],
) -> Result<ValueAndGrad> {
    let fun = Closure::owned(move |inputs: &[Array]| with_loss(f(inputs)?))?;
    value_and_grad_closure(&fun, argnums)
}

/// Fails for a differentiated function that returned no outputs (MLX would return a zero
/// gradient as if the loss were a constant).
fn with_loss(outputs: Vec<Array>) -> Result<Vec<Array>> {
    if outputs.is_empty() {
        return Err(Error::new(
            crate::ErrorKind::Closure,
            "value_and_grad",
            "the function returned no outputs; its first output must be the scalar to \
             differentiate",
        ));
    }
    Ok(outputs)
}

/// MLX's value-and-grad function of `fun` over `argnums`.
fn value_and_grad_closure(fun: &Closure<'_>, argnums: &[i32]) -> Result<ValueAndGrad> {
    if argnums.is_empty() {
        return Err(Error::invalid("value_and_grad", "argnums must name at least one input"));
    }
    // SAFETY: no preconditions; freed in `Drop`.
    let raw = ffi::call(|| unsafe { sys::mlx_closure_value_and_grad_new() });
    let mut out = ValueAndGrad { raw };
    call_with_closures("value_and_grad", || {
        // SAFETY: live handles; `argnums` holds `len` ints; the result is owned by `out`.
        ffi::status("value_and_grad", || unsafe {
            sys::mlx_value_and_grad(&mut out.raw, fun.raw(), argnums.as_ptr(), argnums.len())
        })
    })?;
    Ok(out)
}

/// `(outputs, gradients)` of a borrowed `f` at `inputs`, applied at once.
pub(crate) fn value_and_grad_of(
    f: &mut ArrayFn<'_>,
    argnums: &[i32],
    inputs: &[Array],
) -> Result<(Vec<Array>, Vec<Array>)> {
    let mut checked = |inputs: &[Array]| with_loss(f(inputs)?);
    let checked: &mut ArrayFn<'_> = &mut checked;
    let fun = Closure::borrowed(checked)?;
    let function = value_and_grad_closure(&fun, argnums)?;
    function.apply(inputs)
}

/// A function returning its outputs and the gradients of its first output.
pub struct ValueAndGrad {
    raw: sys::mlx_closure_value_and_grad,
}

impl ValueAndGrad {
    /// `(outputs, gradients)` at `inputs`, one gradient per requested input.
    pub fn apply<A: AsRef<Array>>(&self, inputs: &[A]) -> Result<(Vec<Array>, Vec<Array>)> {
        let inputs = VectorArray::from_arrays(inputs);
        two_vectors("value_and_grad", |values, grads| {
            // SAFETY: live handles; both outputs are owned by `two_vectors`.
            unsafe { sys::mlx_closure_value_and_grad_apply(values, grads, self.raw, inputs.raw()) }
        })
    }
}

impl std::fmt::Debug for ValueAndGrad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueAndGrad")
    }
}

impl Drop for ValueAndGrad {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_closure_value_and_grad_free(self.raw) });
    }
}

/// The gradient of `f`'s scalar first output with respect to the inputs `argnums`.
pub fn grad(
    f: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static,
    argnums: &[i32],
) -> Result<Grad> {
    Ok(Grad { inner: value_and_grad(f, argnums)? })
}

/// A function returning the gradients of another's first output.
#[derive(Debug)]
pub struct Grad {
    inner: ValueAndGrad,
}

impl Grad {
    /// The gradients at `inputs`, one per requested input.
    pub fn apply<A: AsRef<Array>>(&self, inputs: &[A]) -> Result<Vec<Array>> {
        Ok(self.inner.apply(inputs)?.1)
    }
}

/// Applies `f` across the `in_axes` of `inputs` (`-1`: not mapped) and stacks its outputs along
/// `out_axes` (`mlx.core.vmap`, applied at once).
pub fn vmap<A: AsRef<Array>>(
    mut f: impl FnMut(&[Array]) -> Result<Vec<Array>>,
    inputs: &[A],
    in_axes: &[i32],
    out_axes: &[i32],
) -> Result<Vec<Array>> {
    if in_axes.len() != inputs.len() {
        return Err(Error::invalid(
            "vmap",
            format!("{} inputs but {} input axes", inputs.len(), in_axes.len()),
        ));
    }
    let f: &mut ArrayFn<'_> = &mut f;
    let closure = Closure::borrowed(f)?;
    let inputs = VectorArray::from_arrays(inputs);
    let (traced_inputs, traced_outputs) = two_vectors("vmap", |s_inputs, s_outputs| {
        // SAFETY: live handles; `in_axes` holds `len` ints; outputs owned by `two_vectors`.
        unsafe {
            sys::mlx_detail_vmap_trace(
                s_inputs,
                s_outputs,
                closure.raw(),
                inputs.raw(),
                in_axes.as_ptr(),
                in_axes.len(),
            )
        }
    })?;
    if out_axes.len() != traced_outputs.len() {
        return Err(Error::invalid(
            "vmap",
            format!(
                "the function has {} outputs but {} output axes were given",
                traced_outputs.len(),
                out_axes.len()
            ),
        ));
    }
    let (traced_inputs, traced_outputs) =
        (VectorArray::from_arrays(&traced_inputs), VectorArray::from_arrays(&traced_outputs));
    // Replacing runs the batching rules of custom functions in the graph: their errors and
    // panics win over MLX's message, as during tracing.
    call_with_closures("vmap", || {
        ffi::arrays_out("vmap", |out| {
            // SAFETY: live handles; the axes slices hold `len` ints; outputs owned by
            // `arrays_out`.
            unsafe {
                sys::mlx_detail_vmap_replace(
                    out,
                    inputs.raw(),
                    traced_inputs.raw(),
                    traced_outputs.raw(),
                    in_axes.as_ptr(),
                    in_axes.len(),
                    out_axes.as_ptr(),
                    out_axes.len(),
                )
            }
        })
    })
}

/// `f` recomputed during the backward pass instead of storing its intermediates
/// (`mlx.core.checkpoint`), trading compute for memory.
pub fn checkpoint(f: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static) -> Result<Function> {
    let fun = Closure::owned(f)?;
    let mut out = Closure::empty();
    call_with_closures("checkpoint", || {
        // SAFETY: live handles; the result is owned by `out`.
        ffi::status("checkpoint", || unsafe { sys::mlx_checkpoint(out.as_raw_mut(), fun.raw()) })
    })?;
    Ok(Function::from_closure(out))
}

/// `a`, with gradients stopped from flowing through it.
#[default_device]
pub fn stop_gradient_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("stop_gradient", |out| unsafe {
        sys::mlx_stop_gradient(out, a.raw(), stream.raw())
    })
}

/// `inputs`, made to depend on `dependencies`: evaluating the results evaluates the dependencies
/// first.
pub fn depends<A: AsRef<Array>, B: AsRef<Array>>(
    inputs: &[A],
    dependencies: &[B],
) -> Result<Vec<Array>> {
    let (inputs, dependencies) =
        (VectorArray::from_arrays(inputs), VectorArray::from_arrays(dependencies));
    ffi::arrays_out("depends", |out| {
        // SAFETY: live handles; the outputs are owned by `arrays_out`.
        unsafe { sys::mlx_depends(out, inputs.raw(), dependencies.raw()) }
    })
}
