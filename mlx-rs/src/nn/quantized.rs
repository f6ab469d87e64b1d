//! Quantized layers (`mlx.nn.QuantizedLinear`, `QuantizedEmbedding`) and [`quantize`], which
//! swaps a model's layers for their quantized forms in place.

use crate::error::{Context, Error, Result};
use crate::nn::{Embedding, Forward, Linear, Module, Param};
use crate::quantization::{self, QuantizationMode, QuantizationParams, Quantized};
use crate::{Array, ops};

/// Python's default `(group_size, bits)` of a mode: affine 64/4, mxfp4 32/4, nvfp4 16/4,
/// mxfp8 32/8.
pub fn mode_defaults(mode: QuantizationMode) -> (i32, i32) {
    match mode {
        QuantizationMode::Affine => (64, 4),
        QuantizationMode::Mxfp4 => (32, 4),
        QuantizationMode::Nvfp4 => (16, 4),
        QuantizationMode::Mxfp8 => (32, 8),
    }
}

/// Resolved quantization settings: explicit group size and bits.
pub(crate) fn resolve(params: QuantizationParams) -> QuantizationParams {
    let (g, b) = mode_defaults(params.mode);
    QuantizationParams {
        group_size: Some(params.group_size.unwrap_or(g)),
        bits: Some(params.bits.unwrap_or(b)),
        mode: params.mode,
    }
}

fn parts(weight: &Param, scales: &Param, biases: &Option<Param>) -> Quantized {
    Quantized {
        weights: weight.value().clone(),
        scales: scales.value().clone(),
        biases: biases.as_ref().map(|b| b.value().clone()),
    }
}

/// Splits a [`Quantized`] into frozen parameters.
fn frozen_parts(q: Quantized) -> (Param, Param, Option<Param>) {
    (Param::frozen(q.weights), Param::frozen(q.scales), q.biases.map(Param::frozen))
}

pub(crate) fn check_biases(
    op: &'static str,
    mode: QuantizationMode,
    biases: &Option<Array>,
) -> Result<()> {
    if mode.has_biases() != biases.is_some() {
        return Err(Error::invalid(
            op,
            format!(
                "mode {} {} per-group biases",
                mode.name(),
                if mode.has_biases() { "needs" } else { "has no" }
            ),
        ));
    }
    Ok(())
}

/// A [`Linear`] with a quantized weight (`mlx.nn.QuantizedLinear`). Parameters as in Python:
/// `weight` (packed, `uint32`), `scales`, `biases` (affine mode only) and `bias` (if any). The
/// packed parts are frozen; `bias` stays trainable, as in Python's `from_linear`.
#[derive(Clone, Debug, Module)]
pub struct QuantizedLinear {
    /// Packed weight, `[output_dims, input_dims * bits / 32]`.
    pub weight: Param,
    /// One scale per group.
    pub scales: Param,
    /// One bias per group (affine mode).
    pub biases: Option<Param>,
    /// `[output_dims]`, if the layer has a bias.
    pub bias: Option<Param>,
    /// Elements per group.
    pub group_size: i32,
    /// Bits per element.
    pub bits: i32,
    /// The format.
    #[module(skip)]
    pub mode: QuantizationMode,
    #[module(training)]
    training: bool,
}

impl QuantizedLinear {
    /// Quantizes a [`Linear`]'s weight (`QuantizedLinear.from_linear`); `None` group size or
    /// bits take the mode's default ([`mode_defaults`]).
    pub fn from_linear(linear: &Linear, params: QuantizationParams) -> Result<QuantizedLinear> {
        let params = resolve(params);
        let q = quantization::quantize(&linear.weight, params).context("QuantizedLinear")?;
        let (weight, scales, biases) = frozen_parts(q);
        Ok(QuantizedLinear {
            weight,
            scales,
            biases,
            bias: linear.bias.clone().map(|b| Param::new(b.value().clone())),
            group_size: params.group_size.unwrap_or(64),
            bits: params.bits.unwrap_or(4),
            mode: params.mode,
            training: linear.training(),
        })
    }

