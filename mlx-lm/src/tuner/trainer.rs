//! The training loop of mlx-lm's `tuner/trainer.py`: [`default_loss`], [`evaluate`] and
//! [`Trainer::train`] (optimizer updates with gradient accumulation, the step compiled with
//! the model's trainable parameters and the optimizer's state, per-layer gradient
//! checkpointing where the architecture supports it, periodic validation, reports
//! with mlx-lm's figures, adapter checkpoints), plus [`build_optimizer`] and [`build_schedule`]
//! (mlx-lm's `--optimizer` and `lr_schedule`).

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use mlx_rs::nn::losses::{CrossEntropyOptions, Reduction, cross_entropy};
use mlx_rs::optimizers::{
    Adafactor, Adam, AdamW, LearningRate, Lion, Optimizer, RMSprop, SGD, Schedule, cosine_decay,
    exponential_decay, join_schedules, linear_schedule, step_decay,
};
use mlx_rs::transforms::{self, TreeStatefulFunction};
use mlx_rs::utils::Tree;
use mlx_rs::{Array, Dtype, Error, Result, memory, ops};

use super::adapters::save_adapter_weights;
use super::datasets::{Batch, Batches, Dataset};
use crate::LanguageModel;

fn err(op: &'static str, msg: impl Into<String>) -> Error {
    Error::invalid(op, msg.into())
}

/// mlx-lm's `default_loss(model, batch, lengths)`: the mean cross entropy of predicting
/// `batch[:, 1:]` from `batch[:, :-1]` over the targets at steps `offset..=length` (counted
/// from 1) of each row, summed in float32 and divided by their number. Returns
/// `(loss, ntoks)`.
pub fn default_loss(
    model: &dyn LanguageModel,
    batch: &Array,
    lengths: &Array,
) -> Result<(Array, Array)> {
    let inputs = batch.index((.., ..-1))?;
    let targets = batch.index((.., 1..))?;
    let logits = model.forward(&inputs, None)?;
    let width = targets.dim(1)?;
    let steps = ops::arange(1.0, f64::from(width) + 1.0, 1.0, Dtype::Int32)?;
    let lengths = lengths.astype(Dtype::Int32)?;
    let after_start = ops::greater_equal(&steps, &lengths.index((.., 0..1))?)?;
    let before_end = ops::less_equal(&steps, &lengths.index((.., 1..))?)?;
    let mask = ops::logical_and(&after_start, &before_end)?;
    let options = CrossEntropyOptions { reduction: Reduction::None, ..Default::default() };
    let ce = (cross_entropy(&logits, &targets, &options)? * mask.astype(logits.dtype())?)?;
    let ntoks = mask.astype(Dtype::Int32)?.sum(.., false)?;
    let loss = (ce.astype(Dtype::Float32)?.sum(.., false)? / ntoks.astype(Dtype::Float32)?)?;
    Ok((loss, ntoks))
}

/// The token-weighted mean loss over `num_batches` batches of `dataset` (`None`: all of them),
/// in evaluation mode (mlx-lm's `evaluate`); the model is left in evaluation mode.
pub fn evaluate(
    model: &mut dyn LanguageModel,
    dataset: &Dataset,
    batch_size: usize,
    num_batches: Option<usize>,
    max_seq_length: usize,
    seed: u64,
) -> Result<f32> {
    model.train(false);
    let mut total = Array::scalar(0.0f32);
    let mut ntokens = Array::scalar(0i32);
    let batches = Batches::new(dataset, batch_size, max_seq_length, false, seed)?;
    for batch in batches.take(num_batches.unwrap_or(usize::MAX)) {
        let batch = batch?;
        let (loss, toks) = default_loss(&*model, &batch.tokens, &batch.lengths)?;
        total = (&total + (&loss * toks.astype(Dtype::Float32)?)?)?;
        ntokens = (&ntokens + &toks)?;
        transforms::eval(&[&total, &ntokens])?;
    }
    (&total / ntokens.astype(Dtype::Float32)?)?.item::<f32>()
}

