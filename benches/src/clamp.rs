//! What the index clamping of `take` and `gather_qmm` costs (issue 8, item 6): an embedding
//! lookup (`ops::take` of a `[vocab, dim]` weight along axis 0) and an MoE layer's three
//! `gather_qmm` calls (SwitchGLU-like), at decode (1 token) and prefill (512 tokens), each timed
//! per call with eval, beside the clip op alone on the same index array.
//!
//! A second way to index (for example one that skips the clamp for indices proven in range) is
//! one more entry in [`VARIANTS`]: write its `take` and `gather_qmm` functions and list them.

use std::time::Instant;

use mlx_rs::ops::{BoundedIndices, IndexArray};
use mlx_rs::quantization::{self, GatherIndices, QuantizationMode, QuantizationParams, Quantized};
use mlx_rs::{Array, Dtype, Result, ops, random};
use serde_json::{Value, json};

use crate::cli::{Flags, usage_error};
use crate::env::RunInfo;
use crate::stats::Summary;

/// One way to pass the index arrays: plain arrays, which every op clamps into range, or
/// [`BoundedIndices`] whose proven range lets the ops skip the clamp (as the output of
/// `argpartition` in an MoE router or of `argmax` in a greedy decode loop has).
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// Shown in the table.
    pub name: &'static str,
    /// True to pass [`BoundedIndices`] (made once, outside the timed calls).
    pub bounded: bool,
}

/// `take(weight, ids, axis 0)`.
fn take(weight: &Array, ids: &dyn IndexArray) -> Result<Array> {
    ops::take(weight, ids, 0)
}

/// `gather_qmm(x, w, rhs = indices, transpose = true)`.
fn gather_qmm(
    x: &Array,
    w: &Quantized,
    rhs: &dyn IndexArray,
    params: QuantizationParams,
) -> Result<Array> {
    let indices = GatherIndices { lhs: None, rhs: Some(rhs), sorted: false };
    quantization::gather_qmm(x, w, indices, true, params)
}

/// The variants measured, interleaved call by call.
pub const VARIANTS: &[Variant] = &[
    Variant { name: "clamped (plain indices)", bounded: false },
    Variant { name: "bounded (no clamp)", bounded: true },
];

/// The clip op that `take` adds for `int32` ids into an axis of `n`: `clip(ids, -n, n - 1)`,
/// bounds made per call as the clamp makes them.
fn clip_take_ids(ids: &Array, n: i32) -> Result<Array> {
    ops::clip(ids, Some(&Array::scalar(-n)), Some(&Array::scalar(n - 1)))
}

/// The clip op that `gather_qmm` adds for `uint32` indices into `e` experts: `clip(idx, -, e-1)`.
fn clip_expert_ids(idx: &Array, e: u32) -> Result<Array> {
    ops::clip(idx, None, Some(&Array::scalar(e - 1)))
}

/// Shapes and dtype of the workloads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sizes {
    /// Embedding rows.
    pub vocab: i32,
    /// Embedding width.
    pub dim: i32,
    /// Experts.
    pub experts: i32,
    /// Model width of the MoE layer.
    pub moe_dim: i32,
    /// Expert hidden width.
    pub ffn: i32,
    /// Experts per token.
    pub top_k: i32,
    /// Tokens of the prefill cases.
    pub prefill: i32,
    /// Weights and activations.
    pub dtype: Dtype,
}

impl Sizes {
    /// Small enough for a 2-core CPU (float32).
    pub const CPU: Sizes = Sizes {
        vocab: 32000,
        dim: 512,
        experts: 8,
        moe_dim: 256,
        ffn: 512,
        top_k: 2,
        prefill: 512,
        dtype: Dtype::Float32,
    };
    /// Real model shapes (Qwen3-30B-A3B-like MoE, a 151936-token vocabulary), bfloat16.
    pub const GPU: Sizes = Sizes {
        vocab: 151936,
        dim: 2048,
        experts: 128,
        moe_dim: 2048,
        ffn: 768,
        top_k: 8,
        prefill: 512,
        dtype: Dtype::Bfloat16,
    };
}

/// Options of `floor clamp`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClampArgs {
    /// The shapes.
    pub sizes: Sizes,
    /// Unmeasured calls per case.
    pub warmup: usize,
    /// Measured calls per case.
    pub iters: usize,
    /// Where the results go.
    pub out: std::path::PathBuf,
}

