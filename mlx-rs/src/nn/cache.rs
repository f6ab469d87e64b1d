//! Key/value caches for autoregressive attention, as mlx-lm's `models/cache.py` (mlx-lm 0.32.0)
//! defines them, and its quantized attention (`models/base.py`).
//!
//! - [`KVCache`]: grows in blocks of [`STEP`] (256) positions and writes new keys and values into
//!   the preallocated buffer with slice updates. The fetched keys and values are a prefix view of
//!   one contiguous `(batch, kv_heads, capacity, head_dim)` buffer, which is the layout MLX's
//!   CUDA `scaled_dot_product_attention` needs for its fast single-token (decode) path.
//! - [`RotatingKVCache`]: a sliding window of `max_size` positions whose first `keep` positions
//!   (e.g. attention sinks, a system prompt) are never evicted.
//! - [`QuantizedKVCache`]: keys and values stored quantized (affine, group 64, 8 bits by
//!   default), read by [`quantized_scaled_dot_product_attention`].
//!
//! Every cache implements [`Cache`]: an attention layer calls [`Cache::update_and_fetch`] with
//! its new keys and values (shape `(batch, kv_heads, new_positions, head_dim)`), gets back all the
//! keys and values to attend to ([`KeysValues`]), and hands them to
//! [`scaled_dot_product_attention`], which picks the dense or the quantized kernel.
//! [`Cache::make_mask`] gives the attention mask for the new positions.
//!
//! ```
//! use mlx_rs::nn::cache::{Cache, KVCache, scaled_dot_product_attention};
//! use mlx_rs::{Array, Dtype, random};
//!
//! let mut cache = KVCache::new();
//! // Prefill with 5 positions, then decode one.
//! for n in [5, 1] {
//!     let q = random::normal(&[1, 4, n, 8], Dtype::Float32, 0.0, 1.0, None)?;
//!     let k = random::normal(&[1, 2, n, 8], Dtype::Float32, 0.0, 1.0, None)?;
//!     let v = random::normal(&[1, 2, n, 8], Dtype::Float32, 0.0, 1.0, None)?;
//!     let mask = cache.make_mask(n, None, false)?;
//!     let kv = Cache::update_and_fetch(&mut cache, &k, &v)?;
//!     let scale = 1.0 / 8f32.sqrt();
//!     let out = scaled_dot_product_attention(&q, &kv, scale, mask.as_attention_mask(), None)?;
//!     assert_eq!(out.shape(), [1, 4, n, 8]);
//! }
//! assert_eq!(cache.offset(), 6);
//! // The buffer holds one block of 256 positions; 6 of them are used.
//! assert_eq!(cache.keys().map(|k| k.shape().to_vec()), Some(vec![1, 2, 256, 8]));
//! # Ok::<(), mlx_rs::Error>(())
//! ```
//!
//! # Prompt-cache files
//! [`save_prompt_cache`] and [`load_prompt_cache`] read and write the safetensors layout of
//! mlx-lm's `save_prompt_cache` / `load_prompt_cache`, so a file written by either side loads in
//! the other:
//!
//! - arrays: the caches' [`Cache::state`] flattened with Python's `tree_flatten` paths: entry `j`
//!   of cache `i` is `"{i}.{j}"` (nested lists add further indices, as the quantized cache's
//!   `(packed, scales, biases)` triples: `"{i}.0.1"`). Scalars are stored as 0-d arrays (`int32`
//!   for integers, `float32` for floats, `bool`), strings as `int32` arrays of character codes,
//!   and `None` as an empty `float32` array.
//! - metadata: the user's entries under `"0.{key}"`, the class names under `"1.{i}"`
//!   (`"KVCache"`, `"RotatingKVCache"`, `"QuantizedKVCache"`), and the list of converted entries
//!   under `"2.*"`: `"2.0"` is `""`, then `"2.{n}.0"` is an array's path and `"2.{n}.1"` its kind
//!   (`"scalar"`, `"string"` or `"none"`).
//!
//! mlx-lm 0.32.0 keeps every field of a cache (offset, window, write position, group size, bits)
//! in its `state`; it has no separate `meta_state`, and neither do these caches.
//!
//! # Differences from mlx-lm
//! - Bad input is an `Err` (keys that are not 4-D, keys and values that disagree, new entries
//!   whose batch, heads or head dimension differ from the buffer's, a head dimension that is not
//!   a multiple of the quantization group, a file whose state does not fit its class), and a
//!   failed update leaves the cache as it was.
//! - [`RotatingKVCache`]'s `trim` never moves the write position below 0 (mlx-lm's would, on a
//!   cache that is not trimmable, and then index from the end).
//! - [`quantized_scaled_dot_product_attention`] does not scale the caller's queries in place
//!   (mlx-lm's `queries *= scale` does).
//! - Only `KVCache`, `RotatingKVCache` and `QuantizedKVCache` load from files; the batch caches,
//!   `ArraysCache`, `ChunkedKVCache`, `CacheList` and `ConcatenateKVCache` are not here.
//!
//! # Threads
//! The caches hold [`Array`]s and, like them, are neither `Send` nor `Sync`.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{Error, Result};
use crate::fast::{self, AttentionMask};
use crate::quantization::{self, QuantizationMode, QuantizationParams, Quantized};
use crate::{Array, Dtype, ops};

/// The block size (in positions) by which the caches grow, as mlx-lm's `step`.
pub const STEP: i32 = 256;

/// A model's caches, one per layer (mlx-lm's `prompt_cache` list).
pub type PromptCache = Vec<Box<dyn Cache>>;

/// One entry of a cache's [`state`](Cache::state): what mlx-lm's `state` tuples hold.
#[derive(Clone, Debug)]
pub enum StateValue {
    /// An array.
    Array(Array),
    /// A Python `int`.
    Int(i64),
    /// A Python `float`.
    Float(f64),
    /// A Python `bool`.
    Bool(bool),
    /// A Python `str`.
    Str(String),
    /// Python's `None` (e.g. the buffers of an empty cache).
    None,
    /// A tuple or list (e.g. the `(packed, scales, biases)` triple of quantized keys).
    List(Vec<StateValue>),
}

/// The attention mask a cache asks for: as mlx-lm's `create_attention_mask` returns `None`, the
/// string `"causal"` or an array.
#[derive(Clone, Debug)]
pub enum CacheMask {
    /// No mask (a single new position that may see every cached one).
    None,
    /// The causal mask aligned to the end of the keys.
    Causal,
    /// An explicit boolean mask (true keeps), broadcastable to `(queries, keys)`.
    Array(Array),
}

