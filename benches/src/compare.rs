//! The Rust-against-Python comparison (`compare` binary): every case runs in this process and in
//! one long-lived Python child (`benches/python/micro.py --serve`), sample by sample in turn
//! (Rust, Python, Rust, Python, ...), and the ratio Rust/Python is taken pair by pair
//! (BENCHMARKING.md, rules 4 and 5).
//!
//! Per case: both sides build the inputs from the same [`Spec`] and compute a checksum of the
//! outputs (they must agree), run `--warmup` unmeasured iterations, time one iteration each to
//! choose the iterations per sample (the same on both sides, so that a sample lasts about
//! `--target-ms`), then take `--runs` samples per side, interleaved.
//!
//! # Model workloads
//!
//! A case is a [`Case`]; the runner only needs [`Case::open`] to give back a [`Measure`] (or a
//! reason to skip), then calls [`Measure::sample`] for each side in turn. The model workloads
//! ([`Case::Model`], see [`crate::models`]: `single_seqlen` at 32–512 tokens, prefill and decode
//! of the model presets, a LoRA training step) run in two long-lived processes that load the
//! model once, the Rust example and its Python twin (both `--serve`), and are sampled the same
//! way. Their iteration is a forward pass, a token (generation: the time per token is
//! 1 / tok/s, so that the ratio stays Rust/Python time) or a training step. The list is built by
//! [`case_list`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use mlx_rs::kernels::Fused;
use serde_json::{Value, json};

use crate::cli::{Flags, usage_error};
use crate::env::RunInfo;
use crate::models::{self, ModelSpec, Servers};
use crate::python::PythonChild;
use crate::stats::Summary;
use crate::workloads::{self, Prepared, Profile, Spec, checksums_agree};

/// Relative tolerance of the checksum comparison (bfloat16 sums of large outputs).
pub const CHECKSUM_RTOL: f64 = 1e-3;

/// Options of `compare`.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareArgs {
    /// Force the small float32 profile (the default on a CPU device anyway).
    pub quick: bool,
    /// Comma-separated substrings of case names to keep.
    pub only: Option<String>,
    /// Samples per side per case.
    pub runs: usize,
    /// Unmeasured iterations per side per case.
    pub warmup: usize,
    /// Wanted length of one sample, in milliseconds.
    pub target_ms: f64,
    /// The Python interpreter.
    pub python: String,
    /// The Python twin.
    pub script: PathBuf,
    /// Where the results go.
    pub out: PathBuf,
    /// Print the case names and exit.
    pub list: bool,
    /// Print the case specs (JSON lines, as `micro.py --spec` takes them) and exit.
    pub print_specs: bool,
    /// Where the Rust example binaries are (else [`crate::models::example_dirs`]).
    pub examples: Option<PathBuf>,
    /// The source folder `examples/` (Python twins, configs, data); else this checkout's.
    pub py_examples: Option<PathBuf>,
    /// The fused-kernel policy the Rust model examples get (`--fused`); else their default.
    pub fused: Option<Fused>,
}

