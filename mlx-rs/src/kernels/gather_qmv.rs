//! Quantized expert matrix-vector products for decode: `x[p / k] · dequantize(w[experts[p]])ᵀ`
//! for the few (token, expert) pairs of one decode step, in any order, as one CUDA kernel
//! (`gather_qmv.cu`); [`gather_qmv_swiglu`] computes a SwiGLU block's gate and up projections
//! and the activation in the same kernel, and [`quantized_matvec`] the product of one row through
//! a quantized linear layer's matrix.
//!
//! One warp computes one output element: it streams the expert's quantized weight row once, at
//! the memory bandwidth, where MLX 0.32's `gather_qmm` spends several microseconds per pair at
//! one token (see [`expert_matmul`](super::expert_matmul)). Supported: MLX's CUDA backend with
//! the default stream on the GPU, bfloat16 or float16 activations (scales and biases of the
//! same dtype), affine quantization with 2, 3, 4, 5, 6 or 8 bits and group size 32, 64 or 128;
//! [`gather_qmv_support`] says why a case is not. No Metal twin: on Apple GPUs the MoE layers
//! keep `gather_qmm`.

use std::cell::RefCell;

use crate::error::{Error, Result};
use crate::fast::kernel::{Kernel, KernelBackend, KernelLaunch, KernelSource, TemplateArg};
use crate::kernels::{Fused, gpu_backend};
use crate::quantization::{QuantizationParams, Quantized};
use crate::{Array, Dtype};

const CUDA_SOURCE: &str = include_str!("gather_qmv.cu");

/// Threads per block: eight warps, one output element each.
const THREADS: i32 = 256;
/// Output elements per block.
const COLUMNS_PER_BLOCK: i32 = 8;
/// The most pairs one launch takes (CUDA's limit on the grid's second dimension).
const MAX_PAIRS: usize = 65_535;

const PLAIN_BODY: &str = "mlx_rs_kernels::gather_qmv<T, BITS, GROUP_SIZE, N, K, PAIRS_PER_ROW, \
                          false, false>(x, experts, w, scales, biases, w, scales, biases, out, \
                          x_shape[0], w_shape[0]);";
const GLU_BODY: &str = "mlx_rs_kernels::gather_qmv<T, BITS, GROUP_SIZE, N, K, PAIRS_PER_ROW, \
                        true, false>(x, experts, w, scales, biases, w_up, scales_up, biases_up, \
                        out, x_shape[0], w_shape[0]);";
const DENSE_BODY: &str = "mlx_rs_kernels::gather_qmv<T, BITS, GROUP_SIZE, N, K, 1, false, true>(\
                          x, nullptr, w, scales, biases, w, scales, biases, out, ROWS, 1);";

/// Which of the three kernels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    Swiglu,
    Dense,
}

thread_local! {
    /// The plain, the SwiGLU and the dense kernel, built once per thread (MLX caches the
    /// compiled code by name and template arguments).
    static KERNELS: RefCell<Option<[Kernel; 3]>> = const { RefCell::new(None) };
}

fn with_kernel<T>(variant: Variant, f: impl FnOnce(&Kernel) -> Result<T>) -> Result<T> {
    KERNELS.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let header = [super::CUDA_CONVERSIONS, super::CUDA_CODES, CUDA_SOURCE].concat();
            let inputs = ["x", "experts", "w", "scales", "biases"];
            let mut plain = KernelSource::new("mlx_rs_gather_qmv", &inputs, &["out"], PLAIN_BODY);
            plain.header = header.clone();
            let glu_inputs = [&inputs[..], &["w_up", "scales_up", "biases_up"]].concat();
            let mut swiglu =
                KernelSource::new("mlx_rs_gather_qmv_swiglu", &glu_inputs, &["out"], GLU_BODY);
            swiglu.header = header.clone();
            let dense_inputs = ["x", "w", "scales", "biases"];
            let mut dense =
                KernelSource::new("mlx_rs_quantized_matvec", &dense_inputs, &["out"], DENSE_BODY);
            dense.header = header;
            *slot = Some([
                Kernel::new(KernelBackend::Cuda, &plain)?,
                Kernel::new(KernelBackend::Cuda, &swiglu)?,
                Kernel::new(KernelBackend::Cuda, &dense)?,
            ]);
        }
        match slot.as_ref() {
            Some([plain, swiglu, dense]) => f(match variant {
                Variant::Plain => plain,
                Variant::Swiglu => swiglu,
                Variant::Dense => dense,
            }),
            None => Err(Error::invalid("gather_qmv", "kernels unavailable")),
        }
    })
}

