//! The model workloads of the `compare` runner: `single_seqlen` (one forward pass of a
//! GLM-4.5-MoE model at 32–512 tokens), generation (prefill and decode of the four model
//! presets, against mlx-lm's own generation loop) and a LoRA training step (against mlx-lm's
//! trainer), each on the same random weights on both sides (`mlx_lm::presets` and its Python
//! twin `examples/presets.py`).
//!
//! Each side is a long-lived process that loads its model once: the Rust example
//! (`examples/{single_seqlen,generate,lora}.rs`) and its Python twin
//! (`examples/python_{single_seqlen,generate,lora}.py`, mlx-lm 0.32.0's own code), both started
//! with `--serve` and spoken to in the JSON-lines protocol of `micro.py`
//! (`mlx_examples::serve`, `examples/serve_jsonl.py`). Consecutive cases on the same model
//! share the two processes ([`Servers`]); a case on another model stops them first, so at most
//! one model per side is loaded at a time (GLM-4.5-Air 3-bit, the largest, is about 45 GB per
//! side: both fit on one 141 GB H200).
//!
//! Before anything is timed, a case checks that both sides hold the same weights (the
//! checksum each prints) and compute the same thing: `single_seqlen`'s logits (the Rust side
//! saves them, the Python side compares them, largest difference within 1e-2 of the largest
//! logit), the generated token ids (equal), the LoRA loss before the first update (within a
//! relative tolerance).

use std::path::{Path, PathBuf};

use mlx_rs::kernels::Fused;
use serde_json::{Value, json};

use crate::compare::{CompareArgs, MAX_ITERS, Measure, Opened, Side, iterations_for};
use crate::python::PythonChild;
use crate::workloads::{Profile, checksums_agree};

/// How a model case checks that the two sides compute the same thing.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// The Rust side saves its logits (`.npy`), the Python side compares them with its own.
    Logits,
    /// The generated token ids are equal.
    Tokens,
    /// The checksums (a loss) agree within this relative tolerance.
    Checksum(f64),
}

/// One model case: which programs, with which arguments, and the setup both get.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// The case's unique name, `GROUP/...`.
    pub name: String,
    /// `single_seqlen`, `generate` or `lora-train`.
    pub group: &'static str,
    /// The Rust example's binary name.
    pub example: &'static str,
    /// The Python twin's file name in `examples/`.
    pub script: &'static str,
    /// The Rust side's arguments (before `--serve`).
    pub rust_args: Vec<String>,
    /// The Python side's arguments (before `--serve`).
    pub python_args: Vec<String>,
    /// The `setup` spec both sides get.
    pub setup: Value,
    /// How the outputs are compared.
    pub check: Check,
    /// Iterations per sample when fixed (generation: one generation per sample).
    pub fixed_iters: Option<usize>,
    /// At most this many warm-up iterations (generation: the check already ran one).
    pub max_warmup: Option<usize>,
    /// At most this many samples per side (the quick profile keeps the CPU pass short).
    pub max_runs: Option<usize>,
    /// What one iteration is, for the report.
    pub unit: &'static str,
    /// Whether the iteration is one token, so that 1e9 / ns is a throughput in tokens/s.
    pub per_token: bool,
    /// Whether the Rust example takes `--fused` (compare's `--fused` is passed on).
    pub takes_fused: bool,
}

impl ModelSpec {
    /// What it runs, for the results file.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name, "group": self.group, "kind": "model",
            "rust": {"example": self.example, "args": self.rust_args},
            "python": {"script": format!("examples/{}", self.script), "args": self.python_args},
            "setup": self.setup, "iteration": self.unit, "per_token": self.per_token,
        })
    }
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| (*s).to_owned()).collect()
}

/// The sequence lengths of `single_seqlen`.
pub const SEQ_LENS: [i64; 6] = [32, 64, 127, 128, 256, 512];

