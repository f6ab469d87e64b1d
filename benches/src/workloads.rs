//! The microbenchmark workloads, defined once: the criterion benches (`benches/benches/*.rs`) and
//! the `compare` runner run them in process, and the Python twin `benches/python/micro.py`
//! rebuilds the very same inputs from [`Spec::to_json`] (op, shapes, dtype, seed, scales and
//! kernel source are all in it, so the two sides cannot drift apart).
//!
//! Inputs come from MLX's counter-based generator: input `j` of a case is
//! `normal(shape, float32, key(seed + j)) * scale`, cast to the case's dtype, on both sides, so
//! both sides compute on identical arrays (checked by [`Prepared::checksum`]).
//!
//! One iteration is the graph build of the case's op(s) followed by `eval` of the outputs
//! (BENCHMARKING.md, rule 3), except for [`Op::Chain`] with `eval: false`, which measures the
//! graph build alone (the graphs are dropped after the clock stops).
//!
//! Two size profiles ([`Profile`]): `quick` (float32, each iteration well under a second on a
//! 2-core CPU; what `--quick` and CPU devices get) and `gpu` (real model sizes in bfloat16).

use std::time::Instant;

use mlx_rs::fast::kernel::{Kernel, KernelBackend, KernelLaunch, KernelSource, TemplateArg};
use mlx_rs::fast::{self, AttentionMask};
use mlx_rs::nn::{self, Linear, LoRALinear, MaybeQuantized, Param};
use mlx_rs::ops::BoundedIndices;
use mlx_rs::quantization::{self, GatherIndices, QuantizationParams};
use mlx_rs::{Array, Device, DeviceType, Dtype, Ellipsis, Error, Result, random, transforms};
use serde_json::{Value, json};

/// Which sizes to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Float32, small enough for a 2-core CPU (`--quick`, and the default on a CPU device).
    Quick,
    /// Bfloat16 at real model sizes (the default on a GPU device).
    Gpu,
}

impl Profile {
    /// `quick` or `gpu`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Gpu => "gpu",
        }
    }

    /// The profile for `device`, unless `quick` forces the small one.
    pub fn choose(quick: bool, device: &Device) -> Profile {
        if quick || device.device_type() == DeviceType::Cpu { Profile::Quick } else { Profile::Gpu }
    }

    /// The profile for the default device; `quick` forces the small one.
    pub fn for_default_device(quick: bool) -> Result<Profile> {
        Ok(Profile::choose(quick, &Device::default_device()?))
    }

    /// The floating-point dtype of the profile's cases.
    pub fn dtype(self) -> Dtype {
        match self {
            Profile::Quick => Dtype::Float32,
            Profile::Gpu => Dtype::Bfloat16,
        }
    }
}

/// How the SwiGLU gate `silu(gate) * up` is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwigluVariant {
    /// Separate ops: `nn::swiglu` (Python: `g * mx.sigmoid(g) * u`).
    Ops,
    /// The same function through `transforms::compile` (Python: `mx.compile`).
    Compiled,
    /// One custom kernel (CUDA or Metal source); skipped where MLX has no kernel backend.
    Kernel,
}

impl SwigluVariant {
    /// `ops`, `compiled` or `kernel`.
    pub fn name(self) -> &'static str {
        match self {
            SwigluVariant::Ops => "ops",
            SwigluVariant::Compiled => "compiled",
            SwigluVariant::Kernel => "kernel",
        }
    }
}

/// The body of the fused SwiGLU kernel for CUDA (the grid has one thread per element).
pub const SWIGLU_CUDA_SOURCE: &str = "
    auto elem = cooperative_groups::this_grid().thread_rank();
    float g = static_cast<float>(gate[elem]);
    float u = static_cast<float>(up[elem]);
    out[elem] = static_cast<T>(g / (1.0f + expf(-g)) * u);
";

/// The body of the fused SwiGLU kernel for Metal (the grid has one thread per element).
pub const SWIGLU_METAL_SOURCE: &str = "
    uint elem = thread_position_in_grid.x;
    float g = static_cast<float>(gate[elem]);
    float u = static_cast<float>(up[elem]);
    out[elem] = static_cast<T>(g / (1.0f + metal::exp(-g)) * u);
";

/// Threads per group of the SwiGLU kernel; the element count must be a multiple of it.
pub const SWIGLU_THREADS: i32 = 256;

