//! `Embedding`, as `mlx.nn.Embedding`.

use crate::error::{Error, Result};
use crate::nn::{Module, Param};
use crate::{Array, Dtype, ops, random};

/// A lookup table of `num_embeddings` vectors of `dims` values (`mlx.nn.Embedding`).
#[derive(Clone, Debug, Module)]
pub struct Embedding {
    /// `[num_embeddings, dims]`.
    pub weight: Param,
    #[module(training)]
    training: bool,
}

impl Embedding {
    /// A table initialised as Python's: normal with standard deviation `sqrt(1/dims)`.
    pub fn new(num_embeddings: i32, dims: i32) -> Result<Embedding> {
        if num_embeddings <= 0 || dims <= 0 {
            return Err(Error::invalid(
                "Embedding",
                format!("sizes must be positive, got {num_embeddings} x {dims}"),
            ));
        }
        let scale = (1.0 / f64::from(dims)).sqrt() as f32;
        let weight = random::normal(&[num_embeddings, dims], Dtype::Float32, 0.0, scale, None)?;
        Embedding::from_weight(weight)
    }

    /// A table with the given `[num_embeddings, dims]` weight.
    pub fn from_weight(weight: Array) -> Result<Embedding> {
        if weight.ndim() != 2 {
            return Err(Error::invalid(
                "Embedding",
                format!("weight must be 2-D, got shape {:?}", weight.shape()),
            ));
        }
        Ok(Embedding { weight: Param::new(weight), training: true })
    }

    /// The rows of the table for the integer indices `x` (shape `x.shape() + [dims]`).
    /// Out-of-range indices are clamped (see [`ops::take`]).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        ops::take(&self.weight, x, 0)
    }

    /// `x Wᵀ`: the table used as an output projection (tied embeddings).
    pub fn as_linear(&self, x: &Array) -> Result<Array> {
        x.matmul(self.weight.t()?)
    }
}

crate::nn::impl_forward!(Embedding);
