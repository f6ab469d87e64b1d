//! One forward pass of a GLM-4.5-MoE-architecture model (mlx-lm's `glm4_moe`) with random
//! weights over a prompt of one length, timed; the Rust half of a Rust-vs-Python comparison
//! whose Python half is `examples/python_single_seqlen.py` (mlx-lm 0.32.0's own model file).
//!
//! ```text
//! cargo run --release -p mlx-examples --example single_seqlen -- [SEQ_LEN ...] [--preset NAME]
//!     [--runs N] [--warmup N] [--seed S] [--save-output FILE.npy] [--compare-output FILE.npy]
//!     [--tolerance T] [--fused auto|on|off] [--serve]
//! ```
//!
//! - `SEQ_LEN ...`: prompt lengths (default 127), each timed in turn with the same weights (drawn
//!   once); the prompt is `(7919 i + 13) mod vocab`.
//! - `--preset small` (default): `examples/glm45-moe-small.json`, a small GLM-4.5-MoE (hidden
//!   256, 3 layers with the first dense, 16 experts of which 4 per token plus a shared one,
//!   vocab 2048, 4-bit, float32) that runs in seconds on a CPU. `--preset glm45-air`: GLM-4.5-Air's
//!   real shapes and quantization (`mlx-community/GLM-4.5-Air-3bit`, 46 layers, 128 experts;
//!   about 45 GB: a GPU). Any other name of `mlx_lm::presets::PRESETS` works too, and so does
//!   a config file `FILE.json` (e.g. a preset's config with fewer layers).
//! - The weights come from [`mlx_lm::presets::random_model`] with `--seed` (default 0):
//!   `python_single_seqlen.py` draws the same ones (both print the weights' checksum).
//! - `--save-output` writes the logits (float32 `.npy`; with several lengths `NAME-LEN.npy`),
//!   `--compare-output` checks them against a file the other side wrote (named the same way) (largest difference within `--tolerance` times the largest
//!   reference logit, at least 1; default 1e-2) before anything is timed.
//! - `--fused` picks where the crate's own kernels replace MLX's ops (`mlx_rs::kernels`): `auto`
//!   (default) where they measured faster, `on` wherever they apply, `off` never.
//! - Timing: `--warmup` (default 3) untimed runs, then `--runs` (default 10) timed runs, each
//!   evaluating the logits; prints the median and the min/max spread in ms.
//! - `--serve`: draw the weights once, then answer the benches' `compare` runner (JSON lines on
//!   stdin/stdout, `mlx_examples::serve`): one forward pass per iteration at each setup's length.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use mlx_lm::presets::{Preset, random_model, weights_checksum};
use mlx_lm::{LanguageModel, ModelConfig};
use mlx_rs::kernels::{Fused, set_fused};
use mlx_rs::{Array, Device, Dtype, Error, Result};

/// The small preset's config (shared with `python_single_seqlen.py`).
const SMALL_CONFIG: &str = include_str!("glm45-moe-small.json");

/// The command line.
struct Options {
    seq_lens: Vec<i32>,
    preset: String,
    runs: usize,
    warmup: usize,
    seed: u64,
    save_output: Option<PathBuf>,
    compare_output: Option<PathBuf>,
    tolerance: f32,
    fused: Fused,
    serve: bool,
}

const USAGE: &str = "usage: single_seqlen [SEQ_LEN ...] [--preset small|glm45-air|NAME|FILE.json] \
                     [--runs N] [--warmup N] [--seed S] [--save-output FILE] \
                     [--compare-output FILE] [--tolerance T] [--fused auto|on|off] [--serve]";

fn bad(msg: String) -> Error {
    Error::invalid("single_seqlen", format!("{msg}\n{USAGE}"))
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T> {
    let value = value.ok_or_else(|| bad(format!("{flag} needs a value")))?;
    value.parse().map_err(|_| bad(format!("{flag}: `{value}` is not a valid number")))
}

fn parse_args() -> Result<Option<Options>> {
    let mut o = Options {
        seq_lens: Vec::new(),
        preset: "small".to_owned(),
        runs: 10,
        warmup: 3,
        seed: 0,
        save_output: None,
        compare_output: None,
        tolerance: 1e-2,
        fused: Fused::Auto,
        serve: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--preset" => {
                o.preset = args.next().ok_or_else(|| bad("--preset needs a name".into()))?
            }
            "--runs" => o.runs = number("--runs", args.next())?,
            "--warmup" => o.warmup = number("--warmup", args.next())?,
            "--seed" => o.seed = number("--seed", args.next())?,
            "--tolerance" => o.tolerance = number("--tolerance", args.next())?,
            "--save-output" => o.save_output = args.next().map(PathBuf::from),
            "--compare-output" => o.compare_output = args.next().map(PathBuf::from),
            "--fused" => {
                o.fused = args
                    .next()
                    .ok_or_else(|| bad("--fused needs auto, on or off".into()))?
                    .parse()?
            }
            "--serve" => o.serve = true,
            _ if arg.starts_with("--") => return Err(bad(format!("unknown option `{arg}`"))),
            _ => o.seq_lens.push(number("SEQ_LEN", Some(arg))?),
        }
    }
    if o.seq_lens.is_empty() {
        o.seq_lens.push(127);
    }
    if o.seq_lens.iter().any(|&n| n <= 0) || o.runs == 0 {
        return Err(bad("SEQ_LEN and --runs must be positive".into()));
    }
    Ok(Some(o))
}