/// The op(s) one iteration of a case runs, with their sizes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `a [m, k] @ b [k, n]`.
    Matmul {
        /// Rows of the result.
        m: i32,
        /// The contracted size.
        k: i32,
        /// Columns of the result.
        n: i32,
    },
    /// `softmax(x [rows, cols], axis -1)`.
    Softmax {
        /// Rows.
        rows: i32,
        /// Columns (the softmax axis).
        cols: i32,
    },
    /// `fast::layer_norm(x [rows, dim], weight, bias, 1e-5)`.
    LayerNorm {
        /// Rows.
        rows: i32,
        /// The normalised axis.
        dim: i32,
    },
    /// `fast::rms_norm(x [rows, dim], weight, 1e-5)`.
    RmsNorm {
        /// Rows.
        rows: i32,
        /// The normalised axis.
        dim: i32,
    },
    /// `silu(gate) * up` on `[rows, hidden]`.
    Swiglu {
        /// Rows (tokens).
        rows: i32,
        /// The hidden size.
        hidden: i32,
        /// Ops, compiled or one kernel.
        variant: SwigluVariant,
    },
    /// Causal `fast::scaled_dot_product_attention`, grouped-query: q `[1, q_heads, len, head_dim]`,
    /// k and v `[1, kv_heads, len, head_dim]`.
    Sdpa {
        /// Query heads.
        q_heads: i32,
        /// Key/value heads (a divisor of `q_heads`).
        kv_heads: i32,
        /// Sequence length of queries and keys.
        len: i32,
        /// Head size.
        head_dim: i32,
    },
    /// `quantized_matmul(x [m, k], w [n, k] affine-quantized, transpose)`.
    QuantizedMatmul {
        /// Tokens (1: decode; more: prefill).
        m: i32,
        /// Input features.
        k: i32,
        /// Output features.
        n: i32,
        /// Bits per weight.
        bits: i32,
        /// Quantization group size.
        group_size: i32,
    },
    /// One `gather_qmm` of an MoE layer: x `[tokens, 1, 1, k]` against experts `w [experts, n, k]`
    /// (affine-quantized) picked by top-`top_k` routing (argpartition of random router logits,
    /// computed before the clock).
    GatherQmm {
        /// Tokens (1: decode; more: prefill).
        tokens: i32,
        /// Experts.
        experts: i32,
        /// Experts per token.
        top_k: i32,
        /// Input features.
        k: i32,
        /// Output features.
        n: i32,
        /// Bits per weight.
        bits: i32,
        /// Quantization group size.
        group_size: i32,
    },
    /// `nn::LoRALinear` forward (dense `size × size` base without bias, float32 adapters, scale
    /// 20, no dropout) on x `[tokens, size]` (Python: mlx-lm's `LoRALinear`).
    Lora {
        /// Tokens.
        tokens: i32,
        /// Input and output features.
        size: i32,
        /// Adapter rank.
        rank: i32,
    },
    /// Host overhead: a chain of `n` scalar adds `y = y + 1.0` (float32 scalars), evaluated or
    /// not.
    Chain {
        /// Ops in the chain.
        n: i32,
        /// True: build and eval; false: the graph build alone.
        eval: bool,
    },
}

/// One workload: a name, the op and its inputs' dtype and seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Unique name, `group/...`.
    pub name: String,
    /// The family (`matmul`, `softmax`, ..., `host`), which selects the criterion bench file.
    pub group: &'static str,
    /// What one iteration runs.
    pub op: Op,
    /// Dtype of the float inputs (adapters and router logits stay float32).
    pub dtype: Dtype,
    /// Input `j` uses `random::key(seed + j)`.
    pub seed: u64,
}

/// The seed every case uses (cases are independent; inputs differ by their index).
pub const SEED: u64 = 1234;

/// Scale of weights that multiply a `fan_in`-sized input: `1/sqrt(fan_in)` in float32.
fn fan_in_scale(fan_in: i32) -> f32 {
    1.0 / (fan_in as f32).sqrt()
}

fn spec(group: &'static str, name: String, op: Op, dtype: Dtype) -> Spec {
    Spec { name: format!("{group}/{name}"), group, op, dtype, seed: SEED }
}