/// Why [`gather_qmv`] cannot take activations of `dtype` through the expert weights `w`
/// (`[experts, N, K * bits / 32]`, quantized with `params`) on the thread's default stream
/// (`Err` with the reason), or `Ok` when it can.
pub fn gather_qmv_support(
    dtype: Dtype,
    w: &Quantized,
    params: QuantizationParams,
) -> std::result::Result<(), String> {
    support(dtype, w, params, 3)
}

/// Why [`quantized_matvec`] cannot take activations of `dtype` through the matrix `w`
/// (`[N, K * bits / 32]`, quantized with `params`), or `Ok` when it can.
pub fn quantized_matvec_support(
    dtype: Dtype,
    w: &Quantized,
    params: QuantizationParams,
) -> std::result::Result<(), String> {
    support(dtype, w, params, 2)
}

/// The checks of both kernels, for weights of `ndim` dimensions (3: experts, 2: one matrix).
fn support(
    dtype: Dtype,
    w: &Quantized,
    params: QuantizationParams,
    ndim: usize,
) -> std::result::Result<(), String> {
    let (group_size, bits, biases) = super::affine_operands("gather_qmv", dtype, w, params, ndim)?;
    let ws = w.weights.shape();
    let k = super::packed_inputs(ws, bits);
    let mut groups = ws.to_vec();
    groups[ndim - 1] = k / group_size;
    if k % group_size != 0 || w.scales.shape() != groups || biases.shape() != groups {
        return Err(format!("scales and biases must have shape {groups:?}"));
    }
    match gpu_backend() {
        Some(KernelBackend::Cuda) => Ok(()),
        _ => Err("needs MLX's CUDA backend and the default stream on the GPU".into()),
    }
}

/// True when a decode step of quantized experts of `dtype` takes this kernel under `policy`:
/// never under [`Fused::Off`], wherever it is supported under [`Fused::On`] and under
/// [`Fused::Auto`] (on CUDA it measured faster than `gather_qmm` at one token at every preset's
/// shapes: `benches/RESULTS.md`).
pub fn use_gather_qmv(
    policy: Fused,
    dtype: Dtype,
    w: &Quantized,
    params: QuantizationParams,
) -> bool {
    policy != Fused::Off && gather_qmv_support(dtype, w, params).is_ok()
}

/// `out[p] = x[p / pairs_per_row] · dequantize(w[experts[p]])ᵀ`, `[pairs, N]`.
///
/// `x` is `[rows, K]`, `experts` (uint32, `[pairs]`) in any order. Index values are clamped
/// into range, so no value reads outside the arrays. Only the cases [`gather_qmv_support`]
/// accepts run (an `Err` with its reason otherwise). Not differentiable (no VJP): use
/// `gather_qmm` under `grad`.
pub fn gather_qmv(
    x: &Array,
    experts: &Array,
    pairs_per_row: i32,
    w: &Quantized,
    params: QuantizationParams,
) -> Result<Array> {
    launch("gather_qmv", x, experts, pairs_per_row, w, None, params)
}

/// `swiglu(gate, up)` of the two products [`gather_qmv`] would give for `gate` and `up`
/// (quantized alike, of the same shape), in one kernel: `[pairs, N]`.
pub fn gather_qmv_swiglu(
    x: &Array,
    experts: &Array,
    pairs_per_row: i32,
    gate: &Quantized,
    up: &Quantized,
    params: QuantizationParams,
) -> Result<Array> {
    launch("gather_qmv_swiglu", x, experts, pairs_per_row, gate, Some(up), params)
}

/// `x · dequantize(w)ᵀ` for a few rows `x` `[..., K]` through one matrix `w` `[N, K * bits /
/// 32]`: `[..., N]`, as `quantized_matmul` (transposed) computes it, one warp per output element.
/// Only the cases [`quantized_matvec_support`] accepts run, up to 65 535 rows. Not
/// differentiable. No layer takes it on its own: in Mistral-7B's decode on an H200 the GPU
/// time fell but the host's cost of 225 custom-kernel launches per token outweighed it (5.3 ms
/// per token with `quantized_matmul`, 7.0 ms with this kernel; `benches/RESULTS.md`).
pub fn quantized_matvec(x: &Array, w: &Quantized, params: QuantizationParams) -> Result<Array> {
    const OP: &str = "quantized_matvec";
    quantized_matvec_support(x.dtype(), w, params).map_err(|why| Error::invalid(OP, why))?;
    let (group_size, bits) = params.checked(OP)?;
    let k = super::packed_inputs(w.weights.shape(), bits);
    if x.ndim() == 0 || x.shape().last() != Some(&k) {
        return Err(Error::invalid(
            OP,
            format!("x must be [..., {k}] for this matrix, got {:?}", x.shape()),
        ));
    }
    let rows = x.size() / k as usize;
    if rows == 0 || rows > MAX_PAIRS {
        return Err(Error::invalid(OP, format!("{rows} rows (1 to {MAX_PAIRS})")));
    }
    let rows = rows as i32;
    let n = w.weights.shape()[0];
    let biases = w.biases.as_ref().ok_or_else(|| Error::invalid(OP, "missing biases"))?;
    let mut shape = x.shape().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = n;
    }
    let launch = qmv_launch(shape, x.dtype(), (n, k, rows), (group_size, bits), ("ROWS", rows));
    let inputs = [x, &w.weights, &w.scales, biases];
    with_kernel(Variant::Dense, |kernel| Ok(kernel.apply(&inputs, &launch)?.remove(0)))
}

