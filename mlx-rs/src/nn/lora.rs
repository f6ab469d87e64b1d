//! Low-rank adapters as mlx-lm's `tuner/lora.py`: [`LoRALinear`] and [`LoRASwitchLinear`].
//!
//! # Initialisation
//! As mlx-lm's: `lora_a` is uniform in `±1/sqrt(input_dims)` (float32, drawn from the global
//! random state, see [`crate::random::seed`]) and `lora_b` is zeros, so a fresh adapter leaves
//! the layer's output unchanged. The draws do not line up with Python's for the same seed
//! (mlx-lm's `from_base` first builds, and throws away, a randomly initialised base layer);
//! adapters are moved between the two by their weights, whose names and shapes match.

use crate::error::{Error, Result};
use crate::nn::linear::uniform_init;
use crate::nn::{
    Dropout, Linear, MaybeQuantized, Module, Param, QuantizedLinear, QuantizedSwitchLinear,
    SwitchLinear,
};
use crate::ops::IndexArray;
use crate::quantization::{self, GatherIndices, Quantized};
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

/// `(num_experts, output_dims, input_dims)` of a dense or quantized [`SwitchLinear`].
fn switch_dims(linear: &MaybeQuantized<SwitchLinear>) -> Result<(i32, i32, i32)> {
    match linear {
        MaybeQuantized::Dense(l) => match l.weight.shape() {
            &[e, o, i] => Ok((e, o, i)),
            s => Err(Error::invalid(
                "LoRASwitchLinear",
                format!("expert weights must be 3-D, got shape {s:?}"),
            )),
        },
        MaybeQuantized::Quantized(q) => {
            let (w, sc) = (q.weight.shape(), q.scales.shape());
            if w.len() != 3 || sc.len() != 3 {
                return Err(Error::invalid(
                    "LoRASwitchLinear",
                    format!("quantized expert weights must be 3-D, got {w:?} and scales {sc:?}"),
                ));
            }
            Ok((w[0], w[1], sc[2] * q.group_size))
        }
    }
}

/// The dense weight of a [`QuantizedSwitchLinear`] or [`QuantizedLinear`].
pub(crate) fn dequantized(
    weight: &Param,
    scales: &Param,
    biases: &Option<Param>,
    params: quantization::QuantizationParams,
) -> Result<Array> {
    let parts = Quantized {
        weights: weight.value().clone(),
        scales: scales.value().clone(),
        biases: biases.as_ref().map(|b| b.value().clone()),
    };
    quantization::dequantize(&parts, params, None)
}

/// Low-rank adapters on the experts of a mixture-of-experts layer (mlx-lm's
/// `LoRASwitchLinear`): per selected expert `e`,
/// `y = linear(x, e) + scale * (dropout(x) @ lora_a[e]ᵀ) @ lora_b[e]ᵀ`.
///
/// Parameters as in mlx-lm: `linear.*` (a [`SwitchLinear`] or [`QuantizedSwitchLinear`]),
/// `lora_a` `[num_experts, r, input_dims]`, `lora_b` `[num_experts, output_dims, r]`.
///
/// ```
/// use mlx_rs::nn::{LoRASwitchLinear, Module, SwitchLinear};
/// use mlx_rs::{Array, Dtype, ops};
/// let base = SwitchLinear::new(8, 16, 4, false)?;
/// let lora = LoRASwitchLinear::from_base(base.clone().into(), 2, 0.0, 20.0)?;
/// assert_eq!(lora.parameters().paths(), ["linear.weight", "lora_a", "lora_b"]);
/// assert_eq!(lora.lora_a.shape(), [4, 2, 8]);
/// let x = ops::ones(&[3, 1, 1, 8], Dtype::Float32)?;
/// let idx = Array::from_slice(&[0i32, 1, 2, 3, 3, 0], &[3, 2])?;
/// // lora_b starts at zero: the adapted layer equals its base.
/// let (y, y0) = (lora.forward(&x, &idx, false)?, base.forward(&x, &idx, false)?);
/// assert_eq!(y.shape(), [3, 2, 1, 16]);
/// assert_eq!(y.to_vec::<f32>()?, y0.to_vec::<f32>()?);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[derive(Clone, Debug, Module)]
pub struct LoRASwitchLinear {
    /// The adapted experts; their parameters keep their frozen state.
    pub linear: MaybeQuantized<SwitchLinear>,
    /// Dropout on the adapters' input.
    pub dropout: Dropout,
    /// `[num_experts, r, input_dims]`, uniform in `±1/sqrt(input_dims)`.
    pub lora_a: Param,
    /// `[num_experts, output_dims, r]`, zeros.
    pub lora_b: Param,
    /// Scale of the low-rank update.
    pub scale: f32,
}

