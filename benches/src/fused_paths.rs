//! The fused kernels timed against MLX's ops (`fused_paths` binary): the gated activations
//! (`mlx_rs::kernels::swiglu`, `geglu`) at the feed-forward widths of the model presets, dropout
//! at their hidden sizes, the MoE routers (`softmax_topk`, `topk_softmax`, `glm_topk`) at their
//! expert counts and `gather_add` at their hidden sizes, 1 to 2048 tokens. Each case times MLX's
//! ops, `transforms::compile` of the same ops, and the kernel (policy `On`), and checks the
//! kernel's output against the ops'.
//!
//! The table's "ops / kernel" column is what the `CUDA_CROSSOVERS` tables of
//! `mlx_rs::kernels::{activation, dropout, routing}` transcribe (from how many elements or
//! tokens the kernel wins).

use mlx_rs::kernels::{self, Fused, GatedActivation, GroupedTopk};
use mlx_rs::nn::GeluApprox;
use mlx_rs::transforms::{self, Function};
use mlx_rs::{Array, Dtype, Result, ops, random};
use serde_json::{Value, json};

use crate::moe_paths::time_ms;

/// One fused kernel at one model layer's sizes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Case {
    /// The preset it comes from.
    pub model: &'static str,
    /// `swiglu`, `geglu`, `dropout`, `softmax_topk`, `topk_softmax`, `glm_topk` or `gather_add`.
    pub kernel: &'static str,
    /// Rows per token: experts per token for MoE layers (and the routers' k), else 1.
    pub rows_per_token: i32,
    /// Elements per row: the MLP width, the hidden size (dropout, gather-add) or the experts
    /// (routers).
    pub width: i32,
}

impl Case {
    /// Whether the kernel is a router (one row of `width` logits per token).
    pub fn is_router(&self) -> bool {
        self.kernel.ends_with("_topk") || self.kernel == "topk_softmax"
    }
}

/// The presets' feed-forward widths (SwiGLU; GeGLU at one of them), hidden sizes (dropout,
/// gather-add) and routers.
pub const CASES: &[Case] = &[
    Case { model: "qwen3-30b-a3b moe", kernel: "swiglu", rows_per_token: 8, width: 768 },
    Case { model: "mixtral-8x7b moe", kernel: "swiglu", rows_per_token: 2, width: 14336 },
    Case { model: "glm45-air moe", kernel: "swiglu", rows_per_token: 8, width: 1408 },
    Case { model: "glm45-air dense", kernel: "swiglu", rows_per_token: 1, width: 10944 },
    Case { model: "mixtral-8x7b moe", kernel: "geglu", rows_per_token: 2, width: 14336 },
    Case { model: "qwen3-30b-a3b", kernel: "dropout", rows_per_token: 1, width: 2048 },
    Case { model: "mixtral-8x7b", kernel: "dropout", rows_per_token: 1, width: 4096 },
    Case { model: "glm45-air", kernel: "dropout", rows_per_token: 1, width: 4096 },
    Case { model: "qwen3-30b-a3b", kernel: "softmax_topk", rows_per_token: 8, width: 128 },
    Case { model: "mixtral-8x7b", kernel: "topk_softmax", rows_per_token: 2, width: 8 },
    Case { model: "glm45-air", kernel: "glm_topk", rows_per_token: 8, width: 128 },
    Case { model: "qwen3-30b-a3b", kernel: "gather_add", rows_per_token: 8, width: 2048 },
    Case { model: "mixtral-8x7b", kernel: "gather_add", rows_per_token: 2, width: 4096 },
    Case { model: "glm45-air", kernel: "gather_add", rows_per_token: 8, width: 4096 },
];

/// One timed computation.
pub type Path = Box<dyn Fn() -> Result<Array>>;

/// Drop probability of the dropout cases.
const P: f32 = 0.1;

/// One measured case.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The case.
    pub case: Case,
    /// Tokens.
    pub tokens: i32,
    /// Median milliseconds of the ops, the compiled ops and the kernel (`None`: unsupported).
    pub ms: [Option<f64>; 3],
    /// Largest `|kernel - ops| / (1 + |ops|)` (0 for dropout when they agree bit for bit; the
    /// routers' weights compared sorted, so that tied experts in another order agree).
    pub error: Option<f32>,
}

impl Measured {
    /// Elements of the kernel's input (for the routers, the logits).
    pub fn elements(&self) -> i64 {
        let rows = if self.case.is_router() { 1 } else { self.case.rows_per_token };
        i64::from(self.tokens) * i64::from(rows) * i64::from(self.case.width)
    }
}

fn scaled_error(got: &Array, want: &Array) -> Result<f32> {
    let (g, w) = (got.astype(Dtype::Float32)?, want.astype(Dtype::Float32)?);
    let scaled = (ops::abs(&(&g - &w)?)? / (ops::abs(&w)? + 1.0)?)?;
    ops::max(&scaled, .., false)?.item::<f32>()
}