/// The config of a preset name, and what it is (for the printout).
fn preset_config(name: &str) -> Result<(ModelConfig, String)> {
    match name {
        "small" => Ok((
            ModelConfig::from_json_str(SMALL_CONFIG, "examples/glm45-moe-small.json")?,
            "small GLM-4.5-MoE (examples/glm45-moe-small.json)".to_owned(),
        )),
        file if file.ends_with(".json") => {
            Ok((mlx_examples::preset_or_file(file)?, format!("config {file}")))
        }
        other => {
            let preset =
                Preset::named(if other == "glm45-air" { "glm45-air-3bit" } else { other })?;
            Ok((preset.config()?, format!("{} (shapes of {})", preset.name, preset.checkpoint)))
        }
    }
}

/// `path` for one of several lengths: `NAME-LEN.EXT` (as it is for a single length).
fn per_length(path: &Path, seq_len: i32, several: bool) -> PathBuf {
    if !several {
        return path.to_owned();
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    path.with_file_name(format!("{stem}-{seq_len}{ext}"))
}

/// The prompt: `(7919 i + 13) mod vocab` for `i < seq_len`, shape `[1, seq_len]`.
fn prompt(seq_len: i32, vocab: i32) -> Result<Array> {
    let ids: Vec<i32> =
        (0..i64::from(seq_len)).map(|i| ((7919 * i + 13) % i64::from(vocab)) as i32).collect();
    Array::from_slice(&ids, &[1, seq_len])
}

fn describe(config: &ModelConfig) {
    let keys = [
        "model_type",
        "hidden_size",
        "num_hidden_layers",
        "first_k_dense_replace",
        "intermediate_size",
        "moe_intermediate_size",
        "n_routed_experts",
        "num_experts_per_tok",
        "n_shared_experts",
        "n_group",
        "topk_group",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "partial_rotary_factor",
        "use_qk_norm",
        "attention_bias",
        "norm_topk_prob",
        "routed_scaling_factor",
        "rope_theta",
        "vocab_size",
        "quantization",
    ];
    for key in keys {
        if let Some(v) = config.get(key) {
            println!("  {key}: {v}");
        }
    }
}

/// Checks `logits` against the `.npy` at `path`: the largest difference must be within
/// `tolerance * max(1, max |reference|)`.
fn compare(logits: &Array, path: &Path, tolerance: f32) -> Result<()> {
    let reference = mlx_rs::io::load(path)?.astype(Dtype::Float32)?;
    if reference.shape() != logits.shape() {
        return Err(Error::invalid(
            "single_seqlen",
            format!(
                "{}: shape {:?}, but these logits are {:?}",
                path.display(),
                reference.shape(),
                logits.shape()
            ),
        ));
    }
    let diff = (logits - &reference)?.abs()?.max(.., false)?.item::<f32>()?;
    let scale = reference.abs()?.max(.., false)?.item::<f32>()?.max(1.0);
    let same_argmax = logits
        .argmax(-1, false)?
        .equal(&reference.argmax(-1, false)?)?
        .astype(Dtype::Int32)?
        .sum(.., false)?
        .item::<i32>()?;
    println!(
        "output vs {}: largest difference {diff:e} (largest |logit| {scale}), same argmax at \
         {same_argmax}/{} positions",
        path.display(),
        logits.dim(1)?
    );
    // A NaN difference fails too.
    if diff.is_nan() || diff > tolerance * scale {
        return Err(Error::invalid(
            "single_seqlen",
            format!("the outputs disagree: {diff:e} > {tolerance} * {scale}"),
        ));
    }
    println!("outputs agree (within {tolerance} * {scale})");
    Ok(())
}

fn run(o: &Options) -> Result<()> {
    set_fused(o.fused);
    if o.serve {
        return serve(o);
    }
    let (config, label) = preset_config(&o.preset)?;
    println!("single_seqlen (Rust, mlx-rs) — MLX {}", mlx_rs::version()?);
    println!("device: {:?}", Device::default_device()?);
    println!("preset: {label}, seed {}, fused kernels {}", o.seed, o.fused);
    describe(&config);
    let start = Instant::now();
    let loaded = random_model(&config, o.seed)?;
    let model = loaded.model.as_ref();
    println!(
        "weights drawn in {:.1} s, checksum {:016x}",
        start.elapsed().as_secs_f64(),
        weights_checksum(model)?
    );
    let several = o.seq_lens.len() > 1;
    for &seq_len in &o.seq_lens {
        time_forward(model, seq_len, o, several)?;
    }
    Ok(())
}

/// Checks (or saves) the output at one length, then times the forward pass.
fn time_forward(model: &dyn LanguageModel, seq_len: i32, o: &Options, several: bool) -> Result<()> {
    let tokens = prompt(seq_len, model.vocab_size())?;
    println!("sequence length: {seq_len}");
    let logits = model.forward(&tokens, None)?.astype(Dtype::Float32)?;
    logits.eval()?;
    if let Some(path) = &o.save_output {
        let path = per_length(path, seq_len, several);
        mlx_rs::io::save(&path, &logits)?;
        println!("logits {:?} saved to {}", logits.shape(), path.display());
    }
    if let Some(path) = &o.compare_output {
        compare(&logits, &per_length(path, seq_len, several), o.tolerance)?;
    }

    for _ in 0..o.warmup {
        model.forward(&tokens, None)?.eval()?;
    }
    let mut ms = Vec::with_capacity(o.runs);
    for _ in 0..o.runs {
        let start = Instant::now();
        model.forward(&tokens, None)?.eval()?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let median = if ms.len() % 2 == 1 {
        ms[ms.len() / 2]
    } else {
        (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0
    };
    let (min, max) = (ms[0], ms[ms.len() - 1]);
    println!(
        "forward, {seq_len} tokens: median {median:.2} ms (min {min:.2}, max {max:.2}) over {} runs \
         after {} warm-up; {:.0} tokens/s",
        o.runs,
        o.warmup,
        f64::from(seq_len) / median * 1e3
    );
    Ok(())
}

/// `--serve`: the model drawn once, then one forward pass per iteration at the length each
/// `setup` names (`{"len": L, "save_output"?: FILE, "compare_output"?: FILE}`), for the benches'
/// `compare` runner (protocol: `mlx_examples::serve`).
fn serve(o: &Options) -> Result<()> {
    let (config, label) = preset_config(&o.preset)?;
    eprintln!(
        "single_seqlen --serve: drawing {label}, seed {}, fused kernels {} ...",
        o.seed, o.fused
    );
    let loaded = random_model(&config, o.seed)?;
    let checksum = format!("{:016x}", weights_checksum(loaded.model.as_ref())?);
    let extra = serde_json::json!({"preset": label, "weights_checksum": checksum});
    let info = mlx_examples::serve::info_line("single_seqlen", extra)?;
    let mut served = ServedForward { model: loaded.model.as_ref(), tokens: None, o };
    mlx_examples::serve::serve(&info, &mut served)
}

/// The forward pass `--serve` times.
struct ServedForward<'a> {
    model: &'a dyn LanguageModel,
    tokens: Option<Array>,
    o: &'a Options,
}

impl mlx_examples::serve::Workload for ServedForward<'_> {
    fn setup(
        &mut self,
        spec: &serde_json::Value,
    ) -> std::result::Result<serde_json::Map<String, serde_json::Value>, String> {
        let e = |e: Error| e.to_string();
        self.tokens = None;
        let len = spec.get("len").and_then(serde_json::Value::as_i64).unwrap_or(0);
        let len = i32::try_from(len).ok().filter(|&n| n > 0);
        let len = len.ok_or_else(|| format!("`len` must be a positive length in {spec}"))?;
        let tokens = prompt(len, self.model.vocab_size()).map_err(e)?;
        let logits = self.model.forward(&tokens, None).and_then(|l| l.astype(Dtype::Float32));
        let logits = logits.map_err(e)?;
        logits.eval().map_err(e)?;
        let path = |key: &str| spec.get(key).and_then(serde_json::Value::as_str).map(PathBuf::from);
        if let Some(file) = path("save_output") {
            mlx_rs::io::save(&file, &logits).map_err(e)?;
        }
        if let Some(file) = path("compare_output") {
            compare(&logits, &file, self.o.tolerance).map_err(e)?;
        }
        let sum = logits.sum(.., false).and_then(|s| s.item::<f32>()).map_err(e)?;
        self.tokens = Some(tokens);
        let mut ready = serde_json::Map::new();
        ready.insert("checksum".into(), serde_json::json!(f64::from(sum)));
        ready.insert("shape".into(), serde_json::json!(logits.shape()));
        Ok(ready)
    }

    fn run(&mut self, iters: usize) -> std::result::Result<f64, String> {
        let tokens = self.tokens.as_ref().ok_or("no prompt: setup first")?;
        let start = Instant::now();
        for _ in 0..iters {
            self.model.forward(tokens, None).and_then(|l| l.eval()).map_err(|e| e.to_string())?;
        }
        Ok(start.elapsed().as_secs_f64() * 1e9 / iters as f64)
    }
}

fn main() -> ExitCode {
    match parse_args() {
        Ok(Some(options)) => mlx_examples::exit_status(run(&options)),
        Ok(None) => ExitCode::SUCCESS,
        Err(err) => mlx_examples::exit_status(Err(err)),
    }
}
