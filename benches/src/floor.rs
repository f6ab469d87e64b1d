//! Host cost of building a graph: a chain of N scalar adds, measured in Rust (in process), in C
//! straight on mlx-c (`floor/chain.c`, the floor) and in Python (`floor/chain.py`), in
//! interleaved rounds (Rust, C, Python, Rust, C, Python, ...).
//!
//! Each side runs two variants:
//!
//! | variant | Rust | C | Python |
//! |---|---|---|---|
//! | `fresh` | `(&y + 1.0f32)?` (operator) | a new scalar per add | `y = y + 1.0` |
//! | `reuse` | `ops::add(&y, &one)?` | one scalar made once (the floor) | `mx.add(y, one)` |
//!
//! and times, per repetition, the graph build alone and build + eval. The children print one
//! JSON line per repetition (see [`parse_line`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use mlx_rs::{Array, ops};
use serde_json::{Value, json};

use crate::cli::{Flags, usage_error};
use crate::env::RunInfo;
use crate::stats::Summary;

/// The two ways to build the chain (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// A scalar array made once and reused by every add.
    Reuse,
    /// A new scalar array per add, as an operator makes.
    Fresh,
}

impl Variant {
    /// Both variants, in the order every side runs them.
    pub const ALL: [Variant; 2] = [Variant::Reuse, Variant::Fresh];

    /// The name used in the JSON lines.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Reuse => "reuse",
            Variant::Fresh => "fresh",
        }
    }

    /// The variant named `name` in a JSON line.
    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// Which program measured a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    /// This process, through mlx-rs.
    Rust,
    /// `floor/chain.c`, straight on mlx-c.
    C,
    /// `floor/chain.py`, through Python MLX.
    Python,
}

impl Lang {
    /// The name used in the JSON lines.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Python => "python",
        }
    }

    fn from_name(name: &str) -> Option<Lang> {
        [Lang::Rust, Lang::C, Lang::Python].into_iter().find(|l| l.name() == name)
    }
}

/// What a row of the table shows for a (side, variant) pair.
pub fn label(lang: Lang, variant: Variant) -> &'static str {
    match (lang, variant) {
        (Lang::Rust, Variant::Fresh) => "Rust  (&y + 1.0f32)?  operator",
        (Lang::Rust, Variant::Reuse) => "Rust  ops::add(&y, &one)?",
        (Lang::C, Variant::Fresh) => "C     mlx_add, new scalar per op",
        (Lang::C, Variant::Reuse) => "C     mlx_add, one scalar (floor)",
        (Lang::Python, Variant::Fresh) => "Py    y = y + 1.0",
        (Lang::Python, Variant::Reuse) => "Py    y = mx.add(y, one)",
    }
}

/// One timed chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Who measured it.
    pub lang: Lang,
    /// How the chain was built.
    pub variant: Variant,
    /// The interleaving round (0-based).
    pub round: usize,
    /// The repetition within the round (0-based).
    pub rep: usize,
    /// Ops in the chain.
    pub n: usize,
    /// Nanoseconds to build the graph.
    pub build_ns: u64,
    /// Nanoseconds to build and evaluate it.
    pub build_eval_ns: u64,
}

impl Sample {
    /// The sample as a JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "lang": self.lang.name(), "variant": self.variant.name(), "round": self.round,
            "rep": self.rep, "n": self.n, "build_ns": self.build_ns,
            "build_eval_ns": self.build_eval_ns,
        })
    }
}

/// What a child says about itself before its samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Info {
    /// Who speaks.
    pub lang: Lang,
    /// `mlx_version()` / `mx.__version__`.
    pub mlx_version: String,
    /// The default device, as MLX prints it (`Device(cpu, 0)`).
    pub device: String,
    /// The whole line, kept for the results file.
    pub raw: Value,
}

/// One line of a child's output.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// `{"kind":"info","lang":..,"mlx_version":..,"device":..}`.
    Info(Info),
    /// `{"kind":"sample","lang":..,"variant":..,"rep":..,"n":..,"build_ns":..,"build_eval_ns":..}`;
    /// the round is filled in by the runner.
    Sample(Sample),
}

