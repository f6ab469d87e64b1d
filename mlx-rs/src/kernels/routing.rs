//! Mixture-of-experts routing: from router logits `[..., experts]` to each token's top-k experts
//! and their weights, as the models compute it, in one fused kernel per token row where
//! [`fused()`](super::fused) allows (CUDA source `routing.cu`, Metal source `routing.metal`).
//!
//! - [`softmax_topk`] (Qwen3-MoE): softmax over all experts, the top k probabilities, optionally
//!   renormalised.
//! - [`topk_softmax`] (Mixtral): the top k logits, softmax over the k chosen.
//! - [`glm_topk`] (GLM-4.5): sigmoid scores, biased and grouped choice, scaled weights.
//!
//! Each function's plain path is the models' code on MLX's ops, and it runs whenever the kernel
//! does not: under [`Fused::Off`], on the CPU, for shapes or dtypes the kernel
//! lacks (the `*_support` functions say why), and in training (`training == true`), because the
//! kernels have no VJP and LoRA trains the router.
//!
//! Ties: the plain path's `argpartition` orders equal values in no specified way. The kernel
//! ranks larger values first and equal values by the lower expert index, NaN as -inf, and writes
//! the k experts in that order; they are always distinct and in range.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::fast::kernel::{Kernel, KernelBackend, KernelLaunch, KernelSource, TemplateArg};
use crate::kernels::{Fused, fused, gpu_backend};
use crate::ops::{self, BoundedIndices};
use crate::transforms::{self, Function};
use crate::{Array, Dtype, Ellipsis};

const CUDA_SOURCE: &str = include_str!("routing.cu");
const METAL_SOURCE: &str = include_str!("routing.metal");

/// The most experts a routing kernel holds per row (8 per lane of a 32-wide warp).
pub const MAX_EXPERTS: i32 = 256;
/// The most experts a routing kernel chooses per token.
pub const MAX_TOP_K: i32 = 16;
/// The most expert groups of [`glm_topk`]'s kernel (one lane rates one group).
pub const MAX_GROUPS: i32 = 32;
/// Token rows per thread group (one warp or SIMD group each).
const ROWS_PER_GROUP: i32 = 4;

/// A fused kernel of this module or of [`gather_add`](super::gather_add()).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoutingKernel {
    /// [`softmax_topk`].
    SoftmaxTopk,
    /// [`topk_softmax`].
    TopkSoftmax,
    /// [`glm_topk`].
    GlmTopk,
    /// [`gather_add`](super::gather_add()).
    GatherAdd,
}

/// From how many tokens a kernel measured faster than the plain ops on CUDA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutingCrossover {
    /// The kernel.
    pub kernel: RoutingKernel,
    /// Token count from which it is faster at every model shape measured.
    pub tokens_from: usize,
}

/// The crossovers [`Fused::Auto`] follows: none. On an NVIDIA H200 (MLX 0.32.2 CUDA,
/// bfloat16) every routing kernel beat the plain ops and `transforms::compile` of them in
/// isolation at every measured count, 1 to 2048 tokens (`fused_paths`: routers 1.37–3.04×,
/// gather-add 1.03–2.2× against the compiled ops;
/// `benches/results/kernels-nvidia-h200-2026-12-02/fused-paths-gpu.md`), but not end to end:
/// with all four in `Auto`, one-token forwards of Qwen3-30B-A3B, Mixtral-8x7B and
/// GLM-4.5-Air were not faster than `Off` beyond run-to-run noise (Qwen3 13.0–17.2 ms against
/// 9.3–11.9), 512-token forwards at most 4% faster, and the logits moved off MLX's ops' (by up
/// to 0.21 at one token; at 512 tokens 16–29% of the positions changed their argmax, as
/// near-tied experts switch). So `Auto` keeps the plain ops; `On` uses the kernels.
pub const CUDA_CROSSOVERS: &[RoutingCrossover] = &[];

