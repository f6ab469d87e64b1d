//! Transforms over parameter trees: gradients keyed by path, and compiled functions whose state
//! is a tree (a model's parameters, an optimizer's state).
//!
//! The differentiated function receives the tree and may borrow anything else (a model, a
//! batch) for the duration of the call: no `'static` bound, no shared ownership.

use super::compile::{StatefulFunction, compile_with_state};
use super::value_and_grad_of;
use crate::Array;
use crate::error::{Error, Result};
use crate::utils::{Tree, tree_zip};

/// The outputs of `f(params)` and the gradient of its first output (a scalar loss) with respect
/// to every leaf of `params`, as a tree of the same structure (`mlx.nn.value_and_grad` on a
/// model's parameters).
///
/// `f` may borrow: it runs only during this call.
///
/// ```
/// use mlx_rs::{Array, ops, transforms, utils::Tree};
/// let mut params = Tree::new();
/// params.insert("linear.weight", Array::from_slice(&[1.0f32, 2.0], &[2])?)?;
/// params.insert("linear.bias", Array::scalar(0.5f32))?;
/// let x = Array::from_slice(&[3.0f32, 4.0], &[2])?; // borrowed by the closure
/// let (values, grads) = transforms::value_and_grad_tree(&params, |p| {
///     let (w, b) = (p.leaf("linear.weight")?, p.leaf("linear.bias")?);
///     // loss = sum(w * x) + b
///     Ok(vec![(&ops::sum(&(w * &x)?, .., false)? + b)?])
/// })?;
/// assert_eq!(values[0].item::<f32>()?, 11.5);
/// assert_eq!(grads.leaf("linear.weight")?.to_vec::<f32>()?, [3.0, 4.0]);
/// assert_eq!(grads.leaf("linear.bias")?.item::<f32>()?, 1.0);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn value_and_grad_tree(
    params: &Tree,
    mut f: impl FnMut(&Tree) -> Result<Vec<Array>>,
) -> Result<(Vec<Array>, Tree)> {
    let leaves: Vec<Array> = params.leaves().into_iter().cloned().collect();
    if leaves.is_empty() {
        return Err(Error::invalid("value_and_grad", "the parameter tree has no arrays"));
    }
    let mut call = |arrays: &[Array]| f(&params.with_leaves(arrays.iter().cloned())?);
    let argnums: Vec<i32> = (0..leaves.len())
        .map(|i| i32::try_from(i).map_err(|_| Error::invalid("value_and_grad", "too many arrays")))
        .collect::<Result<_>>()?;
    let (values, grads) = value_and_grad_of(&mut call, &argnums, &leaves)?;
    Ok((values, params.with_leaves(grads)?))
}

/// The gradient of `f(params)`'s first output (a scalar loss) with respect to every leaf of
/// `params`, as a tree of the same structure. See [`value_and_grad_tree`].
pub fn grad_tree(params: &Tree, f: impl FnMut(&Tree) -> Result<Vec<Array>>) -> Result<Tree> {
    Ok(value_and_grad_tree(params, f)?.1)
}

/// A compiled function whose state is a tree that it reads and replaces on every call (a
/// training step over a model's parameters and an optimizer's state), as
/// `mlx.core.compile(step, inputs=state, outputs=state)`.
///
/// `f(inputs, state)` returns `(outputs, new_state)`; the new state must have the paths of the
/// old one (checked while tracing, so calls after the first cost nothing extra). See
/// [`compile_with_state`] for the positional form.
///
/// ```
/// use mlx_rs::{Array, ops, transforms, utils::Tree};
/// // One step of gradient descent on w for loss = (w * x - 1)^2, with w in the state.
/// let mut state = Tree::new();
/// state.insert("model.w", Array::scalar(0.0f32))?;
/// let mut step = transforms::compile_with_tree_state(
///     |inputs: &[Array], state: &Tree| {
///         let x = inputs[0].clone();
///         let (loss, grads) = transforms::value_and_grad_tree(state, |p| {
///             Ok(vec![ops::square(&((p.leaf("model.w")? * &x)? - 1.0f32)?)?])
///         })?;
///         let new = state.map_with_path(|path, w| w - &(grads.leaf(path)? * 0.1f32)?)?;
///         Ok((loss, new))
///     },
///     state,
/// )?;
/// for _ in 0..50 {
///     step.apply(&[Array::scalar(2.0f32)])?;
/// }
/// let w = step.state()?.leaf("model.w")?.item::<f32>()?;
/// assert!((w - 0.5).abs() < 1e-4);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn compile_with_tree_state(
    mut f: impl FnMut(&[Array], &Tree) -> Result<(Vec<Array>, Tree)> + 'static,
    state: Tree,
) -> Result<TreeStatefulFunction> {
    let structure = state.map(|_| Ok(()))?;
    let shape = structure.clone();
    let leaves: Vec<Array> = state.leaves().into_iter().cloned().collect();
    let inner = compile_with_state(
        move |inputs: &[Array], flat: &[Array]| {
            let tree = shape.with_leaves(flat.iter().cloned())?;
            let (outputs, new_state) = f(inputs, &tree)?;
            tree_zip(&shape, &new_state.map(|_| Ok(()))?).map_err(|e| {
                Error::invalid(
                    "compile_with_tree_state",
                    format!("the new state's paths differ from the old: {}", e.message()),
                )
            })?;
            Ok((outputs, new_state.leaves().into_iter().cloned().collect()))
        },
        leaves,
    )?;
    Ok(TreeStatefulFunction { inner, structure })
}

/// See [`compile_with_tree_state`].
#[derive(Debug)]
pub struct TreeStatefulFunction {
    inner: StatefulFunction,
    structure: Tree<()>,
}

impl TreeStatefulFunction {
    /// Calls the function on `inputs` and the current state, keeps the new state, and returns
    /// the outputs.
    pub fn apply<A: AsRef<Array>>(&mut self, inputs: &[A]) -> Result<Vec<Array>> {
        self.inner.apply(inputs)
    }

    /// The current state, as a tree.
    pub fn state(&self) -> Result<Tree> {
        self.structure.with_leaves(self.inner.state().iter().cloned())
    }

    /// Replaces the state with a tree of the same paths (other shapes or dtypes retrace).
    pub fn set_state(&mut self, state: &Tree) -> Result<()> {
        tree_zip(&self.structure, &state.map(|_| Ok(()))?)?;
        self.inner.set_state(state.leaves().into_iter().cloned().collect())
    }
}