fn plain_dropout(x: &Array, key: &Array) -> Result<Array> {
    let keep = 1.0 - P;
    let mask = random::bernoulli(&Array::scalar(keep), Some(x.shape()), Some(key))?;
    (&mask * x)? * (1.0 / keep)
}

/// GLM-4.5-Air's router settings (one group, weights normalised, no scaling).
const GLM_ROUTER: GroupedTopk = GroupedTopk {
    top_k: 8,
    n_group: 1,
    topk_group: 1,
    routed_scaling_factor: 1.0,
    norm_topk_prob: true,
};

/// A router's weights (or, `plain`, those of the plain ops) for `logits`; with `sorted` along
/// the last axis, for comparing choices that differ only in the order of tied experts.
fn route(case: Case, logits: &Array, bias: &Array, plain: bool, sorted: bool) -> Result<Array> {
    let k = case.rows_per_token;
    let (_, w) = match case.kernel {
        "softmax_topk" => kernels::softmax_topk(logits, k, true, plain)?,
        "topk_softmax" => kernels::topk_softmax(logits, k, plain)?,
        _ => kernels::glm_topk(logits, bias, &GroupedTopk { top_k: k, ..GLM_ROUTER }, plain)?,
    };
    if sorted { ops::sort(&w, Some(-1)) } else { Ok(w) }
}

/// The three ways to compute `case` for `tokens` tokens in `dtype`, inputs drawn and evaluated.
pub struct Paths {
    /// MLX's ops.
    pub plain: Path,
    /// `transforms::compile` of MLX's ops.
    pub compiled: Path,
    /// The kernel: run it under [`Fused::On`].
    pub kernel: Path,
    /// Whether the kernel supports the case on this device.
    pub supported: bool,
    /// The kernel's output and the plain one's, in a form that must agree.
    pub comparable: Box<dyn Fn() -> Result<(Array, Array)>>,
}

/// The paths of `case` at `tokens` tokens in `dtype`.
pub fn paths(case: Case, tokens: i32, dtype: Dtype) -> Result<Paths> {
    let (rows, width) = (tokens * case.rows_per_token, case.width);
    let normal =
        |shape: &[i32], seed| random::normal(shape, dtype, 0.0, 1.0, Some(&random::key(seed)?));
    Ok(match case.kernel {
        "dropout" => {
            let x = normal(&[rows, width], 1)?;
            let key = random::key(3)?;
            x.eval()?;
            let compiled: Function =
                transforms::compile(|x: &[Array]| Ok(vec![plain_dropout(&x[0], &x[1])?]))?;
            let (x1, k1, x2, k2, x3, k3) =
                (x.clone(), key.clone(), x.clone(), key.clone(), x.clone(), key.clone());
            let supported = kernels::dropout_support(&x).is_ok();
            Paths {
                plain: Box::new(move || plain_dropout(&x1, &k1)),
                compiled: Box::new(move || Ok(compiled.apply(&[&x2, &k2])?.remove(0))),
                kernel: Box::new(move || kernels::dropout(&x3, P, Some(&k3))),
                supported,
                comparable: Box::new(move || {
                    Ok((kernels::dropout(&x, P, Some(&key))?, plain_dropout(&x, &key)?))
                }),
            }
        }
        "gather_add" => {
            let y = normal(&[tokens, case.rows_per_token, width], 1)?;
            let scores = ops::softmax(&normal(&[tokens, case.rows_per_token], 2)?, -1, true)?;
            transforms::eval(&[&y, &scores])?;
            let compiled: Function = transforms::compile(|x: &[Array]| {
                Ok(vec![kernels::gather_add(&x[0], &x[1], Some(x[0].dtype()), true)?])
            })?;
            let supported = kernels::gather_add_support(&y, &scores, Some(dtype)).is_ok();
            let run = move |y: &Array, s: &Array, plain| {
                kernels::gather_add(y, s, Some(y.dtype()), plain)
            };
            let (y1, s1, y2, s2, y3, s3) =
                (y.clone(), scores.clone(), y.clone(), scores.clone(), y.clone(), scores.clone());
            Paths {
                plain: Box::new(move || run(&y1, &s1, true)),
                compiled: Box::new(move || Ok(compiled.apply(&[&y2, &s2])?.remove(0))),
                kernel: Box::new(move || run(&y3, &s3, false)),
                supported,
                comparable: Box::new(move || {
                    Ok((run(&y, &scores, false)?, run(&y, &scores, true)?))
                }),
            }
        }
        _ if case.is_router() => {
            let logits = normal(&[tokens, width], 1)?;
            let bias = random::normal(&[width], Dtype::Float32, 0.0, 0.01, Some(&random::key(2)?))?;
            transforms::eval(&[&logits, &bias])?;
            let compiled: Function = transforms::compile(move |x: &[Array]| {
                Ok(vec![route(case, &x[0], &x[1], true, false)?])
            })?;
            let supported = match case.kernel {
                "softmax_topk" => kernels::softmax_topk_support(&logits, case.rows_per_token),
                "topk_softmax" => kernels::topk_softmax_support(&logits, case.rows_per_token),
                _ => kernels::glm_topk_support(
                    &logits,
                    &GroupedTopk { top_k: case.rows_per_token, ..GLM_ROUTER },
                ),
            }
            .is_ok();
            let (l1, b1, l2, b2, l3, b3) = (
                logits.clone(),
                bias.clone(),
                logits.clone(),
                bias.clone(),
                logits.clone(),
                bias.clone(),
            );
            Paths {
                plain: Box::new(move || route(case, &l1, &b1, true, false)),
                compiled: Box::new(move || Ok(compiled.apply(&[&l2, &b2])?.remove(0))),
                kernel: Box::new(move || route(case, &l3, &b3, false, false)),
                supported,
                comparable: Box::new(move || {
                    Ok((
                        route(case, &logits, &bias, false, true)?,
                        route(case, &logits, &bias, true, true)?,
                    ))
                }),
            }
        }
        _ => {
            let activation = match case.kernel {
                "geglu" => GatedActivation::Gelu(GeluApprox::None),
                _ => GatedActivation::Silu,
            };
            let (a, b) = (normal(&[rows, width], 1)?, normal(&[rows, width], 2)?);
            transforms::eval(&[&a, &b])?;
            let compiled: Function =
                transforms::compile(move |x: &[Array]| Ok(vec![activation.plain(&x[0], &x[1])?]))?;
            let supported = kernels::gated_support(&a, &b).is_ok();
            let (a1, b1, a2, b2, a3, b3) =
                (a.clone(), b.clone(), a.clone(), b.clone(), a.clone(), b.clone());
            Paths {
                plain: Box::new(move || activation.plain(&a1, &b1)),
                compiled: Box::new(move || Ok(compiled.apply(&[&a2, &b2])?.remove(0))),
                kernel: Box::new(move || kernels::activation::gated(activation, &a3, &b3)),
                supported,
                comparable: Box::new(move || {
                    Ok((kernels::activation::gated(activation, &a, &b)?, activation.plain(&a, &b)?))
                }),
            }
        }
    })
}

