//! Training data as mlx-lm's `tuner/datasets.py` and `iterate_batches` read it: a directory
//! with `train.jsonl`, `valid.jsonl` and `test.jsonl`, one JSON object a line, in one of
//! mlx-lm's formats (chosen by the first record, as mlx-lm does):
//!
//! - `{"text": ...}`: encoded with special tokens, EOS appended unless already last;
//! - `{"prompt": ..., "completion": ...}`: a user turn and an assistant turn through the
//!   tokenizer's chat template;
//! - `{"messages": [{"role": ..., "content": ...}, ...]}` (optionally `"tools"`): through the
//!   chat template;
//! - `{"tokens": [ids...]}` (optionally `"offset"`): token ids as they are, for models without
//!   a tokenizer (not an mlx-lm format).
//!
//! With `mask_prompt`, a chat or completion example records the length of its prompt (the
//! template over all messages but the last, with the generation prompt when the last one is
//! the assistant's), and the loss covers only what follows.
//!
//! A malformed record is an error naming the file and the line.

use std::path::Path;

use mlx_rs::{Array, Error, Result};
use serde_json::Value;

use crate::tokenizer::{ChatTemplateOptions, Tokenizer};

fn err(msg: impl Into<String>) -> Error {
    Error::invalid("dataset", msg.into())
}

/// How records are read (mlx-lm's `mask_prompt` and `*_feature` options).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetOptions {
    /// Train only on completions (default false; not allowed for `text` records).
    pub mask_prompt: bool,
    /// The prompt's key (default `"prompt"`).
    pub prompt_feature: String,
    /// The completion's key (default `"completion"`).
    pub completion_feature: String,
    /// The text's key (default `"text"`).
    pub text_feature: String,
    /// The chat's key (default `"messages"`).
    pub chat_feature: String,
}

impl Default for DatasetOptions {
    fn default() -> DatasetOptions {
        DatasetOptions {
            mask_prompt: false,
            prompt_feature: "prompt".into(),
            completion_feature: "completion".into(),
            text_feature: "text".into(),
            chat_feature: "messages".into(),
        }
    }
}

/// The record format of a file (from its first record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    /// `text`.
    Text,
    /// `prompt` / `completion`.
    Completions,
    /// `messages`.
    Chat,
    /// `tokens` (token ids, no tokenizer).
    Tokens,
}

/// A tokenized dataset: each example's token ids and the number of leading tokens left out of
/// the loss (0 unless prompts are masked).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dataset {
    /// `(tokens, offset)` per example, in file order.
    pub examples: Vec<(Vec<u32>, usize)>,
}

impl Dataset {
    /// A dataset of token ids as they are (offsets 0): the tokenizer-free path.
    pub fn from_tokens(examples: Vec<Vec<u32>>) -> Dataset {
        Dataset { examples: examples.into_iter().map(|t| (t, 0)).collect() }
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// True without examples.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Parses the JSON lines of `text` (the content of `file`, named in errors; blank lines
    /// are skipped) and tokenizes them (see the module docs). `tokenizer` may be `None` only
    /// for `tokens` records.
    pub fn from_jsonl(
        text: &str,
        file: &str,
        tokenizer: Option<&Tokenizer>,
        options: &DatasetOptions,
    ) -> Result<Dataset> {
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(line)
                .map_err(|e| err(format!("{file}:{}: invalid JSON: {e}", i + 1)))?;
            if !value.is_object() {
                return Err(err(format!("{file}:{}: a record must be a JSON object", i + 1)));
            }
            records.push((i + 1, value));
        }
        let Some((_, first)) = records.first() else { return Ok(Dataset::default()) };
        let format = detect_format(first, options)
            .map_err(|e| err(format!("{file}:{}: {e}", records[0].0)))?;
        if format == DataFormat::Text && options.mask_prompt {
            return Err(err(format!("{file}: prompt masking is not supported for text datasets")));
        }
        let mut examples = Vec::with_capacity(records.len());
        for (line, record) in &records {
            let example = process(record, format, tokenizer, options)
                .map_err(|e| err(format!("{file}:{line}: {e}")))?;
            examples.push(example);
        }
        Ok(Dataset { examples })
    }