    /// A layer from already packed parts (as a quantized checkpoint stores them).
    pub fn from_parts(
        weight: Array,
        scales: Array,
        biases: Option<Array>,
        bias: Option<Array>,
        params: QuantizationParams,
    ) -> Result<QuantizedLinear> {
        let params = resolve(params);
        check_biases("QuantizedLinear", params.mode, &biases)?;
        let q = Quantized { weights: weight, scales, biases };
        let (weight, scales, biases) = frozen_parts(q);
        Ok(QuantizedLinear {
            weight,
            scales,
            biases,
            bias: bias.map(Param::new),
            group_size: params.group_size.unwrap_or(64),
            bits: params.bits.unwrap_or(4),
            mode: params.mode,
            training: true,
        })
    }

    /// The quantization settings.
    pub fn params(&self) -> QuantizationParams {
        QuantizationParams {
            group_size: Some(self.group_size),
            bits: Some(self.bits),
            mode: self.mode,
        }
    }

    /// `x Wᵀ + b` with the quantized weight (`quantized_matmul`, transposed).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let q = parts(&self.weight, &self.scales, &self.biases);
        let y = quantization::quantized_matmul(x, &q, true, self.params())?;
        match &self.bias {
            Some(b) => &y + &**b,
            None => Ok(y),
        }
    }
}

/// An [`Embedding`] with a quantized table (`mlx.nn.QuantizedEmbedding`); parameters
/// `weight`, `scales`, `biases` (affine mode), all frozen.
#[derive(Clone, Debug, Module)]
pub struct QuantizedEmbedding {
    /// Packed table.
    pub weight: Param,
    /// One scale per group.
    pub scales: Param,
    /// One bias per group (affine mode).
    pub biases: Option<Param>,
    /// Elements per group.
    pub group_size: i32,
    /// Bits per element.
    pub bits: i32,
    /// The format.
    #[module(skip)]
    pub mode: QuantizationMode,
    #[module(training)]
    training: bool,
}

impl QuantizedEmbedding {
    /// Quantizes an [`Embedding`]'s table (`QuantizedEmbedding.from_embedding`).
    pub fn from_embedding(
        embedding: &Embedding,
        params: QuantizationParams,
    ) -> Result<QuantizedEmbedding> {
        let params = resolve(params);
        let q = quantization::quantize(&embedding.weight, params).context("QuantizedEmbedding")?;
        let (weight, scales, biases) = frozen_parts(q);
        Ok(QuantizedEmbedding {
            weight,
            scales,
            biases,
            group_size: params.group_size.unwrap_or(64),
            bits: params.bits.unwrap_or(4),
            mode: params.mode,
            training: embedding.training(),
        })
    }

    /// A table from already packed parts.
    pub fn from_parts(
        weight: Array,
        scales: Array,
        biases: Option<Array>,
        params: QuantizationParams,
    ) -> Result<QuantizedEmbedding> {
        let params = resolve(params);
        check_biases("QuantizedEmbedding", params.mode, &biases)?;
        let (weight, scales, biases) = frozen_parts(Quantized { weights: weight, scales, biases });
        Ok(QuantizedEmbedding {
            weight,
            scales,
            biases,
            group_size: params.group_size.unwrap_or(64),
            bits: params.bits.unwrap_or(4),
            mode: params.mode,
            training: true,
        })
    }

    /// The quantization settings.
    pub fn params(&self) -> QuantizationParams {
        QuantizationParams {
            group_size: Some(self.group_size),
            bits: Some(self.bits),
            mode: self.mode,
        }
    }

    /// The dequantized rows for the integer indices `x` (out-of-range indices are clamped).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let rows = Quantized {
            weights: ops::take(&self.weight, x, 0)?,
            scales: ops::take(&self.scales, x, 0)?,
            biases: match &self.biases {
                Some(b) => Some(ops::take(b, x, 0)?),
                None => None,
            },
        };
        quantization::dequantize(&rows, self.params(), None)
    }

    /// `x Wᵀ` with the quantized table (tied output projection).
    pub fn as_linear(&self, x: &Array) -> Result<Array> {
        let q = parts(&self.weight, &self.scales, &self.biases);
        quantization::quantized_matmul(x, &q, true, self.params())
    }
}