/// Whether `kernel` runs for `tokens` rows: supported, not training, and allowed by the policy.
pub(crate) fn use_kernel(
    kernel: RoutingKernel,
    tokens: usize,
    supported: bool,
    training: bool,
) -> bool {
    if !supported || training {
        return false;
    }
    match fused() {
        Fused::Off => false,
        Fused::On => true,
        Fused::Auto => {
            gpu_backend() == Some(KernelBackend::Cuda)
                && CUDA_CROSSOVERS.iter().any(|c| c.kernel == kernel && tokens >= c.tokens_from)
        }
    }
}

thread_local! {
    /// Built kernels by (name, backend); MLX caches each template instantiation by name.
    static KERNELS: RefCell<HashMap<(&'static str, bool), Kernel>> = RefCell::new(HashMap::new());
}

/// One kernel of the routing sources: its name, inputs, outputs and the bodies per backend.
pub(crate) struct RoutingSource {
    pub(crate) name: &'static str,
    pub(crate) inputs: &'static [&'static str],
    pub(crate) outputs: &'static [&'static str],
    pub(crate) cuda_body: &'static str,
    pub(crate) metal_body: &'static str,
}

/// Runs `source` on `backend` with `launch`.
pub(crate) fn launch(
    source: &RoutingSource,
    backend: KernelBackend,
    inputs: &[&Array],
    launch: &KernelLaunch,
) -> Result<Vec<Array>> {
    let cuda = backend == KernelBackend::Cuda;
    KERNELS.with(|cell| {
        let mut kernels = cell.borrow_mut();
        let key = (source.name, cuda);
        let kernel = match kernels.entry(key) {
            Entry::Occupied(built) => built.into_mut(),
            Entry::Vacant(slot) => {
                let body = if cuda { source.cuda_body } else { source.metal_body };
                let mut ks = KernelSource::new(source.name, source.inputs, source.outputs, body);
                ks.header = match cuda {
                    true => [super::CUDA_CONVERSIONS, CUDA_SOURCE].concat(),
                    false => METAL_SOURCE.to_owned(),
                };
                slot.insert(Kernel::new(backend, &ks)?)
            }
        };
        kernel.apply(inputs, launch)
    })
}

const SOFTMAX_TOPK: RoutingSource = RoutingSource {
    name: "mlx_rs_softmax_topk",
    inputs: &["logits"],
    outputs: &["inds", "weights"],
    cuda_body: "mlx_rs_routing::softmax_topk<T, E, K, NORM>(\
                logits, logits_shape[0], inds, weights);",
    metal_body: "mlx_rs_routing::softmax_topk<T, E, K, NORM>(logits, logits_shape[0], inds, \
                 weights, thread_position_in_grid.x / 32, thread_index_in_simdgroup);",
};

const TOPK_SOFTMAX: RoutingSource = RoutingSource {
    name: "mlx_rs_topk_softmax",
    inputs: &["logits"],
    outputs: &["inds", "weights"],
    cuda_body: "mlx_rs_routing::topk_softmax<T, E, K>(logits, logits_shape[0], inds, weights);",
    metal_body: "mlx_rs_routing::topk_softmax<T, E, K>(logits, logits_shape[0], inds, weights, \
                 thread_position_in_grid.x / 32, thread_index_in_simdgroup);",
};

const GLM_TOPK: RoutingSource = RoutingSource {
    name: "mlx_rs_glm_topk",
    inputs: &["logits", "bias", "scale"],
    outputs: &["inds", "weights"],
    cuda_body: "__shared__ float scratch[4 * E];\n\
                mlx_rs_routing::grouped_topk<T, E, K, GROUPS, KEEP, NORM>(\
                logits, bias, scale[0], logits_shape[0], scratch, inds, weights);",
    metal_body: "threadgroup float scratch[4 * E];\n\
                 mlx_rs_routing::grouped_topk<T, E, K, GROUPS, KEEP, NORM>(logits, bias, \
                 scale[0], logits_shape[0], scratch + simdgroup_index_in_threadgroup * E, inds, \
                 weights, thread_position_in_grid.x / 32, thread_index_in_simdgroup);",
};

