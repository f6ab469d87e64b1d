//! Generation as mlx-lm 0.32.0's `generate_step`, `speculative_generate_step` and
//! `stream_generate` do it.
//!
//! - [`TokenStream`]: the prompt is prefilled in chunks of [`GenerateOptions::prefill_step_size`]
//!   (the cache evaluated and MLX's buffer cache cleared after each), then tokens are decoded
//!   with `async_eval` pipelining: step N+1 is queued before token N is read.
//! - [`SpeculativeTokenStream`]: a draft model proposes [`GenerateOptions::num_draft_tokens`]
//!   tokens, the main model checks them in one forward pass, the tokens are accepted while they
//!   equal the main model's own, and both caches are trimmed past the first rejection. Greedy
//!   speculative output equals plain greedy output.
//! - [`Generation`]: tokens to text (streaming detokenizer), EOS ids, stop strings,
//!   `max_tokens`, and mlx-lm's figures ([`GenerationResponse`], [`GenerationResponse::report`]).
//!
//! Generation runs on its own stream on the default device, as mlx-lm's `generation_stream`.

use std::cell::RefCell;
use std::time::Instant;

use mlx_rs::nn::cache::{
    KVCache, PromptCache, StateValue, can_trim_prompt_cache, trim_prompt_cache,
};
use mlx_rs::transforms::{async_eval, eval};
use mlx_rs::{Array, Device, Dtype, Error, Result, Stream, memory, ops};

use crate::model::LanguageModel;
use crate::sample::{
    LogitsProcessor, LogitsProcessorSettings, Sampler, SamplerSettings, apply_logits_processors,
    log_softmax, make_logits_processors,
};
use crate::tokenizer::{StreamingDetokenizer, Tokenizer};

/// How tokens are generated; the defaults are mlx-lm's.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    /// The most tokens to generate (`None`: no limit). Default 256.
    pub max_tokens: Option<usize>,
    /// Prompt tokens processed per forward pass while prefilling. Default 2048 (mlx-lm uses 512
    /// for speculative decoding; set it to match).
    pub prefill_step_size: usize,
    /// The sampler (temperature 0 is greedy).
    pub sampler: SamplerSettings,
    /// Penalties and logit bias, applied before sampling.
    pub logits_processors: LogitsProcessorSettings,
    /// Rotating caches of this many positions (keeping the first 4) instead of growing ones.
    pub max_kv_size: Option<i32>,
    /// Quantize the KV cache to this many bits once it holds [`Self::quantized_kv_start`]
    /// positions.
    pub kv_bits: Option<i32>,
    /// The group size of a quantized KV cache. Default 64.
    pub kv_group_size: i32,
    /// The cache length from which `kv_bits` applies. Default 5000.
    pub quantized_kv_start: i32,
    /// Draft tokens per speculative step. Default 2.
    pub num_draft_tokens: usize,
}

impl Default for GenerateOptions {
    fn default() -> GenerateOptions {
        GenerateOptions {
            max_tokens: Some(256),
            prefill_step_size: 2048,
            sampler: SamplerSettings::default(),
            logits_processors: LogitsProcessorSettings::default(),
            max_kv_size: None,
            kv_bits: None,
            kv_group_size: 64,
            quantized_kv_start: 5000,
            num_draft_tokens: 2,
        }
    }
}

/// One generated token.
#[derive(Clone, Debug)]
pub struct GeneratedToken {
    /// The token id.
    pub id: u32,
    /// The log-probabilities it was sampled from (`[vocab]`, after the logits processors).
    pub logprobs: Array,
    /// True when the draft model proposed it and the main model agreed.
    pub from_draft: bool,
}

/// The prompt's ids as the 1-D `uint32` array the model steps take.
fn prompt_array(prompt: &[u32]) -> Result<Array> {
    if prompt.is_empty() {
        return Err(Error::invalid("generate", "the prompt has no tokens"));
    }
    Array::from_slice(prompt, &[prompt.len() as i32])
}

/// Every array a cache's state holds.
fn state_arrays(state: Vec<StateValue>, out: &mut Vec<Array>) {
    for value in state {
        match value {
            StateValue::Array(a) => out.push(a),
            StateValue::List(items) => state_arrays(items, out),
            _ => {}
        }
    }
}

