//! Rotary positional embeddings (`mlx.nn.RoPE`) and the frequency helper for Llama 3's
//! `"llama3"` rope scaling.

use crate::error::{Error, Result};
use crate::fast::{self, RopeFrequencies, RopeOffset, RopeOptions};
use crate::nn::Module;
use crate::{Array, Dtype, ops};

/// Rotary positional embedding over the last axis (`mlx.nn.RoPE`), on `fast::rope`.
///
/// No parameters: custom frequencies are a buffer, as mlx-lm's `_freqs`.
#[derive(Clone, Debug, Module)]
pub struct RoPE {
    /// The number of leading features to rotate.
    pub dims: i32,
    /// Rotate consecutive pairs instead of the two halves.
    pub traditional: bool,
    /// The base of the frequencies (unused with custom frequencies).
    pub base: f32,
    /// Scale applied to the positions.
    pub scale: f32,
    #[module(skip)]
    freqs: Option<Array>,
    #[module(training)]
    training: bool,
}

impl RoPE {
    /// `RoPE(dims, traditional, base, scale)`; Python's defaults are `false`, `10000`, `1`.
    pub fn new(dims: i32, traditional: bool, base: f32, scale: f32) -> Result<RoPE> {
        if dims <= 0 || dims % 2 != 0 {
            return Err(Error::invalid(
                "RoPE",
                format!("dims must be a positive even number, got {dims}"),
            ));
        }
        Ok(RoPE { dims, traditional, base, scale, freqs: None, training: true })
    }

    /// A rotary embedding with explicit frequencies (`dims / 2` values, as `fast.rope`'s
    /// `freqs`: the period of each pair, `base^(2i/dims)` for the usual choice).
    pub fn with_frequencies(
        dims: i32,
        traditional: bool,
        freqs: Array,
        scale: f32,
    ) -> Result<RoPE> {
        let mut rope = RoPE::new(dims, traditional, 10000.0, scale)?;
        if freqs.shape() != [dims / 2] {
            return Err(Error::invalid(
                "RoPE",
                format!("freqs must have shape [{}], got {:?}", dims / 2, freqs.shape()),
            ));
        }
        rope.freqs = Some(freqs);
        Ok(rope)
    }

    /// The custom frequencies, if any.
    pub fn frequencies(&self) -> Option<&Array> {
        self.freqs.as_ref()
    }

    fn options<'a>(&'a self, offset: RopeOffset<'a>) -> RopeOptions<'a> {
        RopeOptions {
            dims: self.dims,
            traditional: self.traditional,
            frequencies: match &self.freqs {
                Some(f) => RopeFrequencies::Custom(f),
                None => RopeFrequencies::Base(self.base),
            },
            scale: self.scale,
            offset,
        }
    }

    /// Rotates `x` (`[..., seq, features]`) for positions starting at `offset`.
    pub fn forward_at(&self, x: &Array, offset: i32) -> Result<Array> {
        fast::rope(x, self.options(RopeOffset::Position(offset)))
    }

    /// [`RoPE::forward_at`] with the offset in an integer array (a KV cache's length).
    pub fn forward_at_array(&self, x: &Array, offset: &Array) -> Result<Array> {
        fast::rope(x, self.options(RopeOffset::Array(offset)))
    }

    /// Rotates `x` for positions starting at 0.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        self.forward_at(x, 0)
    }
}

crate::nn::impl_forward!(RoPE);

/// The parameters of Llama 3's `"llama3"` rope scaling (`rope_scaling` in a Hugging Face
/// config); the defaults are mlx-lm's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Llama3RopeScaling {
    /// `factor`.
    pub factor: f32,
    /// `low_freq_factor` (default 1).
    pub low_freq_factor: f32,
    /// `high_freq_factor` (default 4).
    pub high_freq_factor: f32,
    /// `original_max_position_embeddings` (default 8192).
    pub original_max_position_embeddings: f32,
}

impl Llama3RopeScaling {
    /// The given `factor` with mlx-lm's defaults for the rest.
    pub fn new(factor: f32) -> Llama3RopeScaling {
        Llama3RopeScaling {
            factor,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        }
    }
}

/// The frequencies (periods, as [`RoPE::with_frequencies`] takes them) of Llama 3's rope
/// scaling, computed as mlx-lm's `Llama3RoPE` does in float32: long wavelengths are stretched
/// by `factor`, short ones kept, and the band between smoothly interpolated.
pub fn llama3_rope_frequencies(dims: i32, base: f32, scaling: Llama3RopeScaling) -> Result<Array> {
    let Llama3RopeScaling { factor, low_freq_factor, high_freq_factor, .. } = scaling;
    let old_len = scaling.original_max_position_embeddings;
    if dims <= 0 || dims % 2 != 0 || high_freq_factor == low_freq_factor {
        return Err(Error::invalid(
            "llama3_rope_frequencies",
            "dims must be positive and even, and high_freq_factor differ from low_freq_factor",
        ));
    }
    let low_freq_wavelen = old_len / low_freq_factor;
    let high_freq_wavelen = old_len / high_freq_factor;
    let exponents = (ops::arange(0.0, f64::from(dims), 2.0, Dtype::Float32)? / dims as f32)?;
    let freqs = Array::scalar(base).power(&exponents)?;
    let wavelens = (&freqs * (2.0 * std::f32::consts::PI))?;
    let freqs = ops::r#where(
        &wavelens.greater(Array::scalar(low_freq_wavelen))?,
        &(&freqs * factor)?,
        &freqs,
    )?;
    let is_medium = ops::logical_and(
        &wavelens.greater(Array::scalar(high_freq_wavelen))?,
        &wavelens.less(Array::scalar(low_freq_wavelen))?,
    )?;
    let smooth = (((Array::scalar(old_len) / &wavelens)? - low_freq_factor)?
        / (high_freq_factor - low_freq_factor))?;
    let denom = ((((Array::scalar(1.0f32) - &smooth)? / factor)?) + &smooth)?;
    let smooth_freqs = (&freqs / &denom)?;
    ops::r#where(&is_medium, &smooth_freqs, &freqs)
}
