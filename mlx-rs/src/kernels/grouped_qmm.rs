//! The grouped quantized expert matmul: `x[rows[p]] @ dequantize(w[experts[p]])ᵀ` for many
//! (token, expert) pairs sorted by expert, as one custom GPU kernel (CUDA source in
//! `grouped_qmm.cu`, its Metal twin in `grouped_qmm.metal`).
//!
//! MLX's `gather_qmm` treats every pair as its own one-row matrix product, so each pair reads its
//! expert's weights again (about 5 µs per pair on an H200 at GLM-4.5-Air's shapes). Here the
//! pairs are cut into tiles of up to 32 or 64 pairs of one expert (a first one-block kernel
//! builds the tile map on the device, so there is no host synchronisation), and each tile reads
//! its expert's weights once, dequantizes them in shared (threadgroup) memory and multiplies on
//! the matrix units: `mma.sync` tensor-core tiles on CUDA, 8x8 `simdgroup_matrix<float>`
//! products on Metal, float32 accumulation on both.
//!
//! Supported: CUDA or Metal with the default stream on the GPU, bfloat16 or float16 activations
//! (scales and biases of the same dtype), affine quantization with 2, 3, 4, 5, 6 or 8 bits and
//! group size 32, 64 or 128, output and input dimensions multiples of 64, up to 4096 experts on
//! CUDA and 2048 on Metal. [`grouped_qmm_support`] says why a case is not supported.
//!
//! The Metal source was written without an Apple toolchain at hand: its header lists what was
//! checked by reading and the test that verifies it on a Mac. No speed is measured on Metal, so
//! [`expert_matmul::choose`](super::expert_matmul::choose) never picks it under
//! [`Fused::Auto`](super::Fused::Auto).

use std::cell::RefCell;

use crate::error::{Error, Result};
use crate::fast::kernel::{Kernel, KernelBackend, KernelLaunch, KernelSource, TemplateArg};
use crate::kernels::gpu_backend;
use crate::quantization::{QuantizationParams, Quantized};
use crate::{Array, Dtype};

const CUDA_SOURCE: &str = include_str!("grouped_qmm.cu");
const METAL_SOURCE: &str = include_str!("grouped_qmm.metal");

/// Output columns per block (`BN` in the sources).
const BLOCK_COLUMNS: i32 = 64;
/// The reduction is streamed in steps of this many input columns on CUDA (`BK`; Metal: 32).
const BLOCK_DEPTH: i32 = 64;

/// The largest expert count the tile-map kernel is built for on `backend` (its two shared arrays
/// of `experts + 1` ints; Metal's 32 KiB of threadgroup memory holds 2048).
fn max_experts(backend: KernelBackend) -> i32 {
    match backend {
        KernelBackend::Cuda => 4096,
        KernelBackend::Metal => 2048,
    }
}

/// The tile-map and matmul kernels of one backend: names, inputs and outputs are shared, the
/// bodies call the same functions of the backend's source.
struct Bodies {
    tiles: &'static str,
    matmul: &'static str,
}

const CUDA_BODIES: Bodies = Bodies {
    tiles: "mlx_rs_kernels::moe_tiles<BM, NUM_EXPERTS>(experts, experts_shape[0], tiles);",
    matmul: "mlx_rs_kernels::grouped_qmm<T, BITS, GROUP_SIZE, N, K, BM, GATHER>(\
             x, rows, tiles, w, scales, biases, out, x_shape[0], w_shape[0]);",
};

const METAL_BODIES: Bodies = Bodies {
    tiles: "threadgroup int starts[NUM_EXPERTS + 1];\n\
            threadgroup int offsets[NUM_EXPERTS + 1];\n\
            mlx_rs_kernels::moe_tiles<BM, NUM_EXPERTS>(experts, experts_shape[0], tiles, starts, \
            offsets, thread_index_in_threadgroup, threads_per_threadgroup.x);",
    matmul: "threadgroup float xs[BM * mlx_rs_kernels::kStride];\n\
             threadgroup float ws[mlx_rs_kernels::kColumns * mlx_rs_kernels::kStride];\n\
             threadgroup float staged[BM * 8];\n\
             threadgroup uint tile_rows[BM];\n\
             mlx_rs_kernels::grouped_qmm<T, BITS, GROUP_SIZE, N, K, BM, GATHER>(x, rows, tiles, \
             w, scales, biases, out, x_shape[0], w_shape[0], xs, ws, staged, tile_rows, \
             threadgroup_position_in_grid, thread_index_in_threadgroup, \
             simdgroup_index_in_threadgroup, thread_index_in_simdgroup);",
};

thread_local! {
    /// The two kernels and their backend, built once per thread (MLX caches the compiled code
    /// by name).
    static KERNELS: RefCell<Option<(KernelBackend, Kernel, Kernel)>> = const { RefCell::new(None) };
}

fn with_kernels<T>(
    backend: KernelBackend,
    f: impl FnOnce(&Kernel, &Kernel) -> Result<T>,
) -> Result<T> {
    KERNELS.with(|cell| {
        let mut slot = cell.borrow_mut();
        if !matches!(slot.as_ref(), Some((built, ..)) if *built == backend) {
            let (source, bodies) = match backend {
                KernelBackend::Cuda => (
                    [super::CUDA_CONVERSIONS, super::CUDA_CODES, CUDA_SOURCE].concat(),
                    CUDA_BODIES,
                ),
                KernelBackend::Metal => (METAL_SOURCE.to_owned(), METAL_BODIES),
            };
            let mut tiles =
                KernelSource::new("mlx_rs_moe_tiles", &["experts"], &["tiles"], bodies.tiles);
            tiles.header = source.clone();
            let mut matmul = KernelSource::new(
                "mlx_rs_grouped_qmm",
                &["x", "rows", "tiles", "w", "scales", "biases"],
                &["out"],
                bodies.matmul,
            );
            matmul.header = source;
            *slot = Some((backend, Kernel::new(backend, &tiles)?, Kernel::new(backend, &matmul)?));
        }
        match slot.as_ref() {
            Some((_, tiles, matmul)) => f(tiles, matmul),
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
    let (group_size, bits, biases) = super::affine_operands("grouped_qmm", dtype, w, params, 3)?;
    let ws = w.weights.shape();
    let (experts, n, k) = (ws[0], ws[1], super::packed_inputs(ws, bits));
    let groups = [experts, n, k / group_size];
    if w.scales.shape() != groups || biases.shape() != groups {
        return Err(format!("scales and biases must have shape {groups:?}"));
    }
    if n % BLOCK_COLUMNS != 0 || k % BLOCK_DEPTH != 0 || k % group_size != 0 {
        return Err(format!("N = {n} and K = {k} must be multiples of 64 (and K of the group)"));
    }
    let backend = gpu_backend()
        .ok_or("needs MLX's CUDA or Metal backend and the default stream on the GPU")?;
    if experts > max_experts(backend) {
        return Err(format!("{experts} experts (at most {} on {backend:?})", max_experts(backend)));
    }
    Ok(())
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
    let k = super::packed_inputs(w.weights.shape(), bits);
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
    let backend = gpu_backend().ok_or_else(|| Error::invalid(OP, "no GPU backend"))?;
    with_kernels(backend, |tiles_kernel, matmul| {
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