/// Evaluates every cache's state (mlx-lm's `mx.eval([c.state for c in prompt_cache])`).
fn eval_cache(cache: &PromptCache) -> Result<()> {
    let mut arrays = Vec::new();
    for c in cache {
        state_arrays(c.state(), &mut arrays);
    }
    eval(&arrays)
}

/// mlx-lm's `maybe_quantize_kv_cache`: plain caches of at least `start` positions become
/// quantized ones.
fn maybe_quantize_cache(cache: &mut PromptCache, options: &GenerateOptions) -> Result<()> {
    let Some(bits) = options.kv_bits else { return Ok(()) };
    for slot in cache.iter_mut() {
        let quantized = match slot.as_any().downcast_ref::<KVCache>() {
            Some(kv) if slot.offset() >= options.quantized_kv_start => {
                kv.to_quantized(options.kv_group_size, bits)?
            }
            _ => continue,
        };
        *slot = Box::new(quantized);
    }
    Ok(())
}

thread_local! {
    /// The generation stream of each device this thread has generated on.
    static GENERATION_STREAMS: RefCell<Vec<(Device, Stream)>> = const { RefCell::new(Vec::new()) };
}

/// The stream generation runs on: one per device, made by this thread's first generation there
/// and reused by every later one, as mlx-lm's module-level `generation_stream` (MLX streams
/// belong to their thread, and MLX keeps every stream it made: one per generation would pile
/// up). Public so that programs timing their own steps run them where generation does.
pub fn generation_stream() -> Result<Stream> {
    let device = Device::default_device()?;
    GENERATION_STREAMS.with(|streams| {
        let mut streams = streams.borrow_mut();
        if let Some((_, stream)) = streams.iter().find(|(d, _)| *d == device) {
            return stream.try_clone();
        }
        let stream = Stream::new(&device)?;
        streams.push((device, stream.try_clone()?));
        Ok(stream)
    })
}

/// `tokens` followed by `more` (the logits processors' history).
fn extend_history(history: Option<Array>, more: &Array) -> Result<Array> {
    match history {
        Some(h) => ops::concatenate(&[h, more.clone()], Some(0)),
        None => Ok(more.clone()),
    }
}

/// Tokens from one model: mlx-lm's `generate_step` (see the [module docs](self)).
pub struct TokenStream<'m> {
    model: &'m dyn LanguageModel,
    cache: PromptCache,
    sampler: Sampler,
    processors: Vec<LogitsProcessor>,
    options: GenerateOptions,
    stream: Stream,
    history: Option<Array>,
    prompt: Option<Array>,
    prompt_len: usize,
    on_prefill: Option<Box<dyn FnMut(usize, usize) + 'm>>,
    current: Option<(Array, Array)>,
    produced: usize,
}

impl std::fmt::Debug for TokenStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStream")
            .field("prompt_len", &self.prompt_len)
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

