//! Sampling the next token, as mlx-lm's `sample_utils` does it.
//!
//! The order is mlx-lm 0.32.0's: the [logits processors](LogitsProcessor) run first on the raw
//! logits (logit bias, then repetition, presence and frequency penalties), the model's
//! log-probabilities are formed (`logits - logsumexp(logits)`), and a [`Sampler`] then applies
//! top-p, min-p, XTC and top-k, in that order, before the categorical draw at the temperature
//! (temperature 0 is the argmax and skips every filter).
//!
//! Everything runs as MLX ops on the device, over a leading batch dimension (`[B, vocab]` in,
//! `[B]` out). Random draws go through explicit [`mlx_rs::random`] keys split the way MLX's
//! global generator splits its key, so a [`Sampler`] seeded with `s` draws the same tokens as
//! mlx-lm after `mx.random.seed(s)`.
//!
//! ```
//! use mlx_rs::Array;
//! use mlx_lm::sample::{Sampler, SamplerSettings};
//! let logprobs = Array::from_slice(&[-3.0f32, -0.1, -2.5, -4.0], &[1, 4])?;
//! let mut greedy = Sampler::new(SamplerSettings::default())?;
//! assert_eq!(greedy.sample(&logprobs)?.to_vec::<u32>()?, [1]);
//! let mut top1 = Sampler::new(SamplerSettings { temp: 1.0, top_k: 1, seed: Some(0), ..Default::default() })?;
//! assert_eq!(top1.sample(&logprobs)?.to_vec::<u32>()?, [1]);
//! # Ok::<(), mlx_rs::Error>(())
//! ```

use mlx_rs::ops::{self, BoundedIndices};
use mlx_rs::{Array, Dtype, Ellipsis, Error, Result, random};

/// The sampler's settings, named and defaulted as `mlx_lm.sample_utils.make_sampler`'s
/// arguments (floats are `f64` because Python computes with them in double precision before they
/// meet an array).
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerSettings {
    /// Temperature of the categorical draw; `0` is the argmax (greedy).
    pub temp: f64,
    /// Nucleus sampling: keep the smallest set of tokens whose probability mass reaches `top_p`;
    /// applied when `0 < top_p < 1`.
    pub top_p: f64,
    /// Drop tokens whose probability is below `min_p` times the top token's; applied when not 0.
    pub min_p: f64,
    /// Tokens that min-p keeps whatever their probability (at least 1).
    pub min_tokens_to_keep: i32,
    /// Keep only the `top_k` most likely tokens; applied when positive (must be below the vocab).
    pub top_k: i32,
    /// XTC ("exclude top choices"): the probability of applying it at a step; applied when
    /// positive.
    pub xtc_probability: f64,
    /// XTC: tokens above this probability, all but the least likely of them, are removed.
    pub xtc_threshold: f64,
    /// XTC: token ids that XTC never removes.
    pub xtc_special_tokens: Vec<u32>,
    /// The seed of the sampler's own key; `None` draws from MLX's global key
    /// ([`random::seed`]), as mlx-lm does.
    pub seed: Option<u64>,
}

impl Default for SamplerSettings {
    fn default() -> SamplerSettings {
        SamplerSettings {
            temp: 0.0,
            top_p: 0.0,
            min_p: 0.0,
            min_tokens_to_keep: 1,
            top_k: 0,
            xtc_probability: 0.0,
            xtc_threshold: 0.1,
            xtc_special_tokens: Vec::new(),
            seed: None,
        }
    }
}

/// A token sampler built from [`SamplerSettings`]: `make_sampler` of mlx-lm.
///
/// [`Sampler::sample`] takes log-probabilities of shape `[.., vocab]` and returns one token id
/// per row (`uint32`). A seeded sampler owns its key and advances it on every random draw.
#[derive(Clone, Debug)]
pub struct Sampler {
    settings: SamplerSettings,
    key: Option<Array>,
}