crate::nn::impl_forward!(QuantizedLinear, QuantizedEmbedding);

/// A layer that has a quantized form ([`Linear`], [`Embedding`]).
pub trait ToQuantized: Module + Sized {
    /// The quantized form.
    type Quantized: Module;
    /// The layer's name in Python (`"Linear"`, `"Embedding"`), for predicates.
    const KIND: &'static str;
    /// Quantizes the layer with resolved settings.
    fn to_quantized(&self, params: QuantizationParams) -> Result<Self::Quantized>;
    /// The shape of the weight to quantize.
    fn weight_shape(&self) -> &[i32];
}

impl ToQuantized for Linear {
    type Quantized = QuantizedLinear;
    const KIND: &'static str = "Linear";
    fn to_quantized(&self, params: QuantizationParams) -> Result<QuantizedLinear> {
        QuantizedLinear::from_linear(self, params)
    }
    fn weight_shape(&self) -> &[i32] {
        self.weight.shape()
    }
}

impl ToQuantized for Embedding {
    type Quantized = QuantizedEmbedding;
    const KIND: &'static str = "Embedding";
    fn to_quantized(&self, params: QuantizationParams) -> Result<QuantizedEmbedding> {
        QuantizedEmbedding::from_embedding(self, params)
    }
    fn weight_shape(&self) -> &[i32] {
        self.weight.shape()
    }
}

/// A layer slot that [`quantize`] may switch from the dense to the quantized form: write model
/// fields as `q_proj: MaybeQuantized<Linear>` where Python would later swap in a
/// `QuantizedLinear`. Paths and parameter names are those of the active form.
#[derive(Clone, Debug)]
pub enum MaybeQuantized<L: ToQuantized> {
    /// The dense layer.
    Dense(L),
    /// The quantized layer.
    Quantized(L::Quantized),
}

impl<L: ToQuantized> From<L> for MaybeQuantized<L> {
    fn from(layer: L) -> Self {
        MaybeQuantized::Dense(layer)
    }
}

impl<L> MaybeQuantized<L>
where
    L: ToQuantized + Forward,
    L::Quantized: Forward,
{
    /// The layer's forward pass, dense or quantized.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        match self {
            MaybeQuantized::Dense(l) => l.forward(x),
            MaybeQuantized::Quantized(q) => q.forward(x),
        }
    }
}

impl MaybeQuantized<Embedding> {
    /// The table as an output projection, dense or quantized.
    pub fn as_linear(&self, x: &Array) -> Result<Array> {
        match self {
            MaybeQuantized::Dense(l) => l.as_linear(x),
            MaybeQuantized::Quantized(q) => q.as_linear(x),
        }
    }
}

impl<L> Forward for MaybeQuantized<L>
where
    L: ToQuantized + Forward,
    L::Quantized: Forward,
{
    fn forward(&self, x: &Array) -> Result<Array> {
        MaybeQuantized::forward(self, x)
    }
}

impl<L: ToQuantized> Module for MaybeQuantized<L> {
    fn visit_parameters<'a>(&'a self, path: &mut String, f: &mut dyn FnMut(&str, &'a Param)) {
        match self {
            MaybeQuantized::Dense(l) => l.visit_parameters(path, f),
            MaybeQuantized::Quantized(q) => q.visit_parameters(path, f),
        }
    }

    fn visit_parameters_mut(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        match self {
            MaybeQuantized::Dense(l) => l.visit_parameters_mut(path, f),
            MaybeQuantized::Quantized(q) => q.visit_parameters_mut(path, f),
        }
    }

    fn visit_quantizable(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut dyn Quantizable) -> Result<()>,
    ) -> Result<()> {
        f(path, self)
    }

    fn train(&mut self, mode: bool) {
        match self {
            MaybeQuantized::Dense(l) => l.train(mode),
            MaybeQuantized::Quantized(q) => q.train(mode),
        }
    }

    fn training_state(&self) -> Option<bool> {
        match self {
            MaybeQuantized::Dense(l) => l.training_state(),
            MaybeQuantized::Quantized(q) => q.training_state(),
        }
    }
}