impl<'m> TokenStream<'m> {
    /// Generation after `prompt`, extending `cache` (a fresh [`LanguageModel::make_cache`], or
    /// one that already holds a shared prefix: then `prompt` is the rest) or a new cache.
    pub fn new(
        model: &'m dyn LanguageModel,
        prompt: &[u32],
        cache: Option<PromptCache>,
        options: GenerateOptions,
    ) -> Result<TokenStream<'m>> {
        let cache = match cache {
            Some(c) => c,
            None => match options.max_kv_size {
                Some(m) => mlx_rs::nn::cache::make_prompt_cache(model.num_layers(), Some(m))?,
                None => model.make_cache()?,
            },
        };
        Ok(TokenStream {
            model,
            cache,
            sampler: Sampler::new(options.sampler.clone())?,
            processors: make_logits_processors(&options.logits_processors)?,
            stream: generation_stream()?,
            history: None,
            prompt: Some(prompt_array(prompt)?),
            prompt_len: prompt.len(),
            on_prefill: None,
            current: None,
            produced: 0,
            options,
        })
    }

    /// Calls `f(processed, total)` as the prompt is prefilled (mlx-lm's
    /// `prompt_progress_callback`).
    pub fn on_prefill_progress(mut self, f: impl FnMut(usize, usize) + 'm) -> TokenStream<'m> {
        self.on_prefill = Some(Box::new(f));
        self
    }

    /// The prompt cache (after the prompt and every token read so far, plus the queued step).
    pub fn cache(&self) -> &PromptCache {
        &self.cache
    }

    /// The prompt cache, to reuse for a prompt that continues this one.
    pub fn into_cache(self) -> PromptCache {
        self.cache
    }

    fn progress(&mut self, done: usize) {
        let total = self.prompt_len;
        if let Some(f) = self.on_prefill.as_mut() {
            f(done, total);
        }
    }

    /// One forward pass over `input` (1-D ids): the sampled next id and the log-probabilities.
    fn step(&mut self, input: &Array) -> Result<(Array, Array)> {
        let logits = self.model.forward(&input.expand_dims(0)?, Some(&mut self.cache))?;
        let mut logits = logits.index((.., -1, ..))?;
        if !self.processors.is_empty() && input.size() > 0 {
            let history = extend_history(self.history.take(), input)?;
            logits = apply_logits_processors(&self.processors, &history, &logits)?;
            self.history = Some(history);
        }
        maybe_quantize_cache(&mut self.cache, &self.options)?;
        let logprobs = log_softmax(&logits)?;
        let sampled = self.sampler.sample_bounded(&logprobs)?.into_array();
        Ok((sampled, logprobs.squeeze(0)?))
    }

    /// Prefills all but the last prompt token in chunks; returns the last step's output.
    fn prefill(&mut self, mut prompt: Array) -> Result<(Array, Array)> {
        let total = self.prompt_len;
        let mut processed = 0usize;
        self.progress(0);
        let step = self.options.prefill_step_size.max(1);
        while total - processed > 1 {
            let n = step.min(total - processed - 1);
            let chunk = prompt.index(..n as i32)?;
            self.model.forward(&chunk.expand_dims(0)?, Some(&mut self.cache))?;
            maybe_quantize_cache(&mut self.cache, &self.options)?;
            eval_cache(&self.cache)?;
            if !self.processors.is_empty() {
                self.history = Some(extend_history(self.history.take(), &chunk)?);
            }
            processed += n;
            self.progress(processed);
            prompt = prompt.index(n as i32..)?;
            memory::clear_cache()?;
        }
        self.step(&prompt)
    }

    fn advance(&mut self) -> Result<Option<GeneratedToken>> {
        let _on_stream = self.stream.scoped_default()?;
        let (y, logprobs) = match (self.current.take(), self.prompt.take()) {
            (Some(c), _) => c,
            (None, Some(prompt)) => {
                let first = self.prefill(prompt)?;
                async_eval(&[&first.0, &first.1])?;
                first
            }
            (None, None) => return Ok(None),
        };
        let n = self.produced;
        if Some(n) == self.options.max_tokens {
            return Ok(None);
        }
        if Some(n + 1) != self.options.max_tokens {
            let next = self.step(&y)?;
            async_eval(&[&next.0, &next.1])?;
            self.current = Some(next);
        }
        if n == 0 {
            eval(&[&y])?;
            let total = self.prompt_len;
            self.progress(total);
        }
        let id = y.item::<u32>()?;
        if n.is_multiple_of(256) {
            memory::clear_cache()?;
        }
        self.produced += 1;
        Ok(Some(GeneratedToken { id, logprobs, from_draft: false }))
    }
}

impl Iterator for TokenStream<'_> {
    type Item = Result<GeneratedToken>;

    fn next(&mut self) -> Option<Result<GeneratedToken>> {
        match self.advance() {
            Ok(token) => token.map(Ok),
            Err(e) => {
                self.current = None;
                self.prompt = None;
                Some(Err(e))
            }
        }
    }
}