impl CacheMask {
    /// The mask as [`fast::scaled_dot_product_attention`] takes it.
    pub fn as_attention_mask(&self) -> AttentionMask<'_> {
        match self {
            CacheMask::None => AttentionMask::None,
            CacheMask::Causal => AttentionMask::Causal,
            CacheMask::Array(a) => AttentionMask::Array(a),
        }
    }

    /// The array of an [`CacheMask::Array`] mask.
    pub fn array(&self) -> Option<&Array> {
        match self {
            CacheMask::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// What [`Cache::update_and_fetch`] returns: every key and value to attend to.
#[derive(Clone, Debug)]
pub enum KeysValues {
    /// Dense keys and values, `(batch, kv_heads, positions, head_dim)`.
    Dense {
        /// The keys.
        keys: Array,
        /// The values.
        values: Array,
    },
    /// Quantized keys and values (affine mode), quantized along `head_dim`.
    Quantized {
        /// The keys: packed `(batch, kv_heads, positions, head_dim * bits / 32)` words and their
        /// scales and biases.
        keys: Quantized,
        /// The values, as the keys.
        values: Quantized,
        /// The quantization group size.
        group_size: i32,
        /// The bits per element.
        bits: i32,
    },
}

/// A key/value cache of one attention layer, as mlx-lm's `_BaseCache` and its subclasses.
///
/// Object safe: a model's caches are a [`PromptCache`], `Vec<Box<dyn Cache>>` (see
/// [`make_prompt_cache`]).
pub trait Cache: std::fmt::Debug {
    /// The Python class name, used in prompt-cache files (`"KVCache"`, ...).
    fn class_name(&self) -> &'static str;

    /// Appends `keys` and `values` (`(batch, kv_heads, new_positions, head_dim)`) and returns
    /// every key and value to attend to.
    fn update_and_fetch(&mut self, keys: &Array, values: &Array) -> Result<KeysValues>;

    /// The number of positions processed so far (mlx-lm's `offset`).
    fn offset(&self) -> i32;

    /// The number of positions the cache holds (its sequence length); 0 where mlx-lm's class does
    /// not implement `size`.
    fn size(&self) -> i32 {
        0
    }

    /// True when nothing was ever stored (mlx-lm's `empty()`).
    fn is_empty(&self) -> bool;

    /// True when [`Cache::trim`] can drop the last positions.
    fn is_trimmable(&self) -> bool {
        false
    }

    /// Drops the last `n` positions (clamped to what the cache holds; a negative `n` drops
    /// nothing) and returns how many were dropped.
    fn trim(&mut self, n: i32) -> i32 {
        let _ = n;
        0
    }

    /// The attention mask for `n` new positions: mlx-lm's `make_mask(N, window_size,
    /// return_array)`.
    fn make_mask(&self, n: i32, window_size: Option<i32>, return_array: bool) -> Result<CacheMask>;

    /// The state saved in prompt-cache files, entry for entry as mlx-lm's `state` property.
    fn state(&self) -> Vec<StateValue>;

    /// The bytes held by the cache's buffers.
    fn nbytes(&self) -> usize;

    /// The cache as [`Any`], to downcast a `dyn Cache` (e.g. after [`load_prompt_cache`]).
    fn as_any(&self) -> &dyn Any;

    /// The cache as mutable [`Any`].
    fn as_any_mut(&mut self) -> &mut dyn Any;

    /// Makes the stored keys depend on `deps` ([`crate::transforms::depends`]), so that
    /// evaluating the cache evaluates them too: mlx-lm's `cache.keys = mx.depends(cache.keys,
    /// h)`, which a pipeline stage uses so that its `send` runs when only its cache is
    /// evaluated (as while prefilling). Returns false for a cache that cannot (the default) or
    /// holds nothing yet.
    fn add_dependency(&mut self, deps: &[Array]) -> Result<bool> {
        let _ = deps;
        Ok(false)
    }
}

/// `slot`'s array made to depend on `deps`; false when the slot is empty.
fn depend_slot(slot: &mut Option<Array>, deps: &[Array]) -> Result<bool> {
    let Some(keys) = slot.as_ref() else { return Ok(false) };
    let mut out = crate::transforms::depends(&[keys], deps)?;
    *slot = out.pop();
    Ok(slot.is_some())
}

// ---------------------------------------------------------------------------------------------
// Masks
// ---------------------------------------------------------------------------------------------

/// The boolean causal mask of `n` queries at positions `offset..offset + n` over keys
/// `0..offset + n` (true keeps), limited to the last `window_size` keys when given: mlx-lm's
/// `create_causal_mask` (shape `(n, offset + n)`).
///
/// ```
/// let m = mlx_rs::nn::cache::create_causal_mask(2, 1, None)?;
/// assert_eq!(m.to_vec::<bool>()?, [true, true, false, true, true, true]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn create_causal_mask(n: i32, offset: i32, window_size: Option<i32>) -> Result<Array> {
    if n < 0 || offset < 0 {
        return Err(Error::invalid(
            "create_causal_mask",
            format!("negative length {n} or offset {offset}"),
        ));
    }
    let total = f64::from(offset) + f64::from(n);
    let rinds = ops::arange(0.0, total, 1.0, Dtype::Int32)?.expand_dims(0)?;
    let linds = ops::arange(f64::from(offset), total, 1.0, Dtype::Int32)?.expand_dims(1)?;
    let mask = linds.greater_equal(&rinds)?;
    match window_size {
        Some(w) => {
            let within = linds.less(&(&rinds + w)?)?;
            ops::logical_and(&mask, &within)
        }
        None => Ok(mask),
    }
}

/// mlx-lm's `create_attention_mask(N, offset, return_array, window_size)` for a cache at
/// `offset`: an array when a window is given or `return_array` is set, no mask for a single
/// position, the causal mask otherwise.
pub fn create_attention_mask(
    n: i32,
    offset: i32,
    return_array: bool,
    window_size: Option<i32>,
) -> Result<CacheMask> {
    if window_size.is_some() {
        Ok(CacheMask::Array(create_causal_mask(n, offset, window_size)?))
    } else if n == 1 {
        Ok(CacheMask::None)
    } else if return_array {
        Ok(CacheMask::Array(create_causal_mask(n, offset, None)?))
    } else {
        Ok(CacheMask::Causal)
    }
}

// ---------------------------------------------------------------------------------------------
// Shape helpers
// ---------------------------------------------------------------------------------------------

/// Checks that keys and values are `(batch, heads, positions, dim)` with the same first three
/// dimensions; returns `(batch, heads, positions, key_dim, value_dim)`.
fn check_kv(op: &'static str, keys: &Array, values: &Array) -> Result<[i32; 5]> {
    let (k, v) = (keys.shape(), values.shape());
    if k.len() != 4 || v.len() != 4 {
        return Err(Error::invalid(
            op,
            format!(
                "keys and values must be (batch, kv_heads, positions, head_dim), \
                 got {k:?} and {v:?}"
            ),
        ));
    }
    if k[..3] != v[..3] {
        return Err(Error::invalid(
            op,
            format!("keys {k:?} and values {v:?} differ in batch, heads or positions"),
        ));
    }
    Ok([k[0], k[1], k[2], k[3], v[3]])
}

/// Checks that new keys/values fit an existing buffer (batch, heads and last dimension).
fn check_fits(op: &'static str, buffer: &Array, update: &[i32], last: i32) -> Result<()> {
    let b = buffer.shape();
    if b.len() != 4 || b[0] != update[0] || b[1] != update[1] || b[3] != last {
        return Err(Error::invalid(
            op,
            format!("new entries {update:?} do not fit the cache buffer {b:?}"),
        ));
    }
    Ok(())
}

/// `v[:, :, start:stop, :]` with Python's clamping of non-negative bounds.
fn seq(v: &Array, start: i32, stop: i32) -> Result<Array> {
    let s = v.shape();
    if s.len() != 4 {
        return Err(Error::invalid("kv_cache", format!("expected a 4-D buffer, got {s:?}")));
    }
    let len = s[2];
    let start = start.clamp(0, len);
    let stop = stop.clamp(start, len);
    if start == 0 && stop == len {
        return Ok(v.clone());
    }
    ops::slice(v, &[0, 0, start, 0], &[s[0], s[1], stop, s[3]], None)
}

/// `buffer[:, :, start:start + n, :] = update` (functional: returns the new buffer).
fn write_at(buffer: &Array, update: &Array, start: i32) -> Result<Array> {
    let s = update.shape();
    let stop = start + s[2];
    ops::slice_update(buffer, update, &[0, 0, start, 0], &[s[0], s[1], stop, s[3]], None)
}

fn concat2(parts: &[&Array]) -> Result<Array> {
    ops::concatenate(parts, Some(2))
}

fn nbytes_of(a: &Option<Array>) -> usize {
    a.as_ref().map_or(0, Array::nbytes)
}

// ---------------------------------------------------------------------------------------------
// KVCache
// ---------------------------------------------------------------------------------------------

/// The standard cache: preallocated in blocks of [`STEP`] positions, written with slice updates
/// (mlx-lm's `KVCache`).
///
/// When new positions do not fit, the buffer grows by `ceil(new / 256) * 256` positions (first
/// cut to the used prefix when that is not block aligned, as mlx-lm does after a trim or an
/// unaligned prefill). The fetched keys and values are the used prefix of the buffer.
#[derive(Clone, Debug, Default)]
pub struct KVCache {
    keys: Option<Array>,
    values: Option<Array>,
    offset: i32,
}

impl KVCache {
    /// An empty cache.
    pub fn new() -> KVCache {
        KVCache::default()
    }

    /// The key buffer (`(batch, kv_heads, capacity, head_dim)`; only the first
    /// [`offset`](Cache::offset) positions are valid), `None` while empty.
    pub fn keys(&self) -> Option<&Array> {
        self.keys.as_ref()
    }

    /// The value buffer, as [`KVCache::keys`].
    pub fn values(&self) -> Option<&Array> {
        self.values.as_ref()
    }

    /// Appends `keys` and `values` (`(batch, kv_heads, new_positions, head_dim)`; the value
    /// head dimension may differ from the key one) and returns the valid keys and values.
    ///
    /// Errors when the shapes are not 4-D, disagree, or do not fit the buffer of earlier
    /// updates.
    pub fn update_and_fetch(&mut self, keys: &Array, values: &Array) -> Result<(Array, Array)> {
        // Every step is fallible: on an error the cache is left as it was.
        let saved = self.clone();
        let result = self.try_update(keys, values);
        if result.is_err() {
            *self = saved;
        }
        result
    }

    fn try_update(&mut self, keys: &Array, values: &Array) -> Result<(Array, Array)> {
        const OP: &str = "KVCache::update_and_fetch";
        let [b, h, s, dk, dv] = check_kv(OP, keys, values)?;
        let prev = self.offset;
        if let (Some(k), Some(v)) = (&self.keys, &self.values) {
            check_fits(OP, k, &[b, h, s], dk)?;
            check_fits(OP, v, &[b, h, s], dv)?;
        }
        let capacity = self.keys.as_ref().map_or(0, |k| k.shape()[2]);
        let (mut kbuf, mut vbuf) = match (self.keys.take(), self.values.take()) {
            (Some(k), Some(v)) if prev + s <= capacity => (k, v),
            (old_k, old_v) => {
                let n_steps = (STEP + s - 1) / STEP;
                let new_k = ops::zeros(&[b, h, n_steps * STEP, dk], keys.dtype())?;
                let new_v = ops::zeros(&[b, h, n_steps * STEP, dv], values.dtype())?;
                match (old_k, old_v) {
                    (Some(mut k), Some(mut v)) => {
                        if prev % STEP != 0 {
                            k = seq(&k, 0, prev)?;
                            v = seq(&v, 0, prev)?;
                        }
                        (concat2(&[&k, &new_k])?, concat2(&[&v, &new_v])?)
                    }
                    _ => (new_k, new_v),
                }
            }
        };
        kbuf = write_at(&kbuf, keys, prev)?;
        vbuf = write_at(&vbuf, values, prev)?;
        self.offset = prev + s;
        self.keys = Some(kbuf);
        self.values = Some(vbuf);
        self.keys_and_values()
    }

    fn keys_and_values(&self) -> Result<(Array, Array)> {
        match (&self.keys, &self.values) {
            (Some(k), Some(v)) => Ok((seq(k, 0, self.offset)?, seq(v, 0, self.offset)?)),
            _ => Err(Error::invalid("KVCache", "the cache is empty")),
        }
    }

    /// A [`QuantizedKVCache`] holding this cache's buffers quantized (mlx-lm's
    /// `to_quantized`; mlx-lm's default there is 4 bits).
    pub fn to_quantized(&self, group_size: i32, bits: i32) -> Result<QuantizedKVCache> {
        let mut q = QuantizedKVCache::with_params(group_size, bits);
        q.offset = self.offset;
        if let (Some(k), Some(v)) = (&self.keys, &self.values) {
            q.keys = Some(quantize_parts(k, group_size, bits)?);
            q.values = Some(quantize_parts(v, group_size, bits)?);
        }
        Ok(q)
    }

    /// Rebuilds a cache from its [`state`](Cache::state) (`[keys, values, offset]`).
    pub fn from_state(state: Vec<StateValue>) -> Result<KVCache> {
        const OP: &str = "KVCache::from_state";
        let [keys, values, offset] = take_n::<3>(OP, state)?;
        let (keys, values) = (opt_array(OP, keys)?, opt_array(OP, values)?);
        let offset = int(OP, "offset", offset)?;
        check_buffers(OP, &keys, &values, offset)?;
        Ok(KVCache { keys, values, offset })
    }
}

impl Cache for KVCache {
    fn class_name(&self) -> &'static str {
        "KVCache"
    }
    fn add_dependency(&mut self, deps: &[Array]) -> Result<bool> {
        depend_slot(&mut self.keys, deps)
    }
    fn update_and_fetch(&mut self, keys: &Array, values: &Array) -> Result<KeysValues> {
        let (keys, values) = KVCache::update_and_fetch(self, keys, values)?;
        Ok(KeysValues::Dense { keys, values })
    }
    fn offset(&self) -> i32 {
        self.offset
    }
    fn size(&self) -> i32 {
        self.offset
    }
    fn is_empty(&self) -> bool {
        self.keys.is_none()
    }
    fn is_trimmable(&self) -> bool {
        true
    }
    fn trim(&mut self, n: i32) -> i32 {
        let n = n.clamp(0, self.offset);
        self.offset -= n;
        n
    }
    fn make_mask(&self, n: i32, window_size: Option<i32>, return_array: bool) -> Result<CacheMask> {
        create_attention_mask(n, self.offset, return_array, window_size)
    }
    fn state(&self) -> Vec<StateValue> {
        vec![opt_state(&self.keys), opt_state(&self.values), StateValue::Int(self.offset.into())]
    }
    fn nbytes(&self) -> usize {
        nbytes_of(&self.keys) + nbytes_of(&self.values)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

// ---------------------------------------------------------------------------------------------
// RotatingKVCache
// ---------------------------------------------------------------------------------------------

/// A sliding-window cache of at most `max_size` positions whose first `keep` positions stay
/// (mlx-lm's `RotatingKVCache`).
///
/// Single-position updates write in place into a buffer that grows in blocks of [`STEP`] up to
/// `max_size` and then wraps around to position `keep` (so the buffer is not in temporal order
/// once full). Multi-position updates put the buffer back in temporal order and concatenate,
/// dropping the oldest non-kept positions so that the result holds `max_size - 1` old positions
/// plus the new ones (every new position sees at least `max_size` positions).
#[derive(Clone, Debug)]
pub struct RotatingKVCache {
    keep: i32,
    keys: Option<Array>,
    values: Option<Array>,
    offset: i32,
    max_size: i32,
    idx: i32,
}

impl RotatingKVCache {
    /// An empty cache of window `max_size` (at least 1) keeping the first `keep` positions
    /// (`0 <= keep < max_size`).
    pub fn new(max_size: i32, keep: i32) -> Result<RotatingKVCache> {
        check_window("RotatingKVCache::new", max_size, keep)?;
        Ok(RotatingKVCache { keep, keys: None, values: None, offset: 0, max_size, idx: 0 })
    }

    /// The window size.
    pub fn max_size(&self) -> i32 {
        self.max_size
    }

    /// The number of leading positions never evicted.
    pub fn keep(&self) -> i32 {
        self.keep
    }

    /// The write position in the buffer (mlx-lm's `_idx`).
    pub fn idx(&self) -> i32 {
        self.idx
    }

    /// The key buffer (not in temporal order once the window has wrapped), `None` while empty.
    pub fn keys(&self) -> Option<&Array> {
        self.keys.as_ref()
    }

    /// The value buffer, as [`RotatingKVCache::keys`].
    pub fn values(&self) -> Option<&Array> {
        self.values.as_ref()
    }

    /// `v[:keep] ++ v[trim + keep:] ++ append`.
    fn trim_buffer(&self, trim_size: i32, v: &Array, append: Option<&Array>) -> Result<Array> {
        let mut parts = Vec::with_capacity(3);
        if trim_size > 0 {
            parts.push(seq(v, 0, self.keep)?);
            parts.push(seq(v, trim_size + self.keep, i32::MAX)?);
        } else {
            parts.push(v.clone());
        }
        if let Some(a) = append {
            parts.push(a.clone());
        }
        ops::concatenate(&parts, Some(2))
    }

    /// The buffer in temporal order, with any unused tail cut off.
    fn temporal_order(&self, v: &Array) -> Result<Array> {
        let len = v.shape()[2];
        if self.idx == len {
            Ok(v.clone())
        } else if self.idx < self.offset {
            let parts =
                [seq(v, 0, self.keep)?, seq(v, self.idx, len)?, seq(v, self.keep, self.idx)?];
            ops::concatenate(&parts, Some(2))
        } else {
            seq(v, 0, self.idx)
        }
    }

    fn update_concat(&mut self, keys: &Array, values: &Array) -> Result<()> {
        match (self.keys.take(), self.values.take()) {
            (Some(k), Some(v)) => {
                let k = self.temporal_order(&k)?;
                let v = self.temporal_order(&v)?;
                self.idx = k.shape()[2];
                let trim_size = self.idx - self.max_size + 1;
                self.keys = Some(self.trim_buffer(trim_size, &k, Some(keys))?);
                self.values = Some(self.trim_buffer(trim_size, &v, Some(values))?);
            }
            _ => {
                self.keys = Some(keys.clone());
                self.values = Some(values.clone());
            }
        }
        self.offset += keys.shape()[2];
        self.idx = self.keys.as_ref().map_or(0, |k| k.shape()[2]);
        Ok(())
    }

    fn update_in_place(&mut self, keys: &Array, values: &Array, dims: [i32; 5]) -> Result<()> {
        let [b, h, s, dk, dv] = dims;
        let prev = self.offset;
        let capacity = self.keys.as_ref().map_or(0, |k| k.shape()[2]);
        let (mut kbuf, mut vbuf) = match (self.keys.take(), self.values.take()) {
            (Some(k), Some(v)) if !(prev >= capacity && capacity < self.max_size) => (k, v),
            (old_k, old_v) => {
                let new_size = STEP.min(self.max_size - prev);
                let new_k = ops::zeros(&[b, h, new_size, dk], keys.dtype())?;
                let new_v = ops::zeros(&[b, h, new_size, dv], values.dtype())?;
                self.idx = prev;
                match (old_k, old_v) {
                    (Some(k), Some(v)) => (concat2(&[&k, &new_k])?, concat2(&[&v, &new_v])?),
                    _ => (new_k, new_v),
                }
            }
        };
        let trim_size = kbuf.shape()[2] - self.max_size;
        if trim_size > 0 {
            kbuf = self.trim_buffer(trim_size, &kbuf, None)?;
            vbuf = self.trim_buffer(trim_size, &vbuf, None)?;
            self.idx = self.max_size;
        }
        if self.idx == self.max_size {
            self.idx = self.keep;
        }
        kbuf = write_at(&kbuf, keys, self.idx)?;
        vbuf = write_at(&vbuf, values, self.idx)?;
        self.offset += s;
        self.idx += s;
        self.keys = Some(kbuf);
        self.values = Some(vbuf);
        Ok(())
    }

    /// Appends `keys` and `values` and returns the keys and values to attend to: the buffer
    /// (not in temporal order once wrapped; the mask accounts for that), or its used prefix
    /// while not yet full.
    pub fn update_and_fetch(&mut self, keys: &Array, values: &Array) -> Result<(Array, Array)> {
        // Every step is fallible: on an error the cache is left as it was.
        let saved = self.clone();
        let result = self.try_update(keys, values);
        if result.is_err() {
            *self = saved;
        }
        result
    }

    fn try_update(&mut self, keys: &Array, values: &Array) -> Result<(Array, Array)> {
        const OP: &str = "RotatingKVCache::update_and_fetch";
        let dims = check_kv(OP, keys, values)?;
        if let (Some(k), Some(v)) = (&self.keys, &self.values) {
            check_fits(OP, k, &dims[..3], dims[3])?;
            check_fits(OP, v, &dims[..3], dims[4])?;
        }
        if dims[2] == 1 {
            self.update_in_place(keys, values, dims)?;
        } else {
            self.update_concat(keys, values)?;
        }
        match (&self.keys, &self.values) {
            (Some(k), Some(v)) => Ok((seq(k, 0, self.offset)?, seq(v, 0, self.offset)?)),
            _ => Err(Error::invalid(OP, "the cache is empty")),
        }
    }

    /// Rebuilds a cache from its [`state`](Cache::state)
    /// (`[keys, values, offset, keep, max_size, idx]`).
    pub fn from_state(state: Vec<StateValue>) -> Result<RotatingKVCache> {
        const OP: &str = "RotatingKVCache::from_state";
        let [keys, values, offset, keep, max_size, idx] = take_n::<6>(OP, state)?;
        let (keys, values) = (opt_array(OP, keys)?, opt_array(OP, values)?);
        let offset = int(OP, "offset", offset)?;
        let keep = int(OP, "keep", keep)?;
        let max_size = int(OP, "max_size", max_size)?;
        let idx = int(OP, "_idx", idx)?;
        check_window(OP, max_size, keep)?;
        check_buffers(OP, &keys, &values, 0)?;
        let len = keys.as_ref().map_or(0, |k| k.shape()[2]);
        if offset < 0 || idx < 0 || idx > len.max(max_size) || (keys.is_none() && offset != 0) {
            return Err(Error::invalid(
                OP,
                format!("offset {offset} / write position {idx} do not fit a buffer of {len}"),
            ));
        }
        Ok(RotatingKVCache { keep, keys, values, offset, max_size, idx })
    }
}

fn check_window(op: &'static str, max_size: i32, keep: i32) -> Result<()> {
    if max_size < 1 || keep < 0 || keep >= max_size {
        return Err(Error::invalid(
            op,
            format!(
                "need max_size >= 1 and 0 <= keep < max_size, got max_size {max_size}, keep {keep}"
            ),
        ));
    }
    Ok(())
}

impl Cache for RotatingKVCache {
    fn add_dependency(&mut self, deps: &[Array]) -> Result<bool> {
        depend_slot(&mut self.keys, deps)
    }
    fn class_name(&self) -> &'static str {
        "RotatingKVCache"
    }
    fn update_and_fetch(&mut self, keys: &Array, values: &Array) -> Result<KeysValues> {
        let (keys, values) = RotatingKVCache::update_and_fetch(self, keys, values)?;
        Ok(KeysValues::Dense { keys, values })
    }
    fn offset(&self) -> i32 {
        self.offset
    }
    fn size(&self) -> i32 {
        self.offset.min(self.max_size)
    }
    fn is_empty(&self) -> bool {
        self.keys.is_none()
    }
    fn is_trimmable(&self) -> bool {
        self.offset < self.max_size
    }
    /// As mlx-lm's `trim` (which does not check [`Cache::is_trimmable`]), except that the write
    /// position never goes below 0 (mlx-lm would then index from the end).
    fn trim(&mut self, n: i32) -> i32 {
        let n = n.clamp(0, self.offset.min(self.idx));
        self.offset -= n;
        self.idx -= n;
        n
    }
    fn make_mask(&self, n: i32, window_size: Option<i32>, return_array: bool) -> Result<CacheMask> {
        if n > 1 {
            let window = match window_size {
                Some(w) if w != 0 => w,
                _ => self.max_size,
            };
            let offset = (self.max_size - 1).min(self.offset);
            if offset + n > window || return_array {
                Ok(CacheMask::Array(create_causal_mask(n, offset, Some(window))?))
            } else {
                Ok(CacheMask::Causal)
            }
        } else {
            let Some(window) = window_size else {
                return Ok(CacheMask::None);
            };
            if self.offset >= window && self.max_size > window {
                let idx = if self.idx >= self.max_size { 0 } else { self.idx };
                let mask_size =
                    if self.offset < self.max_size { self.offset + 1 } else { self.max_size };
                let positions = ops::arange(0.0, f64::from(mask_size), 1.0, Dtype::Int32)?;
                let mask = positions.greater_equal(Array::scalar(mask_size - window))?;
                Ok(CacheMask::Array(ops::roll(&mask, &[idx + 1], ..)?))
            } else {
                Ok(CacheMask::None)
            }
        }
    }
    fn state(&self) -> Vec<StateValue> {
        vec![
            opt_state(&self.keys),
            opt_state(&self.values),
            StateValue::Int(self.offset.into()),
            StateValue::Int(self.keep.into()),
            StateValue::Int(self.max_size.into()),
            StateValue::Int(self.idx.into()),
        ]
    }
    fn nbytes(&self) -> usize {
        nbytes_of(&self.keys) + nbytes_of(&self.values)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

// ---------------------------------------------------------------------------------------------
// QuantizedKVCache
// ---------------------------------------------------------------------------------------------

/// A [`KVCache`] that stores keys and values quantized along `head_dim` (affine mode; mlx-lm's
/// `QuantizedKVCache`, group 64 and 8 bits by default). Read it with
/// [`quantized_scaled_dot_product_attention`] (or [`scaled_dot_product_attention`]).
///
/// `head_dim` must be a multiple of the group size.
#[derive(Clone, Debug)]
pub struct QuantizedKVCache {
    keys: Option<Quantized>,
    values: Option<Quantized>,
    offset: i32,
    group_size: i32,
    bits: i32,
}

impl Default for QuantizedKVCache {
    fn default() -> QuantizedKVCache {
        QuantizedKVCache::new()
    }
}

fn affine(group_size: i32, bits: i32) -> QuantizationParams {
    QuantizationParams {
        group_size: Some(group_size),
        bits: Some(bits),
        mode: QuantizationMode::Affine,
    }
}

/// Quantizes `x`, failing if MLX gives no biases (affine mode always has them).
fn quantize_parts(x: &Array, group_size: i32, bits: i32) -> Result<Quantized> {
    let q = quantization::quantize(x, affine(group_size, bits))?;
    if q.biases.is_none() {
        return Err(Error::invalid("QuantizedKVCache", "affine quantization gave no biases"));
    }
    Ok(q)
}

fn quantized_parts(q: &Quantized) -> Result<[&Array; 3]> {
    match &q.biases {
        Some(b) => Ok([&q.weights, &q.scales, b]),
        None => Err(Error::invalid("QuantizedKVCache", "quantized entries without biases")),
    }
}

fn map_parts(q: &Quantized, f: impl Fn(&Array) -> Result<Array>) -> Result<Quantized> {
    let [w, s, b] = quantized_parts(q)?;
    Ok(Quantized { weights: f(w)?, scales: f(s)?, biases: Some(f(b)?) })
}

impl QuantizedKVCache {
    /// An empty cache with group size 64 and 8 bits.
    pub fn new() -> QuantizedKVCache {
        QuantizedKVCache::with_params(64, 8)
    }

    /// An empty cache with the given group size and bits (checked by MLX at the first update).
    pub fn with_params(group_size: i32, bits: i32) -> QuantizedKVCache {
        QuantizedKVCache { keys: None, values: None, offset: 0, group_size, bits }
    }

    /// The group size.
    pub fn group_size(&self) -> i32 {
        self.group_size
    }

    /// The bits per element.
    pub fn bits(&self) -> i32 {
        self.bits
    }

    /// The quantized key buffer (`(batch, kv_heads, capacity, ..)` parts), `None` while empty.
    pub fn keys(&self) -> Option<&Quantized> {
        self.keys.as_ref()
    }

    /// The quantized value buffer, as [`QuantizedKVCache::keys`].
    pub fn values(&self) -> Option<&Quantized> {
        self.values.as_ref()
    }

    /// Quantizes and appends `keys` and `values`; returns the valid quantized keys and values.
    pub fn update_and_fetch(
        &mut self,
        keys: &Array,
        values: &Array,
    ) -> Result<(Quantized, Quantized)> {
        // Every step is fallible: on an error the cache is left as it was.
        let saved = self.clone();
        let result = self.try_update(keys, values);
        if result.is_err() {
            *self = saved;
        }
        result
    }

    fn try_update(&mut self, keys: &Array, values: &Array) -> Result<(Quantized, Quantized)> {
        const OP: &str = "QuantizedKVCache::update_and_fetch";
        let [b, h, s, dk, dv] = check_kv(OP, keys, values)?;
        if self.bits <= 0 || 32 % self.bits != 0 || self.group_size <= 0 {
            return Err(Error::invalid(
                OP,
                format!("unsupported group size {} / bits {}", self.group_size, self.bits),
            ));
        }
        if dk % self.group_size != 0 || dv % self.group_size != 0 {
            return Err(Error::invalid(
                OP,
                format!(
                    "head dims {dk} / {dv} are not multiples of the group size {}",
                    self.group_size
                ),
            ));
        }
        let el_per_int = 32 / self.bits;
        let prev = self.offset;
        if let (Some(k), Some(v)) = (&self.keys, &self.values) {
            check_fits(OP, &k.weights, &[b, h, s], dk / el_per_int)?;
            check_fits(OP, &v.weights, &[b, h, s], dv / el_per_int)?;
        }
        let capacity = self.keys.as_ref().map_or(0, |k| k.weights.shape()[2]);
        let (kbuf, vbuf) = match (self.keys.take(), self.values.take()) {
            (Some(k), Some(v)) if prev + s <= capacity => (k, v),
            (old_k, old_v) => {
                let new_steps = (STEP + s - 1) / STEP * STEP;
                let shape = [b, h, new_steps];
                match (old_k, old_v) {
                    (Some(mut k), Some(mut v)) => {
                        if prev % STEP != 0 {
                            k = map_parts(&k, |x| seq(x, 0, prev))?;
                            v = map_parts(&v, |x| seq(x, 0, prev))?;
                        }
                        let expand = |x: &Array| {
                            let new = ops::zeros(&[b, h, new_steps, x.shape()[3]], x.dtype())?;
                            concat2(&[x, &new])
                        };
                        (map_parts(&k, expand)?, map_parts(&v, expand)?)
                    }
                    _ => {
                        let init = |dim: i32| -> Result<Quantized> {
                            let [b, h, n] = shape;
                            let groups = dim / self.group_size;
                            Ok(Quantized {
                                weights: ops::zeros(&[b, h, n, dim / el_per_int], Dtype::Uint32)?,
                                scales: ops::zeros(&[b, h, n, groups], keys.dtype())?,
                                biases: Some(ops::zeros(&[b, h, n, groups], keys.dtype())?),
                            })
                        };
                        (init(dk)?, init(dv)?)
                    }
                }
            }
        };
        let qk = quantize_parts(keys, self.group_size, self.bits)?;
        let qv = quantize_parts(values, self.group_size, self.bits)?;
        let write = |buf: &Quantized, new: &Quantized| -> Result<Quantized> {
            let [bw, bs, bb] = quantized_parts(buf)?;
            let [nw, ns, nb] = quantized_parts(new)?;
            Ok(Quantized {
                weights: write_at(bw, nw, prev)?,
                scales: write_at(bs, ns, prev)?,
                biases: Some(write_at(bb, nb, prev)?),
            })
        };
        let kbuf = write(&kbuf, &qk)?;
        let vbuf = write(&vbuf, &qv)?;
        self.offset = prev + s;
        let offset = self.offset;
        let fetched =
            (map_parts(&kbuf, |x| seq(x, 0, offset))?, map_parts(&vbuf, |x| seq(x, 0, offset))?);
        self.keys = Some(kbuf);
        self.values = Some(vbuf);
        Ok(fetched)
    }

    /// Rebuilds a cache from its [`state`](Cache::state)
    /// (`[(keys, scales, biases), (values, scales, biases), offset, group_size, bits]`).
    pub fn from_state(state: Vec<StateValue>) -> Result<QuantizedKVCache> {
        const OP: &str = "QuantizedKVCache::from_state";
        let [keys, values, offset, group_size, bits] = take_n::<5>(OP, state)?;
        let keys = opt_quantized(OP, keys)?;
        let values = opt_quantized(OP, values)?;
        let offset = int(OP, "offset", offset)?;
        let group_size = int(OP, "group_size", group_size)?;
        let bits = int(OP, "bits", bits)?;
        check_buffers(
            OP,
            &keys.as_ref().map(|k| k.weights.clone()),
            &values.as_ref().map(|v| v.weights.clone()),
            offset,
        )?;
        Ok(QuantizedKVCache { keys, values, offset, group_size, bits })
    }
}

impl Cache for QuantizedKVCache {
    fn add_dependency(&mut self, deps: &[Array]) -> Result<bool> {
        let Some(keys) = self.keys.as_mut() else { return Ok(false) };
        let mut slot = Some(keys.weights.clone());
        let done = depend_slot(&mut slot, deps)?;
        if let Some(w) = slot {
            keys.weights = w;
        }
        Ok(done)
    }
    fn class_name(&self) -> &'static str {
        "QuantizedKVCache"
    }
    fn update_and_fetch(&mut self, keys: &Array, values: &Array) -> Result<KeysValues> {
        let (keys, values) = QuantizedKVCache::update_and_fetch(self, keys, values)?;
        Ok(KeysValues::Quantized { keys, values, group_size: self.group_size, bits: self.bits })
    }
    fn offset(&self) -> i32 {
        self.offset
    }
    fn is_empty(&self) -> bool {
        self.keys.is_none()
    }
    fn is_trimmable(&self) -> bool {
        true
    }
    fn trim(&mut self, n: i32) -> i32 {
        let n = n.clamp(0, self.offset);
        self.offset -= n;
        n
    }
    fn make_mask(&self, n: i32, window_size: Option<i32>, return_array: bool) -> Result<CacheMask> {
        create_attention_mask(n, self.offset, return_array, window_size)
    }
    fn state(&self) -> Vec<StateValue> {
        let parts = |q: &Option<Quantized>| match q {
            Some(q) => StateValue::List(
                [Some(&q.weights), Some(&q.scales), q.biases.as_ref()]
                    .into_iter()
                    .map(|a| a.map_or(StateValue::None, |a| StateValue::Array(a.clone())))
                    .collect(),
            ),
            None => StateValue::None,
        };
        vec![
            parts(&self.keys),
            parts(&self.values),
            StateValue::Int(self.offset.into()),
            StateValue::Int(self.group_size.into()),
            StateValue::Int(self.bits.into()),
        ]
    }
    fn nbytes(&self) -> usize {
        let bytes = |q: &Option<Quantized>| {
            q.as_ref().map_or(0, |q| {
                q.weights.nbytes() + q.scales.nbytes() + q.biases.as_ref().map_or(0, Array::nbytes)
            })
        };
        bytes(&self.keys) + bytes(&self.values)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Attention
// ---------------------------------------------------------------------------------------------

/// The lowest finite value of a floating dtype (`mx.finfo(dtype).min`).
fn lowest(dtype: Dtype) -> Result<Array> {
    let value = match dtype {
        Dtype::Float16 => Array::scalar(half::f16::MIN),
        Dtype::Bfloat16 => Array::scalar(half::bf16::MIN),
        Dtype::Float32 => Array::scalar(f32::MIN),
        Dtype::Float64 => Array::scalar(f64::MIN),
        other => {
            return Err(Error::invalid(
                "quantized_scaled_dot_product_attention",
                format!("scores of dtype {} are not floating point", other.name()),
            ));
        }
    };
    Ok(value)
}

/// Attention over quantized keys and values (mlx-lm's `quantized_scaled_dot_product_attention`):
/// `softmax(scale * q kᵀ + mask) v` computed with [`quantization::quantized_matmul`], without
/// dequantizing the cache.
///
/// `queries` is `(batch, heads, queries, head_dim)`; `q_keys` / `q_values` are quantized
/// `(batch, kv_heads, keys, ..)` (affine mode, with biases) where `kv_heads` divides `heads`
/// (grouped-query attention: each KV head serves `heads / kv_heads` query heads). The mask is as
/// for [`fast::scaled_dot_product_attention`]: [`AttentionMask::Causal`] aligns the queries to
/// the end of the keys; a boolean array keeps where true; any other array is added to the scores.
/// The softmax runs in float32 (`precise`).
pub fn quantized_scaled_dot_product_attention(
    queries: &Array,
    q_keys: &Quantized,
    q_values: &Quantized,
    scale: f32,
    mask: AttentionMask<'_>,
    group_size: i32,
    bits: i32,
) -> Result<Array> {
    const OP: &str = "quantized_scaled_dot_product_attention";
    let qs = queries.shape();
    let ks = q_keys.weights.shape();
    if qs.len() != 4 || ks.len() != 4 || q_values.weights.ndim() != 4 {
        return Err(Error::invalid(
            OP,
            format!(
                "queries {qs:?} and quantized keys {ks:?} must be 4-D (batch, heads, seq, dim)"
            ),
        ));
    }
    let [b, n_q_heads, l, d] = [qs[0], qs[1], qs[2], qs[3]];
    let n_kv_heads = ks[1];
    if n_kv_heads == 0 || n_q_heads % n_kv_heads != 0 {
        return Err(Error::invalid(
            OP,
            format!("{n_kv_heads} KV heads do not divide {n_q_heads} query heads"),
        ));
    }
    let n_repeats = n_q_heads / n_kv_heads;
    let params = affine(group_size, bits);
    let mut q = (queries * scale)?;
    let (mut k, mut v) = (q_keys.clone(), q_values.clone());
    if n_repeats > 1 {
        q = q.reshape([b, n_kv_heads, n_repeats, l, d])?;
        k = map_parts(&k, |x| x.expand_dims(-3))?;
        v = map_parts(&v, |x| x.expand_dims(-3))?;
    }
    let mut scores = quantization::quantized_matmul(&q, &k, true, params)?;
    let causal;
    let mask = match mask {
        AttentionMask::None => None,
        AttentionMask::Causal => {
            let ss = scores.shape();
            let (ql, kl) = (ss[ss.len() - 2], ss[ss.len() - 1]);
            let q_idx = ops::arange(f64::from(kl - ql), f64::from(kl), 1.0, Dtype::Int32)?;
            let k_idx = ops::arange(0.0, f64::from(kl), 1.0, Dtype::Int32)?;
            causal = q_idx.expand_dims(1)?.greater_equal(k_idx.expand_dims(0)?)?;
            Some(&causal)
        }
        AttentionMask::Array(m) => Some(m),
    };
    if let Some(m) = mask {
        let expanded;
        let m = if n_repeats > 1 && m.ndim() > 3 {
            expanded = m.expand_dims(-3)?;
            &expanded
        } else {
            m
        };
        scores = if m.dtype() == Dtype::Bool {
            ops::r#where(m, &scores, &lowest(scores.dtype())?)?
        } else {
            (&scores + m)?
        };
    }
    let scores = scores.softmax(-1, true)?;
    let out = quantization::quantized_matmul(&scores, &v, false, params)?;
    if n_repeats > 1 {
        let dv = out.dim(-1)?;
        out.reshape([b, n_q_heads, l, dv])
    } else {
        Ok(out)
    }
}

/// Attention over what a cache returned (mlx-lm's `scaled_dot_product_attention` in
/// `models/base.py`): [`fast::scaled_dot_product_attention`] for dense keys and values,
/// [`quantized_scaled_dot_product_attention`] for quantized ones (which take no attention sinks).
pub fn scaled_dot_product_attention(
    queries: &Array,
    keys_values: &KeysValues,
    scale: f32,
    mask: AttentionMask<'_>,
    sinks: Option<&Array>,
) -> Result<Array> {
    match keys_values {
        KeysValues::Dense { keys, values } => {
            fast::scaled_dot_product_attention(queries, keys, values, scale, mask, sinks)
        }
        KeysValues::Quantized { keys, values, group_size, bits } => {
            if sinks.is_some() {
                return Err(Error::invalid(
                    "scaled_dot_product_attention",
                    "quantized attention does not support attention sinks",
                ));
            }
            quantized_scaled_dot_product_attention(
                queries,
                keys,
                values,
                scale,
                mask,
                *group_size,
                *bits,
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Prompt caches
// ---------------------------------------------------------------------------------------------

/// One cache per layer (mlx-lm's `make_prompt_cache` for a model without `make_cache`):
/// [`KVCache`]s, or [`RotatingKVCache`]s of window `max_kv_size` keeping 4 positions.
pub fn make_prompt_cache(num_layers: usize, max_kv_size: Option<i32>) -> Result<PromptCache> {
    (0..num_layers)
        .map(|_| -> Result<Box<dyn Cache>> {
            Ok(match max_kv_size {
                Some(m) => Box::new(RotatingKVCache::new(m, 4.min(m - 1).max(0))?),
                None => Box::new(KVCache::new()),
            })
        })
        .collect()
}

/// True when every cache can be trimmed (mlx-lm's `can_trim_prompt_cache`).
pub fn can_trim_prompt_cache(caches: &[Box<dyn Cache>]) -> bool {
    caches.iter().all(|c| c.is_trimmable())
}

/// Trims `n` positions from every cache when all of them can be trimmed; returns how many were
/// trimmed (from the first cache), 0 otherwise (mlx-lm's `trim_prompt_cache`).
pub fn trim_prompt_cache(caches: &mut [Box<dyn Cache>], n: i32) -> i32 {
    if caches.is_empty() || !can_trim_prompt_cache(caches) {
        return 0;
    }
    let trimmed: Vec<i32> = caches.iter_mut().map(|c| c.trim(n)).collect();
    trimmed.first().copied().unwrap_or(0)
}

fn flatten_state(
    prefix: String,
    value: &StateValue,
    arrays: &mut HashMap<String, Array>,
    scalars: &mut Vec<(String, &'static str)>,
) -> Result<()> {
    const OP: &str = "save_prompt_cache";
    let (array, kind) = match value {
        StateValue::List(items) => {
            for (j, item) in items.iter().enumerate() {
                flatten_state(format!("{prefix}.{j}"), item, arrays, scalars)?;
            }
            return Ok(());
        }
        StateValue::Array(a) => (a.clone(), None),
        StateValue::Int(i) => match i32::try_from(*i) {
            Ok(i) => (Array::scalar(i), Some("scalar")),
            Err(_) => (Array::scalar(*i), Some("scalar")),
        },
        StateValue::Float(f) => (Array::scalar(*f as f32), Some("scalar")),
        StateValue::Bool(b) => (Array::scalar(*b), Some("scalar")),
        StateValue::Str(s) => {
            let codes: Vec<i32> = s.chars().map(|c| c as i32).collect();
            let a = if codes.is_empty() {
                Array::from_slice::<f32>(&[], &[0])?
            } else {
                Array::from_slice(&codes, &[codes.len() as i32])?
            };
            (a, Some("string"))
        }
        StateValue::None => (Array::from_slice::<f32>(&[], &[0])?, Some("none")),
    };
    if let Some(kind) = kind {
        scalars.push((prefix.clone(), kind));
    }
    if arrays.insert(prefix.clone(), array).is_some() {
        return Err(Error::invalid(OP, format!("duplicate state path {prefix}")));
    }
    Ok(())
}

/// The arrays and metadata of a prompt-cache file, as [`save_prompt_cache`] writes them (the
/// layout of mlx-lm's `save_prompt_cache`; see the [module docs](self#prompt-cache-files)).
pub fn prompt_cache_entries(
    caches: &[Box<dyn Cache>],
    metadata: &HashMap<String, String>,
) -> Result<(HashMap<String, Array>, HashMap<String, String>)> {
    let mut arrays = HashMap::new();
    let mut scalars = Vec::new();
    for (i, cache) in caches.iter().enumerate() {
        for (j, value) in cache.state().iter().enumerate() {
            flatten_state(format!("{i}.{j}"), value, &mut arrays, &mut scalars)?;
        }
    }
    let mut meta: HashMap<String, String> =
        metadata.iter().map(|(k, v)| (format!("0.{k}"), v.clone())).collect();
    for (i, cache) in caches.iter().enumerate() {
        meta.insert(format!("1.{i}"), cache.class_name().to_owned());
    }
    meta.insert("2.0".to_owned(), String::new());
    for (n, (path, kind)) in scalars.into_iter().enumerate() {
        meta.insert(format!("2.{}.0", n + 1), path);
        meta.insert(format!("2.{}.1", n + 1), kind.to_owned());
    }
    Ok((arrays, meta))
}

/// Saves caches (one per layer) and string metadata to a safetensors file that mlx-lm's
/// `load_prompt_cache` reads (mlx-lm's `save_prompt_cache`).
///
/// ```
/// use std::collections::HashMap;
/// use mlx_rs::nn::cache::{Cache, KVCache, PromptCache, save_prompt_cache};
/// use mlx_rs::{Array, nn::cache::load_prompt_cache_with_metadata};
/// let mut cache = KVCache::new();
/// let k = Array::ones::<f32>(&[1, 2, 3, 4])?;
/// cache.update_and_fetch(&k, &k)?;
/// let caches: PromptCache = vec![Box::new(cache)];
/// let name = format!("doc_prompt_cache_{}.safetensors", std::process::id());
/// let path = std::env::temp_dir().join(name);
/// let meta = HashMap::from([("model".to_owned(), "tiny".to_owned())]);
/// save_prompt_cache(&path, &caches, &meta)?;
/// let (loaded, meta_back) = load_prompt_cache_with_metadata(&path)?;
/// assert_eq!((loaded[0].class_name(), loaded[0].offset()), ("KVCache", 3));
/// assert_eq!(meta_back, meta);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn save_prompt_cache(
    path: impl AsRef<Path>,
    caches: &[Box<dyn Cache>],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let (arrays, meta) = prompt_cache_entries(caches, metadata)?;
    crate::io::save_safetensors(path, &arrays, &meta)
}

/// Loads the caches of a prompt-cache file written by [`save_prompt_cache`] or mlx-lm's
/// `save_prompt_cache` (mlx-lm's `load_prompt_cache`).
pub fn load_prompt_cache(path: impl AsRef<Path>) -> Result<PromptCache> {
    Ok(load_prompt_cache_with_metadata(path)?.0)
}

/// [`load_prompt_cache`] that also returns the user metadata (mlx-lm's
/// `return_metadata=True`). Keys are returned as written; mlx-lm would nest a dotted key such
/// as `"a.b"` into dictionaries.
pub fn load_prompt_cache_with_metadata(
    path: impl AsRef<Path>,
) -> Result<(PromptCache, HashMap<String, String>)> {
    let (arrays, meta) = crate::io::load_safetensors(path)?;
    prompt_cache_from_entries(arrays, &meta)
}

/// A node of an unflattened state tree.
enum Node {
    Leaf(StateValue),
    Branch(BTreeMap<usize, Node>),
}

fn insert_node(
    tree: &mut BTreeMap<usize, Node>,
    path: &str,
    parts: &[usize],
    leaf: StateValue,
) -> Result<()> {
    const OP: &str = "load_prompt_cache";
    match parts {
        [] => Err(Error::invalid(OP, format!("empty array path {path:?}"))),
        [last] => match tree.insert(*last, Node::Leaf(leaf)) {
            None => Ok(()),
            Some(_) => Err(Error::invalid(OP, format!("conflicting array path {path:?}"))),
        },
        [first, rest @ ..] => {
            let node = tree.entry(*first).or_insert_with(|| Node::Branch(BTreeMap::new()));
            match node {
                Node::Branch(children) => insert_node(children, path, rest, leaf),
                Node::Leaf(_) => {
                    Err(Error::invalid(OP, format!("conflicting array path {path:?}")))
                }
            }
        }
    }
}

fn into_list(path: &str, tree: BTreeMap<usize, Node>) -> Result<Vec<StateValue>> {
    let mut out = Vec::with_capacity(tree.len());
    for (n, (index, node)) in tree.into_iter().enumerate() {
        if index != n {
            return Err(Error::invalid(
                "load_prompt_cache",
                format!("state of {path} has no entry {n}"),
            ));
        }
        out.push(match node {
            Node::Leaf(v) => v,
            Node::Branch(children) => {
                StateValue::List(into_list(&format!("{path}.{index}"), children)?)
            }
        });
    }
    Ok(out)
}

fn parse_path(path: &str) -> Result<Vec<usize>> {
    path.split('.')
        .map(|p| p.parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::invalid("load_prompt_cache", format!("unexpected array name {path:?}")))
}

/// A scalar stored as a 0-d (or one-element) array back as a Python value.
fn scalar_value(path: &str, a: &Array) -> Result<StateValue> {
    const OP: &str = "load_prompt_cache";
    if a.size() != 1 {
        return Err(Error::invalid(OP, format!("scalar {path} has shape {:?}", a.shape())));
    }
    let d = a.dtype();
    if d == Dtype::Bool {
        Ok(StateValue::Bool(a.item::<bool>()?))
    } else if d.is_integer() {
        Ok(StateValue::Int(a.astype(Dtype::Int64)?.item::<i64>()?))
    } else if d.is_floating() {
        Ok(StateValue::Float(a.astype(Dtype::Float64)?.item::<f64>()?))
    } else {
        Err(Error::invalid(OP, format!("scalar {path} has dtype {}", d.name())))
    }
}

/// Rebuilds caches from the arrays and metadata of a prompt-cache file (the inverse of
/// [`prompt_cache_entries`]); returns them with the user metadata.
pub fn prompt_cache_from_entries(
    mut arrays: HashMap<String, Array>,
    metadata: &HashMap<String, String>,
) -> Result<(PromptCache, HashMap<String, String>)> {
    const OP: &str = "load_prompt_cache";
    let mut user = HashMap::new();
    let mut classes = BTreeMap::new();
    let mut scalars: BTreeMap<usize, (Option<String>, Option<String>)> = BTreeMap::new();
    for (key, value) in metadata {
        if let Some(k) = key.strip_prefix("0.") {
            user.insert(k.to_owned(), value.clone());
        } else if let Some(i) = key.strip_prefix("1.") {
            let i: usize = i
                .parse()
                .map_err(|_| Error::invalid(OP, format!("unexpected metadata key {key:?}")))?;
            classes.insert(i, value.clone());
        } else if key == "2.0" {
        } else if let Some(rest) = key.strip_prefix("2.") {
            let (n, field) = rest
                .split_once('.')
                .and_then(|(n, f)| Some((n.parse::<usize>().ok()?, f)))
                .ok_or_else(|| Error::invalid(OP, format!("unexpected metadata key {key:?}")))?;
            let entry = scalars.entry(n).or_default();
            match field {
                "0" => entry.0 = Some(value.clone()),
                "1" => entry.1 = Some(value.clone()),
                _ => return Err(Error::invalid(OP, format!("unexpected metadata key {key:?}"))),
            }
        } else {
            return Err(Error::invalid(OP, format!("unexpected metadata key {key:?}")));
        }
    }
    let mut converted: HashMap<String, StateValue> = HashMap::new();
    for (n, entry) in scalars {
        let (Some(path), Some(kind)) = entry else {
            return Err(Error::invalid(OP, format!("incomplete scalar entry 2.{n}")));
        };
        let array = arrays
            .remove(&path)
            .ok_or_else(|| Error::invalid(OP, format!("scalar entry {path} has no array")))?;
        let value = match kind.as_str() {
            "scalar" => scalar_value(&path, &array)?,
            "string" => {
                let codes = if array.size() == 0 {
                    Vec::new()
                } else {
                    array.astype(Dtype::Uint32)?.to_vec::<u32>()?
                };
                let text: Option<String> = codes.into_iter().map(char::from_u32).collect();
                StateValue::Str(text.ok_or_else(|| {
                    Error::invalid(OP, format!("string entry {path} has invalid character codes"))
                })?)
            }
            "none" => StateValue::None,
            other => return Err(Error::invalid(OP, format!("unknown type {other:?} of {path}"))),
        };
        converted.insert(path, value);
    }
    let mut tree = BTreeMap::new();
    let leaves = arrays.into_iter().map(|(k, a)| (k, StateValue::Array(a))).chain(converted);
    for (path, leaf) in leaves {
        insert_node(&mut tree, &path, &parse_path(&path)?, leaf)?;
    }
    let mut states: BTreeMap<usize, Node> = tree;
    let mut caches: PromptCache = Vec::with_capacity(classes.len());
    for (n, (i, class)) in classes.into_iter().enumerate() {
        if i != n {
            return Err(Error::invalid(OP, format!("no class name for cache {n}")));
        }
        let state = match states.remove(&i) {
            Some(Node::Branch(children)) => into_list(&i.to_string(), children)?,
            Some(Node::Leaf(_)) => {
                return Err(Error::invalid(OP, format!("state of cache {i} is not a list")));
            }
            None => Vec::new(),
        };
        let cache: Box<dyn Cache> = match class.as_str() {
            "KVCache" => Box::new(KVCache::from_state(state)?),
            "RotatingKVCache" => Box::new(RotatingKVCache::from_state(state)?),
            "QuantizedKVCache" => Box::new(QuantizedKVCache::from_state(state)?),
            other => {
                return Err(Error::invalid(
                    OP,
                    format!("unsupported cache class {other:?} (cache {i})"),
                ));
            }
        };
        caches.push(cache);
    }
    if let Some(extra) = states.keys().next() {
        return Err(Error::invalid(OP, format!("arrays for cache {extra} have no class name")));
    }
    Ok((caches, user))
}

// ---------------------------------------------------------------------------------------------
// State helpers
// ---------------------------------------------------------------------------------------------

fn opt_state(a: &Option<Array>) -> StateValue {
    a.as_ref().map_or(StateValue::None, |a| StateValue::Array(a.clone()))
}

fn take_n<const N: usize>(op: &'static str, state: Vec<StateValue>) -> Result<[StateValue; N]> {
    let len = state.len();
    state
        .try_into()
        .map_err(|_| Error::invalid(op, format!("expected {N} state entries, got {len}")))
}

fn opt_array(op: &'static str, v: StateValue) -> Result<Option<Array>> {
    match v {
        StateValue::Array(a) => Ok(Some(a)),
        StateValue::None => Ok(None),
        other => Err(Error::invalid(op, format!("expected an array or None, got {other:?}"))),
    }
}

fn opt_quantized(op: &'static str, v: StateValue) -> Result<Option<Quantized>> {
    match v {
        StateValue::None => Ok(None),
        StateValue::List(items) => {
            let [w, s, b] = take_n::<3>(op, items)?;
            match (opt_array(op, w)?, opt_array(op, s)?, opt_array(op, b)?) {
                (Some(weights), Some(scales), Some(biases)) => {
                    Ok(Some(Quantized { weights, scales, biases: Some(biases) }))
                }
                _ => {
                    Err(Error::invalid(op, "quantized entries need packed data, scales and biases"))
                }
            }
        }
        other => Err(Error::invalid(op, format!("expected quantized entries, got {other:?}"))),
    }
}

fn int(op: &'static str, name: &str, v: StateValue) -> Result<i32> {
    match v {
        StateValue::Int(i) => {
            i32::try_from(i).map_err(|_| Error::invalid(op, format!("{name} {i} is out of range")))
        }
        other => Err(Error::invalid(op, format!("{name} must be an integer, got {other:?}"))),
    }
}

/// Keys and values both present (4-D, same batch/heads/length, `offset` within) or both absent
/// (`offset` 0 for `KVCache`-like caches; pass 0 to skip the offset check).
fn check_buffers(
    op: &'static str,
    keys: &Option<Array>,
    values: &Option<Array>,
    offset: i32,
) -> Result<()> {
    match (keys, values) {
        (Some(k), Some(v)) => {
            let (ks, vs) = (k.shape(), v.shape());
            if ks.len() != 4 || vs.len() != 4 || ks[..3] != vs[..3] {
                return Err(Error::invalid(
                    op,
                    format!("key buffer {ks:?} and value buffer {vs:?} do not match"),
                ));
            }
            if offset < 0 || offset > ks[2] {
                return Err(Error::invalid(
                    op,
                    format!("offset {offset} is outside the buffer of {} positions", ks[2]),
                ));
            }
            Ok(())
        }
        (None, None) if offset == 0 => Ok(()),
        (None, None) => Err(Error::invalid(op, format!("offset {offset} without buffers"))),
        _ => Err(Error::invalid(op, "keys without values or values without keys")),
    }
}
