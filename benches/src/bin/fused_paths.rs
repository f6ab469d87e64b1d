//! `fused_paths`: the fused kernels (gated activations, dropout, MoE routers, gather-add) timed against MLX's
//! ops and their compiled form at the presets' shapes (see `mlx_benches::fused_paths`).
//!
//! `fused_paths [--quick] [--tokens 1,2,4,...] [--budget-ms MS] [--out DIR]`: `--quick` takes
//! float32 and a few small token counts (a CPU smoke run). Writes `fused-paths-<device>.json`
//! and `.md` under `--out` (default `benches/results`).

use std::process::ExitCode;

use mlx_benches::cli::{SweepArgs, main_with_usage};
use mlx_benches::env::{RunInfo, write_results};
use mlx_benches::fused_paths::{self, CASES};
use mlx_rs::Dtype;

const USAGE: &str =
    "usage: fused_paths [--quick] [--tokens 1,2,4,...] [--budget-ms MS] [--out DIR]";

fn main() -> ExitCode {
    main_with_usage("fused_paths", USAGE, run)
}

fn run(args: &[String]) -> Result<(), String> {
    let a = SweepArgs::parse(args, &[])?;
    let (quick, out) = (a.quick, a.out);
    let dtype = if quick { Dtype::Float32 } else { Dtype::Bfloat16 };
    // The quick profile: a few small token counts and a short budget.
    let (default_tokens, default_budget) = match quick {
        true => (vec![1, 3, 16], 20.0),
        false => (vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048], 200.0),
    };
    let tokens = a.tokens.unwrap_or(default_tokens);
    let budget_ms = a.budget_ms.unwrap_or(default_budget);
    let info = RunInfo::gather().map_err(|e| e.to_string())?;
    println!("fused_paths — MLX {} on {}, {dtype}", info.mlx_version, info.device);
    let mut results = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        println!(
            "[{}/{}] {} {} (width {})",
            i + 1,
            CASES.len(),
            case.kernel,
            case.model,
            case.width
        );
        let measured = fused_paths::measure(*case, &tokens, dtype, budget_ms)
            .map_err(|e| format!("{} {}: {e}", case.kernel, case.model))?;
        results.extend(measured);
    }
    let table = fused_paths::table(&results);
    println!("\n{table}");
    let mut json = fused_paths::to_json(&results);
    json["run"] = info.to_json();
    json["dtype"] = dtype.to_string().into();
    let stem = format!("fused-paths-{}", info.device_kind());
    let md =
        format!("# Fused kernels ({}, MLX {}, {dtype})\n\n{table}", info.device, info.mlx_version);
    let path = write_results(&out, &stem, &json, &md)?;
    println!("wrote {}", path.display());
    Ok(())
}