/// Tokens from a model and a draft model: mlx-lm's `speculative_generate_step` (see the
/// [module docs](self)).
pub struct SpeculativeTokenStream<'m> {
    model: &'m dyn LanguageModel,
    draft: &'m dyn LanguageModel,
    model_cache: PromptCache,
    draft_cache: PromptCache,
    sampler: Sampler,
    processors: Vec<LogitsProcessor>,
    options: GenerateOptions,
    stream: Stream,
    history: Option<Array>,
    prompt: Option<Array>,
    y: Option<Array>,
    draft_y: Option<Array>,
    ready: std::collections::VecDeque<GeneratedToken>,
    produced: usize,
}

impl std::fmt::Debug for SpeculativeTokenStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeculativeTokenStream")
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

impl<'m> SpeculativeTokenStream<'m> {
    /// Speculative generation after `prompt` with fresh caches for both models (which must be
    /// trimmable: an error otherwise). Both models must share the tokenizer.
    pub fn new(
        model: &'m dyn LanguageModel,
        draft: &'m dyn LanguageModel,
        prompt: &[u32],
        options: GenerateOptions,
    ) -> Result<SpeculativeTokenStream<'m>> {
        let model_cache = model.make_cache()?;
        let draft_cache = draft.make_cache()?;
        for (who, cache) in [("model", &model_cache), ("draft model", &draft_cache)] {
            if !can_trim_prompt_cache(cache) {
                return Err(Error::invalid(
                    "speculative generation",
                    format!("the {who}'s prompt cache cannot be trimmed"),
                ));
            }
        }
        if model.vocab_size() != draft.vocab_size() {
            return Err(Error::invalid(
                "speculative generation",
                format!(
                    "the draft model's vocabulary ({}) differs from the model's ({})",
                    draft.vocab_size(),
                    model.vocab_size()
                ),
            ));
        }
        Ok(SpeculativeTokenStream {
            model,
            draft,
            model_cache,
            draft_cache,
            sampler: Sampler::new(options.sampler.clone())?,
            processors: make_logits_processors(&options.logits_processors)?,
            stream: generation_stream()?,
            history: None,
            prompt: Some(prompt_array(prompt)?),
            y: None,
            draft_y: None,
            ready: std::collections::VecDeque::new(),
            produced: 0,
            options,
        })
    }

    fn sample(&mut self, tokens: Option<&Array>, logits: &Array) -> Result<(Array, Array)> {
        let logits = match tokens {
            Some(t) if !self.processors.is_empty() => {
                apply_logits_processors(&self.processors, t, logits)?
            }
            _ => logits.clone(),
        };
        let logprobs = log_softmax(&logits)?;
        Ok((self.sampler.sample_bounded(&logprobs)?.into_array(), logprobs))
    }

    /// mlx-lm's `_step`: the last `n_predict` positions' samples (`[n_predict]`) and
    /// log-probabilities (`[n_predict, vocab]`).
    fn step(&mut self, draft: bool, y: &Array, n_predict: usize) -> Result<(Array, Array)> {
        let (model, cache) = match draft {
            true => (self.draft, &mut self.draft_cache),
            false => (self.model, &mut self.model_cache),
        };
        let logits = model.forward(&y.expand_dims(0)?, Some(cache))?;
        let logits = logits.index((.., -(n_predict as i32).., ..))?;
        let cache = if draft { &mut self.draft_cache } else { &mut self.model_cache };
        maybe_quantize_cache(cache, &self.options)?;
        if self.processors.is_empty() {
            return self.sample(None, &logits.squeeze(0)?);
        }
        let mut y = y.clone();
        if n_predict > 1 {
            y = y.index(..(y.size() - (n_predict - 1)) as i32)?;
        }
        let (mut ys, mut lps) = (Vec::new(), Vec::new());
        for i in 0..n_predict {
            let history = extend_history(self.history.take(), &y)?;
            self.history = Some(history.clone());
            let (yi, lp) = self.sample(Some(&history), &logits.index((.., i as i32, ..))?)?;
            y = yi.clone();
            ys.push(yi);
            lps.push(lp);
        }
        Ok((ops::concatenate(&ys, Some(0))?, ops::concatenate(&lps, Some(0))?))
    }

    fn prefill(&mut self, draft: bool, mut y: Array) -> Result<Array> {
        let step = self.options.prefill_step_size.max(1);
        while y.size() > 1 {
            let n = step.min(y.size() - 1) as i32;
            let chunk = y.index(..n)?.expand_dims(0)?;
            let (model, cache) = match draft {
                true => (self.draft, &mut self.draft_cache),
                false => (self.model, &mut self.model_cache),
            };
            model.forward(&chunk, Some(cache))?;
            maybe_quantize_cache(cache, &self.options)?;
            eval_cache(cache)?;
            y = y.index(n..)?;
            memory::clear_cache()?;
        }
        Ok(y)
    }

    fn rewind(&mut self, num_draft: usize, accepted: usize) {
        let rejected = (num_draft - accepted) as i32;
        trim_prompt_cache(&mut self.model_cache, rejected);
        trim_prompt_cache(&mut self.draft_cache, (rejected - 1).max(0));
    }

    /// One round: draft, verify, queue the accepted tokens and the main model's next one.
    fn round(&mut self) -> Result<()> {
        let (y, draft_y) = match (self.y.take(), self.draft_y.take(), self.prompt.take()) {
            (Some(y), Some(d), _) => (y, d),
            (_, _, Some(prompt)) => {
                let d = self.prefill(true, prompt.clone())?;
                (self.prefill(false, prompt)?, d)
            }
            _ => return Ok(()),
        };
        let remaining = self.options.max_tokens.map_or(usize::MAX, |m| m - self.produced);
        let num_draft = remaining.min(self.options.num_draft_tokens);
        let mut drafted = Vec::with_capacity(num_draft);
        let mut dy = draft_y;
        for _ in 0..num_draft {
            let (next, _) = self.step(true, &dy, 1)?;
            async_eval(&[&next])?;
            drafted.push(next.clone());
            dy = next;
        }
        let draft_tokens = match drafted.is_empty() {
            true => Array::from_slice::<u32>(&[], &[0])?,
            false => ops::concatenate(&drafted, Some(0))?,
        };
        if let Some(h) = self.history.take() {
            let keep = h.size() as i64 - y.size() as i64 - num_draft as i64 + 1;
            self.history = Some(h.index(..keep.max(0) as i32)?);
        }
        let input = ops::concatenate(&[y.astype(Dtype::Uint32)?, draft_tokens.clone()], Some(0))?;
        let (tokens, logprobs) = self.step(false, &input, num_draft + 1)?;
        eval(&[&tokens, &draft_tokens])?;
        let tokens = tokens.to_vec::<u32>()?;
        let draft_ids = draft_tokens.to_vec::<u32>()?;
        let mut accepted = 0;
        while accepted < num_draft && tokens[accepted] == draft_ids[accepted] {
            let logprobs = logprobs.index(accepted as i32)?;
            self.ready.push_back(GeneratedToken {
                id: tokens[accepted],
                logprobs,
                from_draft: true,
            });
            accepted += 1;
        }
        let logprobs_n = logprobs.index(accepted as i32)?;
        self.ready.push_back(GeneratedToken {
            id: tokens[accepted],
            logprobs: logprobs_n,
            from_draft: false,
        });
        let next = Array::from_slice(&[tokens[accepted]], &[1])?;
        self.draft_y = Some(if accepted == num_draft && num_draft > 0 {
            ops::concatenate(
                &[Array::from_slice(&draft_ids[num_draft - 1..], &[1])?, next.clone()],
                Some(0),
            )?
        } else {
            next.clone()
        });
        self.y = Some(next);
        if let Some(h) = self.history.take() {
            let drop = (num_draft - accepted).max(1) as i32;
            self.history = Some(h.index(..(h.size() as i32 - drop).max(0))?);
        }
        self.rewind(num_draft, accepted);
        Ok(())
    }

    fn advance(&mut self) -> Result<Option<GeneratedToken>> {
        if Some(self.produced) == self.options.max_tokens {
            return Ok(None);
        }
        if self.ready.is_empty() {
            let _on_stream = self.stream.scoped_default()?;
            self.round()?;
        }
        let token = self.ready.pop_front();
        if token.is_some() {
            self.produced += 1;
            if Some(self.produced) == self.options.max_tokens {
                self.ready.clear();
            }
        }
        Ok(token)
    }
}

