//! `floor`: graph-building cost of Rust against the mlx-c floor and Python, and the cost of index
//! clamping. Usage: `floor --help`; how to build and stage it: `benches/floor/README.md`.

use std::process::ExitCode;

use mlx_benches::clamp::{self, ClampArgs};
use mlx_benches::env::{RunInfo, write_results};
use mlx_benches::floor::{self, ChainArgs, Defaults};

const USAGE: &str = "\
usage: floor [chain] [OPTIONS]   the 1000-op chain: Rust, C and Python in interleaved rounds
       floor clamp [OPTIONS]     the cost of the index clamp in take and gather_qmm
       floor paths               the C program and chain.py this binary uses (for staging)
       floor --help";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("floor: {msg}");
            if msg.starts_with("error:") {
                eprintln!("\n{USAGE}\n\n{}\n\n{}", ChainArgs::USAGE, ClampArgs::USAGE);
                return ExitCode::from(2);
            }
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let defaults = Defaults::locate();
    let (command, rest) = match args.first().map(String::as_str) {
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}\n\n{}\n\n{}", ChainArgs::USAGE, ClampArgs::USAGE);
            return Ok(());
        }
        Some(c @ ("chain" | "clamp" | "paths")) => (c, &args[1..]),
        Some(other) if !other.starts_with("--") => {
            return Err(format!("error: unknown command `{other}`"));
        }
        _ => ("chain", args),
    };
    match command {
        "paths" => {
            if !rest.is_empty() {
                return Err("error: `floor paths` takes no arguments".into());
            }
            match &defaults.c {
                Some(c) => println!("{}", c.display()),
                None => return Err(format!("no C floor program: {}", defaults.c_missing)),
            }
            match &defaults.python_script {
                Some(p) => println!("{}", p.display()),
                None => return Err("chain.py not found".into()),
            }
            Ok(())
        }
        "clamp" => {
            let a = ClampArgs::parse(rest, &defaults.out)?;
            let info = RunInfo::gather().map_err(|e| e.to_string())?;
            eprintln!("floor clamp: MLX {} on {}", info.mlx_version, info.device);
            let results = clamp::run(&a)?;
            let md = clamp::report(&results, &a, &info);
            println!("{md}");
            let stem = format!("floor-clamp-{}-{}", info.device_kind(), info.unix_time);
            let path = write_results(&a.out, &stem, &clamp::to_json(&results, &a, &info), &md)?;
            eprintln!("results: {}", path.display());
            Ok(())
        }
        _ => {
            let a = ChainArgs::parse(rest, &defaults)?;
            let info = RunInfo::gather().map_err(|e| e.to_string())?;
            eprintln!(
                "floor chain: MLX {} on {}; C: {}; Python: {}",
                info.mlx_version,
                info.device,
                a.c.as_ref().map_or("skipped".into(), |p| p.display().to_string()),
                a.python_script.as_ref().map_or("skipped".into(), |p| format!(
                    "{} {}",
                    a.python,
                    p.display()
                )),
            );
            let result = floor::run(&a, &info)?;
            let md = floor::report(&result, &a, &info);
            println!("{md}");
            let stem = format!("floor-chain-{}-{}", info.device_kind(), info.unix_time);
            let path = write_results(&a.out, &stem, &floor::to_json(&result, &a, &info), &md)?;
            eprintln!("results: {}", path.display());
            Ok(())
        }
    }
}