/// The lengths on the quick profile: the small model's MoE layers run MLX's CPU `gather_qmm`,
/// a few hundred tokens per second on a 2-core CPU, so the longer ones would take minutes.
pub const QUICK_SEQ_LENS: [i64; 2] = [32, 128];

/// At most this many samples per side for a model case on the quick profile.
pub const QUICK_RUNS: usize = 5;

/// The generation prompt: 64 ids `1000..1064` (as `examples/scripts/compare_models.sh`).
pub fn generation_prompt() -> Vec<u32> {
    (1000..1064).collect()
}

/// The long prompt of the MoE presets' prefill cases on a GPU: 512 ids `1000..1512`, where
/// the experts see thousands of (token, expert) pairs (the grouped kernel's regime).
pub fn long_prompt() -> Vec<u32> {
    (1000..1512).collect()
}

/// Greedy tokens compared before a long-prompt case is timed: few, because MLX's CUDA
/// reductions are not deterministic and near-uniform random-weight logits then diverge.
pub const LONG_PROMPT_CHECK_TOKENS: usize = 4;

/// The model cases of `profile`; `examples` is the source folder `examples/` (its configs and
/// data are named by path).
pub fn model_cases(profile: Profile, examples: &Path) -> Vec<ModelSpec> {
    let quick = profile == Profile::Quick;
    let (quick_warmup, quick_runs) = if quick { (Some(1), Some(QUICK_RUNS)) } else { (None, None) };
    let path = |p: &str| examples.join(p).display().to_string();
    let mut out = Vec::new();
    let seqlen_preset = if quick { "small" } else { "glm45-air" };
    let lens: &[i64] = if quick { &QUICK_SEQ_LENS } else { &SEQ_LENS };
    for &len in lens {
        let args = strings(&["--preset", seqlen_preset, "--seed", "0"]);
        out.push(ModelSpec {
            name: format!("single_seqlen/{seqlen_preset}/len={len}"),
            group: "single_seqlen",
            example: "single_seqlen",
            script: "python_single_seqlen.py",
            rust_args: args.clone(),
            python_args: args,
            setup: json!({"len": len}),
            check: Check::Logits,
            fixed_iters: None,
            max_warmup: quick_warmup,
            max_runs: quick_runs,
            unit: "one forward pass (logits evaluated)",
            per_token: false,
            takes_fused: true,
        });
    }
    let presets: Vec<(String, String)> = if quick {
        ["mistral-tiny", "qwen3-moe-tiny"]
            .iter()
            .map(|n| ((*n).to_owned(), path(&format!("presets-small/{n}.json"))))
            .collect()
    } else {
        ["mistral-7b-4bit", "mixtral-8x7b-4bit", "qwen3-30b-a3b-4bit", "glm45-air-3bit"]
            .iter()
            .map(|n| ((*n).to_owned(), (*n).to_owned()))
            .collect()
    };
    let tokens: usize = if quick { 32 } else { 128 };
    for (name, preset) in presets {
        let long = !quick && name != "mistral-7b-4bit";
        let cases = ["prefill", "decode", "prefill-512"];
        for case in &cases[..if long { 3 } else { 2 }] {
            // Two tokens for prefill: the first token's time then holds, on both sides, the
            // building of the second step, as in a long generation.
            let (metric, prompt, check, max_tokens, unit) = match *case {
                "prefill" => (
                    "prefill",
                    generation_prompt(),
                    tokens,
                    2,
                    "one prompt token (1 / prompt tok/s of a 64-token prompt)",
                ),
                "prefill-512" => (
                    "prefill",
                    long_prompt(),
                    LONG_PROMPT_CHECK_TOKENS,
                    2,
                    "one prompt token (1 / prompt tok/s of a 512-token prompt)",
                ),
                _ => (
                    "decode",
                    generation_prompt(),
                    tokens,
                    tokens,
                    "one generated token (1 / generation tok/s)",
                ),
            };
            out.push(ModelSpec {
                name: format!("generate/{name}/{case}"),
                group: "generate",
                example: "generate",
                script: "python_generate.py",
                rust_args: strings(&["--preset", &preset, "--weights-seed", "0"]),
                python_args: strings(&["--preset", &preset, "--seed", "0"]),
                setup: json!({
                    "prompt": prompt, "check_tokens": check,
                    "max_tokens": max_tokens, "metric": metric,
                }),
                check: Check::Tokens,
                fixed_iters: Some(1),
                max_warmup: Some(1),
                max_runs: quick_runs,
                unit,
                per_token: true,
                takes_fused: true,
            });
        }
    }
    let (lora_name, data, batch, max_len, rtol) = if quick {
        ("small", path("data/lora"), 4, 2048, 1e-3)
    } else {
        ("mistral-7b-4bit", path("data/lora-long"), 4, 512, 1e-2)
    };
    let mut rust_args = strings(&["--data", &data, "--seed", "0"]);
    let python_args = strings(&["--preset", lora_name, "--data", &data, "--seed", "0"]);
    if !quick {
        rust_args.extend(strings(&["--preset", lora_name]));
    }
    out.push(ModelSpec {
        name: format!("lora-train/{lora_name}/batch={batch}"),
        group: "lora-train",
        example: "lora",
        script: "python_lora.py",
        rust_args,
        python_args,
        setup: json!({"batch_size": batch, "max_seq_length": max_len}),
        check: Check::Checksum(rtol),
        fixed_iters: None,
        max_warmup: quick_warmup,
        max_runs: quick_runs,
        unit: "one LoRA training step (rank 8 on the last 16 layers or all; forward, backward, \
               AdamW update)",
        per_token: false,
        takes_fused: false,
    });
    out
}