impl Sampler {
    /// Checks the settings (the ranges mlx-lm checks) and makes the sampler.
    pub fn new(settings: SamplerSettings) -> Result<Sampler> {
        let bad = |msg: String| Err(Error::invalid("Sampler::new", msg));
        if !settings.temp.is_finite() || settings.temp < 0.0 {
            return bad(format!("`temp` must be a non-negative number, got {}", settings.temp));
        }
        if !(0.0..=1.0).contains(&settings.min_p) {
            return bad(format!(
                "`min_p` has to be a float in the [0, 1] interval, but is {}",
                settings.min_p
            ));
        }
        if settings.min_tokens_to_keep < 1 {
            return bad(format!(
                "`min_tokens_to_keep` has to be a positive integer, but is {}",
                settings.min_tokens_to_keep
            ));
        }
        if settings.top_k < 0 {
            return bad(format!("`top_k` must not be negative, got {}", settings.top_k));
        }
        if settings.xtc_probability > 0.0 {
            if !(0.0..=0.5).contains(&settings.xtc_threshold) {
                return bad(format!(
                    "`threshold` has to be a float in the [0, 0.5] interval, but is {}",
                    settings.xtc_threshold
                ));
            }
            if settings.xtc_probability > 1.0 {
                return bad(format!(
                    "`probability` has to be a float in the [0, 1] interval, but is {}",
                    settings.xtc_probability
                ));
            }
        }
        let key = settings.seed.map(random::key).transpose()?;
        Ok(Sampler { settings, key })
    }

    /// The settings the sampler was made with.
    pub fn settings(&self) -> &SamplerSettings {
        &self.settings
    }

    /// Whether this sampler is the argmax (temperature 0): it draws nothing.
    pub fn is_greedy(&self) -> bool {
        self.settings.temp == 0.0
    }

    /// One token id per row of `logprobs` (`[.., vocab]` → `[..]`, `uint32`).
    pub fn sample(&mut self, logprobs: &Array) -> Result<Array> {
        if self.is_greedy() {
            return Ok(greedy(logprobs)?.into_array());
        }
        let s = &self.settings;
        let key = &mut self.key;
        let mut x = logprobs.clone();
        if 0.0 < s.top_p && s.top_p < 1.0 {
            x = apply_top_p(&x, s.top_p)?;
        }
        if s.min_p != 0.0 {
            x = apply_min_p(&x, s.min_p, s.min_tokens_to_keep)?;
        }
        if s.xtc_probability > 0.0 {
            let k = next_key(key)?;
            x = apply_xtc(
                &x,
                s.xtc_probability,
                s.xtc_threshold,
                &s.xtc_special_tokens,
                k.as_ref(),
            )?;
        }
        if s.top_k > 0 {
            x = apply_top_k(&x, s.top_k)?;
        }
        let k = next_key(key)?;
        categorical_sampling(&x, s.temp, k.as_ref())
    }

    /// [`Sampler::sample`] with the proof that every id is below the vocabulary size, so that the
    /// next step's embedding lookup can skip its clamp: free for the argmax, one clamp for a
    /// categorical draw.
    pub fn sample_bounded(&mut self, logprobs: &Array) -> Result<BoundedIndices> {
        if self.is_greedy() {
            return greedy(logprobs);
        }
        let vocab = i64::from(logprobs.dim(-1)?);
        BoundedIndices::clamped(&self.sample(logprobs)?, vocab)
    }
}

/// The next key of a sampler's stream (MLX's `KeySequence::next`: split, keep the first half as
/// the new state, use the second), or `None` for MLX's global key.
fn next_key(key: &mut Option<Array>) -> Result<Option<Array>> {
    match key {
        None => Ok(None),
        Some(k) => {
            let (state, sub) = random::split_pair(k)?;
            *k = state;
            Ok(Some(sub))
        }
    }
}

/// `logits - logsumexp(logits)` over the last axis: the log-probabilities a [`Sampler`] takes.
pub fn log_softmax(logits: &Array) -> Result<Array> {
    logits - logits.logsumexp(-1, true)?
}

/// The argmax over the last axis (mlx-lm's `greedy_sampler`), with its bound (the vocabulary
/// size) proven.
pub fn greedy(logprobs: &Array) -> Result<BoundedIndices> {
    BoundedIndices::argmax(logprobs, -1, false)
}

/// Top-p (nucleus) filtering: tokens outside the smallest set whose probability mass reaches
/// `top_p` get `-inf` (mlx-lm's `apply_top_p`).
pub fn apply_top_p(logprobs: &Array, top_p: f64) -> Result<Array> {
    let sorted = ops::sort(logprobs, Some(-1))?;
    let sorted_probs = sorted.astype(Dtype::Float32)?.exp()?;
    let mass_above = ops::cumsum(&sorted_probs, Some(-1), true, false, None)?;
    let total_mass =
        (&mass_above.index((Ellipsis, ..1))? + &sorted_probs.index((Ellipsis, ..1))?)?;
    let num_dropped = mass_above.greater_equal(&(&total_mass * top_p)?)?.sum(-1, true)?;
    let threshold = ops::take_along_axis(&sorted, &num_dropped, -1)?;
    ops::r#where(&logprobs.less(&threshold)?, &neg_inf(logprobs)?, logprobs)
}