impl CompareArgs {
    /// Usage text.
    pub const USAGE: &'static str = "\
usage: compare [--quick] [--only PATTERNS] [--runs N] [--warmup W] [--target-ms T]
               [--python EXE] [--script PATH] [--out DIR] [--list] [--print-specs]
               [--examples DIR] [--py-examples DIR] [--fused auto|on|off]
  --quick           float32 sizes for a small CPU (the default on a CPU device); without it a
                    GPU device gets real model sizes in bfloat16
  --only PATTERNS   keep the cases whose names contain one of these comma-separated strings
  --runs N          samples per side per case, interleaved Rust, Python, ... (default 10)
  --warmup W        unmeasured iterations per side per case (default 3)
  --target-ms T     wanted length of one sample; sets the iterations per sample (default 25)
  --python EXE      the Python interpreter (default python3); it must import mlx at the Rust
                    side's version
  --script PATH     the Python twin (default benches/python/micro.py)
  --out DIR         where the JSON, Markdown and SVG go (default benches/results)
  --list            print the case names and exit
  --print-specs     print each case's JSON spec (for `micro.py --spec`) and exit
  --examples DIR    the Rust example binaries of the model cases (single_seqlen, generate,
                    lora; also $MLX_BENCH_EXAMPLES); default: examples/ beside this binary
                    (cargo's target/release/examples), then PATH. Build them with
                    `cargo build --release -p mlx-examples --example single_seqlen
                    --example generate --example lora`
  --py-examples DIR the source folder examples/ (Python twins, configs, data; default: this
                    checkout's). The Python side needs mlx-lm 0.32.0 (pip install
                    mlx-lm==0.32.0 --no-deps)
  --fused MODE      the Rust side of single_seqlen and generate with `--fused MODE` (where the
                    crate's own kernels replace MLX's ops, see mlx_rs::kernels; default: the
                    examples' own, auto)";

    /// Parses the arguments; `script` and `out` are the defaults found on this machine.
    pub fn parse(args: &[String], script: PathBuf, out: PathBuf) -> Result<CompareArgs, String> {
        let mut f = Flags::new(args, &["--quick", "--list", "--print-specs"])?;
        let target = f.value("--target-ms");
        let parsed = CompareArgs {
            quick: f.switch("--quick"),
            only: f.value("--only"),
            runs: f.count("--runs", 10, 1)?,
            warmup: f.count("--warmup", 3, 0)?,
            target_ms: match target {
                None => 25.0,
                Some(t) => match t.parse::<f64>() {
                    Ok(x) if x > 0.0 && x.is_finite() => x,
                    _ => {
                        return Err(usage_error(&format!(
                            "--target-ms wants a positive number, got `{t}`"
                        )));
                    }
                },
            },
            python: f.value("--python").unwrap_or_else(|| "python3".to_owned()),
            script: f.value("--script").map_or(script, PathBuf::from),
            out: f.value("--out").map_or(out, PathBuf::from),
            list: f.switch("--list"),
            print_specs: f.switch("--print-specs"),
            examples: f.value("--examples").map(PathBuf::from),
            py_examples: f.value("--py-examples").map(PathBuf::from),
            fused: match f.value("--fused") {
                None => None,
                Some(m) => Some(m.parse::<Fused>().map_err(|_| {
                    usage_error(&format!("--fused wants auto, on or off, got `{m}`"))
                })?),
            },
        };
        f.finish()?;
        Ok(parsed)
    }
}

/// Which side measured a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// This process, through mlx-rs.
    Rust,
    /// The Python child, through Python MLX.
    Python,
}

/// One case of the comparison (see the module docs for adding more kinds).
#[derive(Clone, Debug, PartialEq)]
pub enum Case {
    /// A microbenchmark: in process here, in the Python child there.
    Micro(Spec),
    /// A model workload: a Rust example and its Python twin, each serving from its own process.
    Model(ModelSpec),
}

impl Case {
    /// The case's unique name.
    pub fn name(&self) -> &str {
        match self {
            Case::Micro(s) => &s.name,
            Case::Model(m) => &m.name,
        }
    }

    /// The family it belongs to.
    pub fn group(&self) -> &str {
        match self {
            Case::Micro(s) => s.group,
            Case::Model(m) => m.group,
        }
    }

    /// What it runs, for the results file.
    pub fn describe(&self) -> Value {
        match self {
            Case::Micro(s) => s.to_json(),
            Case::Model(m) => m.to_json(),
        }
    }

    /// Prepares both sides (inputs, checksums, warm-up, iterations per sample), or says why
    /// the case cannot run here.
    pub fn open<'a>(
        &self,
        python: &'a mut PythonChild,
        servers: &'a mut Servers,
        args: &CompareArgs,
    ) -> Result<Opened<'a>, String> {
        match self {
            Case::Micro(spec) => {
                // A model's processes are not kept through other cases.
                servers.stop();
                Micro::open(spec, python, args)
            }
            Case::Model(spec) => models::open(spec, servers, args),
        }
    }

    /// Whether an iteration is one token (1e9 / ns per iteration is then tokens/s).
    pub fn per_token(&self) -> bool {
        matches!(self, Case::Model(m) if m.per_token)
    }
}

/// True when `name` contains one of the comma-separated `patterns` (all names without them).
pub fn name_matches(name: &str, patterns: Option<&str>) -> bool {
    match patterns {
        None => true,
        Some(p) => p.split(',').map(str::trim).filter(|s| !s.is_empty()).any(|p| name.contains(p)),
    }
}

/// The cases of `profile` whose names match `only` (see [`workloads::select`]): the
/// microbenchmarks, then the model workloads, whose configs and data are under `examples`
/// (the source folder, [`models::examples_source`]).
pub fn case_list(profile: Profile, only: Option<&str>, examples: &Path) -> Vec<Case> {
    let micro = workloads::select(workloads::cases(profile), only).into_iter().map(Case::Micro);
    let model = models::model_cases(profile, examples)
        .into_iter()
        .filter(|m| name_matches(&m.name, only))
        .map(Case::Model);
    micro.chain(model).collect()
}

/// A case ready to sample, or the reason it cannot run.
pub enum Opened<'a> {
    /// Ready.
    Ready(Box<dyn Measure + 'a>),
    /// Cannot run here (e.g. a GPU-only kernel on a CPU).
    Skipped(String),
}

