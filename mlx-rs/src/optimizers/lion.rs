//! Lion (`mlx.optimizers.Lion`).

use super::optimizer::{Optimizer, OptimizerCore, ParamState, StepValues, entry};
use super::schedules::LearningRate;
use crate::{Array, Error, Result};

/// The hyperparameters of [`Lion`] other than the learning rate; `Default` gives Python's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LionOptions {
    /// `(beta1, beta2)`: the interpolation for the update and the momentum decay (default
    /// `(0.9, 0.99)`).
    pub betas: (f64, f64),
    /// Decoupled weight decay (default 0).
    pub weight_decay: f64,
}

impl Default for LionOptions {
    fn default() -> Self {
        LionOptions { betas: (0.9, 0.99), weight_decay: 0.0 }
    }
}

/// Lion, as `mlx.optimizers.Lion`: `c = b1 * m + (1 - b1) * g`; `m = b2 * m + (1 - b2) * g`;
/// `w = (1 - lr * weight_decay) * w - lr * sign(c)`. State per parameter: `m`.
#[derive(Clone, Debug)]
pub struct Lion {
    core: OptimizerCore,
    options: LionOptions,
}

pub(crate) fn check_betas(op: &'static str, betas: (f64, f64)) -> Result<()> {
    for (i, beta) in [betas.0, betas.1].into_iter().enumerate() {
        if !(0.0..1.0).contains(&beta) {
            return Err(Error::invalid(
                op,
                format!("beta{} should be in [0, 1), {beta} was provided instead", i + 1),
            ));
        }
    }
    Ok(())
}

impl Lion {
    /// Lion with the given learning rate and Python's defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Result<Self> {
        Lion::with_options(learning_rate, LionOptions::default())
    }

    /// Lion with options. Errors for a beta outside `[0, 1)`.
    pub fn with_options(
        learning_rate: impl Into<LearningRate>,
        options: LionOptions,
    ) -> Result<Self> {
        check_betas("Lion", options.betas)?;
        Ok(Lion { core: OptimizerCore::with_learning_rate(learning_rate)?, options })
    }

    /// The options.
    pub fn options(&self) -> &LionOptions {
        &self.options
    }
}

impl Optimizer for Lion {
    fn core(&self) -> &OptimizerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut OptimizerCore {
        &mut self.core
    }

    fn init_single(&self, parameter: &Array) -> Result<ParamState> {
        Ok(ParamState::from([("m".to_owned(), crate::ops::zeros_like(parameter, None)?)]))
    }

    fn apply_single(
        &self,
        gradient: &Array,
        parameter: &Array,
        state: &mut ParamState,
        values: &StepValues<'_>,
    ) -> Result<Array> {
        let LionOptions { betas: (b1, b2), weight_decay } = self.options;
        let lr = values.learning_rate("Lion")?.astype(gradient.dtype())?;
        let m = entry(state, "Lion", "m")?;
        let c = ((m * b1)? + (gradient * (1.0 - b1))?)?;
        let new_m = ((m * b2)? + (gradient * (1.0 - b2))?)?;
        state.insert("m".to_owned(), new_m);
        let mut w = parameter.clone();
        if weight_decay > 0.0 {
            w = ((1.0 - (&lr * weight_decay)?)? * &w)?;
        }
        w - (&lr * c.sign()?)?
    }
}