/// Every case of `profile`, in the order the runner takes them.
pub fn cases(profile: Profile) -> Vec<Spec> {
    let dt = profile.dtype();
    let quick = profile == Profile::Quick;
    let mut out = Vec::new();
    let matmuls: &[i32] = if quick { &[128, 256] } else { &[1024, 4096] };
    for &s in matmuls {
        out.push(spec("matmul", format!("{s}x{s}x{s}"), Op::Matmul { m: s, k: s, n: s }, dt));
    }
    let (rows, cols) = if quick { (256, 2048) } else { (4096, 32768) };
    out.push(spec("softmax", format!("{rows}x{cols}"), Op::Softmax { rows, cols }, dt));
    let (rows, dim) = if quick { (512, 1024) } else { (16384, 4096) };
    out.push(spec("layer_norm", format!("{rows}x{dim}"), Op::LayerNorm { rows, dim }, dt));
    out.push(spec("rms_norm", format!("{rows}x{dim}"), Op::RmsNorm { rows, dim }, dt));
    let (rows, hidden) = if quick { (256, 2048) } else { (4096, 14336) };
    for variant in [SwigluVariant::Ops, SwigluVariant::Compiled, SwigluVariant::Kernel] {
        let name = format!("{}/{rows}x{hidden}", variant.name());
        out.push(spec("swiglu", name, Op::Swiglu { rows, hidden, variant }, dt));
    }
    let (q_heads, kv_heads, head_dim) = if quick { (4, 2, 64) } else { (32, 8, 128) };
    for len in [32, 127, 128, 512] {
        let name = format!("causal-gqa{q_heads}:{kv_heads}-d{head_dim}/L={len}");
        out.push(spec("sdpa", name, Op::Sdpa { q_heads, kv_heads, len, head_dim }, dt));
    }
    let (k, n, prefill) = if quick { (1024, 512, 128) } else { (4096, 14336, 512) };
    for (phase, m) in [("decode", 1), ("prefill", prefill)] {
        let name = format!("{phase}/M={m}/{k}->{n}/q4g64");
        let op = Op::QuantizedMatmul { m, k, n, bits: 4, group_size: 64 };
        out.push(spec("qmm", name, op, dt));
    }
    let (experts, top_k, k, n, prefill) =
        if quick { (8, 2, 512, 1024, 32) } else { (128, 8, 2048, 768, 512) };
    for (phase, tokens) in [("decode", 1), ("prefill", prefill)] {
        let name = format!("{phase}/T={tokens}/E={experts}k={top_k}/{k}->{n}/q4g64");
        let op = Op::GatherQmm { tokens, experts, top_k, k, n, bits: 4, group_size: 64 };
        out.push(spec("gather_qmm", name, op, dt));
    }
    let tokens = if quick { 8 } else { 512 };
    for size in [512, 1024, 2048] {
        for rank in [4, 8, 16, 32, 64] {
            let name = format!("d={size}/r={rank}/T={tokens}");
            out.push(spec("lora", name, Op::Lora { tokens, size, rank }, dt));
        }
    }
    for eval in [false, true] {
        let name = format!("chain1000/{}", if eval { "build+eval" } else { "build" });
        out.push(spec("host", name, Op::Chain { n: 1000, eval }, Dtype::Float32));
    }
    out
}

/// The custom-kernel backend MLX can run on the default device, if any.
pub fn kernel_backend() -> Option<KernelBackend> {
    let gpu = Device::default_device().is_ok_and(|d| d.device_type() == DeviceType::Gpu);
    if !gpu {
        return None;
    }
    [KernelBackend::Cuda, KernelBackend::Metal].into_iter().find(|b| b.is_available())
}

/// The kernel source for `backend`.
pub fn swiglu_source(backend: KernelBackend) -> &'static str {
    match backend {
        KernelBackend::Cuda => SWIGLU_CUDA_SOURCE,
        KernelBackend::Metal => SWIGLU_METAL_SOURCE,
    }
}

fn backend_name(backend: KernelBackend) -> &'static str {
    match backend {
        KernelBackend::Cuda => "cuda",
        KernelBackend::Metal => "metal",
    }
}

impl Spec {
    /// Why this case cannot run here, if it cannot (the fused kernel off a GPU backend).
    pub fn skip_reason(&self) -> Option<String> {
        match self.op {
            Op::Swiglu { variant: SwigluVariant::Kernel, .. } if kernel_backend().is_none() => {
                let device = Device::default_device().map_or("?".to_owned(), |d| d.to_string());
                Some(format!(
                    "no custom-kernel backend on {device}: MLX runs custom kernels only on a CUDA \
                     or Metal GPU"
                ))
            }
            _ => None,
        }
    }

