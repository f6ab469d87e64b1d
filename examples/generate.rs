//! Text generation with an mlx-community model directory or a random-weight preset, reporting
//! what `mlx_lm.generate --verbose` reports.
//!
//! ```text
//! cargo run --release --example generate -- --model DIR --prompt "Why is the sky blue?"
//! cargo run --release --example generate -- --preset mistral-7b-4bit --prompt-tokens 1,2,3 --max-tokens 100
//! ```
//!
//! Options: `--model DIR` or `--preset NAME` (`--weights-seed S` for the preset's weights,
//! `--save-preset DIR` to write them as an mlx-community directory), `--prompt TEXT` (the chat
//! template is applied when the tokenizer has one; `--no-chat-template` to skip it) or
//! `--prompt-tokens 1,2,3`, `--max-tokens N` (100), `--temp T` (0 = greedy), `--top-p P`,
//! `--top-k K`, `--min-p M`, `--seed S`, `--prefill-step-size N` (2048), `--draft-model DIR`
//! with `--num-draft-tokens N` (2), `--stop TEXT` (repeatable), `--save-logits FILE.npy` (the
//! float32 logits of every prompt position, `[1, T, vocab]`; with `--max-tokens 0` only that),
//! `--fused auto|on|off` (where the crate's own kernels replace MLX's ops, see `mlx_rs::kernels`;
//! default `auto`), `--backend ring|nccl|mpi|any` and `--pipeline` (see below).
//!
//! # Several processes (tensor parallelism)
//!
//! Launched as several processes of an MLX distributed group, the program splits the model
//! across them (`mlx_lm::load_model_sharded`: attention heads, MLP and expert features; each
//! process reads only its part of the weights) and generates together; rank 0 prints. A process
//! joins a group when `--backend` is given or `MLX_RANK` is set; it then needs the backend's
//! environment, which MLX's own launcher `mlx.launch` (installed with the Python `mlx`
//! package) sets for any program:
//!
//! ```text
//! # ring backend (TCP), two processes on this machine (CPU):
//! mlx.launch --backend ring --hosts 127.0.0.1 -n 2 -- \
//!   target/release/examples/generate --model DIR --prompt-tokens 1,2,3 --max-tokens 100
//! # or by hand: a hostfile with one "ip:port" list per rank, and MLX_RANK per process
//! echo '[["127.0.0.1:5000"], ["127.0.0.1:5001"]]' > hosts.json
//! for r in 0 1; do MLX_RANK=$r MLX_HOSTFILE=hosts.json target/release/examples/generate \
//!   --backend ring --model DIR --prompt-tokens 1,2,3 & done; wait
//!
//! # NCCL: one process per GPU, NVLink multicast off
//! for r in 0 1; do NCCL_NVLS_ENABLE=0 CUDA_VISIBLE_DEVICES=$r MLX_RANK=$r MLX_WORLD_SIZE=2 \
//!   NCCL_HOST_IP=127.0.0.1 NCCL_PORT=12355 target/release/examples/generate --backend nccl \
//!   --preset mixtral-8x7b-4bit --prompt-tokens 1,2,3 --max-tokens 100 & done; wait
//! ```
//!
//! `--pipeline` splits the layers into consecutive stages instead (pipeline parallelism,
//! `mlx_lm::load_model_pipelined`); it needs send/recv, so the ring or MPI backend: MLX
//! 0.32.2's NCCL backend has none, and the program says so.
//!
//! (`mlx.launch --backend nccl --hosts 127.0.0.1 -n 2 --env NCCL_NVLS_ENABLE=0 -- ...` sets
//! the same variables; `-n 2` repeats the host, which also gives rank `r` GPU `r`.) With `--preset`, every process draws the whole model from the
//! seed and then keeps its part; `--save-preset DIR` once and `--model DIR` after avoid that.
//! `--serve` (answer the benches' `compare` runner; no prompt needed, see `serve` below).
//! `--preset` also takes a config file `FILE.json` (e.g. `examples/presets-small/*.json`).