/// Why a routing kernel cannot take `logits` and choose `k` experts (the checks common to all).
fn row_support(logits: &Array, k: i32) -> std::result::Result<(), String> {
    if !matches!(logits.dtype(), Dtype::Float32 | Dtype::Bfloat16 | Dtype::Float16) {
        return Err(format!("{} logits (float32, bfloat16 or float16 only)", logits.dtype()));
    }
    let experts = logits.shape().last().copied().unwrap_or(0);
    if experts > MAX_EXPERTS {
        return Err(format!("{experts} experts (at most {MAX_EXPERTS})"));
    }
    if k > MAX_TOP_K {
        return Err(format!("top {k} (at most {MAX_TOP_K})"));
    }
    if logits.size() == 0 {
        return Err("no tokens".into());
    }
    let rows = logits.size() / experts.max(1) as usize;
    if rows > (i32::MAX / 32 - ROWS_PER_GROUP) as usize {
        return Err(format!("{rows} tokens (at most {})", i32::MAX / 32 - ROWS_PER_GROUP));
    }
    if gpu_backend().is_none() {
        return Err("needs the default stream on a CUDA or Metal GPU".into());
    }
    Ok(())
}

/// Checks `logits` `[..., experts]` and `k` for every path; returns the expert count.
fn check_args(op: &'static str, logits: &Array, k: i32) -> Result<i32> {
    if logits.ndim() == 0 {
        return Err(Error::invalid(op, "logits must have an experts axis"));
    }
    if !logits.dtype().is_floating() {
        return Err(Error::invalid(
            op,
            format!("logits must be floating point, got {}", logits.dtype()),
        ));
    }
    let experts = logits.shape()[logits.ndim() - 1];
    if k < 1 || k > experts {
        return Err(Error::invalid(op, format!("k must be in 1..={experts}, got {k}")));
    }
    Ok(experts)
}

/// Why [`softmax_topk`] cannot run its kernel on `logits` for `k` (`Err` with the reason).
pub fn softmax_topk_support(logits: &Array, k: i32) -> std::result::Result<(), String> {
    row_support(logits, k)
}

/// Why [`topk_softmax`] cannot run its kernel on `logits` for `k` (`Err` with the reason).
pub fn topk_softmax_support(logits: &Array, k: i32) -> std::result::Result<(), String> {
    row_support(logits, k)
}

/// The launch of a routing kernel over `rows` token rows with outputs `[rows, k]`.
fn row_launch(
    rows: i32,
    k: i32,
    weights: Dtype,
    template_args: Vec<(String, TemplateArg)>,
) -> KernelLaunch {
    let padded = (rows + ROWS_PER_GROUP - 1) / ROWS_PER_GROUP * ROWS_PER_GROUP;
    let mut launch = KernelLaunch::new(
        vec![(vec![rows, k], Dtype::Uint32), (vec![rows, k], weights)],
        (32 * padded, 1, 1),
        (32 * ROWS_PER_GROUP, 1, 1),
    );
    launch.template_args = template_args;
    launch
}

/// Runs a row kernel on `logits` `[..., experts]` and gives the outputs the leading shape back.
fn run_rows(
    source: &RoutingSource,
    logits: &Array,
    extra: &[&Array],
    k: i32,
    weights: Dtype,
    template_args: Vec<(String, TemplateArg)>,
) -> Result<(BoundedIndices, Array)> {
    let backend = gpu_backend().ok_or_else(|| Error::invalid(source.name, "no GPU backend"))?;
    let experts = logits.shape()[logits.ndim() - 1];
    let rows = i32::try_from(logits.size() / experts as usize)
        .map_err(|_| Error::invalid(source.name, "too many tokens"))?;
    let flat = logits.reshape([rows, experts])?;
    let mut inputs = vec![&flat];
    inputs.extend_from_slice(extra);
    let mut out = launch(source, backend, &inputs, &row_launch(rows, k, weights, template_args))?;
    let mut shape = logits.shape().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = k;
    }
    let w = out.pop().ok_or_else(|| Error::invalid(source.name, "missing output"))?;
    let i = out.pop().ok_or_else(|| Error::invalid(source.name, "missing output"))?;
    let inds = BoundedIndices::vouched(i.reshape(&shape)?, i64::from(experts));
    Ok((inds, w.reshape(&shape)?))
}