    /// What one iteration computes, in the JSON form `micro.py` rebuilds the case from.
    pub fn to_json(&self) -> Value {
        let params = match &self.op {
            Op::Matmul { m, k, n } => {
                json!({"op": "matmul", "m": m, "k": k, "n": n, "b_scale": fan_in_scale(*k)})
            }
            Op::Softmax { rows, cols } => json!({"op": "softmax", "rows": rows, "cols": cols}),
            Op::LayerNorm { rows, dim } => {
                json!({"op": "layer_norm", "rows": rows, "dim": dim, "eps": 1e-5f32})
            }
            Op::RmsNorm { rows, dim } => {
                json!({"op": "rms_norm", "rows": rows, "dim": dim, "eps": 1e-5f32})
            }
            Op::Swiglu { rows, hidden, variant } => {
                let backend = kernel_backend();
                json!({
                    "op": "swiglu", "rows": rows, "hidden": hidden, "variant": variant.name(),
                    "kernel_backend": backend.map(backend_name),
                    "kernel_source": backend.map(swiglu_source),
                    "threads": SWIGLU_THREADS,
                })
            }
            Op::Sdpa { q_heads, kv_heads, len, head_dim } => json!({
                "op": "sdpa", "q_heads": q_heads, "kv_heads": kv_heads, "len": len,
                "head_dim": head_dim, "scale": fan_in_scale(*head_dim), "mask": "causal",
            }),
            Op::QuantizedMatmul { m, k, n, bits, group_size } => json!({
                "op": "qmm", "m": m, "k": k, "n": n, "bits": bits, "group_size": group_size,
                "w_scale": fan_in_scale(*k),
            }),
            Op::GatherQmm { tokens, experts, top_k, k, n, bits, group_size } => json!({
                "op": "gather_qmm", "tokens": tokens, "experts": experts, "top_k": top_k,
                "k": k, "n": n, "bits": bits, "group_size": group_size,
                "w_scale": fan_in_scale(*k),
            }),
            Op::Lora { tokens, size, rank } => json!({
                "op": "lora", "tokens": tokens, "size": size, "rank": rank,
                "w_scale": fan_in_scale(*size), "a_scale": fan_in_scale(*size),
                "b_scale": LORA_B_SCALE, "lora_scale": LORA_SCALE,
            }),
            Op::Chain { n, eval } => json!({"op": "chain", "n": n, "eval": eval}),
        };
        json!({
            "name": self.name, "group": self.group, "dtype": self.dtype.name(),
            "seed": self.seed, "params": params,
        })
    }

    /// Input `j`: `normal(shape, float32, key(seed + j)) * scale`, cast to `dtype`, evaluated.
    fn input(&self, j: u64, shape: &[i32], scale: f32, dtype: Dtype) -> Result<Array> {
        let key = random::key(self.seed + j)?;
        let x = random::normal(shape, Dtype::Float32, 0.0, 1.0, Some(&key))?;
        let x = if scale == 1.0 { x } else { (&x * scale)? };
        let x = x.astype(dtype)?;
        x.eval()?;
        Ok(x)
    }