/// Parses one JSON line of `chain.c` / `chain.py`.
pub fn parse_line(line: &str) -> Result<Line, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
    let text = |key: &str| {
        v.get(key).and_then(Value::as_str).ok_or_else(|| format!("no string `{key}` in {line}"))
    };
    let count = |key: &str| {
        v.get(key).and_then(Value::as_u64).ok_or_else(|| format!("no count `{key}` in {line}"))
    };
    let lang = text("lang")?;
    let lang = Lang::from_name(lang).ok_or_else(|| format!("unknown lang `{lang}` in {line}"))?;
    match text("kind")? {
        "info" => Ok(Line::Info(Info {
            lang,
            mlx_version: text("mlx_version")?.to_owned(),
            device: text("device")?.to_owned(),
            raw: v.clone(),
        })),
        "sample" => {
            let variant = text("variant")?;
            let variant = Variant::from_name(variant)
                .ok_or_else(|| format!("unknown variant `{variant}` in {line}"))?;
            let to_usize = |x: u64| usize::try_from(x).map_err(|_| format!("{x} is too large"));
            Ok(Line::Sample(Sample {
                lang,
                variant,
                round: 0,
                rep: to_usize(count("rep")?)?,
                n: to_usize(count("n")?)?,
                build_ns: count("build_ns")?,
                build_eval_ns: count("build_eval_ns")?,
            }))
        }
        other => Err(format!("unknown kind `{other}` in {line}")),
    }
}

/// Options of `floor chain`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainArgs {
    /// Ops per chain.
    pub n: usize,
    /// Unmeasured chains per variant before each side's repetitions, every round.
    pub warmup: usize,
    /// Measured chains per variant per side per round.
    pub reps: usize,
    /// Interleaving rounds.
    pub rounds: usize,
    /// The C program; `None` skips the C side.
    pub c: Option<PathBuf>,
    /// The Python script; `None` skips the Python side.
    pub python_script: Option<PathBuf>,
    /// The Python interpreter.
    pub python: String,
    /// Where the results go.
    pub out: PathBuf,
}

impl ChainArgs {
    /// Usage text.
    pub const USAGE: &'static str = "\
floor chain [--n N] [--warmup W] [--reps R] [--rounds K] [--c PATH | --no-c]
            [--python-script PATH | --no-python] [--python EXE] [--out DIR]
  --n N              ops per chain (default 1000)
  --warmup W         unmeasured chains per variant per side per round (default 5)
  --reps R           measured chains per variant per side per round (default 20)
  --rounds K         interleaved rounds: Rust, C, Python, Rust, ... (default 5)
  --c PATH           the C floor program (default: floor-chain beside this binary, else the one
                     build.rs compiled)
  --no-c             skip the C side
  --python-script P  chain.py (default: beside this binary, else benches/floor/chain.py)
  --python EXE       the Python interpreter (default python3)
  --no-python        skip the Python side
  --out DIR          where the JSON and Markdown results go (default benches/results)";

    /// Parses the arguments after `chain`; `defaults` supplies the located paths.
    pub fn parse(args: &[String], defaults: &Defaults) -> Result<ChainArgs, String> {
        let mut flags = Flags::new(args, &["--no-c", "--no-python"])?;
        let parsed = ChainArgs {
            n: flags.count("--n", 1000, 1)?,
            warmup: flags.count("--warmup", 5, 0)?,
            reps: flags.count("--reps", 20, 1)?,
            rounds: flags.count("--rounds", 5, 1)?,
            c: match (flags.switch("--no-c"), flags.value("--c")) {
                (true, Some(_)) => return Err(usage_error("--c and --no-c exclude each other")),
                (true, None) => None,
                (false, Some(p)) => Some(PathBuf::from(p)),
                (false, None) => Some(defaults.c.clone().ok_or_else(|| {
                    usage_error(&format!(
                        "no C floor program: {}; pass --c PATH or --no-c",
                        defaults.c_missing
                    ))
                })?),
            },
            python_script: match (flags.switch("--no-python"), flags.value("--python-script")) {
                (true, Some(_)) => {
                    return Err(usage_error("--python-script and --no-python exclude each other"));
                }
                (true, None) => None,
                (false, Some(p)) => Some(PathBuf::from(p)),
                (false, None) => Some(defaults.python_script.clone().ok_or_else(|| {
                    usage_error("chain.py not found; pass --python-script PATH or --no-python")
                })?),
            },
            python: flags.value("--python").unwrap_or_else(|| "python3".to_owned()),
            out: flags.value("--out").map_or_else(|| defaults.out.clone(), PathBuf::from),
        };
        flags.finish()?;
        if parsed.n > 1 << 24 {
            return Err(usage_error("--n must be at most 2^24 (the float32 result must be exact)"));
        }
        Ok(parsed)
    }
}

