//! `Linear`, as `mlx.nn.Linear`.

use crate::error::{Error, Result};
use crate::nn::{Module, Param};
use crate::{Array, Dtype, random};

/// `y = x Wᵀ + b` (`mlx.nn.Linear`): `weight` is `[output_dims, input_dims]`, `bias`
/// `[output_dims]` when present.
#[derive(Clone, Debug, Module)]
pub struct Linear {
    /// `[output_dims, input_dims]`.
    pub weight: Param,
    /// `[output_dims]`, if the layer has a bias.
    pub bias: Option<Param>,
    #[module(training)]
    training: bool,
}

/// A uniform sample in `[-scale, scale)` (Python's layer initialisation).
pub(crate) fn uniform_init(shape: &[i32], scale: f32) -> Result<Array> {
    random::uniform(&Array::scalar(-scale), &Array::scalar(scale), shape, Dtype::Float32, None)
}

impl Linear {
    /// A layer initialised as Python's: weight and bias uniform in `±1/sqrt(input_dims)`.
    pub fn new(input_dims: i32, output_dims: i32, bias: bool) -> Result<Linear> {
        if input_dims <= 0 || output_dims <= 0 {
            return Err(Error::invalid(
                "Linear",
                format!("dimensions must be positive, got {input_dims} -> {output_dims}"),
            ));
        }
        let scale = (1.0 / f64::from(input_dims)).sqrt() as f32;
        let weight = uniform_init(&[output_dims, input_dims], scale)?;
        let bias = if bias { Some(uniform_init(&[output_dims], scale)?) } else { None };
        Linear::from_weights(weight, bias)
    }

    /// A layer with the given weight (`[output_dims, input_dims]`) and optional bias
    /// (`[output_dims]`).
    pub fn from_weights(weight: Array, bias: Option<Array>) -> Result<Linear> {
        if weight.ndim() != 2 {
            return Err(Error::invalid(
                "Linear",
                format!("weight must be 2-D, got shape {:?}", weight.shape()),
            ));
        }
        if let Some(b) = &bias
            && b.shape() != [weight.shape()[0]]
        {
            return Err(Error::invalid(
                "Linear",
                format!("bias shape {:?} does not match weight {:?}", b.shape(), weight.shape()),
            ));
        }
        Ok(Linear { weight: Param::new(weight), bias: bias.map(Param::new), training: true })
    }

    /// `input_dims`, `output_dims`.
    pub fn dims(&self) -> (i32, i32) {
        (self.weight.shape()[1], self.weight.shape()[0])
    }

    /// `x Wᵀ + b` over the last axis of `x`.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        match &self.bias {
            Some(b) => crate::ops::addmm(b, x, &self.weight.t()?, 1.0, 1.0),
            None => x.matmul(self.weight.t()?),
        }
    }
}

crate::nn::impl_forward!(Linear);