    /// Builds the inputs (evaluated, outside any clock) and the iteration.
    pub fn prepare(&self) -> Result<Prepared> {
        if let Some(reason) = self.skip_reason() {
            return Err(Error::invalid("workload", format!("{}: {reason}", self.name)));
        }
        let dt = self.dtype;
        let step: Step = match self.op.clone() {
            Op::Matmul { m, k, n } => {
                let a = self.input(0, &[m, k], 1.0, dt)?;
                let b = self.input(1, &[k, n], fan_in_scale(k), dt)?;
                Box::new(move || Ok(vec![a.matmul(&b)?]))
            }
            Op::Softmax { rows, cols } => {
                let x = self.input(0, &[rows, cols], 1.0, dt)?;
                Box::new(move || Ok(vec![x.softmax(-1, false)?]))
            }
            Op::LayerNorm { rows, dim } => {
                let x = self.input(0, &[rows, dim], 1.0, dt)?;
                let w = self.input(1, &[dim], 1.0, dt)?;
                let b = self.input(2, &[dim], 1.0, dt)?;
                Box::new(move || Ok(vec![fast::layer_norm(&x, Some(&w), Some(&b), 1e-5)?]))
            }
            Op::RmsNorm { rows, dim } => {
                let x = self.input(0, &[rows, dim], 1.0, dt)?;
                let w = self.input(1, &[dim], 1.0, dt)?;
                Box::new(move || Ok(vec![fast::rms_norm(&x, Some(&w), 1e-5)?]))
            }
            Op::Swiglu { rows, hidden, variant } => {
                let g = self.input(0, &[rows, hidden], 1.0, dt)?;
                let u = self.input(1, &[rows, hidden], 1.0, dt)?;
                swiglu_step(variant, g, u)?
            }
            Op::Sdpa { q_heads, kv_heads, len, head_dim } => {
                let q = self.input(0, &[1, q_heads, len, head_dim], 1.0, dt)?;
                let k = self.input(1, &[1, kv_heads, len, head_dim], 1.0, dt)?;
                let v = self.input(2, &[1, kv_heads, len, head_dim], 1.0, dt)?;
                let scale = fan_in_scale(head_dim);
                Box::new(move || {
                    let mask = AttentionMask::Causal;
                    Ok(vec![fast::scaled_dot_product_attention(&q, &k, &v, scale, mask, None)?])
                })
            }
            Op::QuantizedMatmul { m, k, n, bits, group_size } => {
                let x = self.input(0, &[m, k], 1.0, dt)?;
                let w = self.input(1, &[n, k], fan_in_scale(k), dt)?;
                let params = affine(bits, group_size);
                let wq = quantization::quantize(&w, params)?;
                eval_quantized(&wq)?;
                Box::new(move || Ok(vec![quantization::quantized_matmul(&x, &wq, true, params)?]))
            }
            Op::GatherQmm { tokens, experts, top_k, k, n, bits, group_size } => {
                let x = self.input(0, &[tokens, 1, 1, k], 1.0, dt)?;
                let w = self.input(1, &[experts, n, k], fan_in_scale(k), dt)?;
                let logits = self.input(2, &[tokens, experts], 1.0, Dtype::Float32)?;
                let params = affine(bits, group_size);
                let wq = quantization::quantize(&w, params)?;
                eval_quantized(&wq)?;
                let idx = BoundedIndices::argpartition(&logits, -top_k, -1)?
                    .index((Ellipsis, -top_k..))?;
                idx.array().eval()?;
                Box::new(move || {
                    let indices = GatherIndices { lhs: None, rhs: Some(&idx), sorted: false };
                    Ok(vec![quantization::gather_qmm(&x, &wq, indices, true, params)?])
                })
            }
            Op::Lora { tokens, size, rank } => {
                let x = self.input(0, &[tokens, size], 1.0, dt)?;
                let w = self.input(1, &[size, size], fan_in_scale(size), dt)?;
                let a = self.input(2, &[size, rank], fan_in_scale(size), Dtype::Float32)?;
                let b = self.input(3, &[rank, size], LORA_B_SCALE, Dtype::Float32)?;
                let base = MaybeQuantized::Dense(Linear::from_weights(w, None)?);
                let mut lora = LoRALinear::from_base(base, rank, 0.0, LORA_SCALE)?;
                lora.lora_a = Param::new(a);
                lora.lora_b = Param::new(b);
                Box::new(move || Ok(vec![lora.forward(&x)?]))
            }
            Op::Chain { n, eval } => {
                let y0 = Array::scalar(0.0f32);
                y0.eval()?;
                let step: Step = Box::new(move || {
                    let mut y = y0.clone();
                    for _ in 0..n {
                        y = (&y + 1.0f32)?;
                    }
                    Ok(vec![y])
                });
                return Ok(Prepared { step, evaluates: eval });
            }
        };
        Ok(Prepared { step, evaluates: true })
    }
}

/// `scale` of the LoRA update (mlx-lm's default).
pub const LORA_SCALE: f32 = 20.0;
/// Scale of the random `lora_b` (a fresh adapter's is zero; a trained one's is small).
pub const LORA_B_SCALE: f32 = 0.01;

fn affine(bits: i32, group_size: i32) -> QuantizationParams {
    QuantizationParams { group_size: Some(group_size), bits: Some(bits), ..Default::default() }
}

