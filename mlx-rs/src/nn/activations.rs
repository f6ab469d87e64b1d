//! Activation functions (`mlx.nn.silu`, `gelu`, ...) and their unit modules (`nn.SiLU`, ...).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::Array;
use crate::error::{Error, Result};
use crate::nn::{Module, Param, Quantizable};
use crate::transforms::{self, Function};

/// `x * sigmoid(x)` (`nn.silu`), compiled for every shape as MLX compiles it: one fused
/// element-wise kernel instead of two, which in decode saves a graph node per call.
pub fn silu(x: &Array) -> Result<Array> {
    compiled("silu", &[x], |x| silu_ops(&x[0]))
}

/// `silu(gate) * up`, the gated unit of SwiGLU feed-forward blocks (mlx-lm's `swiglu`),
/// compiled for every shape as mlx-lm compiles it: one fused kernel instead of three. Inputs of
/// different shapes (broadcasting) or dtypes take the ops as written.
pub fn swiglu(gate: &Array, up: &Array) -> Result<Array> {
    if gate.shape() != up.shape() || gate.dtype() != up.dtype() {
        return swiglu_ops(gate, up);
    }
    compiled("swiglu", &[gate, up], |x| swiglu_ops(&x[0], &x[1]))
}

fn silu_ops(x: &Array) -> Result<Array> {
    x * x.sigmoid()?
}

fn swiglu_ops(gate: &Array, up: &Array) -> Result<Array> {
    silu_ops(gate)? * up
}

thread_local! {
    /// The element-wise activations compiled shapeless, by name, built by each thread's first
    /// call (MLX's streams and compiled functions belong to their thread).
    static COMPILED: RefCell<HashMap<&'static str, Rc<Function>>> = RefCell::new(HashMap::new());
}

/// `ops(inputs)` through this thread's shapeless compile of `ops` named `name`. Integer and
/// boolean inputs take `ops` directly (they are promoted on the way, which a fused kernel
/// gains nothing from).
fn compiled(
    name: &'static str,
    inputs: &[&Array],
    ops: fn(&[Array]) -> Result<Array>,
) -> Result<Array> {
    if !inputs.iter().all(|x| x.dtype().is_floating()) {
        let owned: Vec<Array> = inputs.iter().map(|x| (*x).clone()).collect();
        return ops(&owned);
    }
    let f = COMPILED.with(|cell| -> Result<Rc<Function>> {
        if let Some(f) = cell.borrow().get(name) {
            return Ok(f.clone());
        }
        // SAFETY: `ops` is element-wise (no gather, take, scatter or slice), so one trace is
        // valid for inputs of every shape.
        let f = Rc::new(unsafe {
            transforms::compile_shapeless(move |x: &[Array]| Ok(vec![ops(x)?]))
        }?);
        cell.borrow_mut().insert(name, f.clone());
        Ok(f)
    })?;
    f.apply(inputs)?
        .pop()
        .ok_or_else(|| Error::invalid(name, "the compiled activation returned no output"))
}

/// `x * (1 + erf(x / sqrt(2))) / 2` (`nn.gelu`).
pub fn gelu(x: &Array) -> Result<Array> {
    let cdf = ((x / std::f32::consts::SQRT_2)?.erf()? + 1.0)?;
    (x * &cdf)? / 2.0
}

/// `0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))` (`nn.gelu_approx`).
pub fn gelu_approx(x: &Array) -> Result<Array> {
    let c = (2.0 / std::f64::consts::PI).sqrt() as f32;
    let cube = x.power(Array::scalar(3.0f32).astype(x.dtype())?)?;
    let inner = ((x + (&cube * 0.044715f32)?)? * c)?;
    (x * 0.5f32)? * (inner.tanh()? + 1.0)?
}

/// `x * sigmoid(1.702 x)` (`nn.gelu_fast_approx`).
pub fn gelu_fast_approx(x: &Array) -> Result<Array> {
    x * (x * 1.702f32)?.sigmoid()?
}

/// `max(x, 0)` (`nn.relu`).
pub fn relu(x: &Array) -> Result<Array> {
    x.maximum(Array::scalar(0.0f32).astype(x.dtype())?)
}

/// `max(slope x, x)` (`nn.leaky_relu`; Python's default slope is `0.01`).
pub fn leaky_relu(x: &Array, negative_slope: f32) -> Result<Array> {
    (x * negative_slope)?.maximum(x)
}

