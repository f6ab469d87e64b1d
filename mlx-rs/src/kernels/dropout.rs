//! Dropout's mask and scale in one fused elementwise GPU pass (CUDA source in `dropout.cu`,
//! Metal in `dropout.metal`), bit for bit equal to [`nn::Dropout`](crate::nn::Dropout)'s ops for
//! the same key.
//!
//! [`random::bernoulli`] with keep probability `k` is `float(bits) < k * nextafter(2^32, inf)`
//! over `random::bits(shape, 4, key)`, so the kernel takes those very bits (one MLX op, drawn
//! from the same key or the same step of the global random state) and does the comparison, the
//! mask and the scale by `1 / k` in one pass, where MLX's ops make four (compare, mask, scale,
//! and the threshold). The products are exact in float32 for every supported dtype, so the
//! result equals `(bernoulli(k) * x) * (1 / k)` exactly, signed zeros and NaNs included. It is
//! differentiable: the backward pass is those ops' derivative, `mask * (cotangent * (1 / k))`.
//!
//! The kernel takes float32, bfloat16 and float16 arrays on the GPU (CUDA or Metal); everything
//! else runs MLX's ops (see [`dropout_support`]), chosen by the process policy
//! [`fused()`](super::fused()) as in [`activation`](super::activation).

use std::cell::RefCell;
use std::rc::Rc;

use half::{bf16, f16};

use crate::error::{Error, Result};
use crate::fast::kernel::{Kernel, KernelBackend, KernelLaunch, KernelSource, TemplateArg};
use crate::kernels::elementwise::{self, SizeCrossover, THREADS};
use crate::kernels::fused;
use crate::transforms::{self, Function};
use crate::{Array, Dtype, ops, random};

const CUDA_HEADER: [&str; 3] =
    [super::CUDA_CONVERSIONS, include_str!("elementwise.cu"), include_str!("dropout.cu")];
const CUDA_BODY: &str =
    "mlx_rs_elementwise::dropout<T>(x, bits, threshold, scale, out, x_shape[0]);";
const METAL_HEADER: &str = include_str!("dropout.metal");
const METAL_BODY: &str = r"
    const int W = 16 / sizeof(T);
    const long n = x_shape[0];
    const long first = long(thread_position_in_grid.x) * W;
    const long last = first + W < n ? first + W : n;
    for (long i = first; i < last; ++i) {
        float y = mlx_rs_elementwise::drop(bits[i], static_cast<float>(x[i]), threshold[0], scale[0]);
        out[i] = static_cast<T>(y);
    }
";

/// From how many elements the CUDA kernel measured faster than MLX's ops, per dtype.
///
/// Empty: on an NVIDIA H200 (MLX 0.32.2 CUDA, bfloat16; `fused_paths`,
/// `benches/results/kernels-nvidia-h200-2026-12-02/fused-paths-gpu.md`) the kernel beat the
/// plain ops (1.04–1.57×) but never `transforms::compile` of them (0.49–0.87×), so
/// [`Fused::Auto`](super::Fused::Auto) keeps MLX's ops everywhere.
pub const CUDA_CROSSOVERS: &[SizeCrossover] = &[];

/// Zeroes each element of `x` with probability `p` in `[0, 1)` and scales the rest by
/// `1 / (1 - p)`, with random bits from `key` (the global random state when `None`), as
/// [`nn::Dropout`](crate::nn::Dropout) in training mode: the same key gives the same result
/// whether the kernel or MLX's ops run. `p = 0` returns `x` and draws nothing.
///
/// ```
/// use mlx_rs::{Array, kernels, random};
/// let x = Array::from_slice(&[1.0f32; 8], &[8])?;
/// let y = kernels::dropout(&x, 0.5, Some(&random::key(0)?))?;
/// assert!(y.to_vec::<f32>()?.iter().all(|&v| v == 0.0 || v == 2.0));
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn dropout(x: &Array, p: f32, key: Option<&Array>) -> Result<Array> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::invalid("dropout", format!("p must be in [0, 1), got {p}")));
    }
    dropout_keep(x, 1.0 - p, key)
}

