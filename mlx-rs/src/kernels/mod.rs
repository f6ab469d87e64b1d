//! Custom GPU kernels for model hot paths, and the switch that decides where model code uses
//! them.
//!
//! - [`grouped_qmm()`]: the quantized expert matmul of mixture-of-experts layers for many
//!   (token, expert) pairs (prefill), one kernel (CUDA and Metal) in place of `gather_qmm`'s
//!   per-pair products.
//! - [`gather_qmv()`], [`gather_qmv_swiglu()`]: the quantized expert products of a few (token,
//!   expert) pairs (decode), and [`quantized_matvec()`] of one row through a quantized linear
//!   layer, one warp per output element (CUDA).
//! - [`swiglu()`], [`geglu()`] ([`activation`]) and [`dropout()`] ([`dropout`](mod@dropout)):
//!   fused elementwise kernels (CUDA and Metal) for feed-forward blocks and training.
//! - [`expert_matmul`]: which of `gather_qmm`, dequantize-then-`gather_mm` and [`grouped_qmm()`]
//!   an MoE layer uses, from measured crossovers.
//! - [`routing`]: an MoE layer's router (top-k experts and weights) for Qwen3-MoE
//!   ([`softmax_topk`]), Mixtral ([`topk_softmax`]) and GLM-4.5 ([`glm_topk`]), one kernel per
//!   token row; [`gather_add()`] mixes the chosen experts' outputs.
//!
//! [`set_fused`] chooses the policy for the whole process: [`Fused::Off`] keeps MLX's own ops
//! everywhere, [`Fused::On`] uses every kernel wherever it supports the case, and
//! [`Fused::Auto`] (the default) only where it measured faster on the device and shape class.
//! Every crossover so far was measured on CUDA, so under `Auto` no kernel runs on Metal.
//! Every kernel falls back to MLX's ops for cases it does not handle (CPU, float32, shapes).

pub mod activation;
pub mod dropout;
pub mod elementwise;
pub mod expert_matmul;
pub mod gather_add;
pub mod gather_qmv;
pub mod grouped_qmm;
pub mod routing;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

pub use activation::{GatedActivation, gated_support, geglu, swiglu};
pub use dropout::{dropout, dropout_support};
pub use expert_matmul::ExpertMatmul;
pub use gather_add::{gather_add, gather_add_support};
pub use gather_qmv::{
    gather_qmv, gather_qmv_support, gather_qmv_swiglu, quantized_matvec, quantized_matvec_support,
};
pub use grouped_qmm::{grouped_qmm, grouped_qmm_support};
pub use routing::{
    GroupedTopk, glm_topk, glm_topk_support, softmax_topk, softmax_topk_support, topk_softmax,
    topk_softmax_support,
};

/// Where model code uses the crate's own kernels in place of MLX's ops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fused {
    /// Only where the kernel measured faster for the device and shape class (the default).
    #[default]
    Auto,
    /// Wherever a kernel supports the case.
    On,
    /// Never: MLX's ops only.
    Off,
}

impl Fused {
    /// `"auto"`, `"on"` or `"off"`.
    pub fn name(self) -> &'static str {
        match self {
            Fused::Auto => "auto",
            Fused::On => "on",
            Fused::Off => "off",
        }
    }
}

impl fmt::Display for Fused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fused {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Fused> {
        match s {
            "auto" => Ok(Fused::Auto),
            "on" => Ok(Fused::On),
            "off" => Ok(Fused::Off),
            other => Err(crate::Error::invalid(
                "fused",
                format!("{other:?} is not a fused-kernel policy (auto, on or off)"),
            )),
        }
    }
}

/// True when the loaded MLX has the CUDA backend and the thread's default stream is on the GPU.
pub(crate) fn on_cuda_gpu() -> bool {
    crate::fast::kernel::KernelBackend::Cuda.is_available()
        && crate::Stream::thread_default()
            .and_then(|s| s.device())
            .is_ok_and(|d| d.device_type() == crate::DeviceType::Gpu)
}

