//! Loss functions, as Python's `mlx.nn.losses`: [`cross_entropy`], [`binary_cross_entropy`],
//! [`mse_loss`], [`l1_loss`], [`nll_loss`], [`kl_div_loss`], [`smooth_l1_loss`],
//! [`huber_loss`], each with a [`Reduction`] (Python's `reduction="none" | "mean" | "sum"`),
//! and [`masked_reduce`] for losses over padded batches.
//!
//! ```
//! use mlx_rs::Array;
//! use mlx_rs::nn::losses::{CrossEntropyOptions, Reduction, cross_entropy};
//! let logits = Array::from_slice(&[2.0f32, 0.0, 0.0, 0.0, 3.0, 0.0], &[2, 3])?;
//! let targets = Array::from_slice(&[0i32, 1], &[2])?;
//! let options = CrossEntropyOptions { reduction: Reduction::Mean, ..Default::default() };
//! let loss = cross_entropy(&logits, &targets, &options)?;
//! let expected = ((2.0f32.exp() + 2.0).ln() - 2.0 + (3.0f32.exp() + 2.0).ln() - 3.0) / 2.0;
//! assert!((loss.item::<f32>()? - expected).abs() < 1e-6);
//! # Ok::<(), mlx_rs::Error>(())
//! ```

use crate::transforms::stop_gradient;
use crate::{Array, Device, DeviceType, Dtype, Error, Result, fast, ops};

/// How a loss is reduced over its elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// No reduction: the loss per element (Python's `"none"`).
    None,
    /// The mean over all elements (`"mean"`).
    Mean,
    /// The sum over all elements (`"sum"`).
    Sum,
}

impl Reduction {
    /// `loss` reduced.
    pub fn apply(self, loss: Array) -> Result<Array> {
        match self {
            Reduction::None => Ok(loss),
            Reduction::Mean => loss.mean(.., false),
            Reduction::Sum => loss.sum(.., false),
        }
    }
}

fn same_shape(op: &'static str, a_name: &str, a: &Array, b_name: &str, b: &Array) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::invalid(
            op,
            format!("{a_name} shape {:?} does not match {b_name} shape {:?}", a.shape(), b.shape()),
        ));
    }
    Ok(())
}

fn apply_weights(op: &'static str, loss: Array, weights: Option<&Array>) -> Result<Array> {
    match weights {
        None => Ok(loss),
        Some(w) if w.shape() == loss.shape() => loss * w,
        Some(w) => Err(Error::invalid(
            op,
            format!(
                "weights with shape {:?} are not the same as the loss with shape {:?}",
                w.shape(),
                loss.shape()
            ),
        )),
    }
}

/// The options of [`cross_entropy`]; `Default` gives Python's defaults.
#[derive(Clone, Debug)]
pub struct CrossEntropyOptions<'a> {
    /// Per-element weights, of the loss's shape (default none).
    pub weights: Option<&'a Array>,
    /// The class axis of the logits (default -1).
    pub axis: i32,
    /// Label smoothing in `[0, 1)` (default 0).
    pub label_smoothing: f64,
    /// Reduction (default [`Reduction::None`]).
    pub reduction: Reduction,
    /// Class-index targets equal to this value are ignored: their loss is 0 and
    /// [`Reduction::Mean`] divides by the number of the others (PyTorch's `ignore_index`; not
    /// in Python MLX, whose users multiply by a mask). Default none.
    pub ignore_index: Option<i32>,
}

impl Default for CrossEntropyOptions<'_> {
    fn default() -> Self {
        CrossEntropyOptions {
            weights: None,
            axis: -1,
            label_smoothing: 0.0,
            reduction: Reduction::None,
            ignore_index: None,
        }
    }
}

/// `mx.fast.cross_entropy`'s conditions in `mlx.nn.losses.cross_entropy`: a CUDA GPU as the
/// default device, class indices, no smoothing, the last axis, float logits, integer targets.
fn use_fast(logits: &Array, targets: &Array, axis: i32, smoothing: f64, probs: bool) -> bool {
    let gpu = crate::cuda::is_available()
        && Device::default_device().is_ok_and(|d| d.device_type() == DeviceType::Gpu);
    gpu && !probs
        && smoothing == 0.0
        && (axis == -1 || axis == logits.ndim() as i32 - 1)
        && logits.dtype().is_floating()
        && targets.dtype().is_integer()
}

/// Targets brought into `[0, n)` as `take_along_axis` reads them (negative values count from
/// the end; others are clamped), so that the fused kernel never reads outside the logits.
fn safe_targets(targets: &Array, n: i32) -> Result<Array> {
    let dtype = targets.dtype();
    let n_arr = Array::scalar(n).astype(dtype)?;
    let zero = Array::scalar(0i32).astype(dtype)?;
    let signed = matches!(dtype, Dtype::Int8 | Dtype::Int16 | Dtype::Int32 | Dtype::Int64);
    let wrapped = if signed {
        ops::r#where(&targets.less(&zero)?, &(targets + &n_arr)?, targets)?
    } else {
        targets.clone()
    };
    let hi = Array::scalar(n - 1).astype(dtype)?;
    ops::clip(&wrapped, Some(&zero), Some(&hi))
}