/// [`dropout`] with the keep probability `keep` = `1 - p` in `(0, 1]` (checked by the caller).
pub(crate) fn dropout_keep(x: &Array, keep: f32, key: Option<&Array>) -> Result<Array> {
    const OP: &str = "dropout";
    if keep == 1.0 {
        return Ok(x.clone());
    }
    let supported = support(x);
    if !elementwise::use_kernel(fused(), &supported, CUDA_CROSSOVERS, x.dtype(), x.size()) {
        let mask = random::bernoulli(&Array::scalar(keep), Some(x.shape()), key)?;
        return (&mask * x)? * (1.0 / keep);
    }
    let n = i32::try_from(x.size()).map_err(|_| Error::invalid(OP, "too many elements"))?;
    let bits = random::bits(x.shape(), 4, key)?.reshape([n])?;
    let threshold = Array::from_slice(&[keep * below_two_pow_32_next()], &[1])?;
    let scale = Array::from_slice(&[scale_in(x.dtype(), 1.0 / keep)], &[1])?;
    let out = differentiable()?.apply(&[x.reshape([n])?, bits, threshold, scale])?;
    match out.first() {
        Some(out) => out.reshape(x.shape()),
        None => Err(Error::invalid(OP, "the kernel returned no output")),
    }
}

/// Why the fused kernel cannot take `x` on the thread's default stream (`Err` with the reason),
/// or `Ok` when it can.
pub fn dropout_support(x: &Array) -> std::result::Result<(), String> {
    support(x).map(|_| ())
}

fn support(x: &Array) -> std::result::Result<KernelBackend, String> {
    elementwise::check_array(x)?;
    elementwise::gpu_backend()
}

/// The factor [`random::bernoulli`] multiplies the probability by: the float32 after
/// `u32::MAX` as float32 (2^32), so that probability 1 keeps every draw.
fn below_two_pow_32_next() -> f32 {
    f32::from_bits((u32::MAX as f32).to_bits() + 1)
}

/// `scale` as a scalar operand of `dtype` holds it (rounded to the dtype), back in float32.
fn scale_in(dtype: Dtype, scale: f32) -> f32 {
    match dtype {
        Dtype::Bfloat16 => bf16::from_f64(f64::from(scale)).to_f32(),
        Dtype::Float16 => f16::from_f64(f64::from(scale)).to_f32(),
        _ => scale,
    }
}

thread_local! {
    /// The kernel of this thread's GPU backend, built once.
    static KERNEL: RefCell<Option<(KernelBackend, Rc<Kernel>)>> = const { RefCell::new(None) };
    /// The differentiable wrapper, built once per thread.
    static FUNCTION: RefCell<Option<Rc<Function>>> = const { RefCell::new(None) };
}

fn kernel(backend: KernelBackend) -> Result<Rc<Kernel>> {
    KERNEL.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some((b, k)) = slot.as_ref()
            && *b == backend
        {
            return Ok(k.clone());
        }
        let inputs = ["x", "bits", "threshold", "scale"];
        let mut source = KernelSource::new("mlx_rs_dropout", &inputs, &["out"], "");
        (source.header, source.source) = match backend {
            KernelBackend::Cuda => (CUDA_HEADER.concat(), CUDA_BODY.to_owned()),
            KernelBackend::Metal => (METAL_HEADER.to_owned(), METAL_BODY.to_owned()),
        };
        let k = Rc::new(Kernel::new(backend, &source)?);
        *slot = Some((backend, k.clone()));
        Ok(k)
    })
}

/// The kernel on `[x, bits, threshold, scale]`: flat `x` and uint32 `bits` of `n` elements,
/// float32 `[1]` threshold and scale.
fn launch(inputs: &[Array]) -> Result<Vec<Array>> {
    const OP: &str = "dropout";
    let [x, bits, threshold, scale] = inputs else {
        return Err(Error::invalid(OP, "the kernel takes [x, bits, threshold, scale]"));
    };
    let backend = support(x).map_err(|why| Error::invalid(OP, why))?;
    let n = x.shape().first().copied().unwrap_or(0);
    if bits.shape() != x.shape() || bits.dtype() != Dtype::Uint32 {
        return Err(Error::invalid(OP, "bits must be uint32 with the shape of x"));
    }
    let dtype = x.dtype();
    let mut launch =
        KernelLaunch::new(vec![(vec![n], dtype)], elementwise::grid(n, dtype), (THREADS, 1, 1));
    launch.template_args = vec![("T".into(), TemplateArg::Dtype(dtype))];
    kernel(backend)?.apply(&[x, bits, threshold, scale], &launch)
}