/// The GPU backend whose kernels this crate can launch on the thread's default stream: CUDA or
/// Metal when the loaded MLX has it and the stream is on the GPU.
pub(crate) fn gpu_backend() -> Option<crate::fast::kernel::KernelBackend> {
    use crate::fast::kernel::KernelBackend;
    if on_cuda_gpu() {
        return Some(KernelBackend::Cuda);
    }
    let on_gpu = crate::Stream::thread_default()
        .and_then(|s| s.device())
        .is_ok_and(|d| d.device_type() == crate::DeviceType::Gpu);
    (on_gpu && KernelBackend::Metal.is_available()).then_some(KernelBackend::Metal)
}

/// The float conversions every CUDA source of this module starts with (`convert.cu`).
pub(crate) const CUDA_CONVERSIONS: &str = include_str!("convert.cu");

/// The packing of quantized codes the quantized CUDA kernels read (`quantized_codes.cu`; after
/// [`CUDA_CONVERSIONS`]).
pub(crate) const CUDA_CODES: &str = include_str!("quantized_codes.cu");

/// The checks every quantized kernel makes of its operands: affine quantization with a valid
/// group size and bit width, bfloat16 or float16 activations with scales and biases of the same
/// dtype, and packed uint32 weights of `ndim` dimensions (`[experts, N, K * bits / 32]` or
/// `[N, K * bits / 32]`). The group size, the bits and the biases, or why not.
pub(crate) fn affine_operands<'w>(
    op: &'static str,
    dtype: crate::Dtype,
    w: &'w crate::quantization::Quantized,
    params: crate::quantization::QuantizationParams,
    ndim: usize,
) -> std::result::Result<(i32, i32, &'w crate::Array), String> {
    use crate::Dtype;
    if params.mode != crate::quantization::QuantizationMode::Affine {
        return Err(format!("{} quantization (only affine is supported)", params.mode.name()));
    }
    let (group_size, bits) = params.checked(op).map_err(|e| e.to_string())?;
    if !matches!(dtype, Dtype::Bfloat16 | Dtype::Float16) {
        return Err(format!("{dtype} activations (bfloat16 or float16 only)"));
    }
    let biases = w.biases.as_ref().ok_or("affine weights without biases")?;
    if w.scales.dtype() != dtype || biases.dtype() != dtype {
        return Err("scales and biases must have the activations' dtype".into());
    }
    if w.weights.ndim() != ndim || w.weights.dtype() != Dtype::Uint32 {
        let want = if ndim == 3 { "[experts, N, K * bits / 32]" } else { "[N, K * bits / 32]" };
        let (ws, wd) = (w.weights.shape(), w.weights.dtype());
        return Err(format!("weights {ws:?} of {wd} (want uint32 {want})"));
    }
    Ok((group_size, bits, biases))
}

/// The input dimension K of packed weights `[..., N, K * bits / 32]`.
pub(crate) fn packed_inputs(shape: &[i32], bits: i32) -> i32 {
    let packed = shape.last().copied().unwrap_or(0);
    (i64::from(packed) * 32 / i64::from(bits)).try_into().unwrap_or(i32::MAX)
}

static POLICY: AtomicU8 = AtomicU8::new(0);

/// Sets the fused-kernel policy of the process (it applies to graphs built afterwards).
pub fn set_fused(policy: Fused) {
    let code = match policy {
        Fused::Auto => 0,
        Fused::On => 1,
        Fused::Off => 2,
    };
    POLICY.store(code, Ordering::Relaxed);
}

/// The fused-kernel policy of the process ([`Fused::Auto`] unless [`set_fused`] changed it).
pub fn fused() -> Fused {
    match POLICY.load(Ordering::Relaxed) {
        1 => Fused::On,
        2 => Fused::Off,
        _ => Fused::Auto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip() {
        for p in [Fused::Auto, Fused::On, Fused::Off] {
            assert_eq!(p.name().parse::<Fused>().unwrap(), p);
            assert_eq!(p.to_string(), p.name());
        }
        let err = "fast".parse::<Fused>().unwrap_err().to_string();
        assert!(err.contains("auto, on or off"), "{err}");
    }
}