/// mlx-lm's `TrainingArgs` (defaults as there), plus the seed of the batch order and whether
/// the step is compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingArgs {
    /// Examples per batch (default 4).
    pub batch_size: usize,
    /// Iterations (default 100).
    pub iters: usize,
    /// Validation batches (`None`: the whole validation set; default 25).
    pub val_batches: Option<usize>,
    /// Iterations between training-loss reports (default 10).
    pub steps_per_report: usize,
    /// Iterations between validations (default 200; also at the first and last).
    pub steps_per_eval: usize,
    /// Iterations between adapter checkpoints (default 100).
    pub steps_per_save: usize,
    /// Longer examples are truncated (default 2048).
    pub max_seq_length: usize,
    /// Where the adapter weights are saved (default `adapters.safetensors`); checkpoints go
    /// beside it as `{iteration:07}_adapters.safetensors`.
    pub adapter_file: PathBuf,
    /// Iterations whose gradients are summed before one update (default 1).
    pub grad_accumulation_steps: usize,
    /// Recompute each transformer block in the backward pass instead of keeping its
    /// intermediates (default false; see [`LanguageModel::set_grad_checkpoint`]).
    pub grad_checkpoint: bool,
    /// Seed of the batch order (default 0).
    pub seed: u64,
    /// Compile the step (default true). Leave it off when the adapters use dropout: a compiled
    /// step would reuse the dropout mask it was traced with.
    pub compile: bool,
}

impl Default for TrainingArgs {
    fn default() -> TrainingArgs {
        TrainingArgs {
            batch_size: 4,
            iters: 100,
            val_batches: Some(25),
            steps_per_report: 10,
            steps_per_eval: 200,
            steps_per_save: 100,
            max_seq_length: 2048,
            adapter_file: PathBuf::from("adapters.safetensors"),
            grad_accumulation_steps: 1,
            grad_checkpoint: false,
            seed: 0,
            compile: true,
        }
    }
}

/// The figures of a training report (mlx-lm's `on_train_loss_report`).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// The iteration.
    pub iteration: usize,
    /// The mean loss of the iterations since the last report.
    pub train_loss: f32,
    /// The learning rate of the last update.
    pub learning_rate: f32,
    /// `steps_per_report` over the time since the last report (mlx-lm's figure).
    pub iterations_per_second: f64,
    /// Loss tokens per second since the last report.
    pub tokens_per_second: f64,
    /// Loss tokens so far.
    pub trained_tokens: usize,
    /// Peak memory in GB (10⁹ bytes).
    pub peak_memory_gb: f64,
}

impl std::fmt::Display for TrainReport {
    /// mlx-lm's line: `Iter N: Train loss X, Learning Rate Y, It/sec Z, Tokens/sec W, Trained
    /// Tokens T, Peak mem P GB`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Iter {}: Train loss {:.3}, Learning Rate {}, It/sec {:.3}, Tokens/sec {:.3}, \
             Trained Tokens {}, Peak mem {:.3} GB",
            self.iteration,
            self.train_loss,
            python_exp(f64::from(self.learning_rate), 3),
            self.iterations_per_second,
            self.tokens_per_second,
            self.trained_tokens,
            self.peak_memory_gb
        )
    }
}

/// The figures of a validation report (mlx-lm's `on_val_loss_report`).
#[derive(Clone, Debug, PartialEq)]
pub struct ValReport {
    /// The iteration.
    pub iteration: usize,
    /// The validation loss.
    pub val_loss: f32,
    /// Seconds the validation took.
    pub val_time: f64,
}

impl std::fmt::Display for ValReport {
    /// mlx-lm's line: `Iter N: Val loss X, Val took Ys`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Iter {}: Val loss {:.3}, Val took {:.3}s",
            self.iteration, self.val_loss, self.val_time
        )
    }
}

