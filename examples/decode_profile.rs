//! Where the time of one decode step goes, on a random-weight preset: the Rust half of a
//! comparison whose Python half is `examples/python_decode_profile.py` (mlx-lm 0.32.0's model
//! and cache, the same weights).
//!
//! ```text
//! cargo run --release -p mlx-examples --example decode_profile -- --preset NAME
//!     [--weights-seed S] [--prompt-len N] [--steps N] [--warmup N] [--fused POLICY,...]
//! ```
//!
//! After a prompt of `--prompt-len` tokens (default 64; `(7919 i + 13) mod vocab`), it times
//! `--steps` (default 32) greedy decode steps after `--warmup` (default 8), on the generation
//! stream, two ways:
//!
//! - synchronous: each step's graph is built (forward, last position, log-softmax, argmax:
//!   `build`), queued with `async_eval` (`encode`: MLX encodes every node in the calling thread
//!   and returns without waiting), then waited for (`wait`: the GPU work still running);
//! - pipelined: as `mlx_lm::TokenStream` (and mlx-lm's `generate_step`), step N+1 is queued
//!   before token N is read; the time per token.
//!
//! It also counts the primitives of one step's graph (the nodes of MLX's `export_to_dot`),
//! as the Python half does. Medians, with the min–max spread, in ms. `--fused` takes a list of
//! policies (`auto`, `on`, `off`; default `auto`), profiled in turn on the same weights, each
//! with a fresh cache; the first decode step's log-probabilities of each later policy are
//! compared with the first's.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use mlx_lm::LanguageModel;
use mlx_lm::generate::generation_stream;
use mlx_lm::presets::{random_model, weights_checksum};
use mlx_lm::sample::log_softmax;
use mlx_rs::kernels::{Fused, set_fused};
use mlx_rs::nn::cache::PromptCache;
use mlx_rs::ops::BoundedIndices;
use mlx_rs::transforms::{async_eval, eval};
use mlx_rs::{Array, Device, Dtype, Error, Result, graph, ops};

const USAGE: &str = "usage: decode_profile --preset NAME|FILE.json [--weights-seed S] \
                     [--prompt-len N] [--steps N] [--warmup N] [--fused POLICY,...]";

/// The command line.
struct Options {
    preset: String,
    weights_seed: u64,
    prompt_len: usize,
    steps: usize,
    warmup: usize,
    fused: Vec<Fused>,
}

fn parse_options() -> Result<Options> {
    let bad = |why: String| Error::invalid("decode_profile", format!("{why}\n{USAGE}"));
    let mut options = Options {
        preset: String::new(),
        weights_seed: 0,
        prompt_len: 64,
        steps: 32,
        warmup: 8,
        fused: vec![Fused::Auto],
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(bad("help".into()));
        }
        let value = args.next().ok_or_else(|| bad(format!("{flag} needs a value")))?;
        let count =
            |v: &str| v.parse::<usize>().map_err(|_| bad(format!("{flag}: `{v}` is not a count")));
        match flag.as_str() {
            "--preset" => options.preset = value,
            "--weights-seed" => options.weights_seed = count(&value)? as u64,
            "--prompt-len" => options.prompt_len = count(&value)?,
            "--steps" => options.steps = count(&value)?,
            "--warmup" => options.warmup = count(&value)?,
            "--fused" => {
                options.fused = value.split(',').map(str::parse).collect::<Result<_>>()?;
            }
            other => return Err(bad(format!("unknown option `{other}`"))),
        }
    }
    if options.preset.is_empty() {
        return Err(bad("--preset is required".into()));
    }
    if options.prompt_len == 0 || options.steps == 0 {
        return Err(bad("--prompt-len and --steps must be at least 1".into()));
    }
    Ok(options)
}

/// One decode step's graph: the greedy next id and the log-probabilities (mlx-lm's
/// `generate_step` without logits processors).
fn step(model: &dyn LanguageModel, cache: &mut PromptCache, y: &Array) -> Result<[Array; 2]> {
    let logits = model.forward(&y.reshape([1, -1])?, Some(cache))?;
    let logprobs = log_softmax(&logits.index((.., -1, ..))?)?;
    let next = BoundedIndices::argmax(&logprobs, -1, false)?.into_array();
    Ok([next, logprobs])
}

