//! Low-rank adapters as mlx-lm's `tuner/lora.py`: [`LoRALinear`].

use crate::error::{Error, Result};
use crate::nn::linear::uniform_init;
use crate::nn::{Dropout, Linear, MaybeQuantized, Module, Param, QuantizedLinear};
use crate::quantization::{self, Quantized};
use crate::{Array, Dtype, ops};

/// A linear layer (dense or quantized) plus a trainable low-rank update (mlx-lm's
/// `LoRALinear`): `y = linear(x) + scale * (dropout(x) @ lora_a) @ lora_b`. Parameters as in
/// mlx-lm: `linear.*`, `lora_a` `[input, r]`, `lora_b` `[r, output]`.
#[derive(Clone, Debug, Module)]
pub struct LoRALinear {
    /// The adapted layer; its parameters keep their frozen state.
    pub linear: MaybeQuantized<Linear>,
    /// Dropout on the adapter's input.
    pub dropout: Dropout,
    /// `[input_dims, r]`, uniform in `±1/sqrt(input_dims)`.
    pub lora_a: Param,
    /// `[r, output_dims]`, zeros.
    pub lora_b: Param,
    /// Scale of the low-rank update.
    pub scale: f32,
}

impl LoRALinear {
    /// Wraps `linear` (`LoRALinear.from_base(linear, r, dropout, scale)`; mlx-lm's defaults are
    /// `r = 8`, `dropout = 0`, `scale = 20`).
    pub fn from_base(
        linear: MaybeQuantized<Linear>,
        r: i32,
        dropout: f32,
        scale: f32,
    ) -> Result<LoRALinear> {
        let (output_dims, input_dims) = match &linear {
            MaybeQuantized::Dense(l) => (l.weight.shape()[0], l.weight.shape()[1]),
            MaybeQuantized::Quantized(q) => {
                (q.weight.shape()[0], q.weight.shape()[1] * 32 / q.bits)
            }
        };
        if r <= 0 {
            return Err(Error::invalid("LoRALinear", format!("rank must be positive, got {r}")));
        }
        let bound = (1.0 / f64::from(input_dims)).sqrt() as f32;
        Ok(LoRALinear {
            linear,
            dropout: Dropout::new(dropout)?,
            lora_a: Param::new(uniform_init(&[input_dims, r], bound)?),
            lora_b: Param::new(ops::zeros(&[r, output_dims], Dtype::Float32)?),
            scale,
        })
    }

    /// `linear(x) + scale * (dropout(x) @ lora_a) @ lora_b`, in `x`'s dtype.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let y = self.linear.forward(x)?;
        let z = self.dropout.forward(x)?.matmul(&*self.lora_a)?.matmul(&*self.lora_b)?;
        &y + (&z * self.scale)?.astype(x.dtype())?
    }

    /// The layer with the update merged into its weight (`fuse(dequantize)`): a quantized base
    /// is re-quantized with its settings unless `dequantize`.
    pub fn fuse(&self, dequantize: bool) -> Result<MaybeQuantized<Linear>> {
        let (weight, bias, quantized) = match &self.linear {
            MaybeQuantized::Dense(l) => (l.weight.value().clone(), l.bias.clone(), None),
            MaybeQuantized::Quantized(q) => {
                let parts = Quantized {
                    weights: q.weight.value().clone(),
                    scales: q.scales.value().clone(),
                    biases: q.biases.as_ref().map(|b| b.value().clone()),
                };
                let w = quantization::dequantize(&parts, q.params(), None)?;
                (w, q.bias.clone(), Some(q.params()))
            }
        };
        let delta =
            (self.lora_b.t()? * self.scale)?.matmul(self.lora_a.t()?)?.astype(weight.dtype())?;
        let fused = Linear::from_weights((&weight + &delta)?, bias.map(|b| b.value().clone()))?;
        match quantized {
            Some(params) if !dequantize => {
                Ok(MaybeQuantized::Quantized(QuantizedLinear::from_linear(&fused, params)?))
            }
            _ => Ok(MaybeQuantized::Dense(fused)),
        }
    }
}

crate::nn::impl_forward!(LoRALinear);