/// The source folder `examples/` (the Python twins, configs and data): `--py-examples`, or
/// the one beside `benches/` in this checkout.
pub fn examples_source(args: &CompareArgs) -> PathBuf {
    let dir = args
        .py_examples
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples"));
    dir.canonicalize().unwrap_or(dir)
}

/// The command that builds the example binaries.
pub const BUILD_HINT: &str = "cargo build --release -p mlx-examples --example single_seqlen \
                              --example generate --example lora";

/// The folders searched for the example binaries, in order: `flag` (or `MLX_BENCH_EXAMPLES`),
/// else `examples/` beside this binary (cargo's `target/release/examples`), this checkout's
/// `target/release/examples`, then `PATH`.
pub fn example_dirs(flag: Option<&Path>) -> Vec<PathBuf> {
    if let Some(dir) = flag {
        return vec![dir.to_owned()];
    }
    if let Some(dir) = std::env::var_os("MLX_BENCH_EXAMPLES").filter(|d| !d.is_empty()) {
        return vec![PathBuf::from(dir)];
    }
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_owned)) {
        dirs.push(dir.join("examples"));
    }
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/examples"));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// The example binary `name` in the first of `dirs` that has it, or an error saying how to
/// build it.
pub fn find_example(name: &str, dirs: &[PathBuf]) -> Result<PathBuf, String> {
    if let Some(found) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return Ok(found);
    }
    let looked: Vec<String> = dirs.iter().take(3).map(|d| d.display().to_string()).collect();
    let more = if dirs.len() > 3 { ", PATH" } else { "" };
    Err(format!(
        "the Rust example `{name}` is not built (looked in {}{more}): build the examples with \
         `{BUILD_HINT}` (add `--features cuda` on a CUDA machine), put them on PATH, or pass \
         --examples DIR",
        looked.join(", ")
    ))
}

/// `LD_LIBRARY_PATH` for the example binaries (cargo gives them no rpath to `libmlx`): the
/// folders of the `libmlx` this process loaded first, so that they load the same library, then
/// what was set already.
pub fn library_path() -> Vec<(String, String)> {
    let mut dirs: Vec<PathBuf> = crate::compare::loaded_libmlx()
        .iter()
        .filter_map(|p| Path::new(p).parent().map(Path::to_owned))
        .collect();
    dirs.dedup();
    if dirs.is_empty() {
        return Vec::new();
    }
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&old));
    }
    match std::env::join_paths(dirs) {
        Ok(joined) => vec![("LD_LIBRARY_PATH".to_owned(), joined.to_string_lossy().into_owned())],
        Err(_) => Vec::new(),
    }
}

