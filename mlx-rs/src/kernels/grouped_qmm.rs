//! The grouped quantized expert matmul: `x[rows[p]] @ dequantize(w[experts[p]])ᵀ` for many
//! (token, expert) pairs sorted by expert, as one custom CUDA kernel (source in
//! `grouped_qmm.cu`).
//!
//! MLX's `gather_qmm` treats every pair as its own one-row matrix product, so each pair reads its
//! expert's weights again (about 5 µs per pair on an H200 at GLM-4.5-Air's shapes). Here the
//! pairs are cut into tiles of up to 32 or 64 pairs of one expert (a first one-block kernel
//! builds the tile map on the device, so there is no host synchronisation), and each tile reads
//! its expert's weights once, dequantizes them in shared memory and multiplies on the tensor
//! cores.
//!
//! Supported: CUDA, bfloat16 or float16 activations (scales and biases of the same dtype),
//! affine quantization with 2, 3, 4, 5, 6 or 8 bits and group size 32, 64 or 128, output and
//! input dimensions multiples of 64. [`grouped_qmm_support`] says why a case is not supported.

use std::cell::RefCell;

use crate::error::{Error, Result};
use crate::fast::kernel::{Kernel, KernelBackend, KernelLaunch, KernelSource, TemplateArg};
use crate::kernels::on_cuda_gpu;
use crate::quantization::{QuantizationMode, QuantizationParams, Quantized};
use crate::{Array, Dtype};

const SOURCE: &str = include_str!("grouped_qmm.cu");

/// Output columns per block (`BN` in the source).
const BLOCK_COLUMNS: i32 = 64;
/// The reduction is streamed in steps of this many input columns (`BK` in the source).
const BLOCK_DEPTH: i32 = 64;
/// The largest expert count the tile-map kernel is built for (its shared arrays).
const MAX_EXPERTS: i32 = 4096;

thread_local! {
    /// The two kernels, built once per thread (MLX caches the compiled code by name).
    static KERNELS: RefCell<Option<(Kernel, Kernel)>> = const { RefCell::new(None) };
}

fn with_kernels<T>(f: impl FnOnce(&Kernel, &Kernel) -> Result<T>) -> Result<T> {
    KERNELS.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut tiles = KernelSource::new(
                "mlx_rs_moe_tiles",
                &["experts"],
                &["tiles"],
                "mlx_rs_kernels::moe_tiles<BM, NUM_EXPERTS>(\
                 experts, experts_shape[0], tiles);",
            );
            tiles.header = [super::CUDA_CONVERSIONS, SOURCE].concat();
            let mut matmul = KernelSource::new(
                "mlx_rs_grouped_qmm",
                &["x", "rows", "tiles", "w", "scales", "biases"],
                &["out"],
                "mlx_rs_kernels::grouped_qmm<T, BITS, GROUP_SIZE, N, K, BM, GATHER>(\
                 x, rows, tiles, w, scales, biases, out, x_shape[0], w_shape[0]);",
            );
            matmul.header = [super::CUDA_CONVERSIONS, SOURCE].concat();
            *slot = Some((
                Kernel::new(KernelBackend::Cuda, &tiles)?,
                Kernel::new(KernelBackend::Cuda, &matmul)?,
            ));
        }
        match slot.as_ref() {
            Some((tiles, matmul)) => f(tiles, matmul),
            None => Err(Error::invalid("grouped_qmm", "kernels unavailable")),
        }
    })
}

/// Why [`grouped_qmm`] cannot take activations of `dtype` through the expert weights `w`
/// (`[experts, N, K * bits / 32]`, quantized with `params`) on the thread's default stream
/// (`Err` with the reason), or `Ok` when it can.
pub fn grouped_qmm_support(
    dtype: Dtype,
    w: &Quantized,
    params: QuantizationParams,
) -> std::result::Result<(), String> {
    if params.mode != QuantizationMode::Affine {
        return Err(format!("{} quantization (only affine is supported)", params.mode.name()));
    }
    let (group_size, bits) = params.checked("grouped_qmm").map_err(|e| e.to_string())?;
    if !matches!(dtype, Dtype::Bfloat16 | Dtype::Float16) {
        return Err(format!("{dtype} activations (bfloat16 or float16 only)"));
    }
    let biases = w.biases.as_ref().ok_or("affine weights without biases")?;
    if w.scales.dtype() != dtype || biases.dtype() != dtype {
        return Err("scales and biases must have the activations' dtype".into());
    }
    let ws = w.weights.shape();
    if w.weights.ndim() != 3 || w.weights.dtype() != Dtype::Uint32 {
        return Err(format!(
            "weights {ws:?} of {} (want uint32 [experts, N, K * bits / 32])",
            w.weights.dtype()
        ));
    }
    let (experts, n, k) = (ws[0], ws[1], expert_inputs(ws, bits));
    let groups = [experts, n, k / group_size];
    if w.scales.shape() != groups || biases.shape() != groups {
        return Err(format!("scales and biases must have shape {groups:?}"));
    }
    if n % BLOCK_COLUMNS != 0 || k % BLOCK_DEPTH != 0 || k % group_size != 0 {
        return Err(format!("N = {n} and K = {k} must be multiples of 64 (and K of the group)"));
    }
    if experts > MAX_EXPERTS {
        return Err(format!("{experts} experts (at most {MAX_EXPERTS})"));
    }
    if !on_cuda_gpu() {
        return Err("needs MLX's CUDA backend and the default stream on the GPU".into());
    }
    Ok(())
}