/// Paths found on this machine, the defaults of [`ChainArgs`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Defaults {
    /// The C program, if found.
    pub c: Option<PathBuf>,
    /// Why there is none.
    pub c_missing: String,
    /// `chain.py`, if found.
    pub python_script: Option<PathBuf>,
    /// The results directory.
    pub out: PathBuf,
}

impl Defaults {
    /// Looks beside the running binary first (a staged copy), then in the source tree.
    pub fn locate() -> Defaults {
        let beside = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
        let find = |name: &str, fallback: Option<PathBuf>| {
            beside.as_ref().map(|d| d.join(name)).filter(|p| p.is_file()).or(fallback)
        };
        let built = option_env!("FLOOR_CHAIN_C").filter(|p| !p.is_empty()).map(PathBuf::from);
        let c = find("floor-chain", built.filter(|p| p.is_file()));
        let c_missing = match option_env!("FLOOR_CHAIN_C_ERROR") {
            Some(err) if !err.is_empty() => format!("build.rs could not build it ({err})"),
            _ => "floor-chain is neither beside this binary nor where build.rs put it".to_owned(),
        };
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let script = Some(manifest.join("floor/chain.py")).filter(|p| p.is_file());
        let out =
            if manifest.is_dir() { manifest.join("results") } else { PathBuf::from("results") };
        Defaults { c, c_missing, python_script: find("chain.py", script), out }
    }
}

/// Builds one chain in this process and returns (build, build + eval) in nanoseconds.
pub fn rust_chain(variant: Variant, n: usize, one: &Array) -> mlx_rs::Result<(u64, u64)> {
    let mut y = Array::scalar(0.0f32);
    y.eval()?;
    let start = Instant::now();
    match variant {
        Variant::Fresh => {
            for _ in 0..n {
                y = (&y + 1.0f32)?;
            }
        }
        Variant::Reuse => {
            for _ in 0..n {
                y = ops::add(&y, one)?;
            }
        }
    }
    let build = start.elapsed();
    y.eval()?;
    let total = start.elapsed();
    let value = y.item::<f32>()?;
    if value != n as f32 {
        return Err(mlx_rs::Error::invalid("floor", format!("chain gave {value}, expected {n}")));
    }
    drop(y);
    let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Ok((ns(build), ns(total)))
}

/// The Rust side of one round: warm-up, then `reps` chains per variant, alternating.
fn rust_round(args: &ChainArgs, round: usize) -> Result<Vec<Sample>, String> {
    let one = Array::scalar(1.0f32);
    one.eval().map_err(|e| e.to_string())?;
    for _ in 0..args.warmup {
        for v in Variant::ALL {
            rust_chain(v, args.n, &one).map_err(|e| e.to_string())?;
        }
    }
    let mut out = Vec::with_capacity(2 * args.reps);
    for rep in 0..args.reps {
        for variant in Variant::ALL {
            let (build_ns, build_eval_ns) =
                rust_chain(variant, args.n, &one).map_err(|e| e.to_string())?;
            out.push(Sample {
                lang: Lang::Rust,
                variant,
                round,
                rep,
                n: args.n,
                build_ns,
                build_eval_ns,
            });
        }
    }
    Ok(out)
}

/// What a child printed, and a note when it exited badly after printing all of it.
type ChildOutput = (Info, Vec<Sample>, Option<String>);

/// Runs a child to completion and returns its info line and samples. A child that exits with
/// an error after printing all `expected` samples (as a CUDA program may at teardown) is kept,
/// with the exit status and stderr returned as a note for the report; otherwise it is an error.
fn run_child(
    lang: Lang,
    mut cmd: Command,
    what: &str,
    round: usize,
    expected: usize,
) -> Result<ChildOutput, String> {
    let output =
        cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {what}: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let failed = || format!("{what} failed ({}): {}", output.status, stderr.trim());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut info = None;
    let mut samples = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = parse_line(line)
            .map_err(|e| if output.status.success() { format!("{what}: {e}") } else { failed() })?;
        match parsed {
            Line::Info(i) => info = Some(i),
            Line::Sample(mut s) => {
                if s.lang != lang {
                    return Err(format!("{what} printed a sample of {}", s.lang.name()));
                }
                s.round = round;
                samples.push(s);
            }
        }
    }
    let note = if output.status.success() {
        None
    } else if info.is_some() && samples.len() == expected {
        Some(format!("round {}: {} after printing every sample", round + 1, failed()))
    } else {
        return Err(failed());
    };
    let info = info.ok_or_else(|| format!("{what} printed no info line"))?;
    Ok((info, samples, note))
}

