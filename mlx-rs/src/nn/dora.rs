//! Weight-decomposed low-rank adapters as mlx-lm's `tuner/dora.py`: [`DoRALinear`] and
//! [`DoRAEmbedding`].
//!
//! DoRA keeps LoRA's low-rank update and adds a trainable magnitude `m`, one value per output
//! row: the adapted weight `W + scale · (lora_a @ lora_b)ᵀ` has its rows renormalised to norm
//! `m`. `m` starts as the row norms of the base weight, so a fresh adapter (with `lora_b` zero)
//! leaves the layer unchanged.
//!
//! # Initialisation
//! As mlx-lm's: `lora_a` is uniform in `±1/sqrt(n)` (`n` the input dimension, or the number of
//! embeddings), float32, drawn from the global random state (see [`crate::random::seed`]);
//! `lora_b` is zeros. The draws do not line up with Python's for the same seed (mlx-lm's
//! `from_base` first builds, and throws away, a randomly initialised base layer); adapters move
//! between the two by their weights, whose names and shapes match.

use crate::error::{Error, Result};
use crate::nn::linear::uniform_init;
use crate::nn::lora::dequantized;
use crate::nn::{Dropout, Embedding, Linear, MaybeQuantized, Module, Param, QuantizedLinear};
use crate::{Array, Dtype, linalg, ops, transforms};

/// The norm of each row of a 2-D weight (axis 1).
fn row_norms(w: &Array) -> Result<Array> {
    linalg::norm(w, None, Some(&[1]), false)
}

/// The two dimensions of a 2-D array, or an error naming `what`.
fn dims2(op: &'static str, what: &str, a: &Array) -> Result<(i32, i32)> {
    match a.shape() {
        &[rows, cols] => Ok((rows, cols)),
        s => Err(Error::invalid(op, format!("{what} must be 2-D, got shape {s:?}"))),
    }
}

fn check_rank(op: &'static str, r: i32) -> Result<()> {
    if r <= 0 {
        return Err(Error::invalid(op, format!("rank must be positive, got {r}")));
    }
    Ok(())
}

/// A linear layer (dense or quantized) with a DoRA adapter (mlx-lm's `DoRALinear`):
/// `y = m / ‖W'‖ᵣₒᵥᵥ · (x Wᵀ + scale · (dropout(x) @ lora_a) @ lora_b) + bias`, where
/// `W' = W + scale · (lora_a @ lora_b)ᵀ` and the row norms `‖W'‖` are not differentiated
/// through (as in mlx-lm).
///
/// Parameters as in mlx-lm: `linear.*`, `m` `[output_dims]`, `lora_a` `[input_dims, r]`,
/// `lora_b` `[r, output_dims]`.
///
/// ```
/// use mlx_rs::nn::{DoRALinear, Linear, Module};
/// use mlx_rs::{Dtype, ops};
/// let base = Linear::new(8, 4, true)?;
/// let dora = DoRALinear::from_base(base.clone().into(), 2, 0.0, 20.0)?;
/// assert_eq!(
///     dora.parameters().paths(),
///     ["linear.weight", "linear.bias", "m", "lora_a", "lora_b"]
/// );
/// let x = ops::ones(&[3, 8], Dtype::Float32)?;
/// let (y, y0) = (dora.forward(&x)?, base.forward(&x)?);
/// let diff = (&y - &y0)?.abs()?.max(.., false)?.item::<f32>()?;
/// assert!(diff < 1e-5);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[derive(Clone, Debug, Module)]
pub struct DoRALinear {
    /// The adapted layer; its parameters keep their frozen state.
    pub linear: MaybeQuantized<Linear>,
    /// The magnitude of each output row, `[output_dims]` float32.
    pub m: Param,
    /// Dropout on the adapter's input.
    pub dropout: Dropout,
    /// `[input_dims, r]`, uniform in `±1/sqrt(input_dims)`.
    pub lora_a: Param,
    /// `[r, output_dims]`, zeros.
    pub lora_b: Param,
    /// Scale of the low-rank update.
    pub scale: f32,
}