fn eval_quantized(q: &quantization::Quantized) -> Result<()> {
    let mut parts = vec![&q.weights, &q.scales];
    parts.extend(q.biases.as_ref());
    transforms::eval(&parts)
}

fn two(xs: &[Array]) -> Result<(&Array, &Array)> {
    match xs {
        [a, b] => Ok((a, b)),
        _ => Err(Error::invalid("swiglu", format!("wants 2 inputs, got {}", xs.len()))),
    }
}

fn swiglu_step(variant: SwigluVariant, g: Array, u: Array) -> Result<Step> {
    Ok(match variant {
        SwigluVariant::Ops => Box::new(move || Ok(vec![nn::swiglu(&g, &u)?])),
        SwigluVariant::Compiled => {
            let f = transforms::compile(|xs: &[Array]| {
                let (g, u) = two(xs)?;
                Ok(vec![nn::swiglu(g, u)?])
            })?;
            Box::new(move || f.apply(&[&g, &u]))
        }
        SwigluVariant::Kernel => {
            let backend = kernel_backend().ok_or_else(|| {
                Error::invalid("swiglu", "no custom-kernel backend on this device")
            })?;
            let size = i32::try_from(g.size())
                .map_err(|_| Error::invalid("swiglu", "too many elements for one grid"))?;
            if size % SWIGLU_THREADS != 0 {
                return Err(Error::invalid(
                    "swiglu",
                    format!("{size} elements are not a multiple of {SWIGLU_THREADS}"),
                ));
            }
            let source = KernelSource::new(
                "bench_swiglu",
                &["gate", "up"],
                &["out"],
                swiglu_source(backend),
            );
            let kernel = Kernel::new(backend, &source)?;
            let mut launch = KernelLaunch::new(
                vec![(g.shape().to_vec(), g.dtype())],
                (size, 1, 1),
                (SWIGLU_THREADS, 1, 1),
            );
            launch.template_args.push(("T".to_owned(), TemplateArg::Dtype(g.dtype())));
            Box::new(move || kernel.apply(&[&g, &u], &launch))
        }
    })
}

/// One iteration's graph build: returns the outputs, unevaluated.
type Step = Box<dyn FnMut() -> Result<Vec<Array>>>;

/// A case with its inputs built, ready to time.
pub struct Prepared {
    step: Step,
    evaluates: bool,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("evaluates", &self.evaluates).finish_non_exhaustive()
    }
}

impl Prepared {
    /// Builds one iteration's graph and returns its outputs, unevaluated.
    pub fn build(&mut self) -> Result<Vec<Array>> {
        (self.step)()
    }

    /// One iteration as timed: the graph build, then `eval` unless the case times the build
    /// alone. Returns the outputs.
    pub fn iteration(&mut self) -> Result<Vec<Array>> {
        let out = (self.step)()?;
        if self.evaluates {
            transforms::eval(&out)?;
        }
        Ok(out)
    }

    /// False for a case that times the graph build alone.
    pub fn evaluates(&self) -> bool {
        self.evaluates
    }

    /// Nanoseconds per iteration over `iters` iterations (at least one). Outputs of evaluated
    /// iterations are dropped inside the clock (as Python's rebinding does); unevaluated graphs
    /// are kept and dropped after it.
    pub fn time(&mut self, iters: usize) -> Result<f64> {
        let iters = iters.max(1);
        let mut kept = Vec::with_capacity(if self.evaluates { 0 } else { iters });
        let start = Instant::now();
        for _ in 0..iters {
            let out = (self.step)()?;
            if self.evaluates {
                transforms::eval(&out)?;
            } else {
                kept.push(out);
            }
        }
        let ns = start.elapsed().as_nanos() as f64;
        drop(kept);
        Ok(ns / iters as f64)
    }

    /// The sum of every output element (in float32), evaluated: the figure both sides must agree
    /// on before their timings are compared.
    pub fn checksum(&mut self) -> Result<f64> {
        let outs = (self.step)()?;
        let mut total = 0.0f64;
        for o in &outs {
            total += f64::from(o.astype(Dtype::Float32)?.sum(.., false)?.item::<f32>()?);
        }
        Ok(total)
    }
}

