//! Which quantized expert matmul a mixture-of-experts layer uses for its (token, expert) pairs,
//! sorted by expert: MLX's `gather_qmm`, dequantizing every expert then `gather_mm`, or the
//! crate's [`grouped_qmm`](super::grouped_qmm()) kernel.
//!
//! Under [`Fused::Auto`] the choice follows the [`crossovers`] of the GPU backend: on CUDA
//! [`CUDA_CROSSOVERS`], measured by `cargo run --release -p mlx-benches --bin moe_paths` on the
//! GPU (the run's table is in `benches/results/`); on Metal [`METAL_CROSSOVERS`], empty until
//! that bench runs on a Mac, so `Auto` keeps `gather_qmm` there; [`Fused::On`] takes the kernel wherever it supports the case and
//! [`Fused::Off`] always `gather_qmm`. The dequantized path is there to be measured and chosen
//! explicitly ([`dequantized_gather_mm`]).

use crate::error::Result;
use crate::fast::kernel::KernelBackend;
use crate::kernels::{Fused, gpu_backend, grouped_qmm_support};
use crate::ops::IndexArray;
use crate::quantization::{self, GatherIndices, QuantizationParams, Quantized};
use crate::{Array, Dtype};

/// The expert matmul of a sorted MoE layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpertMatmul {
    /// MLX's `gather_qmm` (one product per pair).
    GatherQmm,
    /// Every expert dequantized to the activations' dtype, then `gather_mm`'s sorted path.
    Dequantized,
    /// The crate's grouped kernel.
    Grouped,
}

impl ExpertMatmul {
    /// A short name for tables (`gather_qmm`, `dequantized`, `grouped`).
    pub fn name(self) -> &'static str {
        match self {
            ExpertMatmul::GatherQmm => "gather_qmm",
            ExpertMatmul::Dequantized => "dequantized",
            ExpertMatmul::Grouped => "grouped",
        }
    }
}

/// A measured crossover on one GPU backend for one bit width, in (token, expert) pairs per expert (pairs /
/// experts): from how many a path beats `gather_qmm` at every model shape measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crossover {
    /// Bits per weight.
    pub bits: i32,
    /// Pairs per expert from which [`ExpertMatmul::Grouped`] is faster.
    pub grouped_from: f64,
}

/// The crossovers measured on an NVIDIA H200 (MLX 0.32.2 CUDA, bfloat16 activations) at the
/// expert shapes of GLM-4.5-Air (3 bits), Qwen3-30B-A3B and Mixtral-8x7B (4 bits), 1 to 2048
/// tokens (`benches/results/kernels-nvidia-h200-2026-12-01/moe-paths-gpu.md`): each is the
/// first measured count after the last one where `gather_qmm` was faster. Bit widths not
/// measured keep `gather_qmm` under [`Fused::Auto`]. The dequantized path never beat the
/// grouped kernel, and float32 activations (where it could stand in) were not measured, so
/// `Auto` does not pick it.
pub const CUDA_CROSSOVERS: &[Crossover] =
    &[Crossover { bits: 3, grouped_from: 0.5 }, Crossover { bits: 4, grouped_from: 8.0 }];

/// The crossovers measured on Apple GPUs: none yet (the Metal kernel has not been timed), so
/// [`Fused::Auto`] never picks [`ExpertMatmul::Grouped`] on Metal.
pub const METAL_CROSSOVERS: &[Crossover] = &[];

/// The crossovers [`Fused::Auto`] follows on `backend`.
pub fn crossovers(backend: KernelBackend) -> &'static [Crossover] {
    match backend {
        KernelBackend::Cuda => CUDA_CROSSOVERS,
        KernelBackend::Metal => METAL_CROSSOVERS,
    }
}

/// The path for `pairs` sorted pairs of activations of `dtype` through experts `w` quantized
/// with `params`, under `policy`.
pub fn choose(
    policy: Fused,
    pairs: usize,
    dtype: Dtype,
    w: &Quantized,
    params: QuantizationParams,
) -> ExpertMatmul {
    if policy == Fused::Off {
        return ExpertMatmul::GatherQmm;
    }
    let grouped = grouped_qmm_support(dtype, w, params).is_ok();
    if policy == Fused::On {
        return if grouped { ExpertMatmul::Grouped } else { ExpertMatmul::GatherQmm };
    }
    let bits = params.bits.unwrap_or(4);
    let experts = w.weights.shape().first().copied().unwrap_or(1).max(1);
    let per_expert = pairs as f64 / f64::from(experts);
    let measured = gpu_backend().map_or(&[][..], crossovers);
    match measured.iter().find(|c| c.bits == bits) {
        Some(c) if grouped && per_expert >= c.grouped_from => ExpertMatmul::Grouped,
        _ => ExpertMatmul::GatherQmm,
    }
}

/// The dequantize-then-`gather_mm` product: `x` `[pairs, 1, K]` (sorted by expert) through the
/// experts `indices` `[pairs]`, `[pairs, 1, N]`.
pub fn dequantized_gather_mm(
    x: &Array,
    indices: &dyn IndexArray,
    w: &Quantized,
    params: QuantizationParams,
) -> Result<Array> {
    let dense = quantization::dequantize(w, params, Some(x.dtype()))?;
    quantization::gather_mm(
        x,
        &dense.swapaxes(-1, -2)?,
        GatherIndices { lhs: None, rhs: Some(indices), sorted: true },
    )
}