/// The launch of `(n, k, blocks_y)`: output `shape` of `dtype`, `(n / 8)` blocks of eight warps
/// by `blocks_y` (rows or pairs), the template arguments of the format and `last`.
fn qmv_launch(
    shape: Vec<i32>,
    dtype: Dtype,
    (n, k, blocks_y): (i32, i32, i32),
    (group_size, bits): (i32, i32),
    last: (&str, i32),
) -> KernelLaunch {
    let mut launch = KernelLaunch::new(
        vec![(shape, dtype)],
        ((n + COLUMNS_PER_BLOCK - 1) / COLUMNS_PER_BLOCK * THREADS, blocks_y, 1),
        (THREADS, 1, 1),
    );
    launch.template_args = vec![
        ("T".into(), TemplateArg::Dtype(dtype)),
        ("BITS".into(), TemplateArg::Int(bits)),
        ("GROUP_SIZE".into(), TemplateArg::Int(group_size)),
        ("N".into(), TemplateArg::Int(n)),
        ("K".into(), TemplateArg::Int(k)),
        (last.0.into(), TemplateArg::Int(last.1)),
    ];
    launch
}

fn launch(
    op: &'static str,
    x: &Array,
    experts: &Array,
    pairs_per_row: i32,
    w: &Quantized,
    up: Option<&Quantized>,
    params: QuantizationParams,
) -> Result<Array> {
    gather_qmv_support(x.dtype(), w, params).map_err(|why| Error::invalid(op, why))?;
    if let Some(u) = up {
        gather_qmv_support(x.dtype(), u, params).map_err(|why| Error::invalid(op, why))?;
        if u.weights.shape() != w.weights.shape() {
            return Err(Error::invalid(
                op,
                format!(
                    "gate {:?} and up {:?} weights must have the same shape",
                    w.weights.shape(),
                    u.weights.shape()
                ),
            ));
        }
    }
    let (group_size, bits) = params.checked(op)?;
    let k = super::packed_inputs(w.weights.shape(), bits);
    if x.ndim() != 2 || x.shape()[1] != k {
        return Err(Error::invalid(
            op,
            format!("x must be [rows, {k}] for these weights, got {:?}", x.shape()),
        ));
    }
    if experts.ndim() != 1 || experts.dtype() != Dtype::Uint32 {
        return Err(Error::invalid(op, "experts must be a 1-D uint32 array"));
    }
    let pairs = experts.size();
    if pairs == 0 || x.size() == 0 || pairs > MAX_PAIRS {
        return Err(Error::invalid(op, format!("{pairs} pairs (1 to {MAX_PAIRS}) or no rows")));
    }
    if pairs_per_row < 1 {
        return Err(Error::invalid(op, "pairs_per_row must be at least 1"));
    }
    let pairs = pairs as i32;
    let n = w.weights.shape()[1];
    let missing = || Error::invalid(op, "missing biases");
    let biases = w.biases.as_ref().ok_or_else(missing)?;
    let launch = qmv_launch(
        vec![pairs, n],
        x.dtype(),
        (n, k, pairs),
        (group_size, bits),
        ("PAIRS_PER_ROW", pairs_per_row),
    );
    let mut inputs = vec![x, experts, &w.weights, &w.scales, biases];
    if let Some(u) = up {
        inputs.extend([&u.weights, &u.scales, u.biases.as_ref().ok_or_else(missing)?]);
    }
    let variant = if up.is_some() { Variant::Swiglu } else { Variant::Plain };
    with_kernel(variant, |kernel| Ok(kernel.apply(&inputs, &launch)?.remove(0)))
}