/// The two serving processes of one model: (Rust example, Python twin).
struct Pair {
    key: (String, Vec<String>, String, Vec<String>),
    rust: PythonChild,
    python: PythonChild,
}

/// The Rust example's arguments for serving `spec`: its own, `--fused MODE` when given and the
/// example takes it, then `--serve`.
pub fn serve_args(spec: &ModelSpec, fused: Option<Fused>) -> Vec<String> {
    let mut args = spec.rust_args.clone();
    if let Some(mode) = fused.filter(|_| spec.takes_fused) {
        args.extend(["--fused".to_owned(), mode.name().to_owned()]);
    }
    args.push("--serve".to_owned());
    args
}

/// The serving processes of the current model (at most one pair alive).
pub struct Servers {
    dirs: Vec<PathBuf>,
    source: PathBuf,
    python: String,
    mlx_version: String,
    device: String,
    fused: Option<Fused>,
    current: Option<Pair>,
}

impl Servers {
    /// No process yet; they start on the first case that needs them.
    pub fn new(args: &CompareArgs, mlx_version: &str, device: &str) -> Servers {
        Servers {
            dirs: example_dirs(args.examples.as_deref()),
            source: examples_source(args),
            python: args.python.clone(),
            mlx_version: mlx_version.to_owned(),
            device: device.to_owned(),
            fused: args.fused,
            current: None,
        }
    }

    /// Stops the current pair (waiting for both to exit, which frees their memory).
    pub fn stop(&mut self) {
        if let Some(pair) = self.current.take() {
            pair.rust.quit();
            pair.python.quit();
        }
    }

    /// The pair for `spec`, started (after stopping another model's pair) when needed.
    fn pair(&mut self, spec: &ModelSpec) -> Result<&mut Pair, String> {
        let key = (
            spec.example.to_owned(),
            spec.rust_args.clone(),
            spec.script.to_owned(),
            spec.python_args.clone(),
        );
        if self.current.as_ref().is_some_and(|p| p.key != key) {
            self.stop();
        }
        if self.current.is_none() {
            let binary = find_example(spec.example, &self.dirs)?;
            let script = self.source.join(spec.script);
            if !script.is_file() {
                return Err(format!("the Python twin {} does not exist", script.display()));
            }
            let rust_args = serve_args(spec, self.fused);
            let program = binary.display().to_string();
            let not_found = format!("cannot run {program}");
            let rust = PythonChild::spawn_program(
                &program,
                &rust_args,
                &library_path(),
                &not_found,
                &self.mlx_version,
                &self.device,
            )?;
            let mut python_args = vec![script.display().to_string()];
            python_args.extend(spec.python_args.iter().cloned());
            python_args.push("--serve".to_owned());
            let not_found = format!(
                "Python interpreter `{}` not found: install Python 3 with mlx=={} and \
                 mlx-lm==0.32.0 (--no-deps), or pass --python EXE",
                self.python, self.mlx_version
            );
            let python = match PythonChild::spawn_program(
                &self.python,
                &python_args,
                &[],
                &not_found,
                &self.mlx_version,
                &self.device,
            ) {
                Ok(p) => p,
                Err(e) => {
                    rust.quit();
                    return Err(e);
                }
            };
            self.current = Some(Pair { key, rust, python });
        }
        self.current.as_mut().ok_or_else(|| "no serving processes".to_owned())
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The first position where two token lists differ, if they do.
pub fn first_difference(a: &[u64], b: &[u64]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len())))
}

fn tokens_of(v: &Value) -> Result<Vec<u64>, String> {
    v.get("tokens")
        .and_then(Value::as_array)
        .and_then(|t| t.iter().map(Value::as_u64).collect())
        .ok_or_else(|| format!("no `tokens` in {v}"))
}