impl ClampArgs {
    /// Usage text.
    pub const USAGE: &'static str = "\
floor clamp [--gpu-sizes] [--prefill T] [--warmup W] [--iters I] [--out DIR]
  --gpu-sizes   vocab 151936 x 2048 and E=128 D=2048 F=768 k=8, bfloat16 (default: vocab
                32000 x 512 and E=8 D=256 F=512 k=2, float32)
  --prefill T   tokens of the prefill cases (default 512)
  --warmup W    unmeasured calls per case (default 5)
  --iters I     measured calls per case, interleaved across cases (default 30)
  --out DIR     where the JSON and Markdown results go (default benches/results)";

    /// Parses the arguments after `clamp`.
    pub fn parse(args: &[String], default_out: &std::path::Path) -> Result2<ClampArgs> {
        let mut flags = Flags::new(args, &["--gpu-sizes"])?;
        let mut sizes = if flags.switch("--gpu-sizes") { Sizes::GPU } else { Sizes::CPU };
        let prefill = flags.count("--prefill", 512, 1)?;
        sizes.prefill =
            i32::try_from(prefill).map_err(|_| usage_error("--prefill is too large"))?;
        let parsed = ClampArgs {
            sizes,
            warmup: flags.count("--warmup", 5, 0)?,
            iters: flags.count("--iters", 30, 1)?,
            out: flags.value("--out").map_or_else(|| default_out.to_path_buf(), Into::into),
        };
        flags.finish()?;
        Ok(parsed)
    }
}

type Result2<T> = std::result::Result<T, String>;

/// The built inputs.
struct Inputs {
    weight: Array,
    gate: Quantized,
    up: Quantized,
    down: Quantized,
    params: QuantizationParams,
}

fn build_inputs(s: &Sizes) -> Result<Inputs> {
    let key = random::key(0)?;
    let keys = random::split(&key, 4)?;
    let part = |i: i32| ops::take(&keys, &Array::scalar(i), Some(0));
    let weight = random::normal(&[s.vocab, s.dim], s.dtype, 0.0, 0.02, Some(&part(0)?))?;
    weight.eval()?;
    let params =
        QuantizationParams { group_size: Some(64), bits: Some(4), mode: QuantizationMode::Affine };
    let quantized = |shape: &[i32], i: i32| -> Result<Quantized> {
        let w = random::normal(shape, s.dtype, 0.0, 0.02, Some(&part(i)?))?;
        let q = quantization::quantize(&w, params)?;
        let mut parts = vec![&q.weights, &q.scales];
        parts.extend(q.biases.as_ref());
        mlx_rs::transforms::eval(&parts)?;
        Ok(q)
    };
    Ok(Inputs {
        weight,
        gate: quantized(&[s.experts, s.ffn, s.moe_dim], 1)?,
        up: quantized(&[s.experts, s.ffn, s.moe_dim], 2)?,
        down: quantized(&[s.experts, s.moe_dim, s.ffn], 3)?,
        params,
    })
}

/// SwitchGLU's expert part: `down(silu(gate(x)) * up(x))`, three `gather_qmm` calls.
fn moe_layer(inp: &Inputs, x: &Array, idx: &dyn IndexArray) -> Result<Array> {
    let g = gather_qmm(x, &inp.gate, idx, inp.params)?;
    let u = gather_qmm(x, &inp.up, idx, inp.params)?;
    let h = ops::multiply(&ops::multiply(&g, &ops::sigmoid(&g)?)?, &u)?;
    gather_qmm(&h, &inp.down, idx, inp.params)
}

/// A timed case: builds its graph and returns the array to evaluate.
struct Case<'a> {
    group: String,
    name: String,
    run: Box<dyn Fn() -> Result<Array> + 'a>,
    build_ns: Vec<f64>,
    total_ns: Vec<f64>,
}

impl<'a> Case<'a> {
    fn new(group: String, name: String, run: Box<dyn Fn() -> Result<Array> + 'a>) -> Case<'a> {
        Case { group, name, run, build_ns: vec![], total_ns: vec![] }
    }
}

fn time_once(case: &Case<'_>) -> Result<(f64, f64)> {
    let start = Instant::now();
    let out = (case.run)()?;
    let build = start.elapsed();
    out.eval()?;
    let total = start.elapsed();
    Ok((build.as_nanos() as f64, total.as_nanos() as f64))
}

/// A measured case's figures.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// `embedding decode`, `moe prefill`, ...
    pub group: String,
    /// The variant, or `clip alone`.
    pub name: String,
    /// Graph build, ns per call.
    pub build: Summary,
    /// Build + eval, ns per call.
    pub total: Summary,
    /// Every build + eval sample, ns.
    pub samples: Vec<f64>,
}