fn differentiable() -> Result<Rc<Function>> {
    if let Some(f) = FUNCTION.with(|cell| cell.borrow().clone()) {
        return Ok(f);
    }
    let f = Rc::new(with_plain_vjp(launch)?);
    FUNCTION.with(|cell| *cell.borrow_mut() = Some(f.clone()));
    Ok(f)
}

/// `forward` on `[x, bits, threshold, scale]` with the derivative of MLX's dropout ops:
/// `mask * (cotangent * scale)` for `x`, zero for the rest.
fn with_plain_vjp(
    forward: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static,
) -> Result<Function> {
    transforms::custom_vjp(forward, |primals, cotangents, _outputs| {
        let ([_, bits, threshold, scale], [cotangent]) = (primals, cotangents) else {
            return Err(Error::invalid("dropout", "unexpected vjp arguments"));
        };
        let mask = ops::less(&bits.astype(Dtype::Float32)?, threshold)?;
        let scaled = (cotangent * scale.astype(cotangent.dtype())?)?;
        let mut grads = vec![ops::multiply(&mask, &scaled)?];
        for p in &primals[1..] {
            grads.push(ops::zeros_like(p, None)?);
        }
        Ok(grads)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's comparison reproduces `bernoulli`'s mask from the same key.
    #[test]
    fn threshold_of_bits_is_bernoulli() -> Result<()> {
        for (seed, keep) in [(0, 0.5f32), (1, 0.9), (2, 0.1), (3, 0.999)] {
            let key = random::key(seed)?;
            let want = random::bernoulli(&Array::scalar(keep), Some(&[3, 1001]), Some(&key))?;
            let bits = random::bits(&[3, 1001], 4, Some(&key))?.astype(Dtype::Float32)?;
            let got = ops::less(&bits, &Array::scalar(keep * below_two_pow_32_next()))?;
            assert_eq!(got.to_vec::<bool>()?, want.to_vec::<bool>()?, "keep {keep}");
        }
        Ok(())
    }

    /// The wrapper's gradient is the ops' one though the forward has none (`stop_gradient`).
    #[test]
    fn wrapper_gradient_is_the_mask_times_the_scale() -> Result<()> {
        let key = random::key(5)?;
        let x = random::normal(&[64], Dtype::Float32, 0.0, 1.0, Some(&key))?;
        let bits = random::bits(&[64], 4, Some(&key))?;
        let keep = 0.75f32;
        let threshold = Array::from_slice(&[keep * below_two_pow_32_next()], &[1])?;
        let scale = Array::from_slice(&[1.0 / keep], &[1])?;
        let wrapped = with_plain_vjp(move |p| {
            let mask = ops::less(&p[1].astype(Dtype::Float32)?, &p[2])?;
            Ok(vec![((&mask * &transforms::stop_gradient(&p[0])?)? * (1.0 / keep))?])
        })?;
        let cot = random::normal(&[64], Dtype::Float32, 0.0, 1.0, Some(&random::key(6)?))?;
        let inputs = [&x, &bits, &threshold, &scale];
        let (_, grads) = transforms::vjp(|p| wrapped.apply(p), &inputs, &[&cot])?;
        let mask = random::bernoulli(&Array::scalar(keep), Some(&[64]), Some(&key))?;
        let plain = |p: &[Array]| Ok(vec![((&mask * &p[0])? * (1.0 / keep))?]);
        let (_, want) = transforms::vjp(plain, &[&x], &[&cot])?;
        assert_eq!(grads[0].to_vec::<f32>()?, want[0].to_vec::<f32>()?);
        assert!(grads[0].to_vec::<f32>()?.iter().any(|&g| g != 0.0));
        Ok(())
    }
}
