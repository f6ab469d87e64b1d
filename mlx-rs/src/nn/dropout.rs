//! `Dropout`, as `mlx.nn.Dropout`.

use crate::error::{Error, Result};
use crate::nn::Module;
use crate::{Array, random};

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

    /// Applies dropout with the global random state (seed it with [`random::seed`]).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        if self.keep == 1.0 || !self.training {
            return Ok(x.clone());
        }
        let mask = random::bernoulli(&Array::scalar(self.keep), Some(x.shape()), None)?;
        (&mask * x)? * (1.0 / self.keep)
    }
}

crate::nn::impl_forward!(Dropout);
