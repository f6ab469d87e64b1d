//! Fused kernels for the hot paths of transformer models, as in `mlx.core.fast`: RMS and layer
//! norm, rotary embeddings, scaled dot-product attention, cross entropy, and user-written
//! [custom kernels](kernel).

pub mod kernel;

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::error::{Error, Result};
use crate::{Array, Stream, ffi};

/// RMS normalization over the last axis: `x / sqrt(mean(x²) + eps) * weight`.
///
/// `weight`, when given, has the size of the last axis.
///
/// ```
/// use mlx_rs::{Array, fast};
/// let x = Array::from_slice(&[3.0f32, 4.0], &[1, 2])?;
/// let y = fast::rms_norm(&x, None, 0.0)?;
/// let v = y.to_vec::<f32>()?;
/// assert!((v[0] - 3.0 / 12.5f32.sqrt()).abs() < 1e-6);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn rms_norm_device(
    x: &Array,
    weight: Option<&Array>,
    eps: f32,
    stream: &Stream,
) -> Result<Array> {
    ffi::array_out("rms_norm", |out| {
        // SAFETY: live handles, or an empty handle for an absent weight.
        unsafe {
            sys::mlx_fast_rms_norm(out, x.raw(), ffi::optional_array(weight), eps, stream.raw())
        }
    })
}

/// Layer normalization over the last axis, with optional weight and bias.
#[default_device]
pub fn layer_norm_device(
    x: &Array,
    weight: Option<&Array>,
    bias: Option<&Array>,
    eps: f32,
    stream: &Stream,
) -> Result<Array> {
    ffi::array_out("layer_norm", |out| {
        // SAFETY: live handles, or empty handles for absent weight and bias.
        unsafe {
            sys::mlx_fast_layer_norm(
                out,
                x.raw(),
                ffi::optional_array(weight),
                ffi::optional_array(bias),
                eps,
                stream.raw(),
            )
        }
    })
}

/// Where the rotary embedding starts along the sequence.
#[derive(Clone, Copy, Debug)]
pub enum RopeOffset<'a> {
    /// A fixed position.
    Position(i32),
    /// A scalar (or per-batch) integer array, e.g. a KV-cache length computed on the device.
    Array(&'a Array),
}

/// How rotary frequencies are chosen.
#[derive(Clone, Copy, Debug)]
pub enum RopeFrequencies<'a> {
    /// `base^(-2i/dims)`, the usual choice (`base` is typically 10000).
    Base(f32),
    /// Explicit frequencies, one per pair of rotated dimensions (`dims / 2` values).
    Custom(&'a Array),
}

/// Options of [`rope`].
#[derive(Clone, Copy, Debug)]
pub struct RopeOptions<'a> {
    /// The number of leading feature dimensions to rotate.
    pub dims: i32,
    /// Rotate consecutive pairs (`true`) or the two halves (`false`, the default of most models).
    pub traditional: bool,
    /// Base or custom frequencies.
    pub frequencies: RopeFrequencies<'a>,
    /// Scale applied to the positions.
    pub scale: f32,
    /// First position.
    pub offset: RopeOffset<'a>,
}

impl RopeOptions<'_> {
    /// `dims` rotated with base 10000, scale 1, offset 0, non-traditional.
    pub fn new(dims: i32) -> RopeOptions<'static> {
        RopeOptions {
            dims,
            traditional: false,
            frequencies: RopeFrequencies::Base(10000.0),
            scale: 1.0,
            offset: RopeOffset::Position(0),
        }
    }
}