/// True when two checksums agree to `rtol` (relative to the larger magnitude, at least 1).
pub fn checksums_agree(a: f64, b: f64, rtol: f64) -> bool {
    (a - b).abs() <= rtol * a.abs().max(b.abs()).max(1.0)
}

/// The cases whose names contain any of the comma-separated `patterns` (all when `None`).
pub fn select(cases: Vec<Spec>, patterns: Option<&str>) -> Vec<Spec> {
    match patterns {
        None => cases,
        Some(p) => {
            let pats: Vec<&str> = p.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            cases.into_iter().filter(|c| pats.iter().any(|p| c.name.contains(p))).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_grouped() {
        for profile in [Profile::Quick, Profile::Gpu] {
            let cs = cases(profile);
            let mut names: Vec<&str> = cs.iter().map(|c| c.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), cs.len());
            assert!(cs.iter().all(|c| c.name.starts_with(&format!("{}/", c.group))));
            assert_eq!(cs.iter().filter(|c| c.group == "lora").count(), 15);
            assert_eq!(cs.iter().filter(|c| c.group == "sdpa").count(), 4);
        }
        assert_eq!(cases(Profile::Quick)[0].dtype, Dtype::Float32);
        assert_eq!(cases(Profile::Gpu)[0].dtype, Dtype::Bfloat16);
    }

    #[test]
    fn select_by_substrings() {
        let cs = select(cases(Profile::Quick), Some("sdpa/, host/"));
        let names: Vec<&str> = cs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 6, "{names:?}");
        assert!(names.contains(&"sdpa/causal-gqa4:2-d64/L=127"));
        assert!(names.contains(&"host/chain1000/build+eval"));
        assert_eq!(select(cases(Profile::Quick), Some("nothing")).len(), 0);
        assert_eq!(select(cases(Profile::Quick), None).len(), cases(Profile::Quick).len());
    }

    #[test]
    fn spec_json_carries_what_python_needs() {
        let c = cases(Profile::Quick);
        let sdpa = c.iter().find(|c| c.name.ends_with("L=512")).unwrap().to_json();
        assert_eq!(sdpa["params"]["scale"].as_f64(), Some(0.125));
        assert_eq!(sdpa["dtype"], "float32");
        assert_eq!(sdpa["seed"], SEED);
        let mm = c.iter().find(|c| c.name == "matmul/256x256x256").unwrap().to_json();
        assert_eq!(mm["params"]["b_scale"].as_f64(), Some(0.0625));
        // Scales go out as the exact float32 value, which Python turns back into the same float.
        let mm = c.iter().find(|c| c.name == "matmul/128x128x128").unwrap().to_json();
        let b = mm["params"]["b_scale"].as_f64().unwrap();
        assert_eq!(b, f64::from(1.0 / 128f32.sqrt()));
        assert!((b - 0.088_388_347_648_318_44).abs() < 1e-8);
    }

    #[test]
    fn checksum_tolerance() {
        assert!(checksums_agree(1000.0, 1000.05, 1e-4));
        assert!(!checksums_agree(1000.0, 1000.2, 1e-4));
        assert!(checksums_agree(0.0, 5e-5, 1e-4));
    }

    #[test]
    fn chain_counts_and_matmul_matches_a_hand_value() {
        let c = cases(Profile::Quick);
        let chain = c.iter().find(|c| c.name == "host/chain1000/build").unwrap();
        let mut p = chain.prepare().unwrap();
        assert!(!p.evaluates());
        assert_eq!(p.checksum().unwrap(), 1000.0);
        let s = Spec {
            name: "matmul/t".into(),
            group: "matmul",
            op: Op::Matmul { m: 2, k: 4, n: 3 },
            dtype: Dtype::Float32,
            seed: 7,
        };
        let mut p = s.prepare().unwrap();
        let a = s.input(0, &[2, 4], 1.0, Dtype::Float32).unwrap().to_vec::<f32>().unwrap();
        let b = s.input(1, &[4, 3], 0.5, Dtype::Float32).unwrap().to_vec::<f32>().unwrap();
        let mut want = 0.0f64;
        for i in 0..2 {
            for j in 0..3 {
                for l in 0..4 {
                    want += f64::from(a[i * 4 + l]) * f64::from(b[l * 3 + j]);
                }
            }
        }
        assert!((p.checksum().unwrap() - want).abs() < 1e-4, "{want}");
        assert!(p.time(3).unwrap() > 0.0);
    }
}