fn tokens(logits: &Array, experts: i32) -> usize {
    logits.size() / experts.max(1) as usize
}

/// Qwen3-MoE's router: `p = softmax(logits)` over the experts (precise, float32 inside, in the
/// logits' dtype), the `k` largest `p` and their values as weights, divided by their sum when
/// `renormalize`. Returns the experts `[..., k]` and weights `[..., k]` (the logits' dtype).
///
/// Runs the fused kernel where [`softmax_topk_support`] and the policy allow and not in
/// `training`; else the plain ops (`argpartition`, whose expert order is unspecified).
///
/// ```
/// use mlx_rs::{Array, kernels};
/// let logits = Array::from_slice(&[0.0f32, 2.0, 1.0, -1.0], &[1, 4])?;
/// let (inds, w) = kernels::softmax_topk(&logits, 2, true, false)?;
/// let mut picked = inds.array().to_vec::<u32>()?;
/// picked.sort();
/// assert_eq!(picked, [1, 2]);
/// assert!((w.sum(-1, false)?.item::<f32>()? - 1.0).abs() < 1e-6);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn softmax_topk(
    logits: &Array,
    k: i32,
    renormalize: bool,
    training: bool,
) -> Result<(BoundedIndices, Array)> {
    let experts = check_args("softmax_topk", logits, k)?;
    let supported = softmax_topk_support(logits, k).is_ok();
    if use_kernel(RoutingKernel::SoftmaxTopk, tokens(logits, experts), supported, training) {
        let args = vec![
            ("T".into(), TemplateArg::Dtype(logits.dtype())),
            ("E".into(), TemplateArg::Int(experts)),
            ("K".into(), TemplateArg::Int(k)),
            ("NORM".into(), TemplateArg::Bool(renormalize)),
        ];
        return run_rows(&SOFTMAX_TOPK, logits, &[], k, logits.dtype(), args);
    }
    let gates = logits.softmax(-1, true)?;
    let inds = BoundedIndices::argpartition(&gates, -k, -1)?.index((Ellipsis, -k..))?;
    let inds = inds.stop_gradient()?;
    let mut scores = ops::take_along_axis(&gates, &inds, -1)?;
    if renormalize {
        scores = (&scores / scores.sum(-1, true)?)?;
    }
    Ok((inds, scores))
}

/// Mixtral's router: the `k` largest logits, and softmax over those `k` (precise, in the logits'
/// dtype) as weights. Returns the experts `[..., k]` and weights `[..., k]`.
///
/// Runs the fused kernel where [`topk_softmax_support`] and the policy allow and not in
/// `training`; else the plain ops.
///
/// ```
/// use mlx_rs::{Array, kernels};
/// let logits = Array::from_slice(&[0.0f32, 1.0, 3.0, 3.0 - 2f32.ln()], &[1, 4])?;
/// let (inds, w) = kernels::topk_softmax(&logits, 2, false)?;
/// let (mut i, w) = (inds.array().to_vec::<u32>()?, w.to_vec::<f32>()?);
/// let (hi, lo) = if i[0] == 2 { (w[0], w[1]) } else { (w[1], w[0]) };
/// i.sort();
/// assert_eq!(i, [2, 3]);
/// assert!((hi - 2.0 / 3.0).abs() < 1e-6 && (lo - 1.0 / 3.0).abs() < 1e-6);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn topk_softmax(logits: &Array, k: i32, training: bool) -> Result<(BoundedIndices, Array)> {
    let experts = check_args("topk_softmax", logits, k)?;
    let supported = topk_softmax_support(logits, k).is_ok();
    if use_kernel(RoutingKernel::TopkSoftmax, tokens(logits, experts), supported, training) {
        let args = vec![
            ("T".into(), TemplateArg::Dtype(logits.dtype())),
            ("E".into(), TemplateArg::Int(experts)),
            ("K".into(), TemplateArg::Int(k)),
        ];
        return run_rows(&TOPK_SOFTMAX, logits, &[], k, logits.dtype(), args);
    }
    let inds = BoundedIndices::argpartition(&logits.negative()?, k - 1, -1)?
        .index((Ellipsis, ..k))?
        .stop_gradient()?;
    let scores = ops::take_along_axis(logits, &inds, -1)?.softmax(-1, true)?;
    Ok((inds, scores))
}

