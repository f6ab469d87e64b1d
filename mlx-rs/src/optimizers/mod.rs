//! Optimizers over parameter trees, as Python's `mlx.optimizers`: [`SGD`], [`Adam`],
//! [`AdamW`], [`Lion`], [`Adafactor`], [`RMSprop`]; learning-rate [schedules] that
//! any of them accepts; and [`clip_grad_norm`].
//!
//! An optimizer's state is a [`Tree`](crate::utils::Tree) with Python's paths (`step`,
//! `learning_rate`, `layers.0.weight.m`, ...), created on the first update, saved and loaded
//! through safetensors ([`Optimizer::save_state`], [`Optimizer::load_state`]).
//!
//! # A compiled training step
//! The model's parameters and the optimizer's state travel as one state tree through
//! [`compile_with_tree_state`](crate::transforms::compile_with_tree_state); the optimizer lives
//! in the closure and takes its state from the tree on every trace:
//!
//! ```
//! use mlx_rs::{Array, Error, Result, transforms, utils::Tree};
//! use mlx_rs::optimizers::{AdamW, Optimizer, cosine_decay};
//!
//! fn loss(p: &Tree, x: &Array, y: &Array) -> Result<Array> {
//!     let pred = (x.matmul(p.leaf("w")?)? + p.leaf("b")?)?;
//!     (pred - y)?.square()?.mean(.., false)
//! }
//!
//! let mut params = Tree::new();
//! params.insert("w", Array::zeros::<f32>(&[2, 1])?)?;
//! params.insert("b", Array::zeros::<f32>(&[1])?)?;
//! let mut opt = AdamW::new(cosine_decay(0.1, 100, 0.01)?)?;
//! opt.init(&params)?; // the state needs all its paths before compiling
//!
//! let join = |model: Tree, optimizer: Tree| -> Tree {
//!     [("model".to_owned(), model), ("optimizer".to_owned(), optimizer)].into_iter().collect()
//! };
//! let part = |state: &Tree, key: &str| {
//!     state.get(key).cloned().ok_or_else(|| Error::invalid("train_step", format!("no `{key}`")))
//! };
//! let state = join(params, opt.state().clone());
//! let mut step = transforms::compile_with_tree_state(
//!     move |inputs: &[Array], state: &Tree| {
//!         let (x, y) = (&inputs[0], &inputs[1]);
//!         let mut params = part(state, "model")?;
//!         opt.set_state(part(state, "optimizer")?)?;
//!         let (values, grads) =
//!             transforms::value_and_grad_tree(&params, |p| Ok(vec![loss(p, x, y)?]))?;
//!         opt.update(&mut params, &grads)?;
//!         Ok((values, join(params, opt.state().clone())))
//!     },
//!     state,
//! )?;
//!
//! let x = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, -1.0, 0.5], &[3, 2])?;
//! let y = Array::from_slice(&[1.0f32, 2.0, -0.5], &[3, 1])?;
//! let first = step.apply(&[&x, &y])?[0].item::<f32>()?;
//! let mut last = first;
//! for _ in 0..50 {
//!     last = step.apply(&[&x, &y])?[0].item::<f32>()?;
//! }
//! assert!(last < first / 4.0);
//! assert_eq!(step.state()?.leaf("optimizer.step")?.item::<u64>()?, 51);
//! # Ok::<(), mlx_rs::Error>(())
//! ```

mod adafactor;
mod adam;
mod clip;
mod lion;
mod optimizer;
mod rmsprop;
pub mod schedules;
mod sgd;

pub use adafactor::{Adafactor, AdafactorOptions};
pub use adam::{Adam, AdamOptions, AdamW, AdamWOptions};
pub use clip::clip_grad_norm;
pub use lion::{Lion, LionOptions};
pub use optimizer::{Optimizer, OptimizerCore, ParamState, StepValues};
pub use rmsprop::{RMSprop, RmspropOptions};
pub use schedules::{
    LearningRate, Schedule, cosine_decay, exponential_decay, join_schedules, linear_schedule,
    step_decay,
};
pub use sgd::{SGD, SgdOptions};