/// The input dimension K of packed weights `[experts, N, K * bits / 32]`.
fn expert_inputs(shape: &[i32], bits: i32) -> i32 {
    (i64::from(shape[2]) * 32 / i64::from(bits)).try_into().unwrap_or(i32::MAX)
}

/// `out[p] = x[rows[p]] @ dequantize(w[experts[p]])ᵀ`, `[pairs, N]`.
///
/// `x` is `[rows, K]`; `rows` (uint32, `[pairs]`) picks the row of `x` of each pair, or `None`
/// when pair `p` is row `p` of `x`; `experts` (uint32, `[pairs]`) must be sorted ascending.
/// Index values are clamped into range, so no value reads outside the arrays; pairs out of order
/// or with an expert out of range belong to no tile and their output rows are zero. Only the
/// cases [`grouped_qmm_support`] accepts run (an `Err` with its reason otherwise). Not
/// differentiable (the kernel has no VJP): use `gather_qmm` under `grad`.
pub fn grouped_qmm(
    x: &Array,
    rows: Option<&Array>,
    experts: &Array,
    w: &Quantized,
    params: QuantizationParams,
) -> Result<Array> {
    const OP: &str = "grouped_qmm";
    grouped_qmm_support(x.dtype(), w, params).map_err(|why| Error::invalid(OP, why))?;
    let (group_size, bits) = params.checked(OP)?;
    let k = expert_inputs(w.weights.shape(), bits);
    if x.ndim() != 2 || x.shape()[1] != k {
        return Err(Error::invalid(
            OP,
            format!("x must be [rows, {k}] for these weights, got {:?}", x.shape()),
        ));
    }
    let pairs = experts.size();
    if experts.ndim() != 1 || experts.dtype() != Dtype::Uint32 {
        return Err(Error::invalid(OP, "experts must be a 1-D uint32 array"));
    }
    if let Some(r) = rows
        && (r.shape() != experts.shape() || r.dtype() != Dtype::Uint32)
    {
        return Err(Error::invalid(OP, "rows must be uint32 with the shape of experts"));
    }
    if pairs == 0 || x.size() == 0 {
        return Err(Error::invalid(OP, "no pairs or no rows"));
    }
    let pairs = i32::try_from(pairs).map_err(|_| Error::invalid(OP, "too many pairs"))?;
    let (num_experts, n) = (w.weights.shape()[0], w.weights.shape()[1]);
    // Tiles of 64 pairs once experts average 48 or more pairs, else 32.
    let block_rows = if i64::from(pairs) >= 48 * i64::from(num_experts) { 64 } else { 32 };
    // As `moe_tiles` computes it.
    let max_tiles = ((pairs + block_rows - 1) / block_rows + num_experts).min(pairs);
    let biases = w.biases.as_ref().ok_or_else(|| Error::invalid(OP, "missing biases"))?;
    with_kernels(|tiles_kernel, matmul| {
        let mut launch =
            KernelLaunch::new(vec![(vec![4 * max_tiles], Dtype::Uint32)], (256, 1, 1), (256, 1, 1));
        launch.template_args = vec![
            ("BM".into(), TemplateArg::Int(block_rows)),
            ("NUM_EXPERTS".into(), TemplateArg::Int(num_experts)),
        ];
        let tiles = tiles_kernel.apply(&[experts], &launch)?.remove(0);
        let threads = block_rows * 4;
        let mut launch = KernelLaunch::new(
            vec![(vec![pairs, n], x.dtype())],
            ((n / BLOCK_COLUMNS) * threads, max_tiles, 1),
            (threads, 1, 1),
        );
        launch.init_value = Some(0.0);
        launch.template_args = vec![
            ("T".into(), TemplateArg::Dtype(x.dtype())),
            ("BITS".into(), TemplateArg::Int(bits)),
            ("GROUP_SIZE".into(), TemplateArg::Int(group_size)),
            ("N".into(), TemplateArg::Int(n)),
            ("K".into(), TemplateArg::Int(k)),
            ("BM".into(), TemplateArg::Int(block_rows)),
            ("GATHER".into(), TemplateArg::Bool(rows.is_some())),
        ];
        let rows = rows.unwrap_or(experts);
        Ok(matmul.apply(&[x, rows, &tiles, &w.weights, &w.scales, biases], &launch)?.remove(0))
    })
}
