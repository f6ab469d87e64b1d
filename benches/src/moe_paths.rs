//! The expert-matmul paths of a sorted MoE layer timed against each other (`moe_paths` binary):
//! MLX's `gather_qmm`, dequantize-then-`gather_mm`, and the crate's grouped kernel
//! (`mlx_rs::kernels`), at the expert shapes of the model presets, 1 to 2048 tokens. Routing is
//! drawn as the models route (top-k of random scores per token, pairs sorted by expert), and the
//! grouped kernel's output is checked against `gather_qmm`'s in every case.
//!
//! The run writes a table and the crossovers ([`crossovers`]: from how many pairs per expert
//! the grouped kernel wins at every larger measured count), which
//! `mlx_rs::kernels::expert_matmul`'s `CUDA_CROSSOVERS` transcribes.

use std::time::Instant;

use mlx_rs::kernels::{ExpertMatmul, expert_matmul, grouped_qmm, grouped_qmm_support};
use mlx_rs::ops::{self, BoundedIndices};
use mlx_rs::quantization::{self, GatherIndices, QuantizationMode, QuantizationParams, Quantized};
use mlx_rs::{Array, Dtype, Result, random};
use serde_json::{Value, json};

use crate::stats::median;

/// One expert projection of a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    /// The preset it comes from.
    pub model: &'static str,
    /// `gate/up` (input gathered from the tokens) or `down` (one input row per pair).
    pub projection: &'static str,
    /// Experts.
    pub experts: i32,
    /// Experts per token.
    pub top_k: i32,
    /// Output dimension.
    pub n: i32,
    /// Input dimension.
    pub k: i32,
    /// Bits of the checkpoint.
    pub bits: i32,
    /// Group size of the checkpoint.
    pub group_size: i32,
}

/// The expert projections of the MoE presets (mlx-lm/presets).
pub const MODEL_SHAPES: &[Shape] = &[
    Shape {
        model: "glm45-air-3bit",
        projection: "gate/up",
        experts: 128,
        top_k: 8,
        n: 1408,
        k: 4096,
        bits: 3,
        group_size: 64,
    },
    Shape {
        model: "glm45-air-3bit",
        projection: "down",
        experts: 128,
        top_k: 8,
        n: 4096,
        k: 1408,
        bits: 3,
        group_size: 64,
    },
    Shape {
        model: "qwen3-30b-a3b-4bit",
        projection: "gate/up",
        experts: 128,
        top_k: 8,
        n: 768,
        k: 2048,
        bits: 4,
        group_size: 64,
    },
    Shape {
        model: "qwen3-30b-a3b-4bit",
        projection: "down",
        experts: 128,
        top_k: 8,
        n: 2048,
        k: 768,
        bits: 4,
        group_size: 64,
    },
    Shape {
        model: "mixtral-8x7b-4bit",
        projection: "gate/up",
        experts: 8,
        top_k: 2,
        n: 14336,
        k: 4096,
        bits: 4,
        group_size: 64,
    },
    Shape {
        model: "mixtral-8x7b-4bit",
        projection: "down",
        experts: 8,
        top_k: 2,
        n: 4096,
        k: 14336,
        bits: 4,
        group_size: 64,
    },
];

/// One measured case.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The projection.
    pub shape: Shape,
    /// Bits used (the checkpoint's, or the bit sweep's).
    pub bits: i32,
    /// Tokens routed.
    pub tokens: i32,
    /// Median milliseconds per path (`None`: the path does not support the case).
    pub ms: Vec<(ExpertMatmul, Option<f64>)>,
    /// Largest difference of the grouped kernel's output from `gather_qmm`'s, relative to the
    /// largest value.
    pub grouped_error: Option<f32>,
}

impl Measured {
    /// Pairs routed.
    pub fn pairs(&self) -> i64 {
        i64::from(self.tokens) * i64::from(self.shape.top_k)
    }

    /// The median of `path`.
    pub fn time(&self, path: ExpertMatmul) -> Option<f64> {
        self.ms.iter().find(|(p, _)| *p == path).and_then(|(_, t)| *t)
    }
}

