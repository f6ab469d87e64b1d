//! Learning-rate schedules, as in Python's `mlx.optimizers.schedulers`: functions of the step
//! (an array, the optimizer's `uint64` step counter) that return the learning rate as an array,
//! so that a schedule runs inside a compiled training step as well as outside it.
//!
//! ```
//! use mlx_rs::optimizers::{cosine_decay, join_schedules, linear_schedule};
//! // Ten steps of linear warm-up to 1e-3, then a cosine decay over 100 steps to 1e-5.
//! let warmup = linear_schedule(0.0, 1e-3, 10)?;
//! let decay = cosine_decay(1e-3, 100, 1e-5)?;
//! let lr = join_schedules(vec![warmup, decay], &[10])?;
//! assert!((lr.at(5)?.item::<f32>()? - 5e-4).abs() < 1e-9);
//! assert!((lr.at(10)?.item::<f32>()? - 1e-3).abs() < 1e-9);
//! assert!((lr.at(110)?.item::<f32>()? - 1e-5).abs() < 1e-9);
//! # Ok::<(), mlx_rs::Error>(())
//! ```

use std::fmt;
use std::rc::Rc;

use crate::{Array, Dtype, Error, Result, ops};

/// A learning-rate schedule: the learning rate as a function of the step array.
///
/// Cheap to clone (the function is shared). Like [`Array`], neither `Send` nor `Sync`.
#[derive(Clone)]
pub struct Schedule(Rc<ScheduleFn>);

/// The function a [`Schedule`] wraps.
type ScheduleFn = dyn Fn(&Array) -> Result<Array>;

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Schedule")
    }
}

impl Schedule {
    /// A schedule from any function of the step array (an unsigned or signed integer scalar).
    pub fn new(f: impl Fn(&Array) -> Result<Array> + 'static) -> Self {
        Schedule(Rc::new(f))
    }

    /// The learning rate at `step`, an integer array (the optimizer passes its `uint64` step).
    pub fn apply(&self, step: &Array) -> Result<Array> {
        (self.0)(step)
    }

    /// The learning rate at a step given as a number (a `uint64` scalar is made for it).
    pub fn at(&self, step: u64) -> Result<Array> {
        self.apply(&Array::scalar(step))
    }
}

fn positive(op: &'static str, what: &str, value: u64) -> Result<()> {
    if value < 1 {
        return Err(Error::invalid(op, format!("{what} must be greater than 0, but got {value}")));
    }
    Ok(())
}

/// The step as `float32` (what MLX promotes an integer step to when it meets a float).
fn as_float(step: &Array) -> Result<Array> {
    if step.dtype().is_floating() { Ok(step.clone()) } else { step.astype(Dtype::Float32) }
}

/// `init * decay_rate ** step` (`mlx.optimizers.exponential_decay`).
pub fn exponential_decay(init: f64, decay_rate: f64) -> Schedule {
    Schedule::new(move |step| {
        let rate = Array::scalar(decay_rate as f32);
        rate.power(as_float(step)?)? * init
    })
}

/// `init * decay_rate ** (step // step_size)` (`mlx.optimizers.step_decay`). Errors when
/// `step_size` is 0.
pub fn step_decay(init: f64, decay_rate: f64, step_size: u64) -> Result<Schedule> {
    positive("step_decay", "step_size", step_size)?;
    Ok(Schedule::new(move |step| {
        let size = Array::scalar(step_size).astype(step.dtype())?;
        let k = ops::floor_divide(step, &size)?;
        let rate = Array::scalar(decay_rate as f32);
        rate.power(as_float(&k)?)? * init
    }))
}

/// A cosine decay from `init` to `end` over `decay_steps` steps, then `end`
/// (`mlx.optimizers.cosine_decay`): `end + (init - end) * 0.5 * (1 + cos(pi * min(step,
/// decay_steps) / decay_steps))`. Errors when `decay_steps` is 0.
pub fn cosine_decay(init: f64, decay_steps: u64, end: f64) -> Result<Schedule> {
    positive("cosine_decay", "decay_steps", decay_steps)?;
    Ok(Schedule::new(move |step| {
        let s = as_float(step)?.minimum(Array::scalar(decay_steps as f32))?;
        let angle = (s * (std::f64::consts::PI / decay_steps as f64))?;
        let decay = ((angle.cos()? + 1.0)? * 0.5)?;
        (decay * (init - end))? + end
    }))
}

/// A linear ramp from `init` to `end` over `steps` steps, then `end`
/// (`mlx.optimizers.linear_schedule`): `min(step, steps) * ((end - init) / steps) + init`.
/// Errors when `steps` is 0.
pub fn linear_schedule(init: f64, end: f64, steps: u64) -> Result<Schedule> {
    positive("linear_schedule", "steps", steps)?;
    Ok(Schedule::new(move |step| {
        let s = as_float(step)?.minimum(Array::scalar(steps as f32))?;
        (s * ((end - init) / steps as f64))? + init
    }))
}

/// Schedules one after another (`mlx.optimizers.join_schedules`): `schedules[0]` until
/// `boundaries[0]`, then `schedules[1]` counted from that boundary (it sees `step -
/// boundaries[0]`), and so on. Errors unless there is one boundary fewer than schedules.
pub fn join_schedules(schedules: Vec<Schedule>, boundaries: &[u64]) -> Result<Schedule> {
    const OP: &str = "join_schedules";
    if schedules.is_empty() {
        return Err(Error::invalid(OP, "must provide at least 1 schedule to join"));
    }
    if schedules.len() != boundaries.len() + 1 {
        return Err(Error::invalid(
            OP,
            format!(
                "received {} boundaries but expected {}",
                boundaries.len(),
                schedules.len() - 1
            ),
        ));
    }
    let boundaries = boundaries.to_vec();
    Ok(Schedule::new(move |step| {
        let mut output = schedules[0].apply(step)?;
        for (&boundary, schedule) in boundaries.iter().zip(&schedules[1..]) {
            let b = Array::scalar(boundary).astype(step.dtype())?;
            // As in MLX, the later schedule is evaluated everywhere (on a wrapped-around step
            // before its boundary) and `where` keeps the earlier one there.
            let later = schedule.apply(&ops::subtract(step, &b)?)?;
            output = ops::r#where(&step.less(&b)?, &output, &later)?;
        }
        Ok(output)
    }))
}

/// A learning rate: a constant or a [`Schedule`] of the step. Every optimizer's constructor
/// takes `impl Into<LearningRate>`, so `1e-3` and a schedule both work.
#[derive(Clone, Debug)]
pub enum LearningRate {
    /// The same rate at every step.
    Constant(f64),
    /// A rate computed from the step before each update.
    Schedule(Schedule),
}

impl From<f64> for LearningRate {
    fn from(value: f64) -> Self {
        LearningRate::Constant(value)
    }
}

impl From<f32> for LearningRate {
    fn from(value: f32) -> Self {
        LearningRate::Constant(f64::from(value))
    }
}

impl From<Schedule> for LearningRate {
    fn from(schedule: Schedule) -> Self {
        LearningRate::Schedule(schedule)
    }
}
