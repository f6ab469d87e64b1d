//! `Dropout`, as `mlx.nn.Dropout`.

use crate::error::{Error, Result};
use crate::nn::Module;
use crate::{Array, kernels};

/// Zeroes each element with probability `p` in training mode and scales the rest by
/// `1 / (1 - p)`; the identity in evaluation mode (`mlx.nn.Dropout`).
#[derive(Clone, Debug, Module)]
pub struct Dropout {
    /// The keep probability `1 - p`.
    keep: f32,
    #[module(training)]
    training: bool,
}

impl Dropout {
    /// Drop probability `p` in `[0, 1)` (Python's default is `0.5`).
    pub fn new(p: f32) -> Result<Dropout> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid("Dropout", format!("p must be in [0, 1), got {p}")));
        }
        Ok(Dropout { keep: 1.0 - p, training: true })
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        1.0 - self.keep
    }

    /// Applies dropout with the global random state (seed it with
    /// [`random::seed`](crate::random::seed)), through
    /// [`kernels::dropout()`] (the fused kernel where the policy allows; the same values either
    /// way).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        if !self.training {
            return Ok(x.clone());
        }
        kernels::dropout::dropout_keep(x, self.keep, None)
    }
}

crate::nn::impl_forward!(Dropout);
