//! `RMSNorm` and `LayerNorm`, as in `mlx.nn`.

use crate::error::{Error, Result};
use crate::nn::{Module, Param};
use crate::{Array, Dtype, fast, ops};

fn check_dims(op: &'static str, dims: i32) -> Result<()> {
    if dims <= 0 {
        return Err(Error::invalid(op, format!("dims must be positive, got {dims}")));
    }
    Ok(())
}

/// Root-mean-square normalization over the last axis with a learned scale
/// (`mlx.nn.RMSNorm`; `weight` starts at ones).
#[derive(Clone, Debug, Module)]
pub struct RmsNorm {
    /// `[dims]`.
    pub weight: Param,
    /// Added to the mean square.
    pub eps: f32,
    #[module(training)]
    training: bool,
}

impl RmsNorm {
    /// `dims` features, `eps` (Python's default is `1e-5`).
    pub fn new(dims: i32, eps: f32) -> Result<RmsNorm> {
        check_dims("RMSNorm", dims)?;
        Ok(RmsNorm { weight: Param::new(ops::ones(&[dims], Dtype::Float32)?), eps, training: true })
    }

    /// `x / sqrt(mean(x²) + eps) * weight` over the last axis.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        fast::rms_norm(x, Some(&self.weight), self.eps)
    }
}

/// Layer normalization over the last axis (`mlx.nn.LayerNorm`): with `affine`, a learned
/// `weight` (ones) and, with `bias`, a learned `bias` (zeros).
#[derive(Clone, Debug, Module)]
pub struct LayerNorm {
    /// `[dims]`, when affine.
    pub weight: Option<Param>,
    /// `[dims]`, when affine with a bias.
    pub bias: Option<Param>,
    /// Added to the variance.
    pub eps: f32,
    #[module(training)]
    training: bool,
}

impl LayerNorm {
    /// `dims` features; Python's defaults are `eps = 1e-5`, `affine = true`, `bias = true`.
    pub fn new(dims: i32, eps: f32, affine: bool, bias: bool) -> Result<LayerNorm> {
        check_dims("LayerNorm", dims)?;
        let (weight, bias) = if affine {
            let w = Param::new(ops::ones(&[dims], Dtype::Float32)?);
            let b =
                if bias { Some(Param::new(ops::zeros(&[dims], Dtype::Float32)?)) } else { None };
            (Some(w), b)
        } else {
            (None, None)
        };
        Ok(LayerNorm { weight, bias, eps, training: true })
    }

    /// `(x - mean) / sqrt(var + eps) * weight + bias` over the last axis.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        fast::layer_norm(x, self.weight.as_deref(), self.bias.as_deref(), self.eps)
    }
}

crate::nn::impl_forward!(RmsNorm, LayerNorm);