/// Rotary positional embedding over the last axis of `x` (`(..., seq, features)`).
#[default_device]
pub fn rope_device(x: &Array, options: RopeOptions<'_>, stream: &Stream) -> Result<Array> {
    if options.dims <= 0 || options.dims % 2 != 0 {
        return Err(Error::invalid(
            "rope",
            format!("dims must be a positive even number, got {}", options.dims),
        ));
    }
    let (base, freqs) = match options.frequencies {
        RopeFrequencies::Base(base) => (Some(base), None),
        RopeFrequencies::Custom(freqs) => (None, Some(freqs)),
    };
    let (base, freqs) = (ffi::optional_float(base), ffi::optional_array(freqs));
    match options.offset {
        RopeOffset::Position(offset) => ffi::array_out("rope", |out| {
            // SAFETY: live handles, or an empty handle for absent frequencies.
            unsafe {
                sys::mlx_fast_rope(
                    out,
                    x.raw(),
                    options.dims,
                    options.traditional,
                    base,
                    options.scale,
                    offset,
                    freqs,
                    stream.raw(),
                )
            }
        }),
        RopeOffset::Array(offset) => ffi::array_out("rope", |out| {
            // SAFETY: live handles, or an empty handle for absent frequencies.
            unsafe {
                sys::mlx_fast_rope_dynamic(
                    out,
                    x.raw(),
                    options.dims,
                    options.traditional,
                    base,
                    options.scale,
                    offset.raw(),
                    freqs,
                    stream.raw(),
                )
            }
        }),
    }
}

/// The one mask argument of [`scaled_dot_product_attention`].
#[derive(Clone, Copy, Debug, Default)]
pub enum AttentionMask<'a> {
    /// Every query attends to every key.
    #[default]
    None,
    /// Query `i` attends to keys `0..=i + (keys - queries)` (aligned to the end, as for a KV cache).
    Causal,
    /// An explicit mask broadcastable to `(batch, heads, queries, keys)`: boolean (true keeps)
    /// or additive (added to the scores).
    Array(&'a Array),
}

/// `softmax(q kᵀ * scale + mask) v`, fused, for `(batch, heads, seq, dim)` inputs.
///
/// Grouped-query and multi-query attention are handled inside MLX: `keys` and `values` may have
/// fewer heads than `queries` (a divisor of it); do not repeat them. `sinks`, when given, are
/// per-head attention-sink logits (shape `(heads,)`) added to the softmax denominator.
#[default_device]
pub fn scaled_dot_product_attention_device(
    queries: &Array,
    keys: &Array,
    values: &Array,
    scale: f32,
    mask: AttentionMask<'_>,
    sinks: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    let (mode, array): (&std::ffi::CStr, _) = match mask {
        AttentionMask::None => (c"", None),
        AttentionMask::Causal => (c"causal", None),
        AttentionMask::Array(array) => (c"array", Some(array)),
    };
    ffi::array_out("scaled_dot_product_attention", |out| {
        // SAFETY: live handles, or empty handles for the absent mask array and sinks; the mode
        // is a NUL-terminated static string.
        unsafe {
            sys::mlx_fast_scaled_dot_product_attention(
                out,
                queries.raw(),
                keys.raw(),
                values.raw(),
                scale,
                mode.as_ptr(),
                ffi::optional_array(array),
                ffi::optional_array(sinks),
                false,
                stream.raw(),
            )
        }
    })
}

/// Per-row cross entropy of `logits` (`(..., classes)`) against integer `targets` (`(...)`).
///
/// Targets outside `[-classes, classes)` are clamped into range, as the index arrays of
/// [`ops::take`](crate::ops::take) are (negative targets count from the end): MLX 0.32.2 reads
/// the target's logit without a bounds check, outside the array (seen under valgrind; Python
/// too).
#[default_device]
pub fn cross_entropy_device(logits: &Array, targets: &Array, stream: &Stream) -> Result<Array> {
    let classes = logits.shape().last().map_or(0, |&n| i64::from(n));
    let clamped;
    let targets = if logits.ndim() == 0 {
        targets
    } else {
        clamped = crate::ops::clamp_indices(
            "cross_entropy",
            targets,
            &[(classes, 1)],
            &[],
            crate::ops::Negative::MlxWraps,
            stream,
        )?;
        &clamped
    };
    ffi::array_out("cross_entropy", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe { sys::mlx_fast_cross_entropy(out, logits.raw(), targets.raw(), stream.raw()) }
    })
}