/// Cross entropy between `logits` and `targets`, which are either class indices (one dimension
/// fewer than the logits: the logits' shape without `axis`) or probabilities (the logits'
/// shape), as `mlx.nn.losses.cross_entropy`.
///
/// With label smoothing `s`, the loss is `logsumexp(l) - (1 - s) * l[target] - s * mean(l)` (for
/// logits `l` shifted by their maximum). Errors for a smoothing outside `[0, 1)`, targets or
/// weights of the wrong shape, or `ignore_index` with probability targets. Out-of-range class
/// indices are clamped into range (see [`ops::take_along_axis`]).
pub fn cross_entropy(
    logits: &Array,
    targets: &Array,
    options: &CrossEntropyOptions<'_>,
) -> Result<Array> {
    const OP: &str = "cross_entropy";
    let CrossEntropyOptions { weights, axis, label_smoothing, reduction, ignore_index } = *options;
    if !(0.0..1.0).contains(&label_smoothing) {
        return Err(Error::invalid(
            OP,
            format!("label smoothing must be in [0, 1), got {label_smoothing}"),
        ));
    }
    let ndim = logits.ndim() as i32;
    let ax = if axis < 0 { axis + ndim } else { axis };
    if ax < 0 || ax >= ndim {
        return Err(Error::invalid(
            OP,
            format!("axis {axis} is out of range for {ndim} dimensions"),
        ));
    }
    let probs = targets.ndim() == logits.ndim();
    let mut dropped = logits.shape().to_vec();
    dropped.remove(ax as usize);
    if (probs && targets.shape() != logits.shape()) || (!probs && targets.shape() != dropped) {
        return Err(Error::invalid(
            OP,
            format!(
                "targets shape {:?} does not match logits shape {:?}",
                targets.shape(),
                logits.shape()
            ),
        ));
    }
    if ignore_index.is_some() && probs {
        return Err(Error::invalid(OP, "ignore_index needs class-index targets"));
    }
    let loss = if use_fast(logits, targets, axis, label_smoothing, probs) {
        let safe = safe_targets(targets, logits.dim(ax)?)?;
        fast::cross_entropy(logits, &safe)?.astype(logits.dtype())?
    } else {
        let shifted = (logits - stop_gradient(&logits.max(ax, true)?)?)?;
        let score = if probs {
            (&shifted * targets)?.sum(ax, false)?
        } else {
            ops::take_along_axis(&shifted, &targets.expand_dims(ax)?, ax)?.squeeze(ax)?
        };
        let lse = shifted.logsumexp(ax, false)?;
        if label_smoothing > 0.0 {
            let adjusted = (&score * (1.0 - label_smoothing))?;
            let smoothed = ((-shifted.mean(ax, false)?)? * label_smoothing)?;
            ((lse - adjusted)? + smoothed)?
        } else {
            (lse - score)?
        }
    };
    let loss = apply_weights(OP, loss, weights)?;
    match ignore_index {
        None => reduction.apply(loss),
        Some(ignored) => {
            let ignored = Array::scalar(ignored).astype(targets.dtype())?;
            masked_reduce(&loss, &targets.not_equal(&ignored)?, reduction)
        }
    }
}

/// `loss` with the elements where `mask` is false set to 0, then reduced; [`Reduction::Mean`]
/// divides by the number of true elements of `mask` (the token count of a padded batch, as
/// mlx-lm's training loss does: `(loss * mask).sum() / mask.sum()`). `mask` broadcasts against
/// `loss`.
pub fn masked_reduce(loss: &Array, mask: &Array, reduction: Reduction) -> Result<Array> {
    let mask = mask.astype(loss.dtype())?;
    let masked = (loss * &mask)?;
    match reduction {
        Reduction::None => Ok(masked),
        Reduction::Sum => masked.sum(.., false),
        Reduction::Mean => {
            let count = mask.broadcast_to(masked.shape())?.sum(.., false)?;
            masked.sum(.., false)? / count
        }
    }
}

/// The options of [`binary_cross_entropy`]; `Default` gives Python's defaults.
#[derive(Clone, Debug)]
pub struct BinaryCrossEntropyOptions<'a> {
    /// Per-element weights, of the inputs' shape (default none).
    pub weights: Option<&'a Array>,
    /// The inputs are logits (default true), else probabilities.
    pub with_logits: bool,
    /// Reduction (default [`Reduction::Mean`]).
    pub reduction: Reduction,
}

impl Default for BinaryCrossEntropyOptions<'_> {
    fn default() -> Self {
        BinaryCrossEntropyOptions { weights: None, with_logits: true, reduction: Reduction::Mean }
    }
}

