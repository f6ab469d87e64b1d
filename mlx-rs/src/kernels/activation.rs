//! Gated activations of feed-forward blocks, `act(gate) * up`, as one fused elementwise GPU
//! kernel (CUDA source in `activation.cu`, Metal in `activation.metal`): [`swiglu`] (SiLU) and
//! [`geglu`] (the three GELU formulas of [`GeluApprox`]).
//!
//! MLX's ops make three to eight passes over memory (sigmoid, products, and for GELU the erf or
//! tanh chain), each rounding to the dtype; the kernel reads `gate` and `up` once, computes in
//! float32 and rounds once, so it is at least as accurate. It is differentiable: the backward
//! pass is MLX's own derivative of the plain ops ([`transforms::custom_vjp`]).
//!
//! The kernel takes float32, bfloat16 and float16 inputs of one shape and dtype on the GPU (CUDA
//! or Metal); everything else runs MLX's ops (see [`gated_support`]). Which one runs follows the
//! process policy [`fused()`](super::fused()): under [`Fused::Auto`](super::Fused::Auto) only where
//! [`CUDA_CROSSOVERS`] says the kernel is faster.

use std::cell::RefCell;
use std::rc::Rc;

use crate::Array;
use crate::error::{Error, Result};
use crate::fast::kernel::{Kernel, KernelBackend, KernelLaunch, KernelSource, TemplateArg};
use crate::kernels::elementwise::{self, SizeCrossover, THREADS};
use crate::kernels::fused;
use crate::nn::{self, GeluApprox};
use crate::transforms::{self, Function};

const CUDA_HEADER: [&str; 3] =
    [super::CUDA_CONVERSIONS, include_str!("elementwise.cu"), include_str!("activation.cu")];
const CUDA_BODY: &str = "mlx_rs_elementwise::gated<T, ACT>(gate, up, out, gate_shape[0]);";
const METAL_HEADER: &str = include_str!("activation.metal");
const METAL_BODY: &str = r"
    const int W = 16 / sizeof(T);
    const long n = gate_shape[0];
    const long first = long(thread_position_in_grid.x) * W;
    const long last = first + W < n ? first + W : n;
    for (long i = first; i < last; ++i) {
        float g = mlx_rs_elementwise::activate<ACT>(static_cast<float>(gate[i]));
        out[i] = static_cast<T>(g * static_cast<float>(up[i]));
    }
";

/// From how many elements the CUDA kernel measured faster than MLX's ops, per dtype.
///
/// Empty: on an NVIDIA H200 (MLX 0.32.2 CUDA, bfloat16; `cargo run --release -p mlx-benches
/// --bin fused_paths`, `benches/results/kernels-nvidia-h200-2026-12-02/fused-paths-gpu.md`)
/// the kernel beat the plain ops (1.15–1.91× SwiGLU, 1.78–3.63× GeGLU, from 8 tokens at every
/// preset width) but not `transforms::compile` of them below 2048 tokens (0.52–1.00×; 0.82–1.32×
/// at 2048), and it was not measured end to end. So [`Fused::Auto`](super::Fused::Auto) keeps
/// MLX's ops (as [`Fused::Off`](super::Fused::Off)); [`Fused::On`](super::Fused::On) uses the
/// kernel.
pub const CUDA_CROSSOVERS: &[SizeCrossover] = &[];

/// The activation applied to the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatedActivation {
    /// [`nn::silu`] (SwiGLU).
    Silu,
    /// [`nn::gelu`], [`nn::gelu_approx`] or [`nn::gelu_fast_approx`] (GeGLU).
    Gelu(GeluApprox),
}

impl GatedActivation {
    /// The kernel's `ACT` template argument (see `activation.cu`).
    fn code(self) -> i32 {
        match self {
            GatedActivation::Silu => 0,
            GatedActivation::Gelu(GeluApprox::None) => 1,
            GatedActivation::Gelu(GeluApprox::Precise) => 2,
            GatedActivation::Gelu(GeluApprox::Fast) => 3,
        }
    }

