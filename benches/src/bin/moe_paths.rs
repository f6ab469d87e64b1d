//! `moe_paths`: the expert-matmul paths of sorted MoE layers timed against each other at the
//! presets' expert shapes (see `mlx_benches::moe_paths`).
//!
//! `moe_paths [--quick] [--tokens 1,2,4,...] [--bits-sweep] [--budget-ms MS] [--out DIR]`:
//! `--quick` takes small shapes (for a CPU smoke run), `--bits-sweep` adds 2, 4, 5, 6 and 8 bits
//! at GLM-4.5-Air's gate shape. Writes `moe-paths-<device>.json` and `.md` under `--out`
//! (default `benches/results`).

use std::path::PathBuf;
use std::process::ExitCode;

use mlx_benches::env::{RunInfo, write_results};
use mlx_benches::moe_paths::{self, MODEL_SHAPES, Shape};
use mlx_rs::Dtype;

const USAGE: &str =
    "usage: moe_paths [--quick] [--tokens 1,2,4,...] [--bits-sweep] [--budget-ms MS] [--out DIR]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("moe_paths: {msg}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut tokens: Vec<i32> = vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048];
    let (mut quick, mut sweep, mut budget_ms) = (false, false, 300.0);
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/results"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => quick = true,
            "--bits-sweep" => sweep = true,
            "--tokens" => {
                tokens = value()?
                    .split(',')
                    .map(|t| t.trim().parse().map_err(|_| format!("--tokens: bad count `{t}`")))
                    .collect::<Result<_, _>>()?
            }
            "--budget-ms" => {
                budget_ms = value()?.parse().map_err(|_| "--budget-ms needs a number".to_owned())?
            }
            "--out" => out = PathBuf::from(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if tokens.iter().any(|&t| t < 1) {
        return Err("--tokens must be positive".into());
    }
    let info = RunInfo::gather().map_err(|e| e.to_string())?;
    let (dtype, shapes): (Dtype, Vec<Shape>) = if quick {
        let small = |s: &Shape| Shape { experts: 8, n: 128, k: 256, ..*s };
        (Dtype::Float32, MODEL_SHAPES.iter().step_by(2).map(small).collect())
    } else {
        (Dtype::Bfloat16, MODEL_SHAPES.to_vec())
    };
    let mut jobs: Vec<(Shape, i32)> = shapes.iter().map(|s| (*s, s.bits)).collect();
    if sweep {
        jobs.extend([2, 4, 5, 6, 8].map(|b| (shapes[0], b)));
    }
    println!("moe_paths — MLX {} on {}, {dtype}", info.mlx_version, info.device);
    let start = std::time::Instant::now();
    let mut results = Vec::new();
    for (i, (shape, bits)) in jobs.iter().enumerate() {
        println!(
            "[{}/{}] {} {} ({} experts, top {}, {}x{}, {bits} bits) — {:.0} s so far",
            i + 1,
            jobs.len(),
            shape.model,
            shape.projection,
            shape.experts,
            shape.top_k,
            shape.n,
            shape.k,
            start.elapsed().as_secs_f64()
        );
        let measured = moe_paths::measure(*shape, *bits, &tokens, dtype, budget_ms)
            .map_err(|e| format!("{} {}: {e}", shape.model, shape.projection))?;
        results.extend(measured);
    }
    let table = moe_paths::table(&results);
    println!("\n{table}");
    for (bits, from) in moe_paths::crossovers(&results) {
        println!("crossover, {bits} bits: grouped from {from:?} pairs per expert");
    }
    let mut json = moe_paths::to_json(&results);
    json["run"] = info.to_json();
    let stem = format!("moe-paths-{}", info.device_kind());
    let md =
        format!("# Expert-matmul paths ({}, MLX {})\n\n{table}", info.device, info.mlx_version);
    let path = write_results(&out, &stem, &json, &md)?;
    println!("wrote {}", path.display());
    Ok(())
}