    /// Reads and parses `path` (see [`Dataset::from_jsonl`]).
    pub fn load(
        path: impl AsRef<Path>,
        tokenizer: Option<&Tokenizer>,
        options: &DatasetOptions,
    ) -> Result<Dataset> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| err(format!("cannot read {file}: {e}")))?;
        Dataset::from_jsonl(&text, &file, tokenizer, options)
    }
}

/// The format of a file from its first record, as mlx-lm's `create_dataset` decides it.
pub fn detect_format(
    sample: &Value,
    options: &DatasetOptions,
) -> std::result::Result<DataFormat, String> {
    let has = |k: &str| sample.get(k).is_some();
    if has(&options.prompt_feature) && has(&options.completion_feature) {
        Ok(DataFormat::Completions)
    } else if has(&options.chat_feature) {
        Ok(DataFormat::Chat)
    } else if has(&options.text_feature) {
        Ok(DataFormat::Text)
    } else if has("tokens") {
        Ok(DataFormat::Tokens)
    } else {
        Err(format!(
            "unsupported data format: a record needs `{}`, `{}` and `{}`, `{}` or `tokens` \
             (see mlx-lm's LORA.md, Data)",
            options.text_feature,
            options.prompt_feature,
            options.completion_feature,
            options.chat_feature
        ))
    }
}

fn string_field<'a>(record: &'a Value, key: &str) -> std::result::Result<&'a str, String> {
    match record.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(format!("`{key}` must be a string, got {v}")),
        None => Err(format!("`{key}` is missing")),
    }
}

fn need_tokenizer(
    tokenizer: Option<&Tokenizer>,
    format: DataFormat,
) -> std::result::Result<&Tokenizer, String> {
    tokenizer.ok_or_else(|| {
        format!("{format:?} records need a tokenizer (give token ids as `tokens` records instead)")
    })
}

fn process(
    record: &Value,
    format: DataFormat,
    tokenizer: Option<&Tokenizer>,
    options: &DatasetOptions,
) -> std::result::Result<(Vec<u32>, usize), String> {
    let tools = record.get("tools").filter(|t| !t.is_null()).cloned();
    let chat = |tok: &Tokenizer, messages: &Value, generation: bool| {
        let opts = ChatTemplateOptions {
            add_generation_prompt: generation,
            tools: tools.clone(),
            ..ChatTemplateOptions::default()
        };
        tok.encode_chat(messages, &opts).map_err(|e| e.to_string())
    };
    match format {
        DataFormat::Text => {
            let tok = need_tokenizer(tokenizer, format)?;
            let text = string_field(record, &options.text_feature)?;
            let mut ids = tok.encode(text, true).map_err(|e| e.to_string())?;
            let eos = tok
                .eos_token()
                .and_then(|t| tok.token_to_id(t))
                .ok_or("the tokenizer has no EOS token to end a text example")?;
            if ids.last() != Some(&eos) {
                ids.push(eos);
            }
            Ok((ids, 0))
        }
        DataFormat::Completions => {
            let tok = need_tokenizer(tokenizer, format)?;
            let prompt = string_field(record, &options.prompt_feature)?;
            let completion = string_field(record, &options.completion_feature)?;
            let messages = serde_json::json!([
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": completion},
            ]);
            let ids = chat(tok, &messages, false)?;
            let offset = if options.mask_prompt {
                chat(tok, &Value::Array(vec![messages[0].clone()]), true)?.len()
            } else {
                0
            };
            Ok((ids, offset))
        }
        DataFormat::Chat => {
            let tok = need_tokenizer(tokenizer, format)?;
            let key = &options.chat_feature;
            let Some(Value::Array(messages)) = record.get(key) else {
                return Err(format!("`{key}` must be a list of messages"));
            };
            for (j, m) in messages.iter().enumerate() {
                if !m.is_object() || m.get("role").and_then(Value::as_str).is_none() {
                    return Err(format!("`{key}[{j}]` must be an object with a string `role`"));
                }
            }
            let Some(last) = messages.last() else {
                return Err(format!("`{key}` is empty"));
            };
            let ids = chat(tok, &Value::Array(messages.clone()), false)?;
            let offset = if options.mask_prompt {
                let generation = last.get("role").and_then(Value::as_str) == Some("assistant");
                let head = Value::Array(messages[..messages.len() - 1].to_vec());
                chat(tok, &head, generation)?.len()
            } else {
                0
            };
            Ok((ids, offset))
        }
        DataFormat::Tokens => {
            let Some(Value::Array(items)) = record.get("tokens") else {
                return Err("`tokens` must be a list of token ids".into());
            };
            let ids = items
                .iter()
                .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect::<Option<Vec<u32>>>()
                .ok_or("`tokens` must hold non-negative integer token ids")?;
            let offset = match record.get("offset") {
                None | Some(Value::Null) => 0,
                Some(v) => v
                    .as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| format!("`offset` must be a non-negative integer, got {v}"))?,
            };
            Ok((ids, offset))
        }
    }
}