use std::io::Write;
use std::path::PathBuf;

use mlx_lm::generate::{GenerateOptions, Generation};
use mlx_lm::presets::{random_model, save_model_dir, weights_checksum};
use mlx_lm::sample::SamplerSettings;
use mlx_lm::tokenizer::{ChatTemplateOptions, Tokenizer};
use mlx_lm::{LoadedModel, load_model, load_model_pipelined, load_model_sharded};
use mlx_rs::distributed::{self, Backend, Group};
use mlx_rs::kernels::{Fused, set_fused};
use mlx_rs::{Array, Dtype, memory};

#[derive(Debug, Default)]
struct Args {
    model: Option<PathBuf>,
    preset: Option<String>,
    weights_seed: u64,
    save_preset: Option<PathBuf>,
    prompt: Option<String>,
    prompt_tokens: Option<Vec<u32>>,
    no_chat_template: bool,
    max_tokens: usize,
    sampler: SamplerSettings,
    prefill_step_size: usize,
    draft_model: Option<PathBuf>,
    num_draft_tokens: usize,
    stops: Vec<String>,
    save_logits: Option<PathBuf>,
    fused: Fused,
    backend: Option<Backend>,
    pipeline: bool,
    serve: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        max_tokens: 100,
        prefill_step_size: 2048,
        num_draft_tokens: 2,
        ..Default::default()
    };
    args.sampler.seed = Some(0);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: cannot parse `{v}`"))
        }
        match flag.as_str() {
            "--model" => args.model = Some(PathBuf::from(value()?)),
            "--preset" => args.preset = Some(value()?),
            "--weights-seed" => args.weights_seed = num(&flag, value()?)?,
            "--save-preset" => args.save_preset = Some(PathBuf::from(value()?)),
            "--prompt" => args.prompt = Some(value()?),
            "--prompt-tokens" => {
                let ids = value()?
                    .split(',')
                    .map(|t| num::<u32>(&flag, t.trim().to_owned()))
                    .collect::<Result<Vec<_>, _>>()?;
                args.prompt_tokens = Some(ids);
            }
            "--no-chat-template" => args.no_chat_template = true,
            "--max-tokens" => args.max_tokens = num(&flag, value()?)?,
            "--temp" => args.sampler.temp = num(&flag, value()?)?,
            "--top-p" => args.sampler.top_p = num(&flag, value()?)?,
            "--top-k" => args.sampler.top_k = num(&flag, value()?)?,
            "--min-p" => args.sampler.min_p = num(&flag, value()?)?,
            "--seed" => args.sampler.seed = Some(num(&flag, value()?)?),
            "--prefill-step-size" => args.prefill_step_size = num(&flag, value()?)?,
            "--draft-model" => args.draft_model = Some(PathBuf::from(value()?)),
            "--num-draft-tokens" => args.num_draft_tokens = num(&flag, value()?)?,
            "--stop" => args.stops.push(value()?),
            "--save-logits" => args.save_logits = Some(PathBuf::from(value()?)),
            "--fused" => args.fused = value()?.parse().map_err(|e: mlx_rs::Error| e.to_string())?,
            "--pipeline" => args.pipeline = true,
            "--backend" => {
                args.backend = Some(match value()?.as_str() {
                    "ring" => Backend::Ring,
                    "nccl" => Backend::Nccl,
                    "mpi" => Backend::Mpi,
                    "any" => Backend::Any,
                    other => return Err(format!("--backend: unknown backend `{other}`")),
                })
            }
            "--serve" => args.serve = true,
            "--help" | "-h" => {
                return Err("usage: generate (--model DIR | --preset NAME) (--prompt TEXT | --prompt-tokens IDS) [options]; see the doc comment of examples/generate.rs".into())
            }
            other => return Err(format!("unknown option `{other}` (try --help)")),
        }
    }
    if args.model.is_some() == args.preset.is_some() {
        return Err("give exactly one of --model DIR and --preset NAME".into());
    }
    if !args.serve && args.prompt.is_some() == args.prompt_tokens.is_some() {
        return Err("give exactly one of --prompt TEXT and --prompt-tokens IDS".into());
    }
    Ok(args)
}

