//! The fused elementwise kernels timed against MLX's ops (`fused_paths` binary): the gated
//! activations (`mlx_rs::kernels::swiglu`, `geglu`) at the feed-forward widths of the model
//! presets, and dropout at their hidden sizes, 1 to 2048 tokens. Each case times MLX's ops,
//! `transforms::compile` of the same ops, and the kernel (policy `On`), and checks the kernel's
//! output against the ops'.
//!
//! The table's "ops / kernel" column is what `CUDA_CROSSOVERS` in `mlx_rs::kernels::activation`
//! and `mlx_rs::kernels::dropout` transcribe (from how many elements the kernel wins).

use mlx_rs::kernels::{self, Fused, GatedActivation, dropout_support, gated_support};
use mlx_rs::nn::GeluApprox;
use mlx_rs::transforms::{self, Function};
use mlx_rs::{Array, Dtype, Result, ops, random};
use serde_json::{Value, json};

use crate::moe_paths::time_ms;

/// The elementwise work of one model layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Case {
    /// The preset it comes from.
    pub model: &'static str,
    /// `swiglu`, `geglu` or `dropout`.
    pub kernel: &'static str,
    /// Rows per token (experts per token for MoE layers, 1 for dense ones).
    pub rows_per_token: i32,
    /// Elements per row (the MLP width, or the hidden size for dropout).
    pub width: i32,
}

/// The presets' feed-forward widths (SwiGLU; GeGLU at one of them) and hidden sizes (dropout).
pub const CASES: &[Case] = &[
    Case { model: "qwen3-30b-a3b moe", kernel: "swiglu", rows_per_token: 8, width: 768 },
    Case { model: "mixtral-8x7b moe", kernel: "swiglu", rows_per_token: 2, width: 14336 },
    Case { model: "glm45-air moe", kernel: "swiglu", rows_per_token: 8, width: 1408 },
    Case { model: "glm45-air dense", kernel: "swiglu", rows_per_token: 1, width: 10944 },
    Case { model: "mixtral-8x7b moe", kernel: "geglu", rows_per_token: 2, width: 14336 },
    Case { model: "qwen3-30b-a3b", kernel: "dropout", rows_per_token: 1, width: 2048 },
    Case { model: "mixtral-8x7b", kernel: "dropout", rows_per_token: 1, width: 4096 },
    Case { model: "glm45-air", kernel: "dropout", rows_per_token: 1, width: 4096 },
];

/// One timed computation.
type Path = Box<dyn Fn() -> Result<Array>>;

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
    /// Largest `|kernel - ops| / (1 + |ops|)` (0 for dropout when they agree bit for bit).
    pub error: Option<f32>,
}

impl Measured {
    /// Elements processed.
    pub fn elements(&self) -> i64 {
        i64::from(self.tokens) * i64::from(self.case.rows_per_token) * i64::from(self.case.width)
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

/// Measures `case` at each of `tokens` in `dtype`, about `budget_ms` per path.
pub fn measure(case: Case, tokens: &[i32], dtype: Dtype, budget_ms: f64) -> Result<Vec<Measured>> {
    let activation = match case.kernel {
        "geglu" => GatedActivation::Gelu(GeluApprox::None),
        _ => GatedActivation::Silu,
    };
    let compiled: Function = if case.kernel == "dropout" {
        transforms::compile(|x: &[Array]| Ok(vec![plain_dropout(&x[0], &x[1])?]))?
    } else {
        transforms::compile(move |x: &[Array]| Ok(vec![activation.plain(&x[0], &x[1])?]))?
    };
    let mut out = Vec::new();
    for &t in tokens {
        let shape = [t * case.rows_per_token, case.width];
        let a = random::normal(&shape, dtype, 0.0, 1.0, Some(&random::key(1)?))?;
        let b = random::normal(&shape, dtype, 0.0, 1.0, Some(&random::key(2)?))?;
        let key = random::key(3)?;
        transforms::eval(&[&a, &b])?;
        let (plain, kernel): (Path, Path) = if case.kernel == "dropout" {
            let (a2, k2) = (a.clone(), key.clone());
            let (a3, k3) = (a.clone(), key.clone());
            (
                Box::new(move || plain_dropout(&a2, &k2)),
                Box::new(move || kernels::dropout(&a3, P, Some(&k3))),
            )
        } else {
            let (a2, b2, a3, b3) = (a.clone(), b.clone(), a.clone(), b.clone());
            (
                Box::new(move || activation.plain(&a2, &b2)),
                Box::new(move || kernels::activation::gated(activation, &a3, &b3)),
            )
        };
        let inputs = if case.kernel == "dropout" { [&a, &key] } else { [&a, &b] };
        let run_compiled = || -> Result<Array> { Ok(compiled.apply(&inputs)?.remove(0)) };
        let supported = if case.kernel == "dropout" {
            dropout_support(&a).is_ok()
        } else {
            gated_support(&a, &b).is_ok()
        };
        let mut m = Measured {
            case,
            tokens: t,
            ms: [Some(time_ms(budget_ms, &plain)?), Some(time_ms(budget_ms, run_compiled)?), None],
            error: None,
        };
        if supported {
            let previous = kernels::fused();
            kernels::set_fused(Fused::On);
            let timed = (|| -> Result<(f32, f64)> {
                Ok((scaled_error(&kernel()?, &plain()?)?, time_ms(budget_ms, &kernel)?))
            })();
            kernels::set_fused(previous);
            let (error, ms) = timed?;
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
