//! Adam and AdamW (`mlx.optimizers.Adam`, `mlx.optimizers.AdamW`).

use super::lion::check_betas;
use super::optimizer::{Optimizer, OptimizerCore, ParamState, StepValues, entry};
use super::schedules::LearningRate;
use crate::{Array, Dtype, Error, Result, ops};

/// The hyperparameters of [`Adam`] other than the learning rate; `Default` gives Python's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamOptions {
    /// `(beta1, beta2)`: decay of the first and second moments (default `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// Added to the denominator for stability (default 1e-8).
    pub eps: f64,
    /// Bias correction of the moments (default false, as in MLX 0.32).
    pub bias_correction: bool,
}

impl Default for AdamOptions {
    fn default() -> Self {
        AdamOptions { betas: (0.9, 0.999), eps: 1e-8, bias_correction: false }
    }
}

/// The hyperparameters of [`AdamW`] other than the learning rate; `Default` gives Python's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWOptions {
    /// `(beta1, beta2)` (default `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// Added to the denominator for stability (default 1e-8).
    pub eps: f64,
    /// Decoupled weight decay (default 0.01).
    pub weight_decay: f64,
    /// Bias correction of the moments (default false).
    pub bias_correction: bool,
}

impl Default for AdamWOptions {
    fn default() -> Self {
        AdamWOptions { betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.01, bias_correction: false }
    }
}

fn check(op: &'static str, betas: (f64, f64), eps: f64) -> Result<()> {
    check_betas(op, betas)?;
    if eps < 0.0 {
        return Err(Error::invalid(
            op,
            format!("epsilon should be >=0, {eps} was provided instead"),
        ));
    }
    Ok(())
}

fn adam_init(parameter: &Array) -> Result<ParamState> {
    Ok(ParamState::from([
        ("m".to_owned(), ops::zeros_like(parameter, None)?),
        ("v".to_owned(), ops::zeros_like(parameter, None)?),
    ]))
}

/// One Adam step of `parameter` (shared by Adam and AdamW).
fn adam_step(
    op: &'static str,
    options: &AdamOptions,
    gradient: &Array,
    parameter: &Array,
    state: &mut ParamState,
    values: &StepValues<'_>,
) -> Result<Array> {
    let (b1, b2) = options.betas;
    let dtype = gradient.dtype();
    let lr = values.learning_rate(op)?.astype(dtype)?;
    let m = ((entry(state, op, "m")? * b1)? + (gradient * (1.0 - b1))?)?;
    let v = ((entry(state, op, "v")? * b2)? + (gradient.square()? * (1.0 - b2))?)?;
    state.insert("m".to_owned(), m.clone());
    state.insert("v".to_owned(), v.clone());
    if options.bias_correction {
        let step = values.step.astype(Dtype::Float32)?;
        let pow = |beta: f64| Array::scalar(beta as f32).power(&step);
        let c1 = (&lr / (1.0 - pow(b1)?)?)?.astype(dtype)?;
        let c2 = (1.0 - pow(b2)?)?.rsqrt()?.astype(dtype)?;
        let numerator = (&c1 * &m)?;
        let denominator = ((v.sqrt()? * &c2)? + options.eps)?;
        parameter - (numerator / denominator)?
    } else {
        parameter - ((&lr * &m)? / (v.sqrt()? + options.eps)?)?
    }
}

/// Adam, as `mlx.optimizers.Adam`: `m = b1 * m + (1 - b1) * g`; `v = b2 * v + (1 - b2) * g^2`;
/// `w -= lr * m / (sqrt(v) + eps)`, with the moments bias-corrected when asked. State per
/// parameter: `m`, `v`.
#[derive(Clone, Debug)]
pub struct Adam {
    core: OptimizerCore,
    options: AdamOptions,
}

impl Adam {
    /// Adam with the given learning rate and Python's defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Result<Self> {
        Adam::with_options(learning_rate, AdamOptions::default())
    }

    /// Adam with options. Errors for a beta outside `[0, 1)` or a negative `eps`.
    pub fn with_options(
        learning_rate: impl Into<LearningRate>,
        options: AdamOptions,
    ) -> Result<Self> {
        check("Adam", options.betas, options.eps)?;
        Ok(Adam { core: OptimizerCore::with_learning_rate(learning_rate)?, options })
    }

    /// The options.
    pub fn options(&self) -> &AdamOptions {
        &self.options
    }
}

impl Optimizer for Adam {
    fn core(&self) -> &OptimizerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut OptimizerCore {
        &mut self.core
    }

    fn init_single(&self, parameter: &Array) -> Result<ParamState> {
        adam_init(parameter)
    }

    fn apply_single(
        &self,
        gradient: &Array,
        parameter: &Array,
        state: &mut ParamState,
        values: &StepValues<'_>,
    ) -> Result<Array> {
        adam_step("Adam", &self.options, gradient, parameter, state, values)
    }
}

/// AdamW, as `mlx.optimizers.AdamW`: Adam on `w * (1 - lr * weight_decay)` (decoupled weight
/// decay). State per parameter: `m`, `v`.
///
/// ```
/// use mlx_rs::{Array, utils::Tree};
/// use mlx_rs::optimizers::{AdamW, Optimizer};
/// let mut params = Tree::new();
/// params.insert("w", Array::from_slice(&[1.0f32], &[1])?)?;
/// let mut grads = Tree::new();
/// grads.insert("w", Array::from_slice(&[0.5f32], &[1])?)?;
/// let mut opt = AdamW::new(0.1)?;
/// opt.update(&mut params, &grads)?;
/// // m = 0.05, v = 0.00025: w = 1 * (1 - 0.1 * 0.01) - 0.1 * 0.05 / (sqrt(0.00025) + 1e-8)
/// let expected = 0.999 - 0.005 / (0.00025f32.sqrt() + 1e-8);
/// assert!((params.leaf("w")?.to_vec::<f32>()?[0] - expected).abs() < 1e-6);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct AdamW {
    core: OptimizerCore,
    options: AdamWOptions,
}

impl AdamW {
    /// AdamW with the given learning rate and Python's defaults (weight decay 0.01).
    pub fn new(learning_rate: impl Into<LearningRate>) -> Result<Self> {
        AdamW::with_options(learning_rate, AdamWOptions::default())
    }

    /// AdamW with options. Errors for a beta outside `[0, 1)` or a negative `eps`.
    pub fn with_options(
        learning_rate: impl Into<LearningRate>,
        options: AdamWOptions,
    ) -> Result<Self> {
        check("AdamW", options.betas, options.eps)?;
        Ok(AdamW { core: OptimizerCore::with_learning_rate(learning_rate)?, options })
    }

    /// The options.
    pub fn options(&self) -> &AdamWOptions {
        &self.options
    }
}

impl Optimizer for AdamW {
    fn core(&self) -> &OptimizerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut OptimizerCore {
        &mut self.core
    }

    fn init_single(&self, parameter: &Array) -> Result<ParamState> {
        adam_init(parameter)
    }

    fn apply_single(
        &self,
        gradient: &Array,
        parameter: &Array,
        state: &mut ParamState,
        values: &StepValues<'_>,
    ) -> Result<Array> {
        let o = &self.options;
        let lr = values.learning_rate("AdamW")?.astype(gradient.dtype())?;
        let decayed = (parameter * (1.0 - (&lr * o.weight_decay)?)?)?;
        let adam = AdamOptions { betas: o.betas, eps: o.eps, bias_correction: o.bias_correction };
        adam_step("AdamW", &adam, gradient, &decayed, state, values)
    }
}