impl DoRALinear {
    /// Wraps `linear` (`DoRALinear.from_base(linear, r, dropout, scale)`; mlx-lm's defaults are
    /// `r = 8`, `dropout = 0`, `scale = 20`); `m` is the base weight's row norms.
    pub fn from_base(
        linear: MaybeQuantized<Linear>,
        r: i32,
        dropout: f32,
        scale: f32,
    ) -> Result<DoRALinear> {
        check_rank("DoRALinear", r)?;
        let weight = dense_weight(&linear)?;
        let (output_dims, input_dims) = dims2("DoRALinear", "the base weight", &weight)?;
        let bound = (1.0 / f64::from(input_dims)).sqrt() as f32;
        Ok(DoRALinear {
            m: Param::new(row_norms(&weight.astype(Dtype::Float32)?)?),
            linear,
            dropout: Dropout::new(dropout)?,
            lora_a: Param::new(uniform_init(&[input_dims, r], bound)?),
            lora_b: Param::new(ops::zeros(&[r, output_dims], Dtype::Float32)?),
            scale,
        })
    }

    /// Replaces the base layer and resets `m` to its row norms (`set_linear`). The new layer
    /// must have the same shape.
    pub fn set_linear(&mut self, linear: MaybeQuantized<Linear>) -> Result<()> {
        let weight = dense_weight(&linear)?;
        const OP: &str = "DoRALinear::set_linear";
        let (_, output_dims) = dims2(OP, "lora_b", &self.lora_b)?;
        let (input_dims, _) = dims2(OP, "lora_a", &self.lora_a)?;
        let expected = [output_dims, input_dims];
        if weight.shape() != expected {
            return Err(Error::invalid(
                OP,
                format!("the new weight {:?} is not {:?}", weight.shape(), expected),
            ));
        }
        self.m = Param::new(row_norms(&weight.astype(Dtype::Float32)?)?);
        self.linear = linear;
        Ok(())
    }

    /// The base weight, dequantized if the base is quantized.
    pub fn dequantized_weight(&self) -> Result<Array> {
        dense_weight(&self.linear)
    }

    fn bias(&self) -> Option<&Param> {
        match &self.linear {
            MaybeQuantized::Dense(l) => l.bias.as_ref(),
            MaybeQuantized::Quantized(q) => q.bias.as_ref(),
        }
    }

    /// The layer's output (see the type's formula), in `x`'s dtype. A quantized base is
    /// dequantized first, as mlx-lm does.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let w = self.dequantized_weight()?;
        let y = x.matmul(w.t()?)?;
        let z = self.dropout.forward(x)?.matmul(&*self.lora_a)?.matmul(&*self.lora_b)?;
        let out = (&y + (&z * self.scale)?.astype(x.dtype())?)?;
        let update = (self.lora_b.t()? * self.scale)?.matmul(self.lora_a.t()?)?;
        let denom = transforms::stop_gradient(&row_norms(&(&w + &update)?)?)?;
        let out = ((&*self.m / &denom)?.astype(x.dtype())? * &out)?;
        match self.bias() {
            Some(b) => &out + &**b,
            None => Ok(out),
        }
    }

    /// The layer with the adapter merged (`fuse(dequantize)`): weight
    /// `m / ‖W'‖ · W'` per row. A quantized base is re-quantized with its settings unless
    /// `dequantize`.
    pub fn fuse(&self, dequantize: bool) -> Result<MaybeQuantized<Linear>> {
        let weight = self.dequantized_weight()?;
        let delta =
            (self.lora_b.t()? * self.scale)?.matmul(self.lora_a.t()?)?.astype(weight.dtype())?;
        let adapted = (&weight + &delta)?;
        let norm_scale = (&*self.m / &row_norms(&adapted)?)?;
        let fused_weight = (norm_scale.expand_dims(1)? * &adapted)?;
        let fused = Linear::from_weights(fused_weight, self.bias().map(|b| b.value().clone()))?;
        match &self.linear {
            MaybeQuantized::Quantized(q) if !dequantize => {
                Ok(MaybeQuantized::Quantized(QuantizedLinear::from_linear(&fused, q.params())?))
            }
            _ => Ok(MaybeQuantized::Dense(fused)),
        }
    }
}

fn dense_weight(linear: &MaybeQuantized<Linear>) -> Result<Array> {
    match linear {
        MaybeQuantized::Dense(l) => Ok(l.weight.value().clone()),
        MaybeQuantized::Quantized(q) => dequantized(&q.weight, &q.scales, &q.biases, q.params()),
    }
}