/// The primitives in the graph of `outputs` (the `rectangle` nodes of the DOT text): how many,
/// and how many of each kind, most frequent first.
fn primitives(outputs: &[Array]) -> Result<(usize, String)> {
    let dot = graph::to_dot(outputs, &[])?;
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for line in dot.lines().filter(|l| l.contains("shape=rectangle")) {
        let label = line.split("label =\"").nth(1).and_then(|l| l.split('"').next());
        *kinds.entry(label.unwrap_or("?")).or_default() += 1;
    }
    let mut kinds: Vec<(&str, usize)> = kinds.into_iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let total = kinds.iter().map(|k| k.1).sum();
    let listed: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    Ok((total, listed.join(", ")))
}

/// `median [min–max]` of `samples` (seconds) in ms.
fn summary(samples: &mut [f64]) -> String {
    samples.sort_by(f64::total_cmp);
    let ms = |s: f64| s * 1e3;
    format!(
        "{:.3} [{:.3}–{:.3}]",
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    )
}

fn run() -> Result<()> {
    let options = parse_options()?;
    let config = mlx_examples::preset_or_file(&options.preset)?;
    eprintln!("drawing the random weights of {} ...", options.preset);
    let loaded = random_model(&config, options.weights_seed)?;
    let model = loaded.model.as_ref();
    println!("weights checksum: {:016x}", weights_checksum(model)?);
    let stream = generation_stream()?;
    let _on_stream = stream.scoped_default()?;
    let mut first: Option<Array> = None;
    for &policy in &options.fused {
        set_fused(policy);
        let logprobs = profile(model, &options, policy)?;
        match &first {
            None => first = Some(logprobs),
            Some(reference) => {
                let diff = ops::max(&ops::abs(&(&logprobs - reference)?)?, .., false)?;
                println!(
                    "first decode step against fused {}: max |logprob difference| {:.3e}",
                    options.fused[0],
                    diff.item::<f32>()?
                );
            }
        }
    }
    Ok(())
}

/// Prefills a fresh cache, then times the steps (see the module docs) under `policy`, printing
/// the report; returns the first decode step's log-probabilities (float32).
fn profile(model: &dyn LanguageModel, options: &Options, policy: Fused) -> Result<Array> {
    let vocab = model.vocab_size() as u64;
    let prompt: Vec<u32> =
        (0..options.prompt_len as u64).map(|i| ((7919 * i + 13) % vocab) as u32).collect();
    let mut cache = model.make_cache()?;
    let [mut y, _] = step(model, &mut cache, &Array::from_slice(&prompt, &[prompt.len() as i32])?)?;
    eval(&[&y])?;

    let (mut build, mut encode, mut wait) = (Vec::new(), Vec::new(), Vec::new());
    let mut nodes = (0, String::new());
    let mut first_logprobs = None;
    for n in 0..options.warmup + options.steps {
        let t0 = Instant::now();
        let out = step(model, &mut cache, &y)?;
        let built = t0.elapsed();
        if n == 0 {
            nodes = primitives(&out)?;
        }
        let t1 = Instant::now();
        async_eval(&out)?;
        let t2 = Instant::now();
        eval(&out)?;
        let t3 = Instant::now();
        if n >= options.warmup {
            build.push(built.as_secs_f64());
            encode.push((t2 - t1).as_secs_f64());
            wait.push((t3 - t2).as_secs_f64());
        }
        let [next, logprobs] = out;
        if n == 0 {
            first_logprobs = Some(logprobs.astype(Dtype::Float32)?);
        }
        y = next;
    }
    let mut total: Vec<f64> = (0..build.len()).map(|i| build[i] + encode[i] + wait[i]).collect();

    let tokens = options.steps;
    let mut queued = step(model, &mut cache, &y)?;
    async_eval(&queued)?;
    let start = Instant::now();
    for _ in 0..tokens {
        let next = step(model, &mut cache, &queued[0])?;
        async_eval(&next)?;
        queued[0].item::<u32>()?;
        queued = next;
    }
    let pipelined = start.elapsed().as_secs_f64() / tokens as f64;
    eval(&queued)?;

    println!(
        "decode profile: {} on {:?}, prompt {} tokens, {} steps after {} warm-up, fused {policy}",
        options.preset,
        Device::default_device()?.device_type(),
        options.prompt_len,
        options.steps,
        options.warmup,
    );
    println!("graph: {} primitives per step: {}", nodes.0, nodes.1);
    println!("build ms: {}", summary(&mut build));
    println!("encode ms: {}", summary(&mut encode));
    println!("wait ms: {}", summary(&mut wait));
    println!("synchronous step ms: {}", summary(&mut total));
    println!("pipelined ms per token: {:.3} ({:.1} tok/s)", pipelined * 1e3, 1.0 / pipelined);
    first_logprobs.ok_or_else(|| Error::invalid("decode_profile", "no decode step ran"))
}

fn main() -> ExitCode {
    mlx_examples::exit_status(run())
}