/// Min-p filtering: tokens less likely than `min_p` times the top token get `-inf`, except the
/// `min_tokens_to_keep` most likely (mlx-lm's `apply_min_p`).
pub fn apply_min_p(logprobs: &Array, min_p: f64, min_tokens_to_keep: i32) -> Result<Array> {
    if !(0.0..=1.0).contains(&min_p) {
        return Err(Error::invalid(
            "apply_min_p",
            format!("`min_p` has to be a float in the [0, 1] interval, but is {min_p}"),
        ));
    }
    if min_tokens_to_keep < 1 {
        return Err(Error::invalid(
            "apply_min_p",
            format!(
                "`min_tokens_to_keep` has to be a positive integer, but is {min_tokens_to_keep}"
            ),
        ));
    }
    let top_logprobs = logprobs.max(-1, true)?;
    let scaled_min_p = (&top_logprobs + min_p.ln())?;
    let mut tokens_to_remove = logprobs.less(&scaled_min_p)?;
    if min_tokens_to_keep > 1 {
        let vocab = logprobs.dim(-1)?;
        let k = min_tokens_to_keep.min(vocab);
        let top =
            ops::argpartition(logprobs, vocab - k, Some(-1))?.index((Ellipsis, (vocab - k)..))?;
        tokens_to_remove =
            ops::put_along_axis(&tokens_to_remove, &top, &Array::scalar(false), Some(-1))?;
    }
    ops::r#where(&tokens_to_remove, &neg_inf(logprobs)?, logprobs)
}

/// Top-k filtering: all but the `top_k` most likely tokens get `-inf` (mlx-lm's
/// `apply_top_k`); `top_k` must lie in `(0, vocab)`.
pub fn apply_top_k(logprobs: &Array, top_k: i32) -> Result<Array> {
    let vocab = logprobs.dim(-1)?;
    if !(0 < top_k && top_k < vocab) {
        return Err(Error::invalid(
            "apply_top_k",
            format!("`top_k` has to be an integer in the (0, {vocab}) interval, but is {top_k}."),
        ));
    }
    let mask_idx = ops::argpartition(&logprobs.negative()?, top_k - 1, Some(-1))?
        .index((Ellipsis, top_k..))?;
    ops::put_along_axis(logprobs, &mask_idx, &neg_inf(logprobs)?, Some(-1))
}

/// XTC: with probability `xtc_probability` (one uniform draw with `key`), every token above
/// `xtc_threshold` except the least likely of them gets `-inf`; `special_tokens` are never
/// removed (mlx-lm's `apply_xtc`).
pub fn apply_xtc(
    logits: &Array,
    xtc_probability: f64,
    xtc_threshold: f64,
    special_tokens: &[u32],
    key: Option<&Array>,
) -> Result<Array> {
    if !(0.0..=0.5).contains(&xtc_threshold) {
        return Err(Error::invalid(
            "apply_xtc",
            format!(
                "`threshold` has to be a float in the [0, 0.5] interval, but is {xtc_threshold}"
            ),
        ));
    }
    if !(0.0..=1.0).contains(&xtc_probability) {
        return Err(Error::invalid(
            "apply_xtc",
            format!(
                "`probability` has to be a float in the [0, 1] interval, but is {xtc_probability}"
            ),
        ));
    }
    let probs = logits.softmax(-1, false)?;
    let inf = Array::scalar(f32::INFINITY);
    let above = ops::r#where(&probs.greater(Array::scalar(xtc_threshold as f32))?, &probs, &inf)?;
    let mut mask = probs.greater(&above.min(-1, true)?)?;
    if !special_tokens.is_empty() {
        let mut shape = mask.shape().to_vec();
        let n = i32::try_from(special_tokens.len())
            .map_err(|_| Error::invalid("apply_xtc", "too many special tokens"))?;
        let mut idx_shape = vec![1; shape.len().saturating_sub(1)];
        idx_shape.push(n);
        if let Some(last) = shape.last_mut() {
            *last = n;
        }
        let idx = Array::from_slice(special_tokens, &idx_shape)?;
        let idx = ops::broadcast_to(&idx, &shape)?;
        mask = ops::put_along_axis(&mask, &idx, &Array::scalar(false), Some(-1))?;
    }
    let u =
        random::uniform(&Array::scalar(0.0f32), &Array::scalar(1.0f32), &[], Dtype::Float32, key)?;
    let filtered = ops::r#where(&mask, &neg_inf(logits)?, logits)?;
    ops::r#where(&u.greater(Array::scalar(xtc_probability as f32))?, logits, &filtered)
}

