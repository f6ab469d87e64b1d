//! `Sequential`, as `mlx.nn.Sequential`.

use crate::Array;
use crate::error::{Context, Result};
use crate::nn::{Forward, Module, Param, Quantizable};

/// A [`Module`] that is also a [`Forward`] layer: what [`Sequential`] holds.
pub trait Layer: Module + Forward {}
impl<T: Module + Forward> Layer for T {}

/// Layers applied one after the other (`mlx.nn.Sequential`); parameters are under
/// `layers.N`, as in Python.
///
/// ```
/// use mlx_rs::nn::{Linear, Module, Relu, Sequential};
/// let mlp = Sequential::new()
///     .push(Linear::new(4, 8, true)?)
///     .push(Relu)
///     .push(Linear::new(8, 2, false)?);
/// assert_eq!(mlp.parameters().paths(), ["layers.0.weight", "layers.0.bias", "layers.2.weight"]);
/// let y = mlp.forward(&mlx_rs::ops::ones(&[3, 4], mlx_rs::Dtype::Float32)?)?;
/// assert_eq!(y.shape(), [3, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[derive(Default)]
pub struct Sequential {
    /// The layers, in order.
    pub layers: Vec<Box<dyn Layer>>,
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential").field("layers", &self.layers.len()).finish()
    }
}

impl Sequential {
    /// No layers (the identity).
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a layer.
    pub fn push(mut self, layer: impl Layer + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    /// Applies the layers in order; an error names the failing layer.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let mut x = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x).with_context(|| format!("in `layers.{i}`"))?;
        }
        Ok(x)
    }
}

impl Forward for Sequential {
    fn forward(&self, x: &Array) -> Result<Array> {
        Sequential::forward(self, x)
    }
}

impl Module for Sequential {
    fn visit_parameters<'a>(&'a self, path: &mut String, f: &mut dyn FnMut(&str, &'a Param)) {
        let len = path.len();
        crate::nn::push_key(path, "layers");
        self.layers.visit_parameters(path, f);
        path.truncate(len);
    }

    fn visit_parameters_mut(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        let len = path.len();
        crate::nn::push_key(path, "layers");
        let r = self.layers.visit_parameters_mut(path, f);
        path.truncate(len);
        r
    }

    fn visit_quantizable(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut dyn Quantizable) -> Result<()>,
    ) -> Result<()> {
        let len = path.len();
        crate::nn::push_key(path, "layers");
        let r = self.layers.visit_quantizable(path, f);
        path.truncate(len);
        r
    }

    fn train(&mut self, mode: bool) {
        self.layers.train(mode);
    }

    fn training_state(&self) -> Option<bool> {
        self.layers.training_state()
    }
}