/// `1 / (1 + exp(-x))` (`nn.sigmoid`).
pub fn sigmoid(x: &Array) -> Result<Array> {
    x.sigmoid()
}

/// `tanh(x)` (`nn.tanh`).
pub fn tanh(x: &Array) -> Result<Array> {
    x.tanh()
}

/// Softmax over `axis` (`nn.softmax`; Python's default axis is `-1`).
pub fn softmax(x: &Array, axis: i32) -> Result<Array> {
    x.softmax(axis, false)
}

/// `x - logsumexp(x, axis)` (`nn.log_softmax`; Python's default axis is `-1`).
pub fn log_softmax(x: &Array, axis: i32) -> Result<Array> {
    x - x.logsumexp(axis, true)?
}

/// Implements [`Module`] for a layer without parameters or training flag.
macro_rules! stateless_module {
    ($($t:ty),*) => {$(
        impl Module for $t {
            fn visit_parameters<'a>(&'a self, _: &mut String, _: &mut dyn FnMut(&str, &'a Param)) {}
            fn visit_parameters_mut(
                &mut self,
                _: &mut String,
                _: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
            ) -> Result<()> {
                Ok(())
            }
            fn visit_quantizable(
                &mut self,
                _: &mut String,
                _: &mut dyn FnMut(&str, &mut dyn Quantizable) -> Result<()>,
            ) -> Result<()> {
                Ok(())
            }
            fn train(&mut self, _: bool) {}
            fn training_state(&self) -> Option<bool> {
                None
            }
        }
    )*};
}

/// [`silu`] as a layer (`nn.SiLU`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Silu;
/// [`relu`] as a layer (`nn.ReLU`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Relu;
/// [`sigmoid`] as a layer (`nn.Sigmoid`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sigmoid;
/// [`tanh`] as a layer (`nn.Tanh`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Tanh;
/// [`softmax`] over the last axis as a layer (`nn.Softmax`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Softmax;
/// [`log_softmax`] over the last axis as a layer (`nn.LogSoftmax`).
#[derive(Clone, Copy, Debug, Default)]
pub struct LogSoftmax;
/// [`leaky_relu`] as a layer (`nn.LeakyReLU`).
#[derive(Clone, Copy, Debug)]
pub struct LeakyRelu {
    /// The slope for negative inputs.
    pub negative_slope: f32,
}
impl Default for LeakyRelu {
    /// Python's default slope, `0.01`.
    fn default() -> Self {
        LeakyRelu { negative_slope: 0.01 }
    }
}

/// Which GELU formula [`Gelu`] applies (`nn.GELU(approx=...)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GeluApprox {
    /// The exact [`gelu`] (`"none"`).
    #[default]
    None,
    /// [`gelu_approx`] (`"precise"` or `"tanh"`).
    Precise,
    /// [`gelu_fast_approx`] (`"fast"`).
    Fast,
}

/// GELU as a layer (`nn.GELU`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Gelu {
    /// The formula.
    pub approx: GeluApprox,
}

stateless_module!(Silu, Relu, Sigmoid, Tanh, Softmax, LogSoftmax, LeakyRelu, Gelu);

impl Silu {
    /// [`silu`].
    pub fn forward(&self, x: &Array) -> Result<Array> {
        silu(x)
    }
}
impl Relu {
    /// [`relu`].
    pub fn forward(&self, x: &Array) -> Result<Array> {
        relu(x)
    }
}
impl Sigmoid {
    /// [`sigmoid`].
    pub fn forward(&self, x: &Array) -> Result<Array> {
        sigmoid(x)
    }
}
impl Tanh {
    /// [`tanh`].
    pub fn forward(&self, x: &Array) -> Result<Array> {
        tanh(x)
    }
}
impl Softmax {
    /// [`softmax`] over the last axis.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        softmax(x, -1)
    }
}
impl LogSoftmax {
    /// [`log_softmax`] over the last axis.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        log_softmax(x, -1)
    }
}
impl LeakyRelu {
    /// [`leaky_relu`].
    pub fn forward(&self, x: &Array) -> Result<Array> {
        leaky_relu(x, self.negative_slope)
    }
}
impl Gelu {
    /// The chosen GELU formula.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        match self.approx {
            GeluApprox::None => gelu(x),
            GeluApprox::Precise => gelu_approx(x),
            GeluApprox::Fast => gelu_fast_approx(x),
        }
    }
}

crate::nn::impl_forward!(Silu, Relu, Sigmoid, Tanh, Softmax, LogSoftmax, LeakyRelu, Gelu);