/// The parameters of GLM-4.5's grouped router ([`glm_topk`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupedTopk {
    /// Experts per token.
    pub top_k: i32,
    /// Expert groups (1: no grouping).
    pub n_group: i32,
    /// Groups kept per token.
    pub topk_group: i32,
    /// Factor on the weights.
    pub routed_scaling_factor: f32,
    /// Divide the weights by their sum (when `top_k > 1`).
    pub norm_topk_prob: bool,
}

impl GroupedTopk {
    /// The parameters as bits, a key for caches.
    fn key(&self) -> [u32; 5] {
        let as_bits = |v: i32| v.cast_unsigned();
        [
            as_bits(self.top_k),
            as_bits(self.n_group),
            as_bits(self.topk_group),
            self.routed_scaling_factor.to_bits(),
            u32::from(self.norm_topk_prob),
        ]
    }

    /// Whether some groups are dropped (else the choice is a plain top-k).
    fn drops_groups(&self) -> bool {
        self.n_group > 1 && self.topk_group < self.n_group
    }
}

fn check_grouped(logits: &Array, bias: &Array, p: &GroupedTopk) -> Result<i32> {
    const OP: &str = "glm_topk";
    let experts = check_args(OP, logits, p.top_k)?;
    if bias.shape() != [experts] {
        return Err(Error::invalid(
            OP,
            format!("e_score_correction_bias must be [{experts}], got {:?}", bias.shape()),
        ));
    }
    if p.n_group < 1 || experts % p.n_group != 0 {
        return Err(Error::invalid(
            OP,
            format!("n_group must divide the {experts} experts, got {}", p.n_group),
        ));
    }
    if p.topk_group < 1 || p.topk_group > p.n_group {
        return Err(Error::invalid(
            OP,
            format!("topk_group must be in 1..={}, got {}", p.n_group, p.topk_group),
        ));
    }
    if p.drops_groups() && experts / p.n_group < 2 {
        return Err(Error::invalid(
            OP,
            "groups are rated by their two best experts: need 2 per group",
        ));
    }
    Ok(experts)
}

/// Why [`glm_topk`] cannot run its kernel on `logits` with `params` (`Err` with the reason).
pub fn glm_topk_support(logits: &Array, params: &GroupedTopk) -> std::result::Result<(), String> {
    if params.n_group > MAX_GROUPS {
        return Err(format!("{} groups (at most {MAX_GROUPS})", params.n_group));
    }
    row_support(logits, params.top_k)
}

/// GLM-4.5's router (mlx-lm's `group_expert_select`): scores `sigmoid(logits)` in float32; the
/// experts are chosen on `scores + bias` (`bias` `[experts]`); with groups dropped
/// (`n_group > 1`, `topk_group < n_group`) each group of `experts / n_group` is rated by the
/// sum of its two best biased scores and the biased scores of all but the best `topk_group`
/// groups become 0 before the top-k choice. The weights are the chosen experts' unbiased
/// scores, normalised to sum to one when `norm_topk_prob` and `top_k > 1`, times
/// `routed_scaling_factor`. Returns the experts `[..., top_k]` and float32 weights.
///
/// Runs the fused kernel where [`glm_topk_support`] and the policy allow and not in `training`;
/// else the plain ops.
pub fn glm_topk(
    logits: &Array,
    bias: &Array,
    params: &GroupedTopk,
    training: bool,
) -> Result<(BoundedIndices, Array)> {
    let experts = check_grouped(logits, bias, params)?;
    let supported = glm_topk_support(logits, params).is_ok();
    if use_kernel(RoutingKernel::GlmTopk, tokens(logits, experts), supported, training) {
        let args = vec![
            ("T".into(), TemplateArg::Dtype(logits.dtype())),
            ("E".into(), TemplateArg::Int(experts)),
            ("K".into(), TemplateArg::Int(params.top_k)),
            ("GROUPS".into(), TemplateArg::Int(params.n_group)),
            ("KEEP".into(), TemplateArg::Int(params.topk_group)),
            ("NORM".into(), TemplateArg::Bool(params.norm_topk_prob)),
        ];
        let bias = bias.astype(Dtype::Float32)?;
        let scale = Array::from_slice(&[params.routed_scaling_factor], &[1])?;
        let extra = [&bias, &scale];
        return run_rows(&GLM_TOPK, logits, &extra, params.top_k, Dtype::Float32, args);
    }
    glm_topk_compiled(logits, bias, params, experts)
}