/// `x` as Python's `f"{x:.{digits}e}"` writes it (`1.000e-05`).
pub fn python_exp(x: f64, digits: usize) -> String {
    let s = format!("{x:.digits$e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// What the training loop reports (mlx-lm's `TrainingCallback`, with the progress and the
/// checkpoints added). Every method does nothing by default.
pub trait TrainingCallback {
    /// A training report.
    fn on_train_loss_report(&mut self, report: &TrainReport) {
        let _ = report;
    }
    /// A validation report.
    fn on_val_loss_report(&mut self, report: &ValReport) {
        let _ = report;
    }
    /// Adapter weights were saved at `iteration` to `files` (`last`: the save after the last
    /// iteration).
    fn on_save(&mut self, iteration: usize, files: &[PathBuf], last: bool) {
        let _ = (iteration, files, last);
    }
    /// Iteration `iteration` of `total` is done.
    fn on_step(&mut self, iteration: usize, total: usize) {
        let _ = (iteration, total);
    }
    /// A batch was truncated from `longest` tokens to `max_seq_length`.
    fn on_truncation(&mut self, longest: usize, max_seq_length: usize) {
        let _ = (longest, max_seq_length);
    }
}

/// Prints mlx-lm's report lines to stdout and, when stderr is a terminal, a progress bar there.
#[derive(Debug, Default)]
pub struct ConsoleReporter {
    bar_shown: bool,
}

impl ConsoleReporter {
    fn clear_bar(&mut self) {
        if self.bar_shown {
            eprint!("\r{:60}\r", "");
            self.bar_shown = false;
        }
    }
}

impl TrainingCallback for ConsoleReporter {
    fn on_train_loss_report(&mut self, report: &TrainReport) {
        self.clear_bar();
        println!("{report}");
    }

    fn on_val_loss_report(&mut self, report: &ValReport) {
        self.clear_bar();
        println!("{report}");
    }

    fn on_save(&mut self, iteration: usize, files: &[PathBuf], last: bool) {
        self.clear_bar();
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        if last {
            println!("Saved final weights to {}.", names.join(" and "));
        } else {
            println!("Iter {iteration}: Saved adapter weights to {}.", names.join(" and "));
        }
    }

    fn on_step(&mut self, iteration: usize, total: usize) {
        if !std::io::stderr().is_terminal() || total == 0 {
            return;
        }
        let width = 30;
        let done = width * iteration / total;
        eprint!("\r[{}{}] {iteration}/{total}", "=".repeat(done), " ".repeat(width - done));
        let _ = std::io::stderr().flush();
        self.bar_shown = true;
    }

    fn on_truncation(&mut self, longest: usize, max_seq_length: usize) {
        self.clear_bar();
        println!(
            "[WARNING] Some sequences are longer than {max_seq_length} tokens. The longest \
             sentence {longest} will be truncated to {max_seq_length}. Consider pre-splitting \
             your data to save memory."
        );
    }
}

/// The optimizer mlx-lm's `--optimizer NAME` picks (`adam`, `adamw`, `sgd`, `adafactor`, and
/// mlx-rs's `lion`, `rmsprop`), with default hyperparameters. `muon` is not in mlx-rs.
pub fn build_optimizer(name: &str, learning_rate: LearningRate) -> Result<Box<dyn Optimizer>> {
    Ok(match name.to_lowercase().as_str() {
        "adam" => Box::new(Adam::new(learning_rate)?),
        "adamw" => Box::new(AdamW::new(learning_rate)?),
        "sgd" => Box::new(SGD::new(learning_rate)?),
        "lion" => Box::new(Lion::new(learning_rate)?),
        "rmsprop" => Box::new(RMSprop::new(learning_rate)?),
        "adafactor" => {
            let mut opt = Adafactor::new()?;
            opt.set_learning_rate(learning_rate)?;
            Box::new(opt)
        }
        other => {
            return Err(err(
                "build_optimizer",
                format!(
                    "unsupported optimizer {other:?} (supported: adam, adamw, sgd, adafactor, \
                     lion, rmsprop)"
                ),
            ));
        }
    })
}

/// mlx-lm's `lr_schedule` config: a schedule of `mlx.optimizers` by name with its positional
/// arguments (the first is the initial rate), and an optional linear warm-up.
#[derive(Clone, Debug, PartialEq)]
pub struct LrSchedule {
    /// `cosine_decay`, `linear_schedule`, `exponential_decay` or `step_decay`.
    pub name: String,
    /// The schedule's arguments (`cosine_decay`: init, decay_steps, end = 0).
    pub arguments: Vec<f64>,
    /// Warm-up steps (0: none).
    pub warmup: u64,
    /// The warm-up's first rate (default 0).
    pub warmup_init: f64,
}

/// mlx-lm's `build_schedule`: the named schedule, after a linear warm-up from `warmup_init` to
/// the initial rate over `warmup` steps when asked (joined at `warmup + 1`, as mlx-lm does).
pub fn build_schedule(config: &LrSchedule) -> Result<Schedule> {
    let a = &config.arguments;
    let arg = |i: usize| -> Result<f64> {
        a.get(i).copied().ok_or_else(|| {
            err("build_schedule", format!("{} needs argument {}", config.name, i + 1))
        })
    };
    let steps = |i: usize| -> Result<u64> {
        let v = arg(i)?;
        if v < 0.0 || v.fract() != 0.0 {
            return Err(err("build_schedule", format!("{}: {v} is not a step count", config.name)));
        }
        Ok(v as u64)
    };
    let init = arg(0)?;
    let schedule = match config.name.as_str() {
        "cosine_decay" => cosine_decay(init, steps(1)?, a.get(2).copied().unwrap_or(0.0))?,
        "linear_schedule" => linear_schedule(init, arg(1)?, steps(2)?)?,
        "exponential_decay" => exponential_decay(init, arg(1)?),
        "step_decay" => step_decay(init, arg(1)?, steps(2)?)?,
        other => {
            return Err(err(
                "build_schedule",
                format!(
                    "unknown schedule {other:?} (known: cosine_decay, linear_schedule, \
                     exponential_decay, step_decay)"
                ),
            ));
        }
    };
    if config.warmup == 0 {
        return Ok(schedule);
    }
    let warmup = linear_schedule(config.warmup_init, init, config.warmup)?;
    join_schedules(vec![warmup, schedule], &[config.warmup + 1])
}

struct Inner {
    model: Box<dyn LanguageModel>,
    optimizer: Box<dyn Optimizer>,
}

const MODEL: &str = "model";
const OPTIMIZER: &str = "optimizer";
const GRAD: &str = "grad";

fn part(state: &Tree, key: &str) -> Result<Tree> {
    state.get(key).cloned().ok_or_else(|| err("train_step", format!("the state has no `{key}`")))
}

fn join(parts: Vec<(&str, Tree)>) -> Tree {
    parts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// One training iteration over the state tree `{model, optimizer[, grad]}`: the loss and its
/// gradient, added to the accumulated gradient, and, when `update`, the optimizer update with
/// the sum divided by `accum_steps` (mlx-lm's `step`). Outputs `[loss, ntoks]`.
fn train_step(
    inner: &mut Inner,
    inputs: &[Array],
    state: &Tree,
    update: bool,
    accum_steps: usize,
) -> Result<(Vec<Array>, Tree)> {
    let (batch, lengths) = match inputs {
        [b, l] => (b, l),
        _ => return Err(err("train_step", "expects a batch and its lengths")),
    };
    let params = part(state, MODEL)?;
    let model = &mut inner.model;
    let (values, grads) = transforms::value_and_grad_tree(&params, |p| {
        model.update(p)?;
        let (loss, ntoks) = default_loss(model.as_ref(), batch, lengths)?;
        Ok(vec![loss, ntoks])
    })?;
    let grads = match state.get(GRAD) {
        Some(acc) => grads.map_with_path(|path, g| g + acc.leaf(path)?)?,
        None => grads,
    };
    let new_state = if update {
        let grads = if accum_steps > 1 {
            let n = accum_steps as f32;
            grads.map(|g| g / n)?
        } else {
            grads
        };
        inner.optimizer.set_state(part(state, OPTIMIZER)?)?;
        let mut new_params = params;
        inner.optimizer.update(&mut new_params, &grads)?;
        let mut parts = vec![(MODEL, new_params), (OPTIMIZER, inner.optimizer.state().clone())];
        if state.get(GRAD).is_some() {
            parts.push((GRAD, grads.map(|g| ops::zeros_like(g, None))?));
        }
        join(parts)
    } else {
        join(vec![(MODEL, params), (OPTIMIZER, part(state, OPTIMIZER)?), (GRAD, grads)])
    };
    inner.model.update(&part(&new_state, MODEL)?)?;
    Ok((values, new_state))
}

/// A model, an optimizer and the training state between them: [`Trainer::train`] runs mlx-lm's
/// loop; [`Trainer::into_parts`] gives the trained model back.
///
/// The step is compiled (unless [`TrainingArgs::compile`] is off) with the trainable
/// parameters, the optimizer's state and the accumulated gradients as its state, so one trace
/// per batch shape serves every iteration. The model's frozen parameters are constants of the
/// trace.
pub struct Trainer {
    inner: Rc<RefCell<Inner>>,
    state: Tree,
    steps: [Option<TreeStatefulFunction>; 2],
    args: TrainingArgs,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer").field("args", &self.args).finish_non_exhaustive()
    }
}

impl Trainer {
    /// A trainer of `model`'s trainable parameters (freeze and add adapters first, see
    /// [`super::prepare_model`]) with `optimizer`.
    pub fn new(
        mut model: Box<dyn LanguageModel>,
        mut optimizer: Box<dyn Optimizer>,
        args: TrainingArgs,
    ) -> Result<Trainer> {
        if args.grad_accumulation_steps < 1 {
            return Err(err("train", "grad_accumulation_steps must be at least 1"));
        }
        if args.batch_size == 0
            || args.steps_per_report == 0
            || args.steps_per_eval == 0
            || args.steps_per_save == 0
        {
            return Err(err("train", "batch_size and the steps_per_* intervals must be positive"));
        }
        if args.grad_checkpoint {
            model.set_grad_checkpoint(true)?;
        }
        let params = model.trainable_parameters();
        if params.num_leaves() == 0 {
            return Err(err("train", "the model has no trainable parameters"));
        }
        optimizer.init(&params)?;
        let mut parts = vec![(OPTIMIZER, optimizer.state().clone())];
        if args.grad_accumulation_steps > 1 {
            parts.push((GRAD, params.map(|p| ops::zeros_like(p, None))?));
        }
        parts.insert(0, (MODEL, params));
        Ok(Trainer {
            inner: Rc::new(RefCell::new(Inner { model, optimizer })),
            state: join(parts),
            steps: [None, None],
            args,
        })
    }

    /// The training arguments.
    pub fn args(&self) -> &TrainingArgs {
        &self.args
    }

    /// The current trainable parameters.
    pub fn trainable_parameters(&self) -> Result<Tree> {
        part(&self.state, MODEL)
    }

    /// The model with the current parameters, for `f` (e.g. to evaluate or save it).
    pub fn with_model<T>(&self, f: impl FnOnce(&mut dyn LanguageModel) -> Result<T>) -> Result<T> {
        self.sync()?;
        let mut inner = self.borrow()?;
        f(inner.model.as_mut())
    }

    fn borrow(&self) -> Result<std::cell::RefMut<'_, Inner>> {
        self.inner.try_borrow_mut().map_err(|_| err("train", "the model is in use"))
    }

    /// Writes the state's parameters into the model (a compiled step leaves traced arrays in
    /// it) and the optimizer's state into the optimizer.
    fn sync(&self) -> Result<()> {
        let mut inner = self.borrow()?;
        inner.model.update(&part(&self.state, MODEL)?)?;
        inner.optimizer.set_state(part(&self.state, OPTIMIZER)?)
    }

    /// The model and the optimizer, with the trained state.
    pub fn into_parts(self) -> Result<(Box<dyn LanguageModel>, Box<dyn Optimizer>)> {
        self.sync()?;
        let Trainer { inner, steps, .. } = self;
        drop(steps);
        let inner = Rc::try_unwrap(inner)
            .map_err(|_| err("train", "the model is still shared"))?
            .into_inner();
        Ok((inner.model, inner.optimizer))
    }

    /// One iteration on `batch` (an update when `update`): `(loss, ntoks)`, evaluated.
    pub fn step(&mut self, batch: &Batch, update: bool) -> Result<(Array, Array)> {
        let accum = self.args.grad_accumulation_steps;
        let update = update || accum == 1;
        let inputs = [batch.tokens.clone(), batch.lengths.clone()];
        let out = if self.args.compile {
            let slot = usize::from(update);
            if self.steps[slot].is_none() {
                let inner = Rc::clone(&self.inner);
                self.steps[slot] = Some(transforms::compile_with_tree_state(
                    move |inputs: &[Array], state: &Tree| {
                        let mut inner = inner
                            .try_borrow_mut()
                            .map_err(|_| err("train_step", "the model is in use"))?;
                        train_step(&mut inner, inputs, state, update, accum)
                    },
                    self.state.clone(),
                )?);
            }
            let f = self.steps[slot].as_mut().ok_or_else(|| err("train", "no step"))?;
            f.set_state(&self.state)?;
            let out = f.apply(&inputs)?;
            self.state = f.state()?;
            out
        } else {
            let mut inner = self.borrow()?;
            let (out, state) = train_step(&mut inner, &inputs, &self.state, update, accum)?;
            drop(inner);
            self.state = state;
            out
        };
        let (loss, ntoks) = match out.as_slice() {
            [l, n] => (l.clone(), n.clone()),
            _ => return Err(err("train", "the step returned the wrong outputs")),
        };
        let mut all: Vec<Array> = self.state.leaves().into_iter().cloned().collect();
        all.push(loss.clone());
        all.push(ntoks.clone());
        transforms::eval(&all)?;
        Ok((loss, ntoks))
    }

    /// The learning rate of the last update (NaN for an optimizer without one).
    pub fn learning_rate(&self) -> Result<f32> {
        match self.state.get(OPTIMIZER).and_then(|o| o.get_leaf("learning_rate")) {
            Some(lr) => lr.astype(Dtype::Float32)?.item::<f32>(),
            None => Ok(f32::NAN),
        }
    }

    fn save(&self, files: &[PathBuf]) -> Result<()> {
        self.with_model(|model| {
            for file in files {
                save_adapter_weights(&*model, file)?;
            }
            Ok(())
        })
    }

    fn validate(&self, val: &Dataset, it: usize, cb: &mut dyn TrainingCallback) -> Result<()> {
        let tic = Instant::now();
        let args = &self.args;
        let val_loss = self.with_model(|model| {
            let loss = evaluate(
                model,
                val,
                args.batch_size,
                args.val_batches,
                args.max_seq_length,
                args.seed,
            );
            model.train(true);
            loss
        })?;
        cb.on_val_loss_report(&ValReport {
            iteration: it,
            val_loss,
            val_time: tic.elapsed().as_secs_f64(),
        });
        Ok(())
    }

    /// mlx-lm's `train`: `iters` iterations over batches of `train_set` (looping, shuffled),
    /// the validation loss on `val_set` at the first, every `steps_per_eval`-th and the last
    /// iteration, a report every `steps_per_report` iterations, the adapter weights saved every
    /// `steps_per_save` iterations (to `adapter_file` and a numbered checkpoint beside it) and
    /// at the end (to `adapter_file`).
    pub fn train(
        &mut self,
        train_set: &Dataset,
        val_set: Option<&Dataset>,
        callback: &mut dyn TrainingCallback,
    ) -> Result<()> {
        let args = self.args.clone();
        self.borrow()?.model.train(true);
        let val_set = val_set.filter(|v| !v.is_empty());
        let mut batches =
            Batches::new(train_set, args.batch_size, args.max_seq_length, true, args.seed)?;
        let (mut losses, mut n_tokens, mut steps, mut trained_tokens) =
            (0.0f64, 0usize, 0usize, 0usize);
        let mut train_time = 0.0f64;
        for it in 1..=args.iters {
            let batch = batches.next().ok_or_else(|| err("train", "no batch"))??;
            if let Some(longest) = batch.truncated_from {
                callback.on_truncation(longest, args.max_seq_length);
            }
            if let Some(val) = val_set
                && (it == 1 || it % args.steps_per_eval == 0 || it == args.iters)
            {
                self.validate(val, it, callback)?;
            }
            let tic = Instant::now();
            let (loss, toks) = self.step(&batch, it % args.grad_accumulation_steps == 0)?;
            losses += f64::from(loss.item::<f32>()?);
            n_tokens += toks.item::<i32>()?.max(0) as usize;
            steps += 1;
            train_time += tic.elapsed().as_secs_f64();
            callback.on_step(it, args.iters);

            if it % args.steps_per_report == 0 || it == args.iters {
                trained_tokens += n_tokens;
                let report = TrainReport {
                    iteration: it,
                    train_loss: (losses / steps as f64) as f32,
                    learning_rate: self.learning_rate()?,
                    iterations_per_second: args.steps_per_report as f64 / train_time,
                    tokens_per_second: n_tokens as f64 / train_time,
                    trained_tokens,
                    peak_memory_gb: memory::get_peak_memory()? as f64 / 1e9,
                };
                callback.on_train_loss_report(&report);
                (losses, n_tokens, steps, train_time) = (0.0, 0, 0, 0.0);
            }
            if it % args.steps_per_save == 0 {
                let dir = args.adapter_file.parent().map(PathBuf::from).unwrap_or_default();
                let checkpoint = dir.join(format!("{it:07}_adapters.safetensors"));
                let files = [args.adapter_file.clone(), checkpoint];
                self.save(&files)?;
                callback.on_save(it, &files, false);
            }
        }
        let files = [args.adapter_file.clone()];
        self.save(&files)?;
        callback.on_save(args.iters, &files, true);
        Ok(())
    }
}