/// Median milliseconds of evaluating `f`, after 2 warm-up runs, over at least 5 runs and about
/// `budget_ms`.
pub fn time_ms(budget_ms: f64, mut f: impl FnMut() -> Result<Array>) -> Result<f64> {
    for _ in 0..2 {
        f()?.eval()?;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5
        || (start.elapsed().as_secs_f64() * 1e3 < budget_ms && samples.len() < 50)
    {
        let t = Instant::now();
        f()?.eval()?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(&samples).unwrap_or(f64::NAN))
}

fn relative_error(got: &Array, want: &Array) -> Result<f32> {
    let (got, want) = (got.astype(Dtype::Float32)?, want.astype(Dtype::Float32)?);
    let diff = ops::max(&ops::abs(&(&got - &want)?)?, .., false)?.item::<f32>()?;
    let scale = ops::max(&ops::abs(&want)?, .., false)?.item::<f32>()?;
    Ok(diff / scale.max(1e-30))
}

/// The checkpoint-format quantization parameters of `shape` at `bits`.
fn params_for(shape: Shape, bits: i32) -> QuantizationParams {
    QuantizationParams {
        group_size: Some(shape.group_size),
        bits: Some(bits),
        mode: QuantizationMode::Affine,
    }
}

/// Random experts of `shape` in `dtype`, quantized at `bits` and evaluated.
pub fn expert_weights(shape: Shape, bits: i32, dtype: Dtype) -> Result<Quantized> {
    let w = random::normal(
        &[shape.experts, shape.n, shape.k],
        dtype,
        0.0,
        0.02,
        Some(&random::key(1)?),
    )?;
    let q = quantization::quantize(&w, params_for(shape, bits))?;
    q.weights.eval()?;
    Ok(q)
}

/// One sorted expert product ready to run on every path: `tokens` routed as the models route
/// (top-k of random scores per token, pairs sorted by expert), inputs evaluated.
pub struct ExpertCase<'a> {
    q: &'a Quantized,
    params: QuantizationParams,
    /// The kernel's input: the tokens (gate/up) or one row per pair (down).
    x: Array,
    /// `gather_qmm`'s input: one row per pair, `[pairs, 1, k]`.
    x_pairs: Array,
    sorted: BoundedIndices,
    experts: Array,
    rows: Option<Array>,
}

impl<'a> ExpertCase<'a> {
    /// `tokens` tokens through the experts `q` of `shape`, activations of `dtype`.
    pub fn new(
        shape: Shape,
        q: &'a Quantized,
        bits: i32,
        tokens: i32,
        dtype: Dtype,
    ) -> Result<Self> {
        let scores = random::normal(
            &[tokens, shape.experts],
            Dtype::Float32,
            0.0,
            1.0,
            Some(&random::key(2)?),
        )?;
        let top = BoundedIndices::argpartition(&ops::negative(&scores)?, shape.top_k - 1, -1)?;
        let flat = top.index((.., ..shape.top_k))?.flatten(0, -1)?;
        let order = BoundedIndices::argsort(flat.array(), 0)?;
        let sorted = flat.take(&order, 0)?;
        let token_of_pair = order.floor_divide(shape.top_k)?;
        let gathered = shape.projection == "gate/up";
        let rows_in = if gathered { tokens } else { tokens * shape.top_k };
        let x = random::normal(&[rows_in, shape.k], dtype, 0.0, 1.0, Some(&random::key(3)?))?;
        let x_pairs =
            if gathered { ops::take(&x, &token_of_pair, 0)? } else { x.clone() }.expand_dims(-2)?;
        let experts = sorted.array().astype(Dtype::Uint32)?;
        let rows = token_of_pair.array().astype(Dtype::Uint32)?;
        mlx_rs::transforms::eval(&[&x, &x_pairs, &experts, &rows, sorted.array()])?;
        let rows = gathered.then_some(rows);
        Ok(ExpertCase { q, params: params_for(shape, bits), x, x_pairs, sorted, experts, rows })
    }

    /// Whether `path` can run this case on this device.
    pub fn supports(&self, path: ExpertMatmul) -> bool {
        path != ExpertMatmul::Grouped
            || grouped_qmm_support(self.x.dtype(), self.q, self.params).is_ok()
    }

    /// The product on `path`, `[pairs, n]` (unevaluated).
    pub fn run(&self, path: ExpertMatmul) -> Result<Array> {
        let (q, params) = (self.q, self.params);
        match path {
            ExpertMatmul::GatherQmm => {
                let g = GatherIndices { lhs: None, rhs: Some(&self.sorted), sorted: true };
                quantization::gather_qmm(&self.x_pairs, q, g, true, params)?.squeeze(-2)
            }
            ExpertMatmul::Dequantized => {
                expert_matmul::dequantized_gather_mm(&self.x_pairs, &self.sorted, q, params)?
                    .squeeze(-2)
            }
            ExpertMatmul::Grouped => {
                grouped_qmm(&self.x, self.rows.as_ref(), &self.experts, q, params)
            }
        }
    }
}

/// Measures every path for `shape` at `bits` and each of `tokens`, in `dtype`.
pub fn measure(
    shape: Shape,
    bits: i32,
    tokens: &[i32],
    dtype: Dtype,
    budget_ms: f64,
) -> Result<Vec<Measured>> {
    let q = expert_weights(shape, bits, dtype)?;
    let mut out = Vec::new();
    for &t in tokens {
        let case = ExpertCase::new(shape, &q, bits, t, dtype)?;
        let mut ms = Vec::new();
        for path in [ExpertMatmul::GatherQmm, ExpertMatmul::Dequantized, ExpertMatmul::Grouped] {
            let time = match case.supports(path) {
                true => Some(time_ms(budget_ms, || case.run(path))?),
                false => None,
            };
            ms.push((path, time));
        }
        let grouped_error = match case.supports(ExpertMatmul::Grouped) {
            true => Some(relative_error(
                &case.run(ExpertMatmul::Grouped)?,
                &case.run(ExpertMatmul::GatherQmm)?,
            )?),
            false => None,
        };
        out.push(Measured { shape, bits, tokens: t, ms, grouped_error });
    }
    Ok(out)
}