/// `train`, `valid` and `test` of a data directory (mlx-lm's `load_local_dataset`); a missing
/// file gives an empty dataset.
#[derive(Clone, Debug, Default)]
pub struct LocalDatasets {
    /// `train.jsonl`.
    pub train: Dataset,
    /// `valid.jsonl`.
    pub valid: Dataset,
    /// `test.jsonl`.
    pub test: Dataset,
}

/// Reads `dir/{train,valid,test}.jsonl` (see [`Dataset::from_jsonl`]).
pub fn load_local_dataset(
    dir: impl AsRef<Path>,
    tokenizer: Option<&Tokenizer>,
    options: &DatasetOptions,
) -> Result<LocalDatasets> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(err(format!("`{}` is not a data directory", dir.display())));
    }
    let subset = |name: &str| -> Result<Dataset> {
        let path = dir.join(format!("{name}.jsonl"));
        if path.exists() {
            Dataset::load(&path, tokenizer, options)
        } else {
            Ok(Dataset::default())
        }
    };
    Ok(LocalDatasets { train: subset("train")?, valid: subset("valid")?, test: subset("test")? })
}

/// The example indices of each batch, as mlx-lm's `iterate_batches` forms them: the examples
/// sorted by token count (stably), cut into consecutive groups of `batch_size`, the remainder
/// dropped. Errors when there are fewer examples than `batch_size`.
pub fn batch_indices(dataset: &Dataset, batch_size: usize) -> Result<Vec<Vec<usize>>> {
    if batch_size == 0 {
        return Err(err("the batch size must be positive"));
    }
    if dataset.len() < batch_size {
        return Err(err(format!(
            "the dataset must have at least batch_size={batch_size} examples but only has {}",
            dataset.len()
        )));
    }
    let mut idx: Vec<usize> = (0..dataset.len()).collect();
    idx.sort_by_key(|&i| dataset.examples[i].0.len());
    Ok(idx.chunks_exact(batch_size).map(<[usize]>::to_vec).collect())
}

/// One padded batch.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Token ids `(batch, length)` int32, zero-padded.
    pub tokens: Array,
    /// `(batch, 2)` int32: each example's `(offset, length)` after truncation.
    pub lengths: Array,
    /// The longest example before truncation, when it was longer than `max_seq_length`.
    pub truncated_from: Option<usize>,
}