/// A layer slot seen by [`quantize`]'s predicate.
pub trait Quantizable {
    /// The dense layer's Python name (`"Linear"`, `"Embedding"`).
    fn kind(&self) -> &'static str;
    /// True once quantized.
    fn is_quantized(&self) -> bool;
    /// The dense weight's shape (`None` once quantized).
    fn weight_shape(&self) -> Option<Vec<i32>>;
    /// Replaces the dense layer by its quantized form (an error if already quantized).
    fn quantize(&mut self, params: QuantizationParams) -> Result<()>;
}

impl<L: ToQuantized> Quantizable for MaybeQuantized<L> {
    fn kind(&self) -> &'static str {
        L::KIND
    }

    fn is_quantized(&self) -> bool {
        matches!(self, MaybeQuantized::Quantized(_))
    }

    fn weight_shape(&self) -> Option<Vec<i32>> {
        match self {
            MaybeQuantized::Dense(l) => Some(l.weight_shape().to_vec()),
            MaybeQuantized::Quantized(_) => None,
        }
    }

    fn quantize(&mut self, params: QuantizationParams) -> Result<()> {
        match self {
            MaybeQuantized::Dense(l) => {
                *self = MaybeQuantized::Quantized(l.to_quantized(params)?);
                Ok(())
            }
            MaybeQuantized::Quantized(_) => {
                Err(Error::invalid("quantize", format!("this {} is already quantized", L::KIND)))
            }
        }
    }
}

/// What [`quantize`]'s predicate decides for one layer (Python's `class_predicate` returning
/// `False`, `True` or a dict of `to_quantized` arguments).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QuantizeDecision {
    /// Keep the layer dense.
    Skip,
    /// Quantize with the settings given to [`quantize`].
    Default,
    /// Quantize with these settings (a per-path override, as mlx-lm's config entries).
    With(QuantizationParams),
}

/// Replaces, in place, every dense [`MaybeQuantized`] layer of `model` for which
/// `predicate(path, layer)` does not say [`QuantizeDecision::Skip`] by its quantized form
/// (`mlx.nn.quantize(model, group_size, bits, mode=..., class_predicate=...)`). `None` group
/// size or bits take the mode's default. Already quantized layers are left alone. An error names
/// the layer's path.
///
/// ```
/// use mlx_rs::nn::{self, Linear, MaybeQuantized, Module, QuantizeDecision};
/// use mlx_rs::quantization::{QuantizationMode, QuantizationParams};
/// #[derive(Module)]
/// struct Mlp { up: MaybeQuantized<Linear>, down: MaybeQuantized<Linear> }
/// let mut mlp = Mlp { up: Linear::new(64, 128, false)?.into(), down: Linear::new(128, 64, true)?.into() };
/// nn::quantize(&mut mlp, QuantizationParams::default(), |path, _| {
///     if path == "down" { QuantizeDecision::With(QuantizationParams { group_size: Some(32), bits: Some(8), mode: QuantizationMode::Affine }) }
///     else { QuantizeDecision::Default }
/// })?;
/// assert_eq!(mlp.parameters().paths(), [
///     "up.weight", "up.scales", "up.biases",
///     "down.weight", "down.scales", "down.biases", "down.bias",
/// ]);
/// assert_eq!(mlp.trainable_parameters().paths(), ["down.bias"]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn quantize<M: Module + ?Sized>(
    model: &mut M,
    params: QuantizationParams,
    mut predicate: impl FnMut(&str, &dyn Quantizable) -> QuantizeDecision,
) -> Result<()> {
    model.visit_quantizable(&mut String::new(), &mut |path, layer| {
        if layer.is_quantized() {
            return Ok(());
        }
        let chosen = match predicate(path, &*layer) {
            QuantizeDecision::Skip => return Ok(()),
            QuantizeDecision::Default => params,
            QuantizeDecision::With(p) => p,
        };
        layer.quantize(chosen).with_context(|| format!("quantizing `{path}`"))
    })
}