/// The categorical draw at temperature `temp` over the last axis (mlx-lm's
/// `categorical_sampling`: `categorical(logits * (1 / temp))`).
pub fn categorical_sampling(logits: &Array, temp: f64, key: Option<&Array>) -> Result<Array> {
    if temp.is_nan() || temp <= 0.0 {
        return Err(Error::invalid(
            "categorical_sampling",
            format!("the temperature must be positive, got {temp}"),
        ));
    }
    random::categorical(&(logits * (1.0 / temp))?, -1, None, None, key)
}

/// `-inf` in the dtype of `a`.
fn neg_inf(a: &Array) -> Result<Array> {
    Array::scalar(f32::NEG_INFINITY).astype(a.dtype())
}

/// The logits processors' settings, named and defaulted as
/// `mlx_lm.sample_utils.make_logits_processors`' arguments. A penalty of `None` or 0 is off.
#[derive(Clone, Debug, PartialEq)]
pub struct LogitsProcessorSettings {
    /// Additive bias per token id.
    pub logit_bias: Vec<(u32, f32)>,
    /// Sign-aware multiplicative penalty on the logits of recent tokens (CTRL's).
    pub repetition_penalty: Option<f64>,
    /// How many recent tokens the repetition penalty looks at.
    pub repetition_context_size: usize,
    /// Subtracted once from the logit of every token among the recent ones.
    pub presence_penalty: Option<f64>,
    /// How many recent tokens the presence penalty looks at.
    pub presence_context_size: usize,
    /// Subtracted from a token's logit once per occurrence among the recent tokens.
    pub frequency_penalty: Option<f64>,
    /// How many recent tokens the frequency penalty looks at.
    pub frequency_context_size: usize,
}

impl Default for LogitsProcessorSettings {
    fn default() -> LogitsProcessorSettings {
        LogitsProcessorSettings {
            logit_bias: Vec::new(),
            repetition_penalty: None,
            repetition_context_size: 20,
            presence_penalty: None,
            presence_context_size: 20,
            frequency_penalty: None,
            frequency_context_size: 20,
        }
    }
}

/// One logits processor: a function of the tokens so far (1-D, integer) and the logits
/// (`[B, vocab]`), as mlx-lm's processors are.
#[derive(Clone, Debug)]
pub enum LogitsProcessor {
    /// `logits[:, ids] += values`.
    LogitBias {
        /// The token ids (`int32`, 1-D).
        ids: Array,
        /// The biases (`float32`, 1-D).
        values: Array,
    },
    /// `logits[:, recent] = where(l < 0, l * penalty, l / penalty)`.
    Repetition {
        /// The penalty factor (non-negative).
        penalty: f64,
        /// How many recent tokens count.
        context_size: usize,
    },
    /// `logits[:, recent] -= penalty` (once per distinct token).
    Presence {
        /// The penalty.
        penalty: f64,
        /// How many recent tokens count.
        context_size: usize,
    },
    /// `logits[:, recent] -= penalty` per occurrence.
    Frequency {
        /// The penalty.
        penalty: f64,
        /// How many recent tokens count.
        context_size: usize,
    },
}

/// The processors of `settings` in mlx-lm's order: logit bias, repetition, presence, frequency.
pub fn make_logits_processors(settings: &LogitsProcessorSettings) -> Result<Vec<LogitsProcessor>> {
    let mut out = Vec::new();
    if !settings.logit_bias.is_empty() {
        let ids: Vec<i32> = settings
            .logit_bias
            .iter()
            .map(|&(id, _)| {
                i32::try_from(id).map_err(|_| {
                    Error::invalid("make_logits_processors", format!("token id {id} too large"))
                })
            })
            .collect::<Result<_>>()?;
        let values: Vec<f32> = settings.logit_bias.iter().map(|&(_, v)| v).collect();
        out.push(LogitsProcessor::LogitBias {
            ids: Array::from_slice(&ids, &[ids.len() as i32])?,
            values: Array::from_slice(&values, &[values.len() as i32])?,
        });
    }
    if let Some(penalty) = settings.repetition_penalty.filter(|&p| p != 0.0) {
        if penalty.is_nan() || penalty < 0.0 || !penalty.is_finite() {
            return Err(Error::invalid(
                "make_logits_processors",
                format!("penalty must be a non-negative float, got {penalty}"),
            ));
        }
        out.push(LogitsProcessor::Repetition {
            penalty,
            context_size: settings.repetition_context_size,
        });
    }
    if let Some(penalty) = settings.presence_penalty.filter(|&p| p != 0.0) {
        out.push(LogitsProcessor::Presence {
            penalty,
            context_size: settings.presence_context_size,
        });
    }
    if let Some(penalty) = settings.frequency_penalty.filter(|&p| p != 0.0) {
        out.push(LogitsProcessor::Frequency {
            penalty,
            context_size: settings.frequency_context_size,
        });
    }
    Ok(out)
}