/// A case being measured on both sides.
pub trait Measure {
    /// Iterations per sample, the same on both sides.
    fn iters(&self) -> usize;
    /// The checksums of the outputs on (Rust, Python), computed before any timing.
    fn checksums(&self) -> (Option<f64>, Option<f64>);
    /// One sample of `side`: nanoseconds per iteration.
    fn sample(&mut self, side: Side) -> Result<f64, String>;
    /// Notes on how the sides built the case, for the results file.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Samples per side, given the `--runs` asked for (a model case on the quick profile takes
    /// fewer).
    fn runs(&self, requested: usize) -> usize {
        requested
    }
}

/// Iterations per sample so that one lasts about `target_ns`, given one iteration's time.
pub fn iterations_for(per_iter_ns: f64, target_ns: f64, max: usize) -> usize {
    if per_iter_ns.is_nan() || per_iter_ns <= 0.0 || per_iter_ns.is_infinite() {
        return 1;
    }
    let n = (target_ns / per_iter_ns).ceil();
    if n >= max as f64 { max } else { (n as usize).max(1) }
}

/// The most iterations one sample takes.
pub const MAX_ITERS: usize = 10_000;

struct Micro<'a> {
    rust: Prepared,
    python: &'a mut PythonChild,
    iters: usize,
    checksums: (f64, f64),
    note: Option<String>,
}

impl<'a> Micro<'a> {
    fn open(
        spec: &Spec,
        python: &'a mut PythonChild,
        args: &CompareArgs,
    ) -> Result<Opened<'a>, String> {
        if let Some(reason) = spec.skip_reason() {
            return Ok(Opened::Skipped(reason));
        }
        let e = |e: mlx_rs::Error| format!("Rust: {e}");
        let _ = mlx_rs::memory::clear_cache();
        let mut rust = spec.prepare().map_err(e)?;
        let rust_sum = rust.checksum().map_err(e)?;
        let (py_sum, note) = python.setup(&spec.to_json())?;
        if !checksums_agree(rust_sum, py_sum, CHECKSUM_RTOL) {
            return Err(format!(
                "the outputs differ: checksum {rust_sum} (Rust) against {py_sum} (Python); the \
                 two sides do not compute the same thing"
            ));
        }
        if args.warmup > 0 {
            rust.time(args.warmup).map_err(e)?;
            python.warmup(args.warmup)?;
        }
        let one = rust.time(1).map_err(e)?.max(python.sample(1)?);
        let iters = iterations_for(one, args.target_ms * 1e6, MAX_ITERS);
        let checksums = (rust_sum, py_sum);
        Ok(Opened::Ready(Box::new(Micro { rust, python, iters, checksums, note })))
    }
}

impl Measure for Micro<'_> {
    fn iters(&self) -> usize {
        self.iters
    }

    fn checksums(&self) -> (Option<f64>, Option<f64>) {
        (Some(self.checksums.0), Some(self.checksums.1))
    }

    fn notes(&self) -> Vec<String> {
        self.note.iter().map(|n| format!("Python: {n}")).collect()
    }

    fn sample(&mut self, side: Side) -> Result<f64, String> {
        match side {
            Side::Rust => self.rust.time(self.iters).map_err(|e| format!("Rust: {e}")),
            Side::Python => self.python.sample(self.iters),
        }
    }
}

/// How a case ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Measured: `runs` samples per side, in the order taken (pair `i` is `rust[i]`,
    /// `python[i]`), nanoseconds per iteration.
    Measured {
        /// Iterations per sample.
        iters: usize,
        /// Rust samples.
        rust: Vec<f64>,
        /// Python samples.
        python: Vec<f64>,
        /// Output checksums (Rust, Python).
        checksums: (Option<f64>, Option<f64>),
        /// How the sides built the case ([`Measure::notes`]).
        notes: Vec<String>,
    },
    /// Not run here, and why.
    Skipped(String),
    /// Failed, and why.
    Failed(String),
}

/// One case's result.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseResult {
    /// The case name.
    pub name: String,
    /// Its family.
    pub group: String,
    /// What it ran ([`Case::describe`]).
    pub spec: Value,
    /// How it ended.
    pub outcome: Outcome,
}