thread_local! {
    /// [`glm_topk_ops`] compiled, per parameter set (`GroupedTopk::key`).
    static GLM_COMPILED: RefCell<HashMap<[u32; 5], Rc<Function>>> = RefCell::new(HashMap::new());
}

/// [`glm_topk_ops`] through `transforms::compile` (retraced per input shape), as mlx-lm compiles
/// `group_expert_select`: the elementwise ops fuse into a few kernels, which matters in decode,
/// where each node costs host time.
fn glm_topk_compiled(
    logits: &Array,
    bias: &Array,
    params: &GroupedTopk,
    experts: i32,
) -> Result<(BoundedIndices, Array)> {
    let key = params.key();
    let compiled = GLM_COMPILED.with(|cell| -> Result<Rc<Function>> {
        let mut map = cell.borrow_mut();
        if let Some(f) = map.get(&key) {
            return Ok(f.clone());
        }
        let p = *params;
        let f = Rc::new(transforms::compile(move |x: &[Array]| {
            let [logits, bias] = x else {
                return Err(Error::invalid("glm_topk", "the router takes [logits, bias]"));
            };
            let (inds, weights) = glm_topk_ops(logits, bias, &p)?;
            Ok(vec![inds.array().clone(), weights])
        })?);
        map.insert(key, f.clone());
        Ok(f)
    })?;
    let mut out = compiled.apply(&[logits, bias])?.into_iter();
    match (out.next(), out.next()) {
        (Some(inds), Some(weights)) => {
            Ok((BoundedIndices::vouched(inds, i64::from(experts)), weights))
        }
        _ => Err(Error::invalid("glm_topk", "the compiled router returned no outputs")),
    }
}

/// The plain ops of [`glm_topk`] (mlx-lm's `group_expert_select`).
fn glm_topk_ops(
    logits: &Array,
    bias: &Array,
    params: &GroupedTopk,
) -> Result<(BoundedIndices, Array)> {
    let orig_scores = logits.astype(Dtype::Float32)?.sigmoid()?;
    let mut scores = (&orig_scores + bias)?;
    if params.drops_groups() {
        let dropped = params.n_group - params.topk_group;
        let grouped = scores.unflatten(-1, [params.n_group, -1])?;
        let group_scores = ops::topk(&grouped, 2, Some(-1))?.sum(-1, true)?;
        let group_idx = BoundedIndices::argpartition(&group_scores, dropped - 1, -2)?
            .index((Ellipsis, ..dropped, ..))?
            .stop_gradient()?;
        scores =
            ops::put_along_axis(&grouped, group_idx.array(), &Array::scalar(0.0f32), Some(-2))?
                .flatten(-2, -1)?;
    }
    let k = params.top_k;
    let inds = BoundedIndices::argpartition(&scores.negative()?, k - 1, -1)?
        .index((Ellipsis, ..k))?
        .stop_gradient()?;
    let mut weights = ops::take_along_axis(&orig_scores, &inds, -1)?;
    if k > 1 && params.norm_topk_prob {
        let denominator = weights.sum(-1, true)?;
        weights = (&weights / &denominator)?;
    }
    Ok((inds, (weights * params.routed_scaling_factor)?))
}