/// Runs `f` under the policy `policy`, restoring the previous one after.
pub fn with_policy<T>(policy: Fused, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let previous = kernels::fused();
    kernels::set_fused(policy);
    let out = f();
    kernels::set_fused(previous);
    out
}

/// Measures `case` at each of `tokens` in `dtype`, about `budget_ms` per path.
pub fn measure(case: Case, tokens: &[i32], dtype: Dtype, budget_ms: f64) -> Result<Vec<Measured>> {
    let mut out = Vec::new();
    for &t in tokens {
        let p = paths(case, t, dtype)?;
        let mut m = Measured {
            case,
            tokens: t,
            ms: [Some(time_ms(budget_ms, &p.plain)?), Some(time_ms(budget_ms, &p.compiled)?), None],
            error: None,
        };
        if p.supported {
            let (error, ms) = with_policy(Fused::On, || {
                let (got, want) = (p.comparable)()?;
                Ok((scaled_error(&got, &want)?, time_ms(budget_ms, &p.kernel)?))
            })?;
            (m.error, m.ms[2]) = (Some(error), Some(ms));
        }
        out.push(m);
    }
    Ok(out)
}

/// The Markdown table of `results`.
pub fn table(results: &[Measured]) -> String {
    let mut md = String::from(
        "| kernel | model | width | tokens | elements | ops ms | compiled ms | kernel ms | ops / kernel | compiled / kernel | error |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let f = |t: Option<f64>| t.map_or("—".to_owned(), |t| format!("{t:.4}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}×", a / b),
        _ => "—".to_owned(),
    };
    for m in results {
        let [ops, compiled, kernel] = m.ms;
        md += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            m.case.kernel,
            m.case.model,
            m.case.width,
            m.tokens,
            m.elements(),
            f(ops),
            f(compiled),
            f(kernel),
            ratio(ops, kernel),
            ratio(compiled, kernel),
            m.error.map_or("—".to_owned(), |e| format!("{e:.1e}")),
        );
    }
    md
}

/// The results as JSON.
pub fn to_json(results: &[Measured]) -> Value {
    let cases: Vec<Value> = results
        .iter()
        .map(|m| {
            let [ops, compiled, kernel] = m.ms;
            json!({
                "kernel": m.case.kernel, "model": m.case.model,
                "rows_per_token": m.case.rows_per_token, "width": m.case.width,
                "tokens": m.tokens, "elements": m.elements(),
                "median_ms": {"ops": ops, "compiled": compiled, "kernel": kernel},
                "kernel_error": m.error,
            })
        })
        .collect();
    json!({ "cases": cases })
}