fn counts(warmup: usize, reps: usize, n: usize) -> [String; 6] {
    let [w, r, n] = [warmup, reps, n].map(|x| x.to_string());
    ["--n".into(), n, "--warmup".into(), w, "--reps".into(), r]
}

fn c_command(path: &Path, warmup: usize, reps: usize, n: usize) -> Command {
    let mut cmd = Command::new(path);
    cmd.args(counts(warmup, reps, n));
    cmd
}

fn python_command(script: &Path, args: &ChainArgs, extra: &[String]) -> Command {
    let mut cmd = Command::new(&args.python);
    cmd.arg(script).args(extra);
    cmd
}

/// Errors unless a child loads the MLX version and default device of this process.
fn check_same(info: &Info, rust: &RunInfo, what: &str) -> Result<(), String> {
    if info.mlx_version != rust.mlx_version {
        let fix = match info.lang {
            Lang::Python => {
                format!(
                    "pip install mlx=={} (or pass --python EXE / --no-python)",
                    rust.mlx_version
                )
            }
            _ => "rebuild it against the same mlx-sys build".to_owned(),
        };
        return Err(format!(
            "{what} runs MLX {} but the Rust side loads MLX {}: {fix}",
            info.mlx_version, rust.mlx_version
        ));
    }
    if info.device != rust.device {
        return Err(format!(
            "{what} runs on {} but the Rust side on {}: the same device is needed on every side",
            info.device, rust.device
        ));
    }
    Ok(())
}

/// Checks the Python side before any timing: interpreter present, MLX importable, same version.
fn check_python(script: &Path, args: &ChainArgs, rust: &RunInfo) -> Result<Info, String> {
    if !script.is_file() {
        return Err(format!(
            "{} does not exist (pass --python-script or --no-python)",
            script.display()
        ));
    }
    let what = format!("`{} {}`", args.python, script.display());
    let mut cmd = python_command(script, args, &["--info".to_owned()]);
    let output = cmd.stdin(Stdio::null()).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "Python interpreter `{}` not found: install Python 3 with mlx=={}, pass \
                 --python EXE, or --no-python",
                args.python, rust.mlx_version
            )
        } else {
            format!("cannot run {what}: {e}")
        }
    })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(3) {
        return Err(format!(
            "`{}` has no MLX ({}): pip install mlx=={} (or pass --python / --no-python)",
            args.python,
            stderr.trim(),
            rust.mlx_version
        ));
    }
    if !output.status.success() {
        return Err(format!("{what} --info failed ({}): {}", output.status, stderr.trim()));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().next().unwrap_or_default();
    match parse_line(line).map_err(|e| format!("{what}: {e}"))? {
        Line::Info(info) => {
            check_same(&info, rust, &what)?;
            Ok(info)
        }
        Line::Sample(_) => Err(format!("{what} --info printed a sample")),
    }
}

/// Everything one `floor chain` run measured.
#[derive(Clone, Debug)]
pub struct ChainRun {
    /// Every sample, in the order taken.
    pub samples: Vec<Sample>,
    /// The children's info lines.
    pub infos: Vec<Info>,
    /// Children that exited with an error after printing every sample.
    pub notes: Vec<String>,
}

