//! `compare`: the microbenchmark workloads in Rust (in process) and in Python MLX (one
//! long-lived child), and the model workloads (the Rust examples against their mlx-lm twins,
//! each a long-lived `--serve` process), interleaved sample by sample, with the ratio
//! Rust/Python pair by pair.
//! Writes `benches/results/<machine>-<date>.{json,md,svg}`. Usage: `compare --help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use mlx_benches::chart::ratio_chart;
use mlx_benches::compare::{self, CompareArgs, Report};
use mlx_benches::env::{RunInfo, write_results};
use mlx_benches::python::PythonChild;
use mlx_benches::workloads::Profile;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", CompareArgs::USAGE);
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("compare: {msg}");
            if msg.starts_with("error:") {
                eprintln!("\n{}", CompareArgs::USAGE);
                return ExitCode::from(2);
            }
            ExitCode::FAILURE
        }
    }
}

/// `benches/python/micro.py` and `benches/results` of the source tree (or beside the binary).
fn defaults() -> (PathBuf, PathBuf) {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("micro.py")))
        .filter(|p| p.is_file());
    let script = beside.unwrap_or_else(|| manifest.join("python/micro.py"));
    let out = if manifest.is_dir() { manifest.join("results") } else { PathBuf::from("results") };
    (script, out)
}

fn run(args: &[String]) -> Result<(), String> {
    let (script, out) = defaults();
    let a = CompareArgs::parse(args, script, out)?;
    let info = RunInfo::gather().map_err(|e| e.to_string())?;
    let profile = Profile::for_default_device(a.quick).map_err(|e| e.to_string())?;
    let examples = mlx_benches::models::examples_source(&a);
    let cases = compare::case_list(profile, a.only.as_deref(), &examples);
    if a.list || a.print_specs {
        for c in &cases {
            if a.list {
                println!("{}", c.name());
            } else {
                println!("{}", c.describe());
            }
        }
        return Ok(());
    }
    if cases.is_empty() {
        return Err(format!(
            "no case matches --only {:?} (see --list)",
            a.only.as_deref().unwrap_or("")
        ));
    }
    let mut python = PythonChild::spawn(&a.python, &a.script, &info.mlx_version, &info.device)?;
    eprintln!(
        "compare: {} cases, {} profile, on {} · Rust: MLX {} · Python {}: MLX {} ({})",
        cases.len(),
        profile.name(),
        info.device,
        info.mlx_version,
        python.info.python,
        python.info.mlx_version,
        a.python
    );
    eprintln!("compare: {}", compare::libmlx_line(&compare::loaded_libmlx(), &python.info.raw));
    let needed: Vec<&str> = cases
        .iter()
        .filter_map(|c| match c {
            compare::Case::Model(m) => Some(m.example),
            compare::Case::Micro(_) => None,
        })
        .collect();
    let dirs = mlx_benches::models::example_dirs(a.examples.as_deref());
    let mut missing: Vec<&str> = needed
        .into_iter()
        .filter(|n| mlx_benches::models::find_example(n, &dirs).is_err())
        .collect();
    missing.dedup();
    if !missing.is_empty() {
        eprintln!(
            "compare: the Rust examples {} are not built, so their cases will fail: build them \
             with `{}` (add `--features cuda` on a CUDA machine), or pass --examples DIR",
            missing.join(", "),
            mlx_benches::models::BUILD_HINT
        );
    }
    let start = Instant::now();
    let results = compare::run(&cases, &mut python, &a);
    let py_info = python.info.raw.clone();
    python.quit();
    let report = Report {
        run: info,
        python: py_info,
        profile,
        args: a,
        results,
        seconds: start.elapsed().as_secs_f64(),
        libmlx: compare::loaded_libmlx(),
    };
    let stem = report.stem();
    let rows: Vec<(String, _)> = report
        .results
        .iter()
        .filter_map(|r| r.summaries().map(|(_, _, q)| (r.name.clone(), q)))
        .collect();
    let title = format!(
        "mlx-rs / Python MLX {} on {} ({} profile)",
        report.run.mlx_version,
        report.run.device,
        profile.name()
    );
    let svg_name = format!("{stem}.svg");
    let chart = match ratio_chart(&rows, &title) {
        Ok(svg) => {
            std::fs::create_dir_all(&report.args.out)
                .map_err(|e| format!("cannot create {}: {e}", report.args.out.display()))?;
            let path = report.args.out.join(&svg_name);
            std::fs::write(&path, svg)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Some(svg_name)
        }
        Err(e) => {
            eprintln!("compare: no chart: {e}");
            None
        }
    };
    let md = report.markdown(chart.as_deref());
    println!("{md}");
    let path = write_results(&report.args.out, &stem, &report.to_json(), &md)?;
    eprintln!(
        "compare: wrote {} (+ .md{})",
        path.display(),
        if chart.is_some() { ", .svg" } else { "" }
    );
    let failed =
        report.results.iter().filter(|r| matches!(r.outcome, compare::Outcome::Failed(_))).count();
    if failed > 0 {
        return Err(format!("{failed} case(s) failed (see the report)"));
    }
    Ok(())
}