impl Iterator for SpeculativeTokenStream<'_> {
    type Item = Result<GeneratedToken>;

    fn next(&mut self) -> Option<Result<GeneratedToken>> {
        match self.advance() {
            Ok(token) => token.map(Ok),
            Err(e) => {
                self.y = None;
                self.prompt = None;
                self.ready.clear();
                Some(Err(e))
            }
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// An EOS token or a stop string.
    Stop,
    /// `max_tokens` tokens.
    Length,
}

impl FinishReason {
    /// mlx-lm's name (`"stop"`, `"length"`).
    pub fn name(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// One step of [`Generation`]: mlx-lm's `GenerationResponse`.
#[derive(Clone, Debug)]
pub struct GenerationResponse {
    /// The text this token completed (may be empty).
    pub text: String,
    /// The token.
    pub token: u32,
    /// True when the draft model proposed it.
    pub from_draft: bool,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens per second: the prompt's length over the time to the first token.
    pub prompt_tps: f64,
    /// Tokens generated so far (the EOS token included when it ends generation).
    pub generation_tokens: usize,
    /// Generated tokens per second since the first token.
    pub generation_tps: f64,
    /// MLX's peak memory so far, in GB (10^9 bytes).
    pub peak_memory_gb: f64,
    /// Set on the last response.
    pub finish_reason: Option<FinishReason>,
}

impl GenerationResponse {
    /// The three lines `mlx_lm.generate --verbose` prints after the text.
    pub fn report(&self) -> String {
        format!(
            "Prompt: {} tokens, {:.3} tokens-per-sec\nGeneration: {} tokens, {:.3} tokens-per-sec\nPeak memory: {:.3} GB",
            self.prompt_tokens,
            self.prompt_tps,
            self.generation_tokens,
            self.generation_tps,
            self.peak_memory_gb
        )
    }
}

/// Text generation: mlx-lm's `stream_generate` over a [`TokenStream`] or a
/// [`SpeculativeTokenStream`], plus stop strings.
pub struct Generation<'m> {
    tokens: Box<dyn Iterator<Item = Result<GeneratedToken>> + 'm>,
    detokenizer: Option<StreamingDetokenizer>,
    eos: Vec<u32>,
    stop_strings: Vec<String>,
    text: String,
    max_tokens: Option<usize>,
    prompt_tokens: usize,
    start: Instant,
    prompt_tps: f64,
    n: usize,
    done: bool,
}

impl std::fmt::Debug for Generation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation").field("n", &self.n).finish_non_exhaustive()
    }
}