impl Batch {
    /// The number of tokens the loss covers (mlx-lm's `ntoks`: targets at steps
    /// `offset..=length` counted from 1, within the batch's width minus one).
    pub fn num_loss_tokens(&self) -> Result<usize> {
        let width = self.tokens.dim(1)?.max(1) as i64 - 1;
        let pairs = self.lengths.to_vec::<i32>()?;
        Ok(pairs
            .chunks_exact(2)
            .map(|p| {
                let lo = i64::from(p[0]).max(1);
                let hi = i64::from(p[1]).min(width);
                (hi - lo + 1).max(0) as usize
            })
            .sum())
    }
}

/// The batch of the examples `indices` (mlx-lm's `iterate_batches` body): padded to one plus
/// the next multiple of 32 of the longest, at most `max_seq_length`; longer examples are cut
/// to `max_seq_length` and their lengths updated.
pub fn make_batch(dataset: &Dataset, indices: &[usize], max_seq_length: usize) -> Result<Batch> {
    const PAD_TO: usize = 32;
    if indices.is_empty() || max_seq_length == 0 {
        return Err(err("a batch needs examples and a positive max_seq_length"));
    }
    let mut examples = Vec::with_capacity(indices.len());
    for &i in indices {
        examples.push(dataset.examples.get(i).ok_or_else(|| err(format!("no example {i}")))?);
    }
    let longest = examples.iter().map(|e| e.0.len()).max().unwrap_or(0);
    let width = (1 + PAD_TO * longest.div_ceil(PAD_TO)).min(max_seq_length);
    let mut tokens = vec![0i32; examples.len() * width];
    let mut lengths = Vec::with_capacity(examples.len() * 2);
    for (j, (ids, offset)) in examples.iter().enumerate() {
        let n = ids.len().min(max_seq_length);
        for (k, &id) in ids[..n].iter().enumerate() {
            tokens[j * width + k] =
                i32::try_from(id).map_err(|_| err(format!("token id {id} is too large")))?;
        }
        let as_i32 = |v: usize| i32::try_from(v).map_err(|_| err(format!("{v} is too large")));
        lengths.push(as_i32(*offset)?);
        lengths.push(as_i32(n)?);
    }
    let b = examples.len() as i32;
    Ok(Batch {
        tokens: Array::from_slice(&tokens, &[b, width as i32])?,
        lengths: Array::from_slice(&lengths, &[b, 2])?,
        truncated_from: (longest > max_seq_length).then_some(longest),
    })
}

/// A small deterministic generator (SplitMix64) for the order of batches.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random permutation of `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// mlx-lm's `iterate_batches`: the batches of [`batch_indices`] in a random order each pass
/// (seeded; mlx-lm draws it with NumPy, so the order differs from Python's), built by
/// [`make_batch`], once or (`looping`) forever.
#[derive(Debug)]
pub struct Batches<'a> {
    dataset: &'a Dataset,
    groups: Vec<Vec<usize>>,
    order: Vec<usize>,
    pos: usize,
    max_seq_length: usize,
    looping: bool,
    rng: SplitMix64,
}

impl<'a> Batches<'a> {
    /// Batches of `dataset`.
    pub fn new(
        dataset: &'a Dataset,
        batch_size: usize,
        max_seq_length: usize,
        looping: bool,
        seed: u64,
    ) -> Result<Batches<'a>> {
        let groups = batch_indices(dataset, batch_size)?;
        let mut rng = SplitMix64::new(seed);
        let order = rng.permutation(groups.len());
        Ok(Batches { dataset, groups, order, pos: 0, max_seq_length, looping, rng })
    }

    /// The number of batches in one pass.
    pub fn batches_per_pass(&self) -> usize {
        self.groups.len()
    }
}

impl Iterator for Batches<'_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.pos == self.order.len() {
            if !self.looping {
                return None;
            }
            self.order = self.rng.permutation(self.groups.len());
            self.pos = 0;
        }
        let group = &self.groups[self.order[self.pos]];
        self.pos += 1;
        Some(make_batch(self.dataset, group, self.max_seq_length))
    }
}