fn checksum_of(v: &Value) -> Result<f64, String> {
    v.get("checksum").and_then(Value::as_f64).ok_or_else(|| format!("no checksum in {v}"))
}

/// A model case being measured.
struct Model<'a> {
    rust: &'a mut PythonChild,
    python: &'a mut PythonChild,
    iters: usize,
    max_runs: Option<usize>,
    checksums: (f64, f64),
    notes: Vec<String>,
}

/// A temporary file name for the logits of one case.
fn logits_file(name: &str) -> PathBuf {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    std::env::temp_dir().join(format!("mlx-compare-{}-{safe}.npy", std::process::id()))
}

/// Starts (or reuses) both sides of `spec`, checks that they agree, warms them up and chooses
/// the iterations per sample.
pub fn open<'a>(
    spec: &ModelSpec,
    servers: &'a mut Servers,
    args: &CompareArgs,
) -> Result<Opened<'a>, String> {
    let pair = servers.pair(spec)?;
    let (rw, pw) =
        (&pair.rust.info.raw["weights_checksum"], &pair.python.info.raw["weights_checksum"]);
    if rw.is_null() || rw != pw {
        return Err(format!(
            "the two sides hold different weights: checksum {rw} (Rust) against {pw} (Python)"
        ));
    }
    let mut notes = vec![
        format!("{}: an iteration is {}", spec.group, spec.unit),
        format!("{}: the same random weights on both sides (checksums equal)", spec.group),
    ];
    let (rust_ready, python_ready) = match spec.check {
        Check::Logits => {
            let file = logits_file(&spec.name);
            let mut rust_setup = spec.setup.clone();
            rust_setup["save_output"] = json!(file.display().to_string());
            let mut python_setup = spec.setup.clone();
            python_setup["compare_output"] = json!(file.display().to_string());
            let rust = pair.rust.request(&json!({"cmd": "setup", "spec": rust_setup}));
            let python = match &rust {
                Ok(_) => pair.python.request(&json!({"cmd": "setup", "spec": python_setup})),
                Err(_) => Ok(Value::Null),
            };
            let _ = std::fs::remove_file(&file);
            notes.push(format!(
                "{}: the logits agree (Python compared them with the Rust side's: largest \
                 difference within 1e-2 of the largest |logit|)",
                spec.group
            ));
            (rust?, python?)
        }
        Check::Tokens | Check::Checksum(_) => {
            let setup = json!({"cmd": "setup", "spec": spec.setup});
            (pair.rust.request(&setup)?, pair.python.request(&setup)?)
        }
    };
    let checksums = (checksum_of(&rust_ready)?, checksum_of(&python_ready)?);
    match spec.check {
        Check::Logits => {}
        Check::Tokens => {
            let (r, p) = (tokens_of(&rust_ready)?, tokens_of(&python_ready)?);
            if let Some(i) = first_difference(&r, &p) {
                return Err(format!(
                    "the generated tokens differ from token {i} on: Rust {:?} against Python \
                     {:?}",
                    &r[i..r.len().min(i + 8)],
                    &p[i..p.len().min(i + 8)]
                ));
            }
            notes.push(format!(
                "{}: the same {} greedy tokens on both sides (EOS ignored)",
                spec.group,
                r.len()
            ));
        }
        Check::Checksum(rtol) => {
            if !checksums_agree(checksums.0, checksums.1, rtol) {
                return Err(format!(
                    "the outputs differ: {} (Rust) against {} (Python), beyond a relative \
                     {rtol}",
                    checksums.0, checksums.1
                ));
            }
            notes.push(format!(
                "{}: the loss before the first update agrees within {rtol} (relative)",
                spec.group
            ));
        }
    }
    let warmup = spec.max_warmup.map_or(args.warmup, |m| args.warmup.min(m));
    let (rust, python) = (&mut pair.rust, &mut pair.python);
    if warmup > 0 {
        rust.warmup(warmup)?;
        python.warmup(warmup)?;
    }
    let iters = match spec.fixed_iters {
        Some(n) => n,
        None => {
            let one = rust.sample(1)?.max(python.sample(1)?);
            iterations_for(one, args.target_ms * 1e6, MAX_ITERS)
        }
    };
    let max_runs = spec.max_runs;
    Ok(Opened::Ready(Box::new(Model { rust, python, iters, max_runs, checksums, notes })))
}