/// The last `context_size` entries of the 1-D `tokens`, as `[B, n]` column indices for the
/// `[B, vocab]` logits; `None` when there are none.
fn recent(tokens: &Array, context_size: usize, logits: &Array) -> Result<Option<Array>> {
    if tokens.ndim() != 1 {
        return Err(Error::invalid(
            "LogitsProcessor::apply",
            format!("tokens must be 1-D, got shape {:?}", tokens.shape()),
        ));
    }
    let len = tokens.dim(0)?;
    let ctx = i32::try_from(context_size).unwrap_or(i32::MAX).min(len);
    if ctx == 0 {
        return Ok(None);
    }
    let window = tokens.index((len - ctx)..)?;
    Ok(Some(rows(&window, logits)?))
}

/// 1-D `ids` broadcast to one row per row of `logits` (`[.., n]`).
fn rows(ids: &Array, logits: &Array) -> Result<Array> {
    let mut shape = logits.shape().to_vec();
    let n = ids.dim(0)?;
    let mut idx_shape = vec![1; shape.len().saturating_sub(1)];
    idx_shape.push(n);
    match shape.last_mut() {
        Some(last) => *last = n,
        None => {
            return Err(Error::invalid(
                "LogitsProcessor::apply",
                "the logits must not be a scalar",
            ));
        }
    }
    ops::broadcast_to(&ids.reshape(&idx_shape)?, &shape)
}

impl LogitsProcessor {
    /// The processed logits, given the tokens so far (`tokens`: 1-D, integer; the prompt and
    /// what was generated) and the logits (`[B, vocab]`).
    pub fn apply(&self, tokens: &Array, logits: &Array) -> Result<Array> {
        match self {
            LogitsProcessor::LogitBias { ids, values } => {
                let idx = rows(ids, logits)?;
                let vals = ops::broadcast_to(&values.astype(logits.dtype())?, idx.shape())?;
                ops::scatter_add_axis(logits, &idx, &vals, Some(-1))
            }
            LogitsProcessor::Repetition { penalty, context_size } => {
                let Some(idx) = recent(tokens, *context_size, logits)? else {
                    return Ok(logits.clone());
                };
                let selected = ops::take_along_axis(logits, &idx, -1)?;
                let zero = Array::scalar(0.0f32).astype(logits.dtype())?;
                let penalised = ops::r#where(
                    &selected.less(&zero)?,
                    &(&selected * *penalty)?,
                    &(&selected / *penalty)?,
                )?;
                ops::put_along_axis(logits, &idx, &penalised, Some(-1))
            }
            LogitsProcessor::Presence { penalty, context_size } => {
                let Some(idx) = recent(tokens, *context_size, logits)? else {
                    return Ok(logits.clone());
                };
                let selected = ops::take_along_axis(logits, &idx, -1)?;
                ops::put_along_axis(logits, &idx, &(&selected - *penalty)?, Some(-1))
            }
            LogitsProcessor::Frequency { penalty, context_size } => {
                let Some(idx) = recent(tokens, *context_size, logits)? else {
                    return Ok(logits.clone());
                };
                let minus =
                    ops::full_like(&idx, &Array::scalar(-*penalty as f32), Some(logits.dtype()))?;
                ops::scatter_add_axis(logits, &idx, &minus, Some(-1))
            }
        }
    }
}

/// Runs `processors` in order over `logits`.
pub fn apply_logits_processors(
    processors: &[LogitsProcessor],
    tokens: &Array,
    logits: &Array,
) -> Result<Array> {
    let mut out = logits.clone();
    for p in processors {
        out = p.apply(tokens, &out)?;
    }
    Ok(out)
}
