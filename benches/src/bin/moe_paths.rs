//! `moe_paths`: the expert-matmul paths of sorted MoE layers timed against each other at the
//! presets' expert shapes (see `mlx_benches::moe_paths`).
//!
//! `moe_paths [--quick] [--tokens 1,2,4,...] [--bits-sweep] [--budget-ms MS] [--out DIR]`:
//! `--quick` takes small shapes (for a CPU smoke run), `--bits-sweep` adds 2, 4, 5, 6 and 8 bits
//! at GLM-4.5-Air's gate shape. Writes `moe-paths-<device>.json` and `.md` under `--out`
//! (default `benches/results`).

use std::process::ExitCode;

use mlx_benches::cli::{SweepArgs, main_with_usage};
use mlx_benches::env::{RunInfo, write_results};
use mlx_benches::moe_paths::{self, MODEL_SHAPES, Shape};
use mlx_rs::Dtype;

const USAGE: &str =
    "usage: moe_paths [--quick] [--tokens 1,2,4,...] [--bits-sweep] [--budget-ms MS] [--out DIR]";

fn main() -> ExitCode {
    main_with_usage("moe_paths", USAGE, run)
}

fn run(args: &[String]) -> Result<(), String> {
    let a = SweepArgs::parse(args, &["--bits-sweep"])?;
    let (quick, out, budget_ms) = (a.quick, a.out, a.budget_ms.unwrap_or(300.0));
    let sweep = a.switches.iter().any(|s| s == "--bits-sweep");
    let tokens =
        a.tokens.unwrap_or_else(|| vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]);
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