/// The distributed group this process belongs to, when it was launched as one of several.
fn join_group(args: &Args) -> Result<Option<Group>, String> {
    let backend = match (args.backend, std::env::var_os("MLX_RANK")) {
        (Some(b), _) => b,
        (None, Some(_)) => Backend::Any,
        (None, None) => return Ok(None),
    };
    let group = distributed::init(true, backend).map_err(|e| e.to_string())?;
    Ok((group.size() > 1).then_some(group))
}

fn load(
    args: &Args,
    group: Option<&Group>,
    verbose: bool,
) -> Result<(LoadedModel, Option<Tokenizer>), String> {
    if let Some(dir) = &args.model {
        let loaded = match group {
            Some(g) if args.pipeline => load_model_pipelined(dir, g),
            Some(g) => load_model_sharded(dir, g),
            None => load_model(dir),
        }
        .map_err(|e| e.to_string())?;
        let tokenizer = match dir.join("tokenizer.json").exists() {
            true => Some(Tokenizer::from_dir(dir).map_err(|e| e.to_string())?),
            false => None,
        };
        return Ok((loaded, tokenizer));
    }
    let name = args.preset.as_deref().unwrap_or_default();
    let config = mlx_examples::preset_or_file(name).map_err(|e| e.to_string())?;
    if verbose {
        eprintln!("drawing the random weights of {name} ...");
    }
    let mut loaded = random_model(&config, args.weights_seed).map_err(|e| e.to_string())?;
    let checksum = weights_checksum(loaded.model.as_ref()).map_err(|e| e.to_string())?;
    if verbose {
        println!("weights checksum: {checksum:016x}");
    }
    if let Some(dir) = &args.save_preset
        && verbose
    {
        save_model_dir(loaded.model.as_ref(), &config, dir).map_err(|e| e.to_string())?;
        eprintln!("saved {name} to {}", dir.display());
    }
    if let Some(g) = group {
        // Every rank drew the same weights; each keeps its part and lets the rest go.
        match args.pipeline {
            true => loaded.model.pipeline(g),
            false => loaded.model.shard(g),
        }
        .map_err(|e| e.to_string())?;
        for (_, p) in loaded.model.named_parameters() {
            p.eval().map_err(|e| e.to_string())?;
        }
        memory::clear_cache().map_err(|e| e.to_string())?;
    }
    memory::reset_peak_memory().map_err(|e| e.to_string())?;
    Ok((loaded, None))
}

fn prompt_ids(args: &Args, tokenizer: Option<&Tokenizer>) -> Result<Vec<u32>, String> {
    if let Some(ids) = &args.prompt_tokens {
        return Ok(ids.clone());
    }
    let text = args.prompt.as_deref().unwrap_or_default();
    let tokenizer = tokenizer
        .ok_or("--prompt needs a model directory with a tokenizer.json; use --prompt-tokens")?;
    let ids = if tokenizer.has_chat_template() && !args.no_chat_template {
        let messages = serde_json::json!([{"role": "user", "content": text}]);
        let options = ChatTemplateOptions { add_generation_prompt: true, ..Default::default() };
        tokenizer.encode_chat(&messages, &options)
    } else {
        tokenizer.encode_prompt(text)
    };
    ids.map_err(|e| e.to_string())
}

