//! Adafactor (`mlx.optimizers.Adafactor`).

use super::optimizer::{Optimizer, OptimizerCore, ParamState, StepValues, entry};
use super::schedules::LearningRate;
use crate::{Array, Dtype, Result, ops};

/// The hyperparameters of [`Adafactor`]; `Default` gives Python's.
#[derive(Clone, Debug)]
pub struct AdafactorOptions {
    /// The learning rate; used only when `relative_step` is false (default none).
    pub learning_rate: Option<LearningRate>,
    /// `(eps1, eps2)`: added to the squared gradient, and the floor of the parameter scale
    /// (default `(1e-30, 1e-3)`).
    pub eps: (f64, f64),
    /// The RMS above which the update is clipped (default 1.0).
    pub clip_threshold: f64,
    /// The exponent of the second-moment decay, `beta2 = 1 - step^decay_rate` (default -0.8).
    pub decay_rate: f64,
    /// The first-moment decay; `None` keeps no first moment (default none).
    pub beta_1: Option<f64>,
    /// Weight decay (default 0).
    pub weight_decay: f64,
    /// Scale the step by the parameter's RMS (default true).
    pub scale_parameter: bool,
    /// Use a step size computed from the step instead of the learning rate (default true).
    pub relative_step: bool,
    /// Warm the relative step size up from `1e-6 * step` (default false).
    pub warmup_init: bool,
}

impl Default for AdafactorOptions {
    fn default() -> Self {
        AdafactorOptions {
            learning_rate: None,
            eps: (1e-30, 1e-3),
            clip_threshold: 1.0,
            decay_rate: -0.8,
            beta_1: None,
            weight_decay: 0.0,
            scale_parameter: true,
            relative_step: true,
            warmup_init: false,
        }
    }
}

/// Adafactor, as `mlx.optimizers.Adafactor`: factored second moments for parameters of two or
/// more dimensions (state `exp_avg_sq_row`, `exp_avg_sq_col`), a full one otherwise
/// (`exp_avg_sq`), plus `exp_avg` when `beta_1` is set.
#[derive(Clone, Debug)]
pub struct Adafactor {
    core: OptimizerCore,
    options: AdafactorOptions,
}

/// `value` as a scalar of `like`'s dtype (a Python float meeting an array).
fn scalar_like(value: f64, like: &Array) -> Result<Array> {
    Array::scalar(value as f32).astype(like.dtype())
}

fn rms(x: &Array) -> Result<Array> {
    x.square()?.mean(.., false)?.sqrt()
}

impl Adafactor {
    /// Adafactor with Python's defaults (relative step sizes, no learning rate).
    pub fn new() -> Result<Self> {
        Adafactor::with_options(AdafactorOptions::default())
    }

    /// Adafactor with options.
    pub fn with_options(options: AdafactorOptions) -> Result<Self> {
        let core = match &options.learning_rate {
            Some(lr) => OptimizerCore::with_learning_rate(lr.clone())?,
            None => OptimizerCore::new(),
        };
        Ok(Adafactor { core, options })
    }

    /// The options.
    pub fn options(&self) -> &AdafactorOptions {
        &self.options
    }

    fn step_size(&self, values: &StepValues<'_>, parameter_rms: &Array) -> Result<Array> {
        let o = &self.options;
        let relative = if o.relative_step {
            let step = values.step.astype(Dtype::Float32)?;
            let min_step = if o.warmup_init { (&step * 1e-6)? } else { Array::scalar(1e-2f32) };
            min_step.minimum(step.rsqrt()?)?
        } else {
            values.learning_rate("Adafactor")?.clone()
        };
        let relative = relative.astype(parameter_rms.dtype())?;
        if o.scale_parameter {
            scalar_like(o.eps.1, parameter_rms)?.maximum(parameter_rms)? * relative
        } else {
            Ok(relative)
        }
    }
}

impl Optimizer for Adafactor {
    fn core(&self) -> &OptimizerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut OptimizerCore {
        &mut self.core
    }

    fn init_single(&self, parameter: &Array) -> Result<ParamState> {
        let mut state = ParamState::new();
        let dtype = parameter.dtype();
        let shape = parameter.shape();
        if shape.len() >= 2 {
            let n = shape.len();
            let row = &shape[..n - 1];
            let col: Vec<i32> = shape[..n - 2].iter().chain(&shape[n - 1..]).copied().collect();
            state.insert("exp_avg_sq_row".to_owned(), ops::zeros(row, dtype)?);
            state.insert("exp_avg_sq_col".to_owned(), ops::zeros(&col, dtype)?);
        } else {
            state.insert("exp_avg_sq".to_owned(), ops::zeros_like(parameter, None)?);
        }
        if self.options.beta_1.is_some() {
            state.insert("exp_avg".to_owned(), ops::zeros_like(parameter, None)?);
        }
        Ok(state)
    }

    fn apply_single(
        &self,
        gradient: &Array,
        parameter: &Array,
        state: &mut ParamState,
        values: &StepValues<'_>,
    ) -> Result<Array> {
        const OP: &str = "Adafactor";
        let o = &self.options;
        let factored = gradient.ndim() >= 2;
        let parameter_rms = rms(parameter)?;
        let dtype = parameter_rms.dtype();
        let learning_rate = self.step_size(values, &parameter_rms)?;
        let step = values.step.astype(Dtype::Float32)?;
        let decay = step.power(Array::scalar(o.decay_rate as f32))?.astype(dtype)?;
        let beta_2 = (1.0 - &decay)?;
        let one_minus = (1.0 - &beta_2)?;
        let sq = (gradient.square()? + o.eps.0)?;
        let mut update = if factored {
            let row = ((&beta_2 * entry(state, OP, "exp_avg_sq_row")?)?
                + (&one_minus * sq.mean(-1, false)?)?)?;
            let col = ((&beta_2 * entry(state, OP, "exp_avg_sq_col")?)?
                + (&one_minus * sq.mean(-2, false)?)?)?;
            state.insert("exp_avg_sq_row".to_owned(), row.clone());
            state.insert("exp_avg_sq_col".to_owned(), col.clone());
            let r_factor = (&row / row.mean(-1, true)?)?.rsqrt()?;
            let c_factor = col.rsqrt()?;
            let approx = (r_factor.expand_dims(-1)? * c_factor.expand_dims(-2)?)?;
            (approx * gradient)?
        } else {
            let avg = ((&beta_2 * entry(state, OP, "exp_avg_sq")?)? + (&one_minus * &sq)?)?;
            state.insert("exp_avg_sq".to_owned(), avg.clone());
            (avg.rsqrt()? * gradient)?
        };
        let clip = (rms(&update)? / o.clip_threshold)?;
        let denom = scalar_like(1.0, &clip)?.maximum(&clip)?;
        update = (&update / &denom)?;
        update = (&learning_rate * &update)?;
        if let Some(beta_1) = o.beta_1 {
            let avg = ((entry(state, OP, "exp_avg")? * beta_1)? + (&update * (1.0 - beta_1))?)?;
            state.insert("exp_avg".to_owned(), avg.clone());
            update = avg;
        }
        let mut w = parameter.clone();
        if o.weight_decay != 0.0 {
            w = (&w + (&w * (&learning_rate * -o.weight_decay)?)?)?;
        }
        w - update
    }
}