impl<'m> Generation<'m> {
    /// Generation after `prompt` (ids) with `model`, or speculatively with `draft` too. Text
    /// comes from `tokenizer` when given (empty otherwise); generation stops at any of `eos`
    /// (plus the tokenizer's EOS ids), at a stop string, or after `options.max_tokens`.
    pub fn new(
        model: &'m dyn LanguageModel,
        draft: Option<&'m dyn LanguageModel>,
        tokenizer: Option<&Tokenizer>,
        prompt: &[u32],
        eos: &[u32],
        options: GenerateOptions,
    ) -> Result<Generation<'m>> {
        if options.max_tokens == Some(0) {
            return Err(Error::invalid("generate", "max_tokens must be positive (None: no limit)"));
        }
        let max_tokens = options.max_tokens;
        let tokens: Box<dyn Iterator<Item = Result<GeneratedToken>> + 'm> = match draft {
            Some(d) => Box::new(SpeculativeTokenStream::new(model, d, prompt, options)?),
            None => Box::new(TokenStream::new(model, prompt, None, options)?),
        };
        Ok(Generation::from_tokens(tokens, tokenizer, prompt.len(), eos, max_tokens))
    }

    /// Text generation over any token source (a [`TokenStream`] built with a reused prompt
    /// cache, say); `prompt_tokens` is the prompt length the figures use.
    pub fn from_tokens(
        tokens: Box<dyn Iterator<Item = Result<GeneratedToken>> + 'm>,
        tokenizer: Option<&Tokenizer>,
        prompt_tokens: usize,
        eos: &[u32],
        max_tokens: Option<usize>,
    ) -> Generation<'m> {
        let mut all_eos = eos.to_vec();
        if let Some(t) = tokenizer {
            all_eos.extend_from_slice(t.eos_token_ids());
        }
        Generation {
            tokens,
            detokenizer: tokenizer.map(Tokenizer::detokenizer),
            eos: all_eos,
            stop_strings: Vec::new(),
            text: String::new(),
            max_tokens,
            prompt_tokens,
            start: Instant::now(),
            prompt_tps: 0.0,
            n: 0,
            done: false,
        }
    }

    /// Also stops when the text contains one of `stops` (the text up to it is kept).
    pub fn with_stop_strings(mut self, stops: &[String]) -> Generation<'m> {
        self.stop_strings = stops.iter().filter(|s| !s.is_empty()).cloned().collect();
        self
    }

    fn response(
        &self,
        text: String,
        token: &GeneratedToken,
        finish: Option<FinishReason>,
    ) -> Result<GenerationResponse> {
        Ok(GenerationResponse {
            text,
            token: token.id,
            from_draft: token.from_draft,
            prompt_tokens: self.prompt_tokens,
            prompt_tps: self.prompt_tps,
            generation_tokens: self.n,
            generation_tps: self.n as f64 / self.start.elapsed().as_secs_f64(),
            peak_memory_gb: memory::get_peak_memory()? as f64 / 1e9,
            finish_reason: finish,
        })
    }

    /// The text a stop string cuts off `segment` at, if one now appears in the text.
    fn stop_cut(&mut self, segment: &str) -> Option<String> {
        let before = self.text.len();
        self.text.push_str(segment);
        let hit = self
            .stop_strings
            .iter()
            .filter_map(|s| {
                let from = before.saturating_sub(s.len() - 1);
                let from =
                    (from..=before).find(|&i| self.text.is_char_boundary(i)).unwrap_or(before);
                self.text[from..].find(s.as_str()).map(|i| from + i)
            })
            .min()?;
        let kept = self.text[before..hit.max(before)].to_owned();
        self.text.truncate(hit);
        Some(kept)
    }

    fn advance(&mut self) -> Result<Option<GenerationResponse>> {
        if self.done {
            return Ok(None);
        }
        let Some(token) = self.tokens.next().transpose()? else {
            self.done = true;
            return Ok(None);
        };
        if self.n == 0 {
            self.prompt_tps = self.prompt_tokens as f64 / self.start.elapsed().as_secs_f64();
            self.start = Instant::now();
        }
        self.n += 1;
        let finish = |s: &mut Self| -> Result<String> {
            s.done = true;
            Ok(match s.detokenizer.as_mut() {
                Some(d) => d.finalize()?,
                None => String::new(),
            })
        };
        if self.eos.contains(&token.id) {
            let tail = finish(self)?;
            return self.response(tail, &token, Some(FinishReason::Stop)).map(Some);
        }
        let segment = match self.detokenizer.as_mut() {
            Some(d) => d.add_token(token.id)?,
            None => String::new(),
        };
        if let Some(kept) = self.stop_cut(&segment) {
            self.done = true;
            return self.response(kept, &token, Some(FinishReason::Stop)).map(Some);
        }
        if Some(self.n) == self.max_tokens {
            let tail = finish(self)?;
            let text = segment + &tail;
            return self.response(text, &token, Some(FinishReason::Length)).map(Some);
        }
        self.response(segment, &token, None).map(Some)
    }
}

impl Iterator for Generation<'_> {
    type Item = Result<GenerationResponse>;

    fn next(&mut self) -> Option<Result<GenerationResponse>> {
        match self.advance() {
            Ok(r) => r.map(Ok),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_share_one_stream_per_thread_and_device() {
        let first = generation_stream().unwrap();
        assert_eq!(generation_stream().unwrap(), first);
        assert_ne!(first, Stream::thread_default().unwrap());
        assert_eq!(first.device().unwrap(), Device::default_device().unwrap());
        let other = std::thread::spawn(|| generation_stream().unwrap().index().unwrap());
        assert_ne!(other.join().unwrap(), first.index().unwrap());
    }
}