fn save_logits(
    loaded: &LoadedModel,
    prompt: &[u32],
    path: &PathBuf,
    verbose: bool,
) -> mlx_rs::Result<()> {
    let tokens = Array::from_slice(prompt, &[1, prompt.len() as i32])?;
    let logits = loaded.model.forward(&tokens, None)?.astype(Dtype::Float32)?;
    logits.eval()?;
    if !verbose {
        return Ok(());
    }
    mlx_rs::io::save(path, &logits)?;
    eprintln!("saved logits {:?} to {}", logits.shape(), path.display());
    Ok(())
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    set_fused(args.fused);
    if args.serve {
        return serve(&args);
    }
    let group = join_group(&args)?;
    // Only rank 0 of a distributed group prints.
    let verbose = group.as_ref().is_none_or(|g| g.rank() == 0);
    if let Some(g) = &group
        && verbose
    {
        let how = if args.pipeline { "pipeline" } else { "tensor" };
        eprintln!("{how} parallel over {} processes", g.size());
    }
    let (loaded, tokenizer) = load(&args, group.as_ref(), verbose)?;
    let prompt = prompt_ids(&args, tokenizer.as_ref())?;
    if let Some(path) = &args.save_logits {
        save_logits(&loaded, &prompt, path, verbose).map_err(|e| e.to_string())?;
    }
    if args.max_tokens == 0 {
        return match args.save_logits {
            Some(_) => Ok(()),
            None => Err("--max-tokens 0 only makes sense with --save-logits".into()),
        };
    }
    let draft = match &args.draft_model {
        Some(dir) => Some(load_model(dir).map_err(|e| format!("draft model: {e}"))?),
        None => None,
    };
    let options = GenerateOptions {
        max_tokens: Some(args.max_tokens),
        prefill_step_size: args.prefill_step_size,
        sampler: args.sampler.clone(),
        num_draft_tokens: args.num_draft_tokens,
        ..Default::default()
    };
    let eos = &loaded.config.eos_token_ids;
    let generation = Generation::new(
        loaded.model.as_ref(),
        draft.as_ref().map(|d| d.model.as_ref()),
        tokenizer.as_ref(),
        &prompt,
        eos,
        options,
    )
    .map_err(|e| e.to_string())?
    .with_stop_strings(&args.stops);
    if !verbose {
        // The other ranks compute the same tokens in step with rank 0, silently.
        for response in generation {
            response.map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    println!("==========");
    let mut out = std::io::stdout();
    let (mut last, mut ids) = (None, Vec::new());
    for response in generation {
        let response = response.map_err(|e| e.to_string())?;
        ids.push(response.token.to_string());
        if tokenizer.is_some() {
            print!("{}", response.text);
            let _ = out.flush();
        }
        last = Some(response);
    }
    println!();
    println!("==========");
    println!("tokens: {}", ids.join(","));
    if let Some(last) = last {
        println!("{}", last.report());
    }
    Ok(())
}

/// `--serve`: the model loaded once, then generations for the benches' `compare` runner
/// (protocol: `mlx_examples::serve`). A setup (`{"prompt": [ids], "check_tokens": N,
/// "max_tokens": M, "metric": "decode"|"prefill"}`) generates N tokens greedily with MLX's ops
/// alone (`Fused::Off`, the ops mlx-lm runs) and answers them (`tokens`); an iteration is one generation of M tokens, timed as the report times it,
/// in nanoseconds per generated token (decode: 1 / generation tok/s) or per prompt token
/// (prefill: 1 / prompt tok/s), under `--fused`. EOS ids do not stop these generations.
fn serve(args: &Args) -> Result<(), String> {
    let (loaded, _) = load(args, None, true)?;
    let checksum = weights_checksum(loaded.model.as_ref()).map_err(|e| e.to_string())?;
    let extra = serde_json::json!({
        "preset": args.preset.clone().or_else(|| args.model.as_ref().map(|m| m.display().to_string())),
        "weights_checksum": format!("{checksum:016x}"),
    });
    let info = mlx_examples::serve::info_line("generate", extra).map_err(|e| e.to_string())?;
    let mut served = ServedGeneration {
        args,
        model: &loaded,
        prompt: Vec::new(),
        max_tokens: 1,
        prefill: false,
    };
    mlx_examples::serve::serve(&info, &mut served).map_err(|e| e.to_string())
}

/// The generations `--serve` times.
struct ServedGeneration<'a> {
    args: &'a Args,
    model: &'a LoadedModel,
    prompt: Vec<u32>,
    max_tokens: usize,
    prefill: bool,
}

impl ServedGeneration<'_> {
    /// One generation of `max_tokens` tokens: the ids and the last response's
    /// `(prompt_tps, generation_tps)`.
    fn generate(&self, max_tokens: usize) -> Result<(Vec<u32>, f64, f64), String> {
        let options = GenerateOptions {
            max_tokens: Some(max_tokens),
            prefill_step_size: self.args.prefill_step_size,
            sampler: self.args.sampler.clone(),
            ..Default::default()
        };
        let model = self.model.model.as_ref();
        let generation = Generation::new(model, None, None, &self.prompt, &[], options)
            .map_err(|e| e.to_string())?;
        let (mut ids, mut rates) = (Vec::with_capacity(max_tokens), (0.0, 0.0));
        for response in generation {
            let response = response.map_err(|e| e.to_string())?;
            ids.push(response.token);
            rates = (response.prompt_tps, response.generation_tps);
        }
        Ok((ids, rates.0, rates.1))
    }
}