/// Runs the interleaved rounds, printing progress to stderr.
pub fn run(args: &ChainArgs, rust: &RunInfo) -> Result<ChainRun, String> {
    let mut infos = Vec::new();
    if let Some(script) = &args.python_script {
        infos.push(check_python(script, args, rust)?);
    }
    if let Some(c) = &args.c {
        if !c.is_file() {
            return Err(format!(
                "the C program {} does not exist (pass --c or --no-c)",
                c.display()
            ));
        }
        let what = format!("`{}`", c.display());
        let (info, _, _) = run_child(Lang::C, c_command(c, 0, 1, 1), &what, 0, 2)?;
        check_same(&info, rust, &what)?;
        infos.push(info);
    }
    let mut samples = Vec::new();
    let mut notes = Vec::new();
    for round in 0..args.rounds {
        let mut note = format!("round {}/{}:", round + 1, args.rounds);
        let t = Instant::now();
        let rust_samples = rust_round(args, round)?;
        note += &format!(" rust {:.1}s", t.elapsed().as_secs_f64());
        samples.extend(rust_samples);
        if let Some(c) = &args.c {
            let t = Instant::now();
            let what = format!("`{}`", c.display());
            let cmd = c_command(c, args.warmup, args.reps, args.n);
            let (info, s, exit_note) = run_child(Lang::C, cmd, &what, round, 2 * args.reps)?;
            notes.extend(exit_note);
            check_same(&info, rust, &what)?;
            check_count(&s, args, &what)?;
            samples.extend(s);
            note += &format!(", c {:.1}s", t.elapsed().as_secs_f64());
        }
        if let Some(script) = &args.python_script {
            let t = Instant::now();
            let what = format!("`{} {}`", args.python, script.display());
            let extra = counts(args.warmup, args.reps, args.n);
            let cmd = python_command(script, args, &extra);
            let (info, s, exit_note) = run_child(Lang::Python, cmd, &what, round, 2 * args.reps)?;
            notes.extend(exit_note);
            check_same(&info, rust, &what)?;
            check_count(&s, args, &what)?;
            samples.extend(s);
            note += &format!(", python {:.1}s", t.elapsed().as_secs_f64());
        }
        eprintln!("{note}");
    }
    for note in &notes {
        eprintln!("warning: {note}");
    }
    Ok(ChainRun { samples, infos, notes })
}

fn check_count(samples: &[Sample], args: &ChainArgs, what: &str) -> Result<(), String> {
    let want = 2 * args.reps;
    if samples.len() != want || samples.iter().any(|s| s.n != args.n) {
        return Err(format!(
            "{what} gave {} samples of n = {}, expected {want}",
            samples.len(),
            args.n
        ));
    }
    Ok(())
}

/// The two timed phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The graph build alone.
    Build,
    /// Build and evaluation.
    BuildEval,
}

impl Phase {
    fn of(self, s: &Sample) -> f64 {
        match self {
            Phase::Build => s.build_ns as f64,
            Phase::BuildEval => s.build_eval_ns as f64,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Build => "build",
            Phase::BuildEval => "build_eval",
        }
    }
}

/// Median and spread, in nanoseconds per chain, of every sample of one side and variant.
pub fn summary(samples: &[Sample], lang: Lang, variant: Variant, phase: Phase) -> Option<Summary> {
    let xs: Vec<f64> = samples
        .iter()
        .filter(|s| s.lang == lang && s.variant == variant)
        .map(|s| phase.of(s))
        .collect();
    Summary::of(&xs)
}

/// `num / den` pair by pair: per round, the median of `num`'s samples in that round over the
/// median of `den`'s; one ratio per round where both sides have samples.
pub fn ratios(
    samples: &[Sample],
    num: (Lang, Variant),
    den: (Lang, Variant),
    phase: Phase,
) -> Vec<f64> {
    let rounds = samples.iter().map(|s| s.round + 1).max().unwrap_or(0);
    let round_median = |round: usize, (lang, variant): (Lang, Variant)| {
        let xs: Vec<f64> = samples
            .iter()
            .filter(|s| s.round == round && s.lang == lang && s.variant == variant)
            .map(|s| phase.of(s))
            .collect();
        Summary::of(&xs).map(|s| s.median)
    };
    (0..rounds)
        .filter_map(|r| match (round_median(r, num), round_median(r, den)) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        })
        .collect()
}

/// One row of a table: a side and a variant.
pub type Row = (Lang, Variant);

/// The ratios the report gives: (label, numerator, denominator).
pub const RATIOS: [(&str, Row, Row); 5] = [
    ("Rust operator / C floor (reuse)", (Lang::Rust, Variant::Fresh), (Lang::C, Variant::Reuse)),
    ("Rust operator / C fresh scalar", (Lang::Rust, Variant::Fresh), (Lang::C, Variant::Fresh)),
    ("Rust ops::add / C floor (reuse)", (Lang::Rust, Variant::Reuse), (Lang::C, Variant::Reuse)),
    ("Rust operator / Py y + 1.0", (Lang::Rust, Variant::Fresh), (Lang::Python, Variant::Fresh)),
    ("Rust ops::add / Py mx.add", (Lang::Rust, Variant::Reuse), (Lang::Python, Variant::Reuse)),
];

