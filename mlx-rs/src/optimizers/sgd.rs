//! Stochastic gradient descent (`mlx.optimizers.SGD`).

use super::optimizer::{Optimizer, OptimizerCore, ParamState, StepValues, entry};
use super::schedules::LearningRate;
use crate::{Array, Error, Result};

/// The hyperparameters of [`SGD`] other than the learning rate; `Default` gives Python's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdOptions {
    /// The momentum strength (default 0: no momentum).
    pub momentum: f64,
    /// The L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Dampening of the momentum (default 0).
    pub dampening: f64,
    /// Nesterov momentum (default false; needs a momentum and zero dampening).
    pub nesterov: bool,
}

impl Default for SgdOptions {
    fn default() -> Self {
        SgdOptions { momentum: 0.0, weight_decay: 0.0, dampening: 0.0, nesterov: false }
    }
}

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and weight
/// decay, as `mlx.optimizers.SGD`:
///
/// `g += weight_decay * w`; `v = momentum * v + (1 - dampening) * g`;
/// `w -= lr * (nesterov ? g + momentum * v : v)` (without momentum, `w -= lr * g`).
///
/// State per parameter: `v`.
///
/// ```
/// use mlx_rs::{Array, utils::Tree};
/// use mlx_rs::optimizers::{Optimizer, SGD, SgdOptions};
/// let mut params = Tree::new();
/// params.insert("w", Array::from_slice(&[1.0f32, 2.0], &[2])?)?;
/// let mut grads = Tree::new();
/// grads.insert("w", Array::from_slice(&[0.5f32, -1.0], &[2])?)?;
/// let mut opt = SGD::with_options(0.1, SgdOptions { momentum: 0.9, ..Default::default() })?;
/// opt.update(&mut params, &grads)?;
/// assert_eq!(params.leaf("w")?.to_vec::<f32>()?, [0.95, 2.1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Debug)]
pub struct SGD {
    core: OptimizerCore,
    options: SgdOptions,
}

impl SGD {
    /// SGD with the given learning rate and Python's defaults for everything else.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Result<Self> {
        SGD::with_options(learning_rate, SgdOptions::default())
    }

    /// SGD with the given learning rate and options. Errors for Nesterov momentum without a
    /// positive momentum or with dampening.
    pub fn with_options(
        learning_rate: impl Into<LearningRate>,
        options: SgdOptions,
    ) -> Result<Self> {
        if options.nesterov && (options.momentum <= 0.0 || options.dampening != 0.0) {
            return Err(Error::invalid(
                "SGD",
                "Nesterov momentum requires a momentum and zero dampening",
            ));
        }
        Ok(SGD { core: OptimizerCore::with_learning_rate(learning_rate)?, options })
    }

    /// The options.
    pub fn options(&self) -> &SgdOptions {
        &self.options
    }
}

impl Optimizer for SGD {
    fn core(&self) -> &OptimizerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut OptimizerCore {
        &mut self.core
    }

    fn init_single(&self, parameter: &Array) -> Result<ParamState> {
        Ok(ParamState::from([("v".to_owned(), crate::ops::zeros_like(parameter, None)?)]))
    }

    fn apply_single(
        &self,
        gradient: &Array,
        parameter: &Array,
        state: &mut ParamState,
        values: &StepValues<'_>,
    ) -> Result<Array> {
        let o = &self.options;
        let lr = values.learning_rate("SGD")?.astype(gradient.dtype())?;
        let mut g = gradient.clone();
        if o.weight_decay != 0.0 {
            g = (&g + (parameter * o.weight_decay)?)?;
        }
        if o.momentum <= 0.0 {
            return parameter - (&lr * &g)?;
        }
        let mut v = (entry(state, "SGD", "v")? * o.momentum)?;
        v = if o.dampening > 0.0 { (&v + (&g * (1.0 - o.dampening))?)? } else { (&v + &g)? };
        let update = if o.nesterov { (&g + (&v * o.momentum)?)? } else { v.clone() };
        state.insert("v".to_owned(), v);
        parameter - (&lr * &update)?
    }
}