impl mlx_examples::serve::Workload for ServedGeneration<'_> {
    fn setup(
        &mut self,
        spec: &serde_json::Value,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let count = |key: &str| {
            spec.get(key)
                .and_then(serde_json::Value::as_u64)
                .filter(|&n| n >= 1)
                .map(|n| n as usize)
        };
        let ids: Option<Vec<u32>> = spec.get("prompt").and_then(|p| p.as_array()).and_then(|p| {
            p.iter().map(|t| t.as_u64().and_then(|t| u32::try_from(t).ok())).collect()
        });
        self.prompt =
            ids.filter(|p| !p.is_empty()).ok_or_else(|| format!("no `prompt` ids in {spec}"))?;
        let check = count("check_tokens").ok_or_else(|| format!("no `check_tokens` in {spec}"))?;
        self.max_tokens =
            count("max_tokens").ok_or_else(|| format!("no `max_tokens` in {spec}"))?;
        self.prefill = match spec.get("metric").and_then(serde_json::Value::as_str) {
            Some("prefill") => true,
            Some("decode") => false,
            other => return Err(format!("`metric` must be decode or prefill, got {other:?}")),
        };
        // The check runs MLX's ops alone, as mlx-lm does, so that its tokens can equal the
        // Python side's; the timed runs use `--fused` (whose kernels round differently).
        set_fused(Fused::Off);
        let checked = self.generate(check);
        set_fused(self.args.fused);
        let (tokens, prompt_tps, generation_tps) = checked?;
        let mut ready = serde_json::Map::new();
        let sum: u64 = tokens.iter().map(|&t| u64::from(t)).sum();
        ready.insert("checksum".into(), serde_json::json!(sum as f64));
        ready.insert("tokens".into(), serde_json::json!(tokens));
        ready.insert("prompt_tps".into(), serde_json::json!(prompt_tps));
        ready.insert("generation_tps".into(), serde_json::json!(generation_tps));
        Ok(ready)
    }

    fn run(&mut self, iters: usize) -> Result<f64, String> {
        let mut total = 0.0;
        for _ in 0..iters {
            let (_, prompt_tps, generation_tps) = self.generate(self.max_tokens)?;
            total += 1e9 / if self.prefill { prompt_tps } else { generation_tps };
        }
        Ok(total / iters as f64)
    }
}

fn main() {
    if let Err(e) = run() {
        match std::env::var("MLX_RANK") {
            Ok(rank) => eprintln!("error (rank {rank}): {e}"),
            Err(_) => eprintln!("error: {e}"),
        }
        std::process::exit(1);
    }
}