    /// `act(gate) * up` with MLX's ops, as [`nn`] computes it.
    pub fn plain(self, gate: &Array, up: &Array) -> Result<Array> {
        match self {
            GatedActivation::Silu => nn::swiglu(gate, up),
            GatedActivation::Gelu(GeluApprox::None) => nn::gelu(gate)? * up,
            GatedActivation::Gelu(GeluApprox::Precise) => nn::gelu_approx(gate)? * up,
            GatedActivation::Gelu(GeluApprox::Fast) => nn::gelu_fast_approx(gate)? * up,
        }
    }
}

/// `silu(gate) * up` ([`nn::swiglu`]) for `gate` and `up` of one shape, through the fused
/// kernel where the policy and [`gated_support`] allow, else MLX's ops.
///
/// ```
/// use mlx_rs::{Array, kernels, nn};
/// let (g, u) = (Array::from_slice(&[-1.0f32, 0.5, 2.0], &[3])?, Array::from_slice(&[3.0f32, 1.0, -1.0], &[3])?);
/// let fused = kernels::swiglu(&g, &u)?;
/// assert_eq!(fused.to_vec::<f32>()?, nn::swiglu(&g, &u)?.to_vec::<f32>()?);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn swiglu(gate: &Array, up: &Array) -> Result<Array> {
    gated(GatedActivation::Silu, gate, up)
}

/// `gelu(gate) * up` with the GELU formula `approx` ([`nn::gelu`], [`nn::gelu_approx`],
/// [`nn::gelu_fast_approx`]), as [`swiglu`] does it.
pub fn geglu(gate: &Array, up: &Array, approx: GeluApprox) -> Result<Array> {
    gated(GatedActivation::Gelu(approx), gate, up)
}

/// `activation(gate) * up`: the kernel or MLX's ops, as [`swiglu`] chooses. `gate` and `up`
/// must have the same shape (an `Err` otherwise, whichever path runs).
pub fn gated(activation: GatedActivation, gate: &Array, up: &Array) -> Result<Array> {
    const OP: &str = "gated_activation";
    if gate.shape() != up.shape() {
        return Err(Error::invalid(
            OP,
            format!("gate {:?} and up {:?} must have the same shape", gate.shape(), up.shape()),
        ));
    }
    let supported = support(gate, up);
    if !elementwise::use_kernel(fused(), &supported, CUDA_CROSSOVERS, gate.dtype(), gate.size()) {
        return activation.plain(gate, up);
    }
    let n = i32::try_from(gate.size()).map_err(|_| Error::invalid(OP, "too many elements"))?;
    let function = differentiable(activation)?;
    let out = function.apply(&[gate.reshape([n])?, up.reshape([n])?])?;
    match out.first() {
        Some(out) => out.reshape(gate.shape()),
        None => Err(Error::invalid(OP, "the kernel returned no output")),
    }
}

/// Why the fused kernel cannot take `gate` and `up` on the thread's default stream (`Err` with
/// the reason), or `Ok` when it can.
pub fn gated_support(gate: &Array, up: &Array) -> std::result::Result<(), String> {
    support(gate, up).map(|_| ())
}

fn support(gate: &Array, up: &Array) -> std::result::Result<KernelBackend, String> {
    if gate.shape() != up.shape() {
        return Err(format!("shapes {:?} and {:?} differ", gate.shape(), up.shape()));
    }
    if gate.dtype() != up.dtype() {
        return Err(format!("dtypes {} and {} differ", gate.dtype(), up.dtype()));
    }
    elementwise::check_array(gate)?;
    elementwise::gpu_backend()
}

thread_local! {
    /// The kernel of this thread's GPU backend, built once (MLX caches the compiled code by name
    /// and template arguments).
    static KERNEL: RefCell<Option<(KernelBackend, Rc<Kernel>)>> = const { RefCell::new(None) };
    /// The differentiable wrapper of each activation, built once per thread.
    static FUNCTIONS: RefCell<Vec<(GatedActivation, Rc<Function>)>> =
        const { RefCell::new(Vec::new()) };
}