/// Binary cross entropy of `inputs` (logits, or probabilities) against `targets` of the same
/// shape, as `mlx.nn.losses.binary_cross_entropy`: `log(1 + exp(x)) - x * t` for logits,
/// `-(t * log(p) + (1 - t) * log(1 - p))` with the logs clipped at -100 for probabilities.
pub fn binary_cross_entropy(
    inputs: &Array,
    targets: &Array,
    options: &BinaryCrossEntropyOptions<'_>,
) -> Result<Array> {
    const OP: &str = "binary_cross_entropy";
    same_shape(OP, "inputs", inputs, "targets", targets)?;
    let loss = if options.with_logits {
        let zero = Array::scalar(0.0f32).astype(float_of(inputs))?;
        (ops::logaddexp(&zero, inputs)? - (inputs * targets)?)?
    } else {
        let floor = Array::scalar(-100.0f32).astype(float_of(inputs))?;
        let log_p = ops::clip(&inputs.log()?, Some(&floor), None)?;
        let log_q = ops::clip(&(1.0 - inputs)?.log()?, Some(&floor), None)?;
        (-((targets * log_p)? + ((1.0 - targets)? * log_q)?)?)?
    };
    let loss = apply_weights(OP, loss, options.weights)?;
    options.reduction.apply(loss)
}

/// The dtype a Python float takes next to `a`.
fn float_of(a: &Array) -> Dtype {
    if a.dtype().is_floating() { a.dtype() } else { Dtype::Float32 }
}

/// The absolute error `|predictions - targets|`, reduced (`mlx.nn.losses.l1_loss`; Python's
/// default reduction is [`Reduction::Mean`]).
pub fn l1_loss(predictions: &Array, targets: &Array, reduction: Reduction) -> Result<Array> {
    same_shape("l1_loss", "predictions", predictions, "targets", targets)?;
    reduction.apply((predictions - targets)?.abs()?)
}

/// The squared error `(predictions - targets)^2`, reduced (`mlx.nn.losses.mse_loss`; Python's
/// default reduction is [`Reduction::Mean`]).
pub fn mse_loss(predictions: &Array, targets: &Array, reduction: Reduction) -> Result<Array> {
    same_shape("mse_loss", "predictions", predictions, "targets", targets)?;
    reduction.apply((predictions - targets)?.square()?)
}

/// The negative log likelihood `-inputs[target]` along `axis`, for log-probability `inputs` and
/// class-index `targets` (`mlx.nn.losses.nll_loss`; Python's defaults: axis -1,
/// [`Reduction::None`]). Out-of-range indices are clamped (see [`ops::take_along_axis`]).
pub fn nll_loss(inputs: &Array, targets: &Array, axis: i32, reduction: Reduction) -> Result<Array> {
    let picked = ops::take_along_axis(inputs, &targets.expand_dims(axis)?, axis)?.squeeze(axis)?;
    reduction.apply((-picked)?)
}

/// The Kullback-Leibler divergence `sum(exp(t) * (t - x), axis)` for log-probability `inputs`
/// `x` and `targets` `t` (`mlx.nn.losses.kl_div_loss`; Python's defaults: axis -1,
/// [`Reduction::None`]).
pub fn kl_div_loss(
    inputs: &Array,
    targets: &Array,
    axis: i32,
    reduction: Reduction,
) -> Result<Array> {
    let loss = (targets.exp()? * (targets - inputs)?)?.sum(axis, false)?;
    reduction.apply(loss)
}

/// The smooth L1 loss (`mlx.nn.losses.smooth_l1_loss`; Python's defaults: beta 1,
/// [`Reduction::Mean`]): `0.5 * d^2 / beta` where `d = |p - t| < beta`, else `d - 0.5 * beta`.
pub fn smooth_l1_loss(
    predictions: &Array,
    targets: &Array,
    beta: f64,
    reduction: Reduction,
) -> Result<Array> {
    same_shape("smooth_l1_loss", "predictions", predictions, "targets", targets)?;
    let diff = (predictions - targets)?.abs()?;
    let beta_arr = Array::scalar(beta as f32).astype(float_of(&diff))?;
    let quadratic = ((diff.square()? * 0.5)? / beta)?;
    let linear = (diff.abs()? - 0.5 * beta)?;
    reduction.apply(ops::r#where(&diff.less(&beta_arr)?, &quadratic, &linear)?)
}

/// The Huber loss (`mlx.nn.losses.huber_loss`; Python's defaults: delta 1,
/// [`Reduction::None`]): `0.5 * q^2 + delta * (|e| - q)` with `e = inputs - targets` and
/// `q = min(|e|, delta)`.
pub fn huber_loss(
    inputs: &Array,
    targets: &Array,
    delta: f64,
    reduction: Reduction,
) -> Result<Array> {
    let abs_errors = (inputs - targets)?.abs()?;
    let delta_arr = Array::scalar(delta as f32).astype(float_of(&abs_errors))?;
    let quadratic = abs_errors.minimum(&delta_arr)?;
    let linear = (&abs_errors - &quadratic)?;
    let two = Array::scalar(2i32).astype(quadratic.dtype())?;
    let loss = ((quadratic.power(&two)? * 0.5)? + (linear * delta)?)?;
    reduction.apply(loss)
}