/// Runs every case: inputs once, warm-up, then `iters` rounds over all cases in turn.
pub fn run(args: &ClampArgs) -> Result2<Vec<CaseResult>> {
    let s = args.sizes;
    let t = Instant::now();
    let inp = build_inputs(&s).map_err(|e| format!("building the inputs: {e}"))?;
    eprintln!("inputs built in {:.1}s", t.elapsed().as_secs_f64());
    let key = random::key(1).map_err(|e| e.to_string())?;
    let mut token_inputs = Vec::new();
    for (phase, tokens) in [("decode", 1), ("prefill", s.prefill)] {
        let mk = || -> Result<(Array, Array, Array, BoundedIndices, BoundedIndices)> {
            let ids = random::randint(
                &Array::scalar(0i32),
                &Array::scalar(s.vocab),
                &[tokens],
                Dtype::Int32,
                Some(&key),
            )?;
            let idx = random::randint(
                &Array::scalar(0i32),
                &Array::scalar(s.experts),
                &[tokens, s.top_k],
                Dtype::Int32,
                Some(&key),
            )?
            .astype(Dtype::Uint32)?;
            let x = random::normal(&[tokens, 1, 1, s.moe_dim], s.dtype, 0.0, 1.0, Some(&key))?;
            mlx_rs::transforms::eval(&[&ids, &idx, &x])?;
            // The same values with their range proven (made once: the clip runs here, not in
            // the timed calls).
            let bounded_ids = BoundedIndices::clamped(&ids, i64::from(s.vocab))?;
            let bounded_idx = BoundedIndices::clamped(&idx, i64::from(s.experts))?;
            mlx_rs::transforms::eval(&[bounded_ids.array(), bounded_idx.array()])?;
            Ok((ids, idx, x, bounded_ids, bounded_idx))
        };
        token_inputs.push((phase, tokens, mk().map_err(|e| e.to_string())?));
    }
    let (vocab, experts) = (s.vocab, u32::try_from(s.experts).unwrap_or(1));
    let inp = &inp;
    let mut cases: Vec<Case<'_>> = Vec::new();
    for (phase, tokens, (ids, idx, x, bounded_ids, bounded_idx)) in &token_inputs {
        let group = format!("embedding {phase} ({tokens} tok)");
        for v in VARIANTS {
            let ids: &dyn IndexArray = if v.bounded { bounded_ids } else { ids };
            let run = Box::new(move || take(&inp.weight, ids));
            cases.push(Case::new(group.clone(), v.name.into(), run));
        }
        let run = Box::new(move || clip_take_ids(ids, vocab));
        cases.push(Case::new(group, "clip alone".into(), run));
        let group = format!("moe 3x gather_qmm {phase} ({tokens} tok)");
        for v in VARIANTS {
            let idx: &dyn IndexArray = if v.bounded { bounded_idx } else { idx };
            let run = Box::new(move || moe_layer(inp, x, idx));
            cases.push(Case::new(group.clone(), v.name.into(), run));
        }
        let run = Box::new(move || clip_expert_ids(idx, experts));
        cases.push(Case::new(group, "clip alone (x1)".into(), run));
    }
    for case in &cases {
        for _ in 0..args.warmup {
            time_once(case).map_err(|e| format!("{} / {}: {e}", case.group, case.name))?;
        }
    }
    eprintln!("warm-up done in {:.1}s", t.elapsed().as_secs_f64());
    let step = (args.iters / 5).max(1);
    for i in 0..args.iters {
        for case in cases.iter_mut() {
            let (b, total) =
                time_once(case).map_err(|e| format!("{} / {}: {e}", case.group, case.name))?;
            case.build_ns.push(b);
            case.total_ns.push(total);
        }
        if (i + 1) % step == 0 || i + 1 == args.iters {
            eprintln!("iteration {}/{} ({:.1}s)", i + 1, args.iters, t.elapsed().as_secs_f64());
        }
    }
    cases
        .into_iter()
        .map(|c| {
            let (Some(build), Some(total)) = (Summary::of(&c.build_ns), Summary::of(&c.total_ns))
            else {
                return Err(format!("{} / {}: no samples", c.group, c.name));
            };
            Ok(CaseResult { group: c.group, name: c.name, build, total, samples: c.total_ns })
        })
        .collect()
}

/// How many clip ops a group's workload contains (the MoE layer clamps its indices three times).
fn clips_per_call(group: &str) -> f64 {
    if group.starts_with("moe") { 3.0 } else { 1.0 }
}