crate::nn::impl_forward!(DoRALinear);

/// An embedding table with a DoRA adapter (mlx-lm's `DoRAEmbedding`; dense tables only, as in
/// mlx-lm): row `i` is `m[i] / ‖E'[i]‖ · E'[i]` with `E' = weight + scale · lora_a @ lora_b`.
///
/// Parameters as in mlx-lm: `embedding.weight`, `m` `[num_embeddings]`, `lora_a`
/// `[num_embeddings, r]`, `lora_b` `[r, dims]`.
#[derive(Clone, Debug, Module)]
pub struct DoRAEmbedding {
    /// The adapted table; its parameter keeps its frozen state.
    pub embedding: Embedding,
    /// The magnitude of each row, `[num_embeddings]`.
    pub m: Param,
    /// Dropout on the low-rank update.
    pub dropout: Dropout,
    /// `[num_embeddings, r]`, uniform in `±1/sqrt(num_embeddings)`.
    pub lora_a: Param,
    /// `[r, dims]`, zeros.
    pub lora_b: Param,
    /// Scale of the low-rank update.
    pub scale: f32,
}

impl DoRAEmbedding {
    /// Wraps `embedding` (`DoRAEmbedding.from_base(embedding, r, dropout, scale)`); `m` is the
    /// table's row norms.
    pub fn from_base(
        embedding: Embedding,
        r: i32,
        dropout: f32,
        scale: f32,
    ) -> Result<DoRAEmbedding> {
        check_rank("DoRAEmbedding", r)?;
        let (num_embeddings, dims) =
            dims2("DoRAEmbedding", "the embedding table", &embedding.weight)?;
        let bound = (1.0 / f64::from(num_embeddings)).sqrt() as f32;
        Ok(DoRAEmbedding {
            m: Param::new(row_norms(&embedding.weight)?),
            embedding,
            dropout: Dropout::new(dropout)?,
            lora_a: Param::new(uniform_init(&[num_embeddings, r], bound)?),
            lora_b: Param::new(ops::zeros(&[r, dims], Dtype::Float32)?),
            scale,
        })
    }

    /// The adapted rows for the integer indices `x` (out-of-range indices are clamped). As in
    /// mlx-lm, dropout applies to the update in the output but not in the norm.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let y = self.embedding.forward(x)?;
        let z = (ops::take(&self.lora_a, x, 0)? * self.scale)?.matmul(&*self.lora_b)?;
        let out = (&y + self.dropout.forward(&z)?.astype(y.dtype())?)?;
        let denom =
            transforms::stop_gradient(&linalg::norm(&(&y + &z)?, None, Some(&[-1]), false)?)?;
        let ratio = (ops::take(&self.m, x, 0)? / &denom)?;
        ratio.expand_dims(-1)? * &out
    }

    /// `x E'ᵀ` with the adapted, renormalised table (tied output projection).
    pub fn as_linear(&self, x: &Array) -> Result<Array> {
        let y = self.embedding.as_linear(x)?;
        let z = self.dropout.forward(x)?.matmul(self.lora_b.t()?)?.matmul(self.lora_a.t()?)?;
        let out = (&y + (&z * self.scale)?.astype(x.dtype())?)?;
        let update = (&*self.lora_a * self.scale)?.matmul(&*self.lora_b)?;
        let denom = transforms::stop_gradient(&row_norms(&(&*self.embedding.weight + &update)?)?)?;
        (&*self.m / &denom)? * &out
    }

    /// The table with the adapter merged (`fuse()`): row `i` is `m[i] / ‖E'[i]‖ · E'[i]`.
    pub fn fuse(&self) -> Result<Embedding> {
        let weight = self.embedding.weight.value();
        let update = (&*self.lora_a * self.scale)?.matmul(&*self.lora_b)?.astype(weight.dtype())?;
        let adapted = (weight + &update)?;
        let norm_scale = (&*self.m / &row_norms(&adapted)?)?;
        Embedding::from_weight((norm_scale.expand_dims(1)? * &adapted)?)
    }
}

crate::nn::impl_forward!(DoRAEmbedding);