impl LoRASwitchLinear {
    /// Wraps `linear` (`LoRASwitchLinear.from_base(linear, r, dropout, scale)`; mlx-lm's
    /// defaults are `r = 8`, `dropout = 0`, `scale = 20`).
    pub fn from_base(
        linear: MaybeQuantized<SwitchLinear>,
        r: i32,
        dropout: f32,
        scale: f32,
    ) -> Result<LoRASwitchLinear> {
        if r <= 0 {
            return Err(Error::invalid(
                "LoRASwitchLinear",
                format!("rank must be positive, got {r}"),
            ));
        }
        let (experts, output_dims, input_dims) = switch_dims(&linear)?;
        if input_dims <= 0 {
            return Err(Error::invalid("LoRASwitchLinear", "input_dims must be positive"));
        }
        let bound = (1.0 / f64::from(input_dims)).sqrt() as f32;
        Ok(LoRASwitchLinear {
            linear,
            dropout: Dropout::new(dropout)?,
            lora_a: Param::new(uniform_init(&[experts, r, input_dims], bound)?),
            lora_b: Param::new(ops::zeros(&[experts, output_dims, r], Dtype::Float32)?),
            scale,
        })
    }

    /// The number of experts.
    pub fn num_experts(&self) -> i32 {
        self.lora_a.shape().first().copied().unwrap_or(0)
    }

    /// As [`SwitchLinear::forward`], plus the selected experts' low-rank updates:
    /// `x` `[..., 1, input]` and `indices` `[..., k]` give `[..., k, 1, output]`, in `x`'s
    /// dtype. `sorted` says the indices are sorted.
    pub fn forward(&self, x: &Array, indices: &dyn IndexArray, sorted: bool) -> Result<Array> {
        let y = self.linear.forward_gather(x, indices, sorted)?;
        let gather = || GatherIndices { lhs: None, rhs: Some(indices), sorted };
        let a = self.lora_a.swapaxes(-1, -2)?;
        let z = quantization::gather_mm(&self.dropout.forward(x)?, &a, gather())?;
        let b = self.lora_b.swapaxes(-1, -2)?;
        let z = quantization::gather_mm(&z, &b, gather())?;
        &y + (&z * self.scale)?.astype(x.dtype())?
    }

    /// The experts with the updates merged into their weights (`fuse(dequantize)`):
    /// `weight[e] += scale * lora_b[e] @ lora_a[e]`. A quantized base is re-quantized with its
    /// settings unless `dequantize`.
    pub fn fuse(&self, dequantize: bool) -> Result<MaybeQuantized<SwitchLinear>> {
        let (weight, bias, quantized) = match &self.linear {
            MaybeQuantized::Dense(l) => (l.weight.value().clone(), l.bias.clone(), None),
            MaybeQuantized::Quantized(q) => {
                let w = dequantized(&q.weight, &q.scales, &q.biases, q.params())?;
                (w, q.bias.clone(), Some(q.params()))
            }
        };
        let delta = (&*self.lora_b * self.scale)?.matmul(&*self.lora_a)?.astype(weight.dtype())?;
        let fused =
            SwitchLinear::from_weights((&weight + &delta)?, bias.map(|b| b.value().clone()))?;
        match quantized {
            Some(params) if !dequantize => Ok(MaybeQuantized::Quantized(
                QuantizedSwitchLinear::from_switch_linear(&fused, params)?,
            )),
            _ => Ok(MaybeQuantized::Dense(fused)),
        }
    }
}

impl crate::nn::GatherForward for LoRASwitchLinear {
    fn forward_gather(&self, x: &Array, indices: &dyn IndexArray, sorted: bool) -> Result<Array> {
        self.forward(x, indices, sorted)
    }
}