/// The Markdown table: per case median (min–max) µs per call, and the clip's share.
pub fn report(results: &[CaseResult], args: &ClampArgs, rust: &RunInfo) -> String {
    let s = args.sizes;
    let mut out = format!(
        "Index clamping on {} (MLX {}), {}: vocab {} x {}, MoE E={} D={} F={} k={}, affine 4-bit \
         group 64; median (min–max) over {} calls\n\n",
        rust.device,
        rust.mlx_version,
        s.dtype,
        s.vocab,
        s.dim,
        s.experts,
        s.moe_dim,
        s.ffn,
        s.top_k,
        args.iters
    );
    out += "| case | variant | build µs | build+eval µs | clip share (upper bound) |\n";
    out += "|---|---|---|---|---|\n";
    let us = |x: Summary| {
        let x = x.scaled(1e-3);
        format!("{:.1} ({:.1}–{:.1})", x.median, x.min, x.max)
    };
    for r in results {
        let clip = results.iter().find(|c| c.group == r.group && c.name.starts_with("clip"));
        let share = match clip {
            Some(clip) if !r.name.starts_with("clip") => format!(
                "{:.1}%",
                100.0 * clips_per_call(&r.group) * clip.total.median / r.total.median
            ),
            _ => String::new(),
        };
        out += &format!(
            "| {} | {} | {} | {} | {share} |\n",
            r.group,
            r.name,
            us(r.build),
            us(r.total)
        );
    }
    out += "\nclip share = (clips per call) x (clip alone, median) / (case, median): an upper bound, \
            since the clip alone also pays a whole eval of its own; the MoE layer clamps its expert \
            indices once per gather_qmm, 3 times. The exact figure is a variant that skips the clamp.\n";
    out
}

/// The results file.
pub fn to_json(results: &[CaseResult], args: &ClampArgs, rust: &RunInfo) -> Value {
    let s = args.sizes;
    json!({
        "benchmark": "floor-clamp",
        "run": rust.to_json(),
        "config": {
            "vocab": s.vocab, "dim": s.dim, "experts": s.experts, "moe_dim": s.moe_dim,
            "ffn": s.ffn, "top_k": s.top_k, "prefill": s.prefill, "dtype": s.dtype.to_string(),
            "quantization": "affine, 4 bits, group 64", "warmup": args.warmup, "iters": args.iters,
        },
        "cases": results.iter().map(|r| json!({
            "group": r.group, "variant": r.name,
            "build_median_ns": r.build.median, "build_min_ns": r.build.min, "build_max_ns": r.build.max,
            "median_ns": r.total.median, "min_ns": r.total.min, "max_ns": r.total.max,
            "samples_ns": r.samples,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_args() {
        let out = std::path::Path::new("/r");
        let a = ClampArgs::parse(&[], out).unwrap();
        assert_eq!((a.sizes, a.warmup, a.iters), (Sizes::CPU, 5, 30));
        let args: Vec<String> = ["--gpu-sizes", "--iters", "12", "--prefill", "64"]
            .iter()
            .map(|s| (*s).into())
            .collect();
        let a = ClampArgs::parse(&args, out).unwrap();
        assert_eq!((a.sizes.vocab, a.sizes.dtype, a.iters), (151936, Dtype::Bfloat16, 12));
        assert_eq!((a.sizes.experts, a.sizes.top_k, a.sizes.prefill), (128, 8, 64));
        let args = vec!["--iters".to_owned(), "0".to_owned()];
        assert!(
            ClampArgs::parse(&args, out).unwrap_err().contains("--iters wants an integer >= 1")
        );
    }

    #[test]
    fn clip_alone_matches_the_clamp_of_take() {
        // The clip measured alone must be the one `take` applies: same values out of range.
        let w = Array::from_slice(&[10.0f32, 11.0, 12.0, 13.0], &[4, 1]).unwrap();
        let ids = Array::from_slice(&[-9i32, -1, 2, 7], &[4]).unwrap();
        let clipped = clip_take_ids(&ids, 4).unwrap();
        assert_eq!(clipped.to_vec::<i32>().unwrap(), [-4, -1, 2, 3]);
        let via_clip = ops::take(&w, &clipped, Some(0)).unwrap().to_vec::<f32>().unwrap();
        let via_take = take(&w, &ids).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(via_clip, via_take);
        let e = Array::from_slice(&[0u32, 5, 9], &[3]).unwrap();
        assert_eq!(clip_expert_ids(&e, 8).unwrap().to_vec::<u32>().unwrap(), [0, 5, 7]);
    }
}