fn cell(s: Option<Summary>, scale: f64, digits: usize) -> String {
    match s {
        Some(s) => {
            let s = s.scaled(scale);
            format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits)
        }
        None => "–".to_owned(),
    }
}

/// The Markdown tables of a run: times per variant, then the pair-by-pair ratios.
pub fn report(run: &ChainRun, args: &ChainArgs, rust: &RunInfo) -> String {
    let n = args.n as f64;
    let mut out = format!(
        "Chain of {} scalar adds on {} (MLX {}), median (min–max) over {} rounds × {} reps\n\n",
        args.n, rust.device, rust.mlx_version, args.rounds, args.reps
    );
    out += "| variant | build µs/chain | build ns/op | build+eval µs/chain | build+eval ns/op |\n";
    out += "|---|---|---|---|---|\n";
    for lang in [Lang::Rust, Lang::C, Lang::Python] {
        for variant in [Variant::Fresh, Variant::Reuse] {
            let b = summary(&run.samples, lang, variant, Phase::Build);
            let e = summary(&run.samples, lang, variant, Phase::BuildEval);
            if b.is_none() {
                continue;
            }
            out += &format!(
                "| {} | {} | {} | {} | {} |\n",
                label(lang, variant),
                cell(b, 1e-3, 1),
                cell(b, 1.0 / n, 0),
                cell(e, 1e-3, 1),
                cell(e, 1.0 / n, 0)
            );
        }
    }
    out +=
        "\nRatios pair by pair (per round: median over median), median (min–max) over rounds\n\n";
    out += "| ratio | build | build+eval |\n|---|---|---|\n";
    for (name, num, den) in RATIOS {
        let b = Summary::of(&ratios(&run.samples, num, den, Phase::Build));
        let e = Summary::of(&ratios(&run.samples, num, den, Phase::BuildEval));
        if b.is_none() {
            continue;
        }
        out += &format!("| {name} | {} | {} |\n", cell(b, 1.0, 2), cell(e, 1.0, 2));
    }
    for note in &run.notes {
        out += &format!("\nwarning: {note}\n");
    }
    out
}