impl Measure for Model<'_> {
    fn iters(&self) -> usize {
        self.iters
    }

    fn checksums(&self) -> (Option<f64>, Option<f64>) {
        (Some(self.checksums.0), Some(self.checksums.1))
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn runs(&self, requested: usize) -> usize {
        self.max_runs.map_or(requested, |m| requested.min(m))
    }

    fn sample(&mut self, side: Side) -> Result<f64, String> {
        match side {
            Side::Rust => self.rust.sample(self.iters),
            Side::Python => self.python.sample(self.iters),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_cover_the_lengths_presets_and_lora() {
        let dir = Path::new("/src/examples");
        let quick = model_cases(Profile::Quick, dir);
        let names: Vec<&str> = quick.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names[..2], ["single_seqlen/small/len=32", "single_seqlen/small/len=128"]);
        assert_eq!(
            names[2..],
            [
                "generate/mistral-tiny/prefill",
                "generate/mistral-tiny/decode",
                "generate/qwen3-moe-tiny/prefill",
                "generate/qwen3-moe-tiny/decode",
                "lora-train/small/batch=4",
            ]
        );
        assert!(quick.iter().all(|c| c.name.starts_with(&format!("{}/", c.group))));
        let tiny = &quick[3];
        assert_eq!(
            tiny.rust_args,
            ["--preset", "/src/examples/presets-small/mistral-tiny.json", "--weights-seed", "0"]
        );
        assert_eq!(tiny.setup["prompt"].as_array().unwrap().len(), 64);
        assert_eq!((tiny.setup["max_tokens"].as_u64(), tiny.fixed_iters), (Some(32), Some(1)));
        let gpu = model_cases(Profile::Gpu, dir);
        let generate: Vec<&str> =
            gpu.iter().filter(|c| c.group == "generate").map(|c| c.name.as_str()).collect();
        assert_eq!(generate.len(), 11);
        assert!(generate.contains(&"generate/glm45-air-3bit/decode"), "{generate:?}");
        assert!(!generate.contains(&"generate/mistral-7b-4bit/prefill-512"), "{generate:?}");
        let long = gpu.iter().find(|c| c.name == "generate/mixtral-8x7b-4bit/prefill-512").unwrap();
        assert_eq!(long.setup["prompt"].as_array().unwrap().len(), 512);
        assert_eq!(long.setup["metric"], "prefill");
        assert_eq!(long.setup["check_tokens"], LONG_PROMPT_CHECK_TOKENS);
        let decode = gpu.iter().find(|c| c.name == "generate/mistral-7b-4bit/decode").unwrap();
        assert_eq!(decode.setup["max_tokens"], 128);
        assert_eq!(decode.setup["check_tokens"], 128);
        assert_eq!(gpu[0].rust_args, ["--preset", "glm45-air", "--seed", "0"]);
        let lens: Vec<&str> = gpu[..6].iter().map(|c| c.name.as_str()).collect();
        assert_eq!(lens[2], "single_seqlen/glm45-air/len=127");
        assert_eq!(lens[5], "single_seqlen/glm45-air/len=512");
        assert_eq!((gpu[0].max_runs, quick[0].max_runs), (None, Some(QUICK_RUNS)));
        let lora = gpu.last().unwrap();
        assert_eq!(lora.name, "lora-train/mistral-7b-4bit/batch=4");
        assert!(lora.rust_args.ends_with(&strings(&["--preset", "mistral-7b-4bit"])));
        assert_eq!(lora.setup, json!({"batch_size": 4, "max_seq_length": 512}));
        assert_eq!(
            serve_args(&gpu[0], Some(Fused::On))[4..],
            strings(&["--fused", "on", "--serve"])
        );
        assert_eq!(serve_args(&gpu[0], None)[4..], strings(&["--serve"]));
        assert!(!serve_args(lora, Some(Fused::Off)).contains(&"--fused".to_owned()));
    }

    /// The Python twin's `--serve` answers the protocol: the info line with the weights'
    /// checksum, a setup with the generated tokens, samples in ns per token, errors as answers
    /// (needs `python3` with mlx and mlx-lm 0.32.0, as the quick pass does).
    #[test]
    fn the_python_generation_twin_serves_the_protocol() {
        let info = crate::env::RunInfo::gather().unwrap();
        let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let args = strings(&[
            &examples.join("python_generate.py").display().to_string(),
            "--preset",
            &examples.join("presets-small/mistral-tiny.json").display().to_string(),
            "--serve",
        ]);
        let mut py = PythonChild::spawn_program(
            "python3",
            &args,
            &[],
            "no python3",
            &info.mlx_version,
            &info.device,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(py.info.raw["weights_checksum"].as_str().map(str::len), Some(16));
        let e = py.sample(1).unwrap_err();
        assert!(e.contains("sample before a successful setup"), "{e}");
        let setup =
            json!({"prompt": [5, 6, 7], "check_tokens": 4, "max_tokens": 3, "metric": "decode"});
        let ready = py.request(&json!({"cmd": "setup", "spec": setup})).unwrap();
        let tokens = tokens_of(&ready).unwrap();
        assert_eq!(tokens.len(), 4);
        assert_eq!(checksum_of(&ready).unwrap(), tokens.iter().sum::<u64>() as f64);
        let ns = py.sample(2).unwrap();
        assert!(ns > 0.0 && ns < 1e9, "{ns} ns per token");
        let bad = json!({"cmd": "setup", "spec": {"prompt": [5], "check_tokens": 1, "max_tokens": 1, "metric": "both"}});
        let e = py.request(&bad).unwrap_err();
        assert!(e.contains("`metric` must be decode or prefill"), "{e}");
        py.quit();
    }

    #[test]
    fn the_prompt_is_64_ids_from_1000() {
        let p = generation_prompt();
        assert_eq!((p.len(), p[0], p[63]), (64, 1000, 1063));
    }

    #[test]
    fn token_lists_are_compared_position_by_position() {
        assert_eq!(first_difference(&[1, 2, 3], &[1, 2, 3]), None);
        assert_eq!(first_difference(&[1, 2, 3], &[1, 5, 3]), Some(1));
        assert_eq!(first_difference(&[1, 2], &[1, 2, 3]), Some(2));
    }

    #[test]
    fn a_missing_example_says_how_to_build_it() {
        let dirs = vec![PathBuf::from("/nowhere/a"), PathBuf::from("/nowhere/b")];
        let e = find_example("single_seqlen", &dirs).unwrap_err();
        assert!(e.contains("the Rust example `single_seqlen` is not built"), "{e}");
        assert!(e.contains("/nowhere/a, /nowhere/b"), "{e}");
        assert!(e.contains(BUILD_HINT), "{e}");
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(
            find_example("Cargo.toml", std::slice::from_ref(&here)).unwrap(),
            here.join("Cargo.toml")
        );
        assert_eq!(example_dirs(Some(Path::new("/x"))), vec![PathBuf::from("/x")]);
    }

    #[test]
    fn examples_get_the_library_path_of_this_process() {
        let env = library_path();
        let (key, value) = &env[0];
        assert_eq!(key, "LD_LIBRARY_PATH");
        let first = value.split(':').next().unwrap();
        assert!(Path::new(first).join("libmlx.so").is_file(), "{value}");
    }

    #[test]
    fn logits_files_have_plain_names() {
        let f = logits_file("single_seqlen/small/len=32");
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(name.ends_with("-single-seqlen-small-len-32.npy"), "{name}");
    }
}
