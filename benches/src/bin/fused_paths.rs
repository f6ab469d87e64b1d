//! `fused_paths`: the fused kernels (gated activations, dropout, MoE routers, gather-add) timed against MLX's
//! ops and their compiled form at the presets' shapes (see `mlx_benches::fused_paths`).
//!
//! `fused_paths [--quick] [--tokens 1,2,4,...] [--budget-ms MS] [--out DIR]`: `--quick` takes
//! float32 and a few small token counts (a CPU smoke run). Writes `fused-paths-<device>.json`
//! and `.md` under `--out` (default `benches/results`).

use std::path::PathBuf;
use std::process::ExitCode;

use mlx_benches::env::{RunInfo, write_results};
use mlx_benches::fused_paths::{self, CASES};
use mlx_rs::Dtype;

const USAGE: &str =
    "usage: fused_paths [--quick] [--tokens 1,2,4,...] [--budget-ms MS] [--out DIR]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("fused_paths: {msg}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut tokens: Vec<i32> = vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048];
    let (mut quick, mut budget_ms, mut tokens_given) = (false, 200.0f64, false);
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/results"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => quick = true,
            "--tokens" => {
                tokens = value()?
                    .split(',')
                    .map(|t| t.trim().parse().map_err(|_| format!("--tokens: bad count `{t}`")))
                    .collect::<Result<_, _>>()?;
                tokens_given = true;
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
    let dtype = if quick { Dtype::Float32 } else { Dtype::Bfloat16 };
    if quick {
        budget_ms = budget_ms.min(20.0);
        if !tokens_given {
            tokens = vec![1, 3, 16];
        }
    }
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