/// The results file: run information, configuration, summaries and every sample.
pub fn to_json(run: &ChainRun, args: &ChainArgs, rust: &RunInfo) -> Value {
    let mut summaries = Vec::new();
    for lang in [Lang::Rust, Lang::C, Lang::Python] {
        for variant in Variant::ALL {
            for phase in [Phase::Build, Phase::BuildEval] {
                if let Some(s) = summary(&run.samples, lang, variant, phase) {
                    summaries.push(json!({
                        "lang": lang.name(), "variant": variant.name(), "phase": phase.name(),
                        "median_ns": s.median, "min_ns": s.min, "max_ns": s.max, "count": s.count,
                        "median_ns_per_op": s.median / args.n as f64,
                    }));
                }
            }
        }
    }
    let mut ratio_rows = Vec::new();
    for (name, num, den) in RATIOS {
        for phase in [Phase::Build, Phase::BuildEval] {
            let rs = ratios(&run.samples, num, den, phase);
            if let Some(s) = Summary::of(&rs) {
                ratio_rows.push(json!({
                    "ratio": name, "phase": phase.name(), "per_round": rs,
                    "median": s.median, "min": s.min, "max": s.max,
                }));
            }
        }
    }
    json!({
        "benchmark": "floor-chain",
        "run": rust.to_json(),
        "children": run.infos.iter().map(|i| i.raw.clone()).collect::<Vec<_>>(),
        "child_exit_notes": run.notes,
        "config": {
            "n": args.n, "warmup": args.warmup, "reps": args.reps, "rounds": args.rounds,
            "c": args.c.as_ref().map(|p| p.display().to_string()),
            "python_script": args.python_script.as_ref().map(|p| p.display().to_string()),
            "python": args.python,
        },
        "summary": summaries,
        "ratios": ratio_rows,
        "samples": run.samples.iter().map(Sample::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| (*s).to_owned()).collect()
    }

    fn defaults() -> Defaults {
        Defaults {
            c: Some(PathBuf::from("/x/floor-chain")),
            c_missing: String::new(),
            python_script: Some(PathBuf::from("/x/chain.py")),
            out: PathBuf::from("/r"),
        }
    }

    #[test]
    fn chain_args_defaults_and_overrides() {
        let a = ChainArgs::parse(&[], &defaults()).unwrap();
        assert_eq!((a.n, a.warmup, a.reps, a.rounds), (1000, 5, 20, 5));
        assert_eq!(a.c.as_deref(), Some(Path::new("/x/floor-chain")));
        assert_eq!(a.python, "python3");
        let a = ChainArgs::parse(
            &strings(&["--n", "10", "--reps", "3", "--no-c", "--python", "py", "--out", "o"]),
            &defaults(),
        )
        .unwrap();
        assert_eq!((a.n, a.reps, a.c, a.python.as_str()), (10, 3, None, "py"));
        assert_eq!(a.out, PathBuf::from("o"));
    }

    #[test]
    fn chain_args_errors_are_clear() {
        let err = |xs: &[&str]| ChainArgs::parse(&strings(xs), &defaults()).unwrap_err();
        assert!(err(&["--n", "0"]).contains("--n wants an integer >= 1, got `0`"));
        assert!(err(&["--reps", "x"]).contains("--reps wants an integer"));
        assert!(err(&["--reps"]).contains("--reps needs a value"));
        assert!(err(&["--bogus"]).contains("unknown argument `--bogus`"));
        assert!(err(&["--no-c", "--c", "p"]).contains("exclude each other"));
        assert!(err(&["--n", "20000000"]).contains("at most 2^24"));
        let none = Defaults { c: None, c_missing: "gone".into(), ..defaults() };
        let e = ChainArgs::parse(&[], &none).unwrap_err();
        assert!(e.contains("no C floor program: gone"), "{e}");
    }

    #[test]
    fn parses_the_children_lines() {
        let info = r#"{"kind":"info","lang":"c","mlx_version":"0.32.2","device":"Device(cpu, 0)","n":1000}"#;
        match parse_line(info).unwrap() {
            Line::Info(i) => assert_eq!((i.lang, i.mlx_version.as_str()), (Lang::C, "0.32.2")),
            other => panic!("{other:?}"),
        }
        let s = r#"{"kind":"sample","lang":"python","variant":"fresh","rep":3,"n":1000,"build_ns":951437,"build_eval_ns":14126619}"#;
        let want = Sample {
            lang: Lang::Python,
            variant: Variant::Fresh,
            round: 0,
            rep: 3,
            n: 1000,
            build_ns: 951437,
            build_eval_ns: 14126619,
        };
        assert_eq!(parse_line(s).unwrap(), Line::Sample(want));
        assert!(parse_line("oops").unwrap_err().starts_with("not JSON"));
        let bad = r#"{"kind":"sample","lang":"c","variant":"odd","rep":0,"n":1,"build_ns":1,"build_eval_ns":1}"#;
        assert!(parse_line(bad).unwrap_err().contains("unknown variant `odd`"));
    }

    fn sample(lang: Lang, variant: Variant, round: usize, build_ns: u64) -> Sample {
        Sample { lang, variant, round, rep: 0, n: 1000, build_ns, build_eval_ns: 2 * build_ns }
    }

    #[test]
    fn ratios_pair_round_medians() {
        let (r, c) = ((Lang::Rust, Variant::Fresh), (Lang::C, Variant::Reuse));
        let samples = vec![
            sample(Lang::Rust, Variant::Fresh, 0, 200),
            sample(Lang::Rust, Variant::Fresh, 0, 400),
            sample(Lang::C, Variant::Reuse, 0, 100),
            sample(Lang::Rust, Variant::Fresh, 1, 300),
            sample(Lang::C, Variant::Reuse, 1, 200),
            // No C sample in round 2: no ratio for it.
            sample(Lang::Rust, Variant::Fresh, 2, 300),
        ];
        assert_eq!(ratios(&samples, r, c, Phase::Build), vec![3.0, 1.5]);
        assert_eq!(ratios(&samples, r, c, Phase::BuildEval), vec![3.0, 1.5]);
        let s = summary(&samples, Lang::Rust, Variant::Fresh, Phase::Build).unwrap();
        assert_eq!((s.count, s.median), (4, 300.0));
    }
}
