//! The weighted sum of a mixture-of-experts layer's chosen experts:
//! `out[..., :] = sum_j scores[..., j] * y[..., j, :]`, as one fused kernel (accumulated in
//! float32, rounded once) where [`fused()`](super::fused) allows; its source is in `routing.cu` /
//! `routing.metal`.

use crate::error::{Error, Result};
use crate::fast::kernel::{KernelLaunch, TemplateArg};
use crate::kernels::gpu_backend;
use crate::kernels::routing::{RoutingKernel, RoutingSource, launch, use_kernel};
use crate::{Array, Dtype};

/// The most experts per token the kernel sums.
pub const MAX_CHOSEN: i32 = 64;
/// Threads per group of the kernel (one per output element).
const THREADS: i32 = 256;

const GATHER_ADD: RoutingSource = RoutingSource {
    name: "mlx_rs_gather_add",
    inputs: &["y", "scores"],
    outputs: &["out"],
    cuda_body: "mlx_rs_routing::gather_add<T, U, O, K>(y, scores, y_shape[0], y_shape[2], out);",
    metal_body: "mlx_rs_routing::gather_add<T, U, O, K>(y, scores, y_shape[0], y_shape[2], out, \
                 thread_position_in_grid.x);",
};

/// MLX's promotion of two of the kernel's float dtypes.
fn promoted(a: Dtype, b: Dtype) -> Dtype {
    if a == b { a } else { Dtype::Float32 }
}

fn kernel_dtype(d: Dtype) -> bool {
    matches!(d, Dtype::Float32 | Dtype::Bfloat16 | Dtype::Float16)
}

/// Checks that `scores` is `y`'s shape without the last axis; returns (tokens, k, dim).
fn check_shapes(y: &Array, scores: &Array) -> Result<(usize, i32, i32)> {
    const OP: &str = "gather_add";
    let ys = y.shape();
    if y.ndim() < 2 || scores.shape() != &ys[..ys.len() - 1] {
        return Err(Error::invalid(
            OP,
            format!(
                "y must be [..., k, dim] and scores [..., k], got {ys:?} and {:?}",
                scores.shape()
            ),
        ));
    }
    if !y.dtype().is_floating() || !scores.dtype().is_floating() {
        return Err(Error::invalid(
            OP,
            format!(
                "y and scores must be floating point, got {} and {}",
                y.dtype(),
                scores.dtype()
            ),
        ));
    }
    let (k, dim) = (ys[ys.len() - 2], ys[ys.len() - 1]);
    let tokens = if k == 0 { 0 } else { scores.size() / k as usize };
    Ok((tokens, k, dim))
}

/// Why [`gather_add`] cannot run its kernel on `y` and `scores` with output `dtype` (`Err` with
/// the reason).
pub fn gather_add_support(
    y: &Array,
    scores: &Array,
    dtype: Option<Dtype>,
) -> std::result::Result<(), String> {
    let (tokens, k, dim) = check_shapes(y, scores).map_err(|e| e.to_string())?;
    let out = dtype.unwrap_or_else(|| promoted(y.dtype(), scores.dtype()));
    if ![y.dtype(), scores.dtype(), out].into_iter().all(kernel_dtype) {
        return Err("float32, bfloat16 or float16 only".into());
    }
    if k > MAX_CHOSEN {
        return Err(format!("{k} experts per token (at most {MAX_CHOSEN})"));
    }
    let elements = tokens * dim as usize;
    if elements == 0 {
        return Err("empty output".into());
    }
    if elements > (i32::MAX - THREADS) as usize {
        return Err(format!("{elements} output elements (at most {})", i32::MAX - THREADS));
    }
    if gpu_backend().is_none() {
        return Err("needs the default stream on a CUDA or Metal GPU".into());
    }
    Ok(())
}

/// `(y * scores[..., None]).sum(-2)`: `y` `[..., k, dim]` (the chosen experts' outputs) weighted
/// by `scores` `[..., k]`, `[..., dim]`, in `dtype` (`None`: the product's dtype, MLX's
/// promotion of the two; Qwen3-MoE and GLM-4.5 pass `y`'s dtype, Mixtral `None`).
///
/// The fused kernel (float32 accumulation, one rounding; the plain ops round each product to the
/// product's dtype) runs where [`gather_add_support`] and the policy allow and not in
/// `training` (it has no VJP); else the plain ops.
///
/// ```
/// use mlx_rs::{Array, kernels};
/// let y = Array::from_slice(&[1.0f32, 2.0, 10.0, 20.0], &[1, 2, 2])?;
/// let s = Array::from_slice(&[0.5f32, 0.25], &[1, 2])?;
/// let out = kernels::gather_add(&y, &s, None, false)?;
/// assert_eq!(out.to_vec::<f32>()?, [3.0, 6.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn gather_add(
    y: &Array,
    scores: &Array,
    dtype: Option<Dtype>,
    training: bool,
) -> Result<Array> {
    let (tokens, k, dim) = check_shapes(y, scores)?;
    let supported = gather_add_support(y, scores, dtype).is_ok();
    if use_kernel(RoutingKernel::GatherAdd, tokens, supported, training) {
        let backend = gpu_backend().ok_or_else(|| Error::invalid("gather_add", "no GPU"))?;
        let out = dtype.unwrap_or_else(|| promoted(y.dtype(), scores.dtype()));
        let rows = i32::try_from(tokens).map_err(|_| Error::invalid("gather_add", "too many"))?;
        let flat_y = y.reshape([rows, k, dim])?;
        let flat_scores = scores.reshape([rows, k])?;
        let elements = rows * dim;
        let mut run = KernelLaunch::new(
            vec![(vec![rows, dim], out)],
            ((elements + THREADS - 1) / THREADS * THREADS, 1, 1),
            (THREADS, 1, 1),
        );
        run.template_args = vec![
            ("T".into(), TemplateArg::Dtype(y.dtype())),
            ("U".into(), TemplateArg::Dtype(scores.dtype())),
            ("O".into(), TemplateArg::Dtype(out)),
            ("K".into(), TemplateArg::Int(k)),
        ];
        let sum = launch(&GATHER_ADD, backend, &[&flat_y, &flat_scores], &run)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::invalid("gather_add", "missing output"))?;
        let mut shape = scores.shape().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = dim;
        }
        return sum.reshape(&shape);
    }
    let sum = (y * scores.expand_dims(-1)?)?.sum(-2, false)?;
    match dtype {
        Some(d) => sum.astype(d),
        None => Ok(sum),
    }
}