fn kernel(backend: KernelBackend) -> Result<Rc<Kernel>> {
    KERNEL.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some((b, k)) = slot.as_ref()
            && *b == backend
        {
            return Ok(k.clone());
        }
        let mut source = KernelSource::new("mlx_rs_gated", &["gate", "up"], &["out"], "");
        (source.header, source.source) = match backend {
            KernelBackend::Cuda => (CUDA_HEADER.concat(), CUDA_BODY.to_owned()),
            KernelBackend::Metal => (METAL_HEADER.to_owned(), METAL_BODY.to_owned()),
        };
        let k = Rc::new(Kernel::new(backend, &source)?);
        *slot = Some((backend, k.clone()));
        Ok(k)
    })
}

/// The kernel on flat arrays `[gate, up]` of `n` elements.
fn launch(activation: GatedActivation, inputs: &[Array]) -> Result<Vec<Array>> {
    const OP: &str = "gated_activation";
    let [gate, up] = inputs else {
        return Err(Error::invalid(OP, "the kernel takes [gate, up]"));
    };
    let backend = support(gate, up).map_err(|why| Error::invalid(OP, why))?;
    let n = gate.shape().first().copied().unwrap_or(0);
    let dtype = gate.dtype();
    let mut launch =
        KernelLaunch::new(vec![(vec![n], dtype)], elementwise::grid(n, dtype), (THREADS, 1, 1));
    launch.template_args = vec![
        ("T".into(), TemplateArg::Dtype(dtype)),
        ("ACT".into(), TemplateArg::Int(activation.code())),
    ];
    kernel(backend)?.apply(&[gate, up], &launch)
}

/// [`launch`] wrapped so that its derivative is MLX's derivative of [`GatedActivation::plain`].
fn differentiable(activation: GatedActivation) -> Result<Rc<Function>> {
    if let Some(f) = FUNCTIONS
        .with(|cell| cell.borrow().iter().find(|(a, _)| *a == activation).map(|(_, f)| f.clone()))
    {
        return Ok(f);
    }
    let f = Rc::new(with_plain_vjp(activation, move |x| launch(activation, x))?);
    FUNCTIONS.with(|cell| cell.borrow_mut().push((activation, f.clone())));
    Ok(f)
}

/// `forward` on `[gate, up]`, with the vector-Jacobian product of the plain ops.
fn with_plain_vjp(
    activation: GatedActivation,
    forward: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static,
) -> Result<Function> {
    transforms::custom_vjp(forward, move |primals, cotangents, _outputs| {
        let plain = |x: &[Array]| Ok(vec![activation.plain(&x[0], &x[1])?]);
        Ok(transforms::vjp(plain, primals, cotangents)?.1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dtype, random};

    /// The wrapper's gradient is the plain ops' one even when the forward has none (as the
    /// kernel has none): here the forward sees its inputs through `stop_gradient`.
    #[test]
    fn wrapper_gradient_is_the_plain_gradient() -> Result<()> {
        let (kg, ku) = (random::key(3)?, random::key(4)?);
        let gate = random::normal(&[7], Dtype::Float32, 0.0, 1.0, Some(&kg))?;
        let up = random::normal(&[7], Dtype::Float32, 0.0, 1.0, Some(&ku))?;
        let cot = Array::from_slice(&[1.0f32, -2.0, 0.5, 3.0, 1.0, 0.25, -1.0], &[7])?;
        for activation in [GatedActivation::Silu, GatedActivation::Gelu(GeluApprox::None)] {
            let wrapped = with_plain_vjp(activation, move |x| {
                let (g, u) = (transforms::stop_gradient(&x[0])?, transforms::stop_gradient(&x[1])?);
                Ok(vec![activation.plain(&g, &u)?])
            })?;
            let (out, grads) =
                transforms::vjp(|x| wrapped.apply(x), &[&gate, &up], std::slice::from_ref(&cot))?;
            let plain = |x: &[Array]| Ok(vec![activation.plain(&x[0], &x[1])?]);
            let (want_out, want) =
                transforms::vjp(plain, &[&gate, &up], std::slice::from_ref(&cot))?;
            assert_eq!(out[0].to_vec::<f32>()?, want_out[0].to_vec::<f32>()?);
            for (g, w) in grads.iter().zip(&want) {
                assert_eq!(g.to_vec::<f32>()?, w.to_vec::<f32>()?, "{activation:?}");
            }
        }
        Ok(())
    }
}
