//! RMSprop (`mlx.optimizers.RMSprop`).

use super::optimizer::{Optimizer, OptimizerCore, ParamState, StepValues, entry};
use super::schedules::LearningRate;
use crate::{Array, Error, Result};

/// The hyperparameters of [`RMSprop`] other than the learning rate; `Default` gives Python's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmspropOptions {
    /// The smoothing constant of the squared-gradient average (default 0.99).
    pub alpha: f64,
    /// Added to the denominator for stability (default 1e-8).
    pub eps: f64,
}

impl Default for RmspropOptions {
    fn default() -> Self {
        RmspropOptions { alpha: 0.99, eps: 1e-8 }
    }
}

/// RMSprop, as `mlx.optimizers.RMSprop`: `v = alpha * v + (1 - alpha) * g^2`;
/// `w -= lr * g / (sqrt(v) + eps)`. State per parameter: `v`.
#[derive(Clone, Debug)]
pub struct RMSprop {
    core: OptimizerCore,
    options: RmspropOptions,
}

impl RMSprop {
    /// RMSprop with the given learning rate and Python's defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Result<Self> {
        RMSprop::with_options(learning_rate, RmspropOptions::default())
    }

    /// RMSprop with options. Errors for a negative `alpha` or a non-positive `eps`.
    pub fn with_options(
        learning_rate: impl Into<LearningRate>,
        options: RmspropOptions,
    ) -> Result<Self> {
        if options.alpha < 0.0 {
            return Err(Error::invalid(
                "RMSprop",
                format!("alpha should be >=0, {} was provided instead", options.alpha),
            ));
        }
        if options.eps <= 0.0 {
            return Err(Error::invalid(
                "RMSprop",
                format!("epsilon should be >0, {} was provided instead", options.eps),
            ));
        }
        Ok(RMSprop { core: OptimizerCore::with_learning_rate(learning_rate)?, options })
    }

    /// The options.
    pub fn options(&self) -> &RmspropOptions {
        &self.options
    }
}

impl Optimizer for RMSprop {
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
        let RmspropOptions { alpha, eps } = self.options;
        let lr = values.learning_rate("RMSprop")?.astype(gradient.dtype())?;
        let v = ((entry(state, "RMSprop", "v")? * alpha)? + (gradient.square()? * (1.0 - alpha))?)?;
        let step = ((&lr * gradient)? / (v.sqrt()? + eps)?)?;
        state.insert("v".to_owned(), v);
        parameter - step
    }
}