/// Per bit width: the smallest pairs-per-expert count (pairs / experts) from which the grouped
/// kernel is faster than `gather_qmm` in every measured case with more pairs per expert than
/// the last case it lost (`None`: it loses at the largest count).
pub fn crossovers(results: &[Measured]) -> Vec<(i32, Option<f64>)> {
    let mut bits: Vec<i32> = results.iter().map(|m| m.bits).collect();
    bits.sort_unstable();
    bits.dedup();
    bits.into_iter()
        .map(|b| {
            let mut cases: Vec<(f64, bool)> = results
                .iter()
                .filter(|m| m.bits == b)
                .filter_map(|m| {
                    let (g, q) = (m.time(ExpertMatmul::Grouped)?, m.time(ExpertMatmul::GatherQmm)?);
                    Some((m.pairs() as f64 / f64::from(m.shape.experts), g < q))
                })
                .collect();
            cases.sort_by(|x, y| x.0.total_cmp(&y.0));
            let last_loss = cases.iter().filter(|(_, wins)| !wins).map(|c| c.0).next_back();
            let from = match last_loss {
                None => cases.first().map(|c| c.0),
                Some(loss) => cases.iter().map(|c| c.0).find(|&p| p > loss),
            };
            (b, from)
        })
        .collect()
}

/// The Markdown table of `results`.
pub fn table(results: &[Measured]) -> String {
    let mut md = String::from(
        "| model | projection | bits | tokens | pairs | gather_qmm ms | dequantized ms | grouped ms | gather_qmm / grouped | grouped error |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let f = |t: Option<f64>| t.map_or("—".to_owned(), |t| format!("{t:.3}"));
    for m in results {
        let q = m.time(ExpertMatmul::GatherQmm);
        let g = m.time(ExpertMatmul::Grouped);
        let speedup = match (q, g) {
            (Some(q), Some(g)) => format!("{:.2}×", q / g),
            _ => "—".to_owned(),
        };
        md += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            m.shape.model,
            m.shape.projection,
            m.bits,
            m.tokens,
            m.pairs(),
            f(q),
            f(m.time(ExpertMatmul::Dequantized)),
            f(g),
            speedup,
            m.grouped_error.map_or("—".to_owned(), |e| format!("{e:.1e}")),
        );
    }
    md
}

/// The results as JSON.
pub fn to_json(results: &[Measured]) -> Value {
    let cases: Vec<Value> = results
        .iter()
        .map(|m| {
            let ms: serde_json::Map<String, Value> =
                m.ms.iter().map(|(p, t)| (p.name().to_owned(), json!(t))).collect();
            json!({
                "model": m.shape.model, "projection": m.shape.projection,
                "experts": m.shape.experts, "top_k": m.shape.top_k, "n": m.shape.n, "k": m.shape.k,
                "group_size": m.shape.group_size, "bits": m.bits, "tokens": m.tokens,
                "pairs": m.pairs(), "median_ms": ms, "grouped_relative_error": m.grouped_error,
            })
        })
        .collect();
    let cross: Vec<Value> = crossovers(results)
        .into_iter()
        .map(|(b, from)| json!({"bits": b, "grouped_from_pairs_per_expert": from}))
        .collect();
    json!({"cases": cases, "crossovers": cross})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(bits: i32, tokens: i32, q: f64, g: f64) -> Measured {
        Measured {
            shape: MODEL_SHAPES[0],
            bits,
            tokens,
            ms: vec![(ExpertMatmul::GatherQmm, Some(q)), (ExpertMatmul::Grouped, Some(g))],
            grouped_error: Some(0.0),
        }
    }

    #[test]
    fn crossover_is_the_first_count_after_the_last_loss() {
        let results = [
            case(3, 1, 1.0, 2.0),
            case(3, 4, 1.0, 0.5),
            case(3, 8, 1.0, 1.5),
            case(3, 16, 2.0, 1.0),
            case(3, 32, 4.0, 1.0),
            case(4, 1, 1.0, 0.9),
            case(4, 2, 1.0, 0.9),
            case(8, 1, 0.5, 0.9),
        ];
        // Top-8 of 128 experts: pairs per expert are tokens / 16. A loss and a win at the same
        // count: the crossover is the next count.
        let mut tie = case(4, 32, 2.0, 1.0);
        tie.shape.projection = "down";
        let results: Vec<Measured> =
            results.into_iter().chain([case(4, 32, 1.0, 2.0), tie]).collect();
        assert_eq!(crossovers(&results), vec![(3, Some(1.0)), (4, None), (8, None)],);
        assert_eq!(crossovers(&results[..7]), vec![(3, Some(1.0)), (4, Some(1.0 / 16.0))]);
        let md = table(&results);
        assert!(md.contains("| 4.00× |"), "{md}");
    }
}