impl CaseResult {
    /// Rust/Python pair by pair.
    pub fn ratios(&self) -> Vec<f64> {
        match &self.outcome {
            Outcome::Measured { rust, python, .. } => {
                rust.iter().zip(python).filter(|(_, p)| **p > 0.0).map(|(r, p)| r / p).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Summaries of (Rust samples, Python samples, pairwise ratios), when measured.
    pub fn summaries(&self) -> Option<(Summary, Summary, Summary)> {
        match &self.outcome {
            Outcome::Measured { rust, python, .. } => {
                Some((Summary::of(rust)?, Summary::of(python)?, Summary::of(&self.ratios())?))
            }
            _ => None,
        }
    }
}

/// A time in nanoseconds with a unit that keeps 3 significant digits.
pub fn fmt_ns(ns: f64) -> String {
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

/// Seconds as `1m05s` / `42s`.
pub fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 60 { format!("{}m{:02}s", s / 60, s % 60) } else { format!("{s}s") }
}

/// The progress line after case `done` of `total`.
pub fn progress(done: usize, total: usize, elapsed_s: f64) -> String {
    let left = if done == 0 { 0.0 } else { elapsed_s / done as f64 * (total - done) as f64 };
    format!("elapsed {}, ~{} left", fmt_secs(elapsed_s), fmt_secs(left))
}

/// A one-line summary of a result (for the progress output).
pub fn result_line(r: &CaseResult) -> String {
    match (&r.outcome, r.summaries()) {
        (Outcome::Measured { iters, .. }, Some((rs, ps, q))) => format!(
            "rust {}, python {}, rust/python {:.3} ({:.3}–{:.3}), {} iters/sample",
            fmt_ns(rs.median),
            fmt_ns(ps.median),
            q.median,
            q.min,
            q.max,
            iters
        ),
        (Outcome::Skipped(why), _) => format!("skipped: {why}"),
        (Outcome::Failed(why), _) => format!("FAILED: {why}"),
        (Outcome::Measured { .. }, None) => "no samples".to_owned(),
    }
}

/// Everything a run measured, with what it ran on.
#[derive(Clone, Debug)]
pub struct Report {
    /// The Rust side's run information.
    pub run: RunInfo,
    /// The Python child's info line.
    pub python: Value,
    /// The size profile.
    pub profile: Profile,
    /// The options.
    pub args: CompareArgs,
    /// Every case, in order.
    pub results: Vec<CaseResult>,
    /// Seconds the whole run took.
    pub seconds: f64,
    /// The `libmlx` files the Rust side loaded ([`loaded_libmlx`]).
    pub libmlx: Vec<String>,
}

/// The `libmlx` files this process has mapped (from `/proc/self/maps`; empty elsewhere than
/// Linux), to show that both sides load the same library (BENCHMARKING.md, rule 1).
pub fn loaded_libmlx() -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut paths: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.contains("libmlx") && p.starts_with('/'))
        .map(str::to_owned)
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// One line on which `libmlx` each side loaded and whether it is the same file.
pub fn libmlx_line(rust: &[String], python: &Value) -> String {
    let py: Vec<String> = python["libmlx"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let show = |v: &[String]| if v.is_empty() { "?".to_owned() } else { v.join(", ") };
    let same = match (rust.is_empty() || py.is_empty(), rust == py.as_slice()) {
        (true, _) => "unknown",
        (false, true) => "the same file",
        (false, false) => "DIFFERENT files",
    };
    format!("libmlx: Rust {} · Python {} ({same})", show(rust), show(&py))
}

/// The machine part of the results' file name: the GPU's name on a GPU device, else
/// `cpu-<cores>c-<cpu model>`, as lower-case words joined by `-`.
pub fn machine_slug(machine: &Value, device_kind: &str) -> String {
    let gpu = machine["gpus"]
        .as_array()
        .and_then(|g| g.first())
        .and_then(Value::as_str)
        .map(|g| g.split(',').next().unwrap_or(g).to_owned());
    let raw = match (device_kind, gpu) {
        ("gpu", Some(g)) => g,
        _ => {
            let cpu = machine["cpu"].as_str().unwrap_or("unknown");
            let cores = machine["cpus"].as_u64().map_or(String::new(), |n| format!("{n}c-"));
            format!("cpu-{cores}{cpu}")
        }
    };
    let cleaned = raw.replace("(R)", " ").replace("(TM)", " ").replace("(tm)", " ");
    let mut slug = String::new();
    for ch in cleaned.chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_end_matches('-').chars().take(48).collect();
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() { "machine".to_owned() } else { slug }
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
pub fn utc_date(unix: u64) -> String {
    // Days since 1970-01-01 to a civil date (proleptic Gregorian), era by era of 400 years.
    let days = (unix / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

impl Report {
    /// The results' file name without extension: `<machine>-<date>`, plus `-quick` for the
    /// quick profile on a GPU.
    pub fn stem(&self) -> String {
        let kind = self.run.device_kind();
        let mut stem =
            format!("{}-{}", machine_slug(&self.run.machine, kind), utc_date(self.run.unix_time));
        if kind == "gpu" && self.profile == Profile::Quick {
            stem += "-quick";
        }
        stem
    }

    /// The results file: run information, both sides' versions, options, every sample.
    pub fn to_json(&self) -> Value {
        let cases: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                let mut v = json!({"name": r.name, "group": r.group, "spec": r.spec});
                match &r.outcome {
                    Outcome::Measured { iters, rust, python, checksums, notes } => {
                        v["status"] = json!("measured");
                        v["iters_per_sample"] = json!(iters);
                        v["rust_ns_per_iter"] = json!(rust);
                        v["python_ns_per_iter"] = json!(python);
                        v["ratios"] = json!(r.ratios());
                        v["checksums"] = json!({"rust": checksums.0, "python": checksums.1});
                        v["notes"] = json!(notes);
                        if let Some((rs, ps, q)) = r.summaries() {
                            let s = |s: Summary| json!({"median": s.median, "min": s.min, "max": s.max});
                            v["summary"] = json!({
                                "rust_ns": s(rs), "python_ns": s(ps), "ratio": s(q),
                            });
                        }
                    }
                    Outcome::Skipped(why) => {
                        v["status"] = json!("skipped");
                        v["reason"] = json!(why);
                    }
                    Outcome::Failed(why) => {
                        v["status"] = json!("failed");
                        v["reason"] = json!(why);
                    }
                }
                v
            })
            .collect();
        json!({
            "benchmark": "micro-compare",
            "profile": self.profile.name(),
            "run": self.run.to_json(),
            "rust": {
                "mlx_version": self.run.mlx_version, "device": self.run.device,
                "mlx_rs": env!("CARGO_PKG_VERSION"), "libmlx": self.libmlx,
            },
            "python": self.python,
            "config": {
                "runs": self.args.runs, "warmup": self.args.warmup,
                "target_ms": self.args.target_ms, "only": self.args.only,
                "python": self.args.python, "script": self.args.script.display().to_string(),
                "order": "per case: Rust sample, Python sample, repeated; ratio = rust[i] / python[i]",
            },
            "seconds": self.seconds,
            "cases": cases,
        })
    }

    /// The Markdown summary: header with machine and versions, the table, skipped and failed
    /// cases.
    pub fn markdown(&self, chart: Option<&str>) -> String {
        let py = |k: &str| self.python.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
        let m = &self.run.machine;
        let cpu = m["cpu"].as_str().unwrap_or("?");
        let cpus = m["cpus"].as_u64().map_or("?".to_owned(), |n| n.to_string());
        let gpus = m["gpus"]
            .as_array()
            .map(|g| g.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| "none".to_owned());
        let commit = match (&self.run.commit, self.run.dirty) {
            (Some(c), Some(true)) => format!("{c} (uncommitted changes)"),
            (Some(c), _) => c.clone(),
            (None, _) => "?".to_owned(),
        };
        let mut out = format!(
            "# Rust (mlx-rs) against Python MLX: microbenchmarks and models ({} profile)\n\n",
            self.profile.name()
        );
        out += &format!(
            "- machine: {} CPUs ({cpu}), GPUs: {gpus}, {} {}\n",
            cpus,
            m["os"].as_str().unwrap_or("?"),
            m["arch"].as_str().unwrap_or("?")
        );
        out += &format!(
            "- device: {} · MLX {} (Rust, mlx-rs {}) · MLX {} (Python {})\n",
            self.run.device,
            self.run.mlx_version,
            env!("CARGO_PKG_VERSION"),
            py("mlx_version"),
            py("python")
        );
        out += &format!("- {}\n", libmlx_line(&self.libmlx, &self.python));
        out += &format!(
            "- commit {commit} · {} UTC · `{}`\n",
            utc_date(self.run.unix_time),
            self.run.command.join(" ")
        );
        out += &format!(
            "- per case: {} warm-up iterations per side, then {} samples per side interleaved \
             Rust, Python, Rust, Python, …; a sample is the mean of N iterations (graph build + \
             eval), N the same on both sides; ratio = Rust/Python pair by pair (< 1: Rust \
             faster). Whole run {}.\n",
            self.args.warmup,
            self.args.runs,
            fmt_secs(self.seconds)
        );
        if self.results.iter().any(|r| r.spec["kind"] == "model") {
            out += "- model cases (`single_seqlen/…`, `generate/…`, `lora-train/…`): each side is \
                    one long-lived process holding the model (the Rust example and its mlx-lm \
                    twin, `--serve`); an iteration is one forward pass, one training step, or \
                    for `generate/…` one token: the time per token is 1 / tok/s, so Rust/Python \
                    < 1 means more tokens/s in Rust (throughputs below the table).\n";
        }
        out += "\n";
        out += &table(&self.results);
        out += &throughputs(&self.results);
        let skipped: Vec<&CaseResult> =
            self.results.iter().filter(|r| matches!(r.outcome, Outcome::Skipped(_))).collect();
        let failed: Vec<&CaseResult> =
            self.results.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).collect();
        if !skipped.is_empty() {
            out += "\nSkipped:\n\n";
            for r in skipped {
                out += &format!(
                    "- `{}`: {}\n",
                    r.name,
                    result_line(r).trim_start_matches("skipped: ")
                );
            }
        }
        if !failed.is_empty() {
            out += "\nFailed:\n\n";
            for r in failed {
                out +=
                    &format!("- `{}`: {}\n", r.name, result_line(r).trim_start_matches("FAILED: "));
            }
        }
        let mut notes: Vec<(String, usize)> = Vec::new();
        for r in &self.results {
            if let Outcome::Measured { notes: ns, .. } = &r.outcome {
                for n in ns {
                    match notes.iter_mut().find(|(m, _)| m == n) {
                        Some((_, count)) => *count += 1,
                        None => notes.push((n.clone(), 1)),
                    }
                }
            }
        }
        if !notes.is_empty() {
            out += "\nNotes:\n\n";
            for (n, count) in notes {
                out += &format!("- {n} ({count} case{})\n", if count == 1 { "" } else { "s" });
            }
        }
        if let Some(chart) = chart {
            out += &format!("\n![Rust/Python per case]({chart})\n");
        }
        out
    }
}

/// The Markdown table of the measured cases: medians per side, the ratio's median and spread
/// over the pairs.
pub fn table(results: &[CaseResult]) -> String {
    let mut out = String::from(
        "| case | Rust median | Python median | Rust/Python (median of pairs) | ratio min–max | \
         samples × iters |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        if let (Outcome::Measured { iters, rust, .. }, Some((rs, ps, q))) =
            (&r.outcome, r.summaries())
        {
            out += &format!(
                "| `{}` | {} | {} | {:.3} | {:.3}–{:.3} | {} × {} |\n",
                r.name,
                fmt_ns(rs.median),
                fmt_ns(ps.median),
                q.median,
                q.min,
                q.max,
                rust.len(),
                iters
            );
        }
    }
    out
}

/// The tokens/s of the measured per-token cases (`spec.per_token`), as a Markdown list (empty
/// without any): 1e9 / the median time per token, each side.
pub fn throughputs(results: &[CaseResult]) -> String {
    let mut out = String::new();
    for r in results.iter().filter(|r| r.spec["per_token"] == true) {
        if let Some((rs, ps, q)) = r.summaries() {
            out += &format!(
                "- `{}`: Rust {:.1} tok/s, Python {:.1} tok/s (Rust {:.3}× Python's tok/s, \
                 median of pairs)\n",
                r.name,
                1e9 / rs.median,
                1e9 / ps.median,
                1.0 / q.median
            );
        }
    }
    if out.is_empty() { out } else { format!("\nThroughput of the token cases:\n\n{out}") }
}

/// Runs every case, printing progress to stderr.
pub fn run(cases: &[Case], python: &mut PythonChild, args: &CompareArgs) -> Vec<CaseResult> {
    let start = Instant::now();
    let total = cases.len();
    let mut results = Vec::with_capacity(total);
    let (version, device) = (python.info.mlx_version.clone(), python.info.device.clone());
    let mut servers = Servers::new(args, &version, &device);
    for (i, case) in cases.iter().enumerate() {
        eprint!("[{:>2}/{total}] {} … ", i + 1, case.name());
        let outcome = match case.open(python, &mut servers, args) {
            Err(why) => Outcome::Failed(why),
            Ok(Opened::Skipped(why)) => Outcome::Skipped(why),
            Ok(Opened::Ready(mut m)) => {
                let runs = m.runs(args.runs);
                let mut rust = Vec::with_capacity(runs);
                let mut py = Vec::with_capacity(runs);
                let mut failure = None;
                for _ in 0..runs {
                    match (m.sample(Side::Rust), m.sample(Side::Python)) {
                        (Ok(a), Ok(b)) => {
                            rust.push(a);
                            py.push(b);
                        }
                        (Err(e), _) | (_, Err(e)) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                match failure {
                    Some(e) => Outcome::Failed(e),
                    None => Outcome::Measured {
                        iters: m.iters(),
                        rust,
                        python: py,
                        checksums: m.checksums(),
                        notes: m.notes(),
                    },
                }
            }
        };
        let r = CaseResult {
            name: case.name().to_owned(),
            group: case.group().to_owned(),
            spec: case.describe(),
            outcome,
        };
        eprintln!(
            "{} | {}",
            result_line(&r),
            progress(i + 1, total, start.elapsed().as_secs_f64())
        );
        results.push(r);
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| (*s).to_owned()).collect()
    }

    fn parse(xs: &[&str]) -> Result<CompareArgs, String> {
        CompareArgs::parse(&strings(xs), PathBuf::from("/s/micro.py"), PathBuf::from("/r"))
    }

    #[test]
    fn args_defaults_and_overrides() {
        let a = parse(&[]).unwrap();
        assert_eq!((a.quick, a.runs, a.warmup, a.target_ms), (false, 10, 3, 25.0));
        assert_eq!((a.script.to_str(), a.out.to_str()), (Some("/s/micro.py"), Some("/r")));
        let a = parse(&["--quick", "--only", "sdpa,lora/d=512", "--runs", "12", "--list"]).unwrap();
        assert!(a.quick && a.list && !a.print_specs);
        assert_eq!((a.only.as_deref(), a.runs), (Some("sdpa,lora/d=512"), 12));
        let a = parse(&["--target-ms", "7.5", "--python", "py3", "--out", "o"]).unwrap();
        assert_eq!((a.target_ms, a.python.as_str(), a.out.to_str()), (7.5, "py3", Some("o")));
        assert_eq!((a.examples, a.py_examples), (None, None));
        let a = parse(&["--examples", "/bin/ex", "--py-examples", "/src/examples"]).unwrap();
        assert_eq!(a.examples.as_deref(), Some(Path::new("/bin/ex")));
        assert_eq!(a.py_examples.as_deref(), Some(Path::new("/src/examples")));
        assert_eq!(a.fused, None);
        assert_eq!(parse(&["--fused", "off"]).unwrap().fused, Some(Fused::Off));
    }

    #[test]
    fn args_errors() {
        assert!(parse(&["--runs", "0"]).unwrap_err().contains("--runs wants an integer >= 1"));
        assert!(parse(&["--target-ms", "-1"]).unwrap_err().contains("positive number, got `-1`"));
        assert!(parse(&["--fast"]).unwrap_err().contains("unknown argument `--fast`"));
        assert!(parse(&["--only"]).unwrap_err().contains("--only needs a value"));
        let e = parse(&["--fused", "fast"]).unwrap_err();
        assert!(e.contains("--fused wants auto, on or off, got `fast`"), "{e}");
    }

    #[test]
    fn iterations_fill_the_target() {
        assert_eq!(iterations_for(1e6, 25e6, 100), 25);
        assert_eq!(iterations_for(3e6, 25e6, 100), 9);
        assert_eq!(iterations_for(60e6, 25e6, 100), 1);
        assert_eq!(iterations_for(10.0, 25e6, 100), 100);
        assert_eq!(iterations_for(0.0, 25e6, 100), 1);
        assert_eq!(iterations_for(f64::NAN, 25e6, 100), 1);
    }

    #[test]
    fn units_and_durations() {
        assert_eq!(fmt_ns(812.0), "812 ns");
        assert_eq!(fmt_ns(12_345.0), "12.3 µs");
        assert_eq!(fmt_ns(1_234_567.0), "1.23 ms");
        assert_eq!(fmt_ns(2.5e9), "2.50 s");
        assert_eq!(fmt_secs(42.4), "42s");
        assert_eq!(fmt_secs(65.0), "1m05s");
        assert_eq!(progress(2, 10, 30.0), "elapsed 30s, ~2m00s left");
    }

    #[test]
    fn libmlx_paths_are_compared() {
        let lib = "/site-packages/mlx/lib/libmlx.so".to_owned();
        let py = json!({"libmlx": [lib.clone()]});
        let line = libmlx_line(std::slice::from_ref(&lib), &py);
        assert_eq!(line, format!("libmlx: Rust {lib} · Python {lib} (the same file)"));
        let other = ["/elsewhere/libmlx.so".to_owned()];
        assert!(libmlx_line(&other, &py).ends_with("(DIFFERENT files)"));
        assert!(libmlx_line(&[], &json!({})).ends_with("(unknown)"));
        // This test binary links libmlx.
        assert!(loaded_libmlx().iter().any(|p| p.contains("libmlx")), "{:?}", loaded_libmlx());
    }

    #[test]
    fn dates_and_slugs() {
        assert_eq!(utc_date(1_796_131_833), "2026-12-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(0), "1970-01-01");
        let cpu = json!({"cpu": "Intel(R) Xeon(R) CPU @ 2.20GHz", "cpus": 2, "gpus": null});
        assert_eq!(machine_slug(&cpu, "cpu"), "cpu-2c-intel-xeon-cpu-2-20ghz");
        let gpu = json!({"cpu": "x", "cpus": 16, "gpus": ["NVIDIA H200, 143771 MiB"]});
        assert_eq!(machine_slug(&gpu, "gpu"), "nvidia-h200");
        assert_eq!(machine_slug(&gpu, "cpu"), "cpu-16c-x");
    }

    fn measured(name: &str, rust: &[f64], python: &[f64]) -> CaseResult {
        CaseResult {
            name: name.to_owned(),
            group: "g".to_owned(),
            spec: json!({}),
            outcome: Outcome::Measured {
                iters: 4,
                rust: rust.to_vec(),
                python: python.to_vec(),
                checksums: (Some(1.0), Some(1.0)),
                notes: Vec::new(),
            },
        }
    }

    /// Every quick case that runs here gives the same output checksum in Rust and in the Python
    /// twin (needs `python3` with mlx at the Rust side's version, as the build does).
    #[test]
    fn twins_compute_the_same_outputs() {
        let info = RunInfo::gather().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/micro.py");
        let mut py = PythonChild::spawn("python3", &script, &info.mlx_version, &info.device)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut checked = 0;
        for spec in workloads::cases(Profile::Quick) {
            if spec.skip_reason().is_some() {
                continue;
            }
            let rust = spec.prepare().unwrap().checksum().unwrap();
            let (python, _) = py.setup(&spec.to_json()).unwrap();
            assert!(
                checksums_agree(rust, python, 1e-5),
                "{}: Rust {rust} against Python {python}",
                spec.name
            );
            checked += 1;
        }
        py.quit();
        assert!(checked >= 30, "{checked}");
    }

    #[test]
    fn the_case_list_ends_with_the_model_cases() {
        let all = case_list(Profile::Quick, None, Path::new("/e"));
        let first_model = all.iter().position(|c| matches!(c, Case::Model(_))).unwrap();
        assert!(all[..first_model].iter().all(|c| matches!(c, Case::Micro(_))));
        assert_eq!(all[first_model].name(), "single_seqlen/small/len=32");
        let some = case_list(Profile::Quick, Some("seqlen, lora-train"), Path::new("/e"));
        let names: Vec<&str> = some.iter().map(Case::name).collect();
        assert_eq!(
            names,
            [
                "single_seqlen/small/len=32",
                "single_seqlen/small/len=128",
                "lora-train/small/batch=4"
            ]
        );
        let generate = case_list(Profile::Gpu, Some("generate/"), Path::new("/e"));
        assert_eq!(generate.len(), 11);
        assert!(generate.iter().all(Case::per_token));
        assert!(!all.iter().any(|c| matches!(c, Case::Micro(_)) && c.per_token()));
        assert!(name_matches("generate/x/decode", Some("nothing,decode")));
        assert!(!name_matches("generate/x/decode", Some("prefill")));
    }

    #[test]
    fn token_cases_are_listed_as_tokens_per_second() {
        let mut r = measured("generate/m/decode", &[5e6, 4e6, 6e6], &[4e6, 5e6, 5e6]);
        assert_eq!(throughputs(std::slice::from_ref(&r)), "");
        r.spec = json!({"kind": "model", "per_token": true});
        let t = throughputs(&[r]);
        assert_eq!(
            t,
            "\nThroughput of the token cases:\n\n- `generate/m/decode`: Rust 200.0 tok/s, Python \
             200.0 tok/s (Rust 0.833× Python's tok/s, median of pairs)\n"
        );
    }

    #[test]
    fn ratios_are_pairwise_and_the_table_shows_them() {
        let r = measured("matmul/x", &[1000.0, 3000.0, 2000.0], &[2000.0, 2000.0, 1000.0]);
        assert_eq!(r.ratios(), vec![0.5, 1.5, 2.0]);
        let (rs, ps, q) = r.summaries().unwrap();
        assert_eq!((rs.median, ps.median, q.median, q.min, q.max), (2000.0, 2000.0, 1.5, 0.5, 2.0));
        let skipped = CaseResult {
            name: "swiglu/kernel".into(),
            group: "swiglu".into(),
            spec: json!({}),
            outcome: Outcome::Skipped("no GPU".into()),
        };
        let t = table(&[r, skipped]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert_eq!(lines[2], "| `matmul/x` | 2.00 µs | 2.00 µs | 1.500 | 0.500–2.000 | 3 × 4 |");
    }
}
