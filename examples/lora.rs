//! LoRA fine-tuning as `mlx_lm.lora --train` does it, then generation with the adapter.
//!
//! ```text
//! cargo run --example lora                       # a small random llama, examples/data/lora
//! cargo run --example lora -- --model DIR --data DIR --iters 200 --learning-rate 1e-5
//! cargo run --example lora -- --preset mistral-7b-4bit --batch-size 4 --max-seq-length 512
//! ```
//!
//! The default model is a small random llama-style model (4 blocks of width 128) over bytes:
//! token `b` is byte `b`, 256 is BOS and 257 is EOS, so no tokenizer is needed and the data is
//! read as text and turned into bytes (the tokenizer-free path of `mlx_lm::tuner`). A
//! `--model DIR` with a `tokenizer.json` reads the data through its tokenizer instead, in any of
//! mlx-lm's formats; a preset (random weights, no tokenizer) trains on byte ids too.
//!
//! Options: `--data DIR` (`examples/data/lora`: `train.jsonl`, `valid.jsonl`), `--fine-tune-type
//! lora|dora|full`, `--num-layers N` (16), `--rank R` (8), `--scale S` (20), `--dropout P` (0),
//! `--optimizer NAME` (adamw), `--learning-rate LR` (3e-4), `--warmup N` (10, then cosine
//! decay), `--iters N` (100), `--batch-size N` (4), `--max-seq-length N` (2048),
//! `--steps-per-report N` (10), `--steps-per-eval N` (50), `--save-every N` (100),
//! `--grad-accumulation-steps N` (1), `--grad-checkpoint`, `--mask-prompt`, `--seed S` (0), `--no-compile`,
//! `--adapter-path DIR` (`adapters`), `--resume-adapter-file FILE`, `--fuse DIR` (also write
//! the fused model there and generate with it), `--prompt TEXT` and `--max-tokens N` (40) for
//! the generation after training; `--serve` answers the benches' `compare` runner instead
//! (training steps on a fixed batch, see `serve` below).

use std::io::Write;
use std::path::{Path, PathBuf};

use mlx_lm::generate::{GenerateOptions, Generation};
use mlx_lm::presets::{Preset, random_model};
use mlx_lm::tokenizer::Tokenizer;
use mlx_lm::tuner::{
    self, ConsoleReporter, Dataset, DatasetOptions, FineTuneConfig, FineTuneType, LrSchedule,
    Trainer, TrainingArgs,
};
use mlx_lm::{LanguageModel, ModelConfig, load_model};
use mlx_rs::nn::Module;
use mlx_rs::{Dtype, random};
use serde_json::Value;

const BOS: u32 = 256;
const EOS: u32 = 257;

/// The default model: llama-style, 4 blocks, over 258 byte-level tokens (padded to 264)
/// (`examples/lora-llama-small.json`, which `python_lora.py --preset small` reads too).
const SMALL_LLAMA: &str = include_str!("lora-llama-small.json");

#[derive(Debug)]
struct Args {
    model: Option<PathBuf>,
    preset: Option<String>,
    data: PathBuf,
    config: FineTuneConfig,
    optimizer: String,
    learning_rate: f64,
    warmup: u64,
    training: TrainingArgs,
    mask_prompt: bool,
    adapter_path: PathBuf,
    resume: Option<PathBuf>,
    fuse: Option<PathBuf>,
    prompt: String,
    max_tokens: usize,
    serve: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: None,
        preset: None,
        data: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/lora"),
        config: FineTuneConfig::default(),
        optimizer: "adamw".into(),
        learning_rate: 3e-4,
        warmup: 10,
        training: TrainingArgs { steps_per_eval: 50, ..Default::default() },
        mask_prompt: false,
        adapter_path: PathBuf::from("adapters"),
        resume: None,
        fuse: None,
        prompt: "3 + 4 =".into(),
        max_tokens: 40,
        serve: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: cannot parse `{v}`"))
        }
        let t = &mut args.training;
        let lora = &mut args.config.lora_parameters;
        match flag.as_str() {
            "--model" => args.model = Some(PathBuf::from(value()?)),
            "--preset" => args.preset = Some(value()?),
            "--data" => args.data = PathBuf::from(value()?),
            "--fine-tune-type" => {
                args.config.fine_tune_type =
                    FineTuneType::from_name(&value()?).map_err(|e| e.to_string())?
            }
            "--num-layers" => args.config.num_layers = num(&flag, value()?)?,
            "--rank" => lora.rank = num(&flag, value()?)?,
            "--scale" => lora.scale = num(&flag, value()?)?,
            "--dropout" => lora.dropout = num(&flag, value()?)?,
            "--optimizer" => args.optimizer = value()?,
            "--learning-rate" => args.learning_rate = num(&flag, value()?)?,
            "--warmup" => args.warmup = num(&flag, value()?)?,
            "--iters" => t.iters = num(&flag, value()?)?,
            "--batch-size" => t.batch_size = num(&flag, value()?)?,
            "--max-seq-length" => t.max_seq_length = num(&flag, value()?)?,
            "--steps-per-report" => t.steps_per_report = num(&flag, value()?)?,
            "--steps-per-eval" => t.steps_per_eval = num(&flag, value()?)?,
            "--save-every" => t.steps_per_save = num(&flag, value()?)?,
            "--grad-accumulation-steps" => t.grad_accumulation_steps = num(&flag, value()?)?,
            "--seed" => t.seed = num(&flag, value()?)?,
            "--no-compile" => t.compile = false,
            "--grad-checkpoint" => t.grad_checkpoint = true,
            "--mask-prompt" => args.mask_prompt = true,
            "--adapter-path" => args.adapter_path = PathBuf::from(value()?),
            "--resume-adapter-file" => args.resume = Some(PathBuf::from(value()?)),
            "--fuse" => args.fuse = Some(PathBuf::from(value()?)),
            "--prompt" => args.prompt = value()?,
            "--max-tokens" => args.max_tokens = num(&flag, value()?)?,
            "--serve" => args.serve = true,
            "--help" | "-h" => {
                return Err("usage: lora [--model DIR | --preset NAME] [options]; see the doc \
                            comment of examples/lora.rs"
                    .into());
            }
            other => return Err(format!("unknown option `{other}` (try --help)")),
        }
    }
    if args.model.is_some() && args.preset.is_some() {
        return Err("give at most one of --model DIR and --preset NAME".into());
    }
    // A compiled step would reuse one dropout mask.
    if args.config.lora_parameters.dropout > 0.0 {
        args.training.compile = false;
    }
    args.training.adapter_file = args.adapter_path.join("adapters.safetensors");
    Ok(args)
}

/// A model, its config and its tokenizer (if any).
type Loaded = (Box<dyn LanguageModel>, ModelConfig, Option<Tokenizer>);

/// The model of `--model`, `--preset` or the small default.
fn load(args: &Args) -> Result<Loaded, String> {
    let e = |e: mlx_rs::Error| e.to_string();
    if let Some(dir) = &args.model {
        let loaded = load_model(dir).map_err(e)?;
        let tokenizer = match dir.join("tokenizer.json").exists() {
            true => Some(Tokenizer::from_dir(dir).map_err(e)?),
            false => None,
        };
        return Ok((loaded.model, loaded.config, tokenizer));
    }
    let config = match &args.preset {
        Some(name) => Preset::named(name).and_then(|p| p.config()).map_err(e)?,
        None => ModelConfig::from_json_str(SMALL_LLAMA, "the small llama").map_err(e)?,
    };
    let mut loaded = random_model(&config, args.training.seed).map_err(e)?;
    if args.preset.is_none() {
        // Presets draw bf16 weights; the small model trains in float32.
        loaded.model.set_dtype(Dtype::Float32).map_err(e)?;
    }
    Ok((loaded.model, config, None))
}

/// Byte ids of `text` after BOS, then EOS (the small model's "tokenizer").
fn byte_ids(text: &str) -> Vec<u32> {
    std::iter::once(BOS).chain(text.bytes().map(u32::from)).chain(std::iter::once(EOS)).collect()
}

/// The `text` records of `path` as byte ids (an error naming the line otherwise).
fn byte_dataset(path: &Path) -> Result<Dataset, String> {
    byte_records(path).map(Dataset::from_tokens)
}

/// The `text` records of `path` as byte ids.
fn byte_records(path: &Path) -> Result<Vec<Vec<u32>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut examples = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("{}:{}: invalid JSON: {e}", path.display(), i + 1))?;
        let t = v.get("text").and_then(Value::as_str).ok_or_else(|| {
            format!(
                "{}:{}: without a tokenizer, records need a `text` string",
                path.display(),
                i + 1
            )
        })?;
        examples.push(byte_ids(t));
    }
    Ok(examples)
}

fn datasets(args: &Args, tokenizer: Option<&Tokenizer>) -> Result<(Dataset, Dataset), String> {
    match tokenizer {
        Some(tok) => {
            let options = DatasetOptions { mask_prompt: args.mask_prompt, ..Default::default() };
            let d = tuner::load_local_dataset(&args.data, Some(tok), &options)
                .map_err(|e| e.to_string())?;
            Ok((d.train, d.valid))
        }
        None => {
            let valid = args.data.join("valid.jsonl");
            let valid = if valid.exists() { byte_dataset(&valid)? } else { Dataset::default() };
            Ok((byte_dataset(&args.data.join("train.jsonl"))?, valid))
        }
    }
}

fn generate(
    model: &dyn LanguageModel,
    tokenizer: Option<&Tokenizer>,
    prompt: &str,
    eos: &[u32],
    max_tokens: usize,
) -> Result<(), String> {
    let e = |e: mlx_rs::Error| e.to_string();
    let ids = match tokenizer {
        Some(t) => t.encode_prompt(prompt).map_err(e)?,
        None => byte_ids(prompt)[..prompt.len() + 1].to_vec(),
    };
    let options = GenerateOptions { max_tokens: Some(max_tokens), ..Default::default() };
    let mut eos = eos.to_vec();
    if tokenizer.is_none() {
        eos.push(EOS);
    }
    let generation = Generation::new(model, None, tokenizer, &ids, &eos, options).map_err(e)?;
    println!("==========");
    print!("{prompt}");
    let (mut bytes, mut last) = (Vec::new(), None);
    for response in generation {
        let response = response.map_err(e)?;
        match tokenizer {
            Some(_) => print!("{}", response.text),
            None if response.token < 256 => bytes.push(response.token as u8),
            None => {}
        }
        let _ = std::io::stdout().flush();
        last = Some(response);
    }
    println!("{}", String::from_utf8_lossy(&bytes));
    println!("==========");
    if let Some(last) = last {
        println!("{}", last.report());
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let e = |e: mlx_rs::Error| e.to_string();
    let mut args = parse_args()?;
    random::seed(args.training.seed).map_err(e)?;
    if args.serve {
        return serve(&mut args);
    }
    println!("Loading pretrained model");
    let (mut model, model_config, tokenizer) = load(&args)?;
    println!("Loading datasets");
    let (train, valid) = datasets(&args, tokenizer.as_ref())?;
    if train.is_empty() {
        return Err("the training set is missing or empty".into());
    }
    println!("Training");
    if args.config.num_layers as usize > model.num_layers() {
        args.config.num_layers = model.num_layers() as i32;
    }
    tuner::prepare_model(model.as_mut(), &args.config).map_err(e)?;
    if let Some(file) = &args.resume {
        println!("Loading fine-tuned weights from {}", file.display());
        let full = args.config.fine_tune_type == FineTuneType::Full;
        tuner::load_adapter_weights(model.as_mut(), file, full).map_err(e)?;
    }
    let total = model.num_parameters() as f64 / 1e6;
    let trainable: usize = model.trainable_parameters().leaves().iter().map(|a| a.size()).sum();
    let trainable = trainable as f64 / 1e6;
    println!(
        "Trainable parameters: {:.3}% ({trainable:.3}M/{total:.3}M)",
        trainable * 100.0 / total
    );
    let t = &args.training;
    let extra = [
        (
            "model",
            Value::from(
                args.model.as_ref().map_or("small-llama".into(), |d| d.display().to_string()),
            ),
        ),
        ("data", Value::from(args.data.display().to_string())),
        ("batch_size", Value::from(t.batch_size)),
        ("iters", Value::from(t.iters)),
        ("learning_rate", Value::from(args.learning_rate)),
        ("optimizer", Value::from(args.optimizer.clone())),
        ("max_seq_length", Value::from(t.max_seq_length)),
        ("grad_accumulation_steps", Value::from(t.grad_accumulation_steps)),
        ("mask_prompt", Value::from(args.mask_prompt)),
        ("seed", Value::from(t.seed)),
        ("adapter_path", Value::from(args.adapter_path.display().to_string())),
    ];
    args.config.extra = extra.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    args.config.save(&args.adapter_path).map_err(e)?;

    let optimizer = make_optimizer(&args)?;
    let mut trainer = Trainer::new(model, optimizer, args.training.clone()).map_err(e)?;
    let valid = (!valid.is_empty()).then_some(&valid);
    trainer.train(&train, valid, &mut ConsoleReporter::default()).map_err(e)?;
    let (mut model, _) = trainer.into_parts().map_err(e)?;

    model.train(false);
    generate(
        model.as_ref(),
        tokenizer.as_ref(),
        &args.prompt,
        &model_config.eos_token_ids,
        args.max_tokens,
    )?;

    if let Some(dir) = &args.fuse {
        tuner::fuse_model(model.as_mut(), false).map_err(e)?;
        tuner::save_fused_model(model.as_ref(), &model_config, dir, false, args.model.as_deref())
            .map_err(e)?;
        println!("Fused model saved to {}; generating with it:", dir.display());
        let fused = load_model(dir).map_err(e)?;
        let eos = fused.config.eos_token_ids.clone();
        generate(fused.model.as_ref(), tokenizer.as_ref(), &args.prompt, &eos, args.max_tokens)?;
    }
    Ok(())
}

/// The optimizer of `--optimizer` with `--learning-rate`: `--warmup` steps, then cosine decay
/// over the rest of `--iters` (as `mlx_lm.lora`).
fn make_optimizer(args: &Args) -> Result<Box<dyn mlx_rs::optimizers::Optimizer>, String> {
    let e = |e: mlx_rs::Error| e.to_string();
    let decay = LrSchedule {
        name: "cosine_decay".into(),
        arguments: vec![
            args.learning_rate,
            args.training.iters.saturating_sub(args.warmup as usize).max(1) as f64,
        ],
        warmup: args.warmup,
        warmup_init: 0.0,
    };
    let schedule = tuner::build_schedule(&decay).map_err(e)?;
    tuner::build_optimizer(&args.optimizer, schedule.into()).map_err(e)
}

/// `--serve`: the model loaded and given its adapters once, then training steps for the
/// benches' `compare` runner (protocol: `mlx_examples::serve`). A setup (`{"batch_size": B,
/// "max_seq_length": S}`) makes the batch of the first B records of `--data`'s
/// `train.jsonl` (byte ids, mlx-lm's padding) and answers its loss before any update
/// (`checksum`; the adapters start at zero, so it is the base model's loss); an iteration is
/// one step of the trainer (`Trainer::step`: forward, backward, update, evaluation) on it.
fn serve(args: &mut Args) -> Result<(), String> {
    let e = |e: mlx_rs::Error| e.to_string();
    let (mut model, _, _) = load(args)?;
    let checksum = mlx_lm::presets::weights_checksum(model.as_ref()).map_err(e)?;
    let records = byte_records(&args.data.join("train.jsonl"))?;
    if args.config.num_layers as usize > model.num_layers() {
        args.config.num_layers = model.num_layers() as i32;
    }
    tuner::prepare_model(model.as_mut(), &args.config).map_err(e)?;
    let trainable: usize = model.trainable_parameters().leaves().iter().map(|a| a.size()).sum();
    let optimizer = make_optimizer(args)?;
    let trainer = Trainer::new(model, optimizer, args.training.clone()).map_err(e)?;
    trainer
        .with_model(|m| {
            m.train(true);
            Ok(())
        })
        .map_err(e)?;
    let extra = serde_json::json!({
        "preset": args.preset.clone().unwrap_or_else(|| "small".into()),
        "weights_checksum": format!("{checksum:016x}"),
        "trainable_parameters": trainable,
    });
    let info = mlx_examples::serve::info_line("lora", extra).map_err(e)?;
    let mut served = ServedTraining { trainer, records, batch: None };
    mlx_examples::serve::serve(&info, &mut served).map_err(e)
}

/// The training steps `--serve` times.
struct ServedTraining {
    trainer: Trainer,
    records: Vec<Vec<u32>>,
    batch: Option<tuner::Batch>,
}

impl mlx_examples::serve::Workload for ServedTraining {
    fn setup(&mut self, spec: &Value) -> Result<serde_json::Map<String, Value>, String> {
        let e = |e: mlx_rs::Error| e.to_string();
        self.batch = None;
        let count = |key: &str| {
            spec.get(key)
                .and_then(Value::as_u64)
                .filter(|&n| n >= 1)
                .map(|n| n as usize)
                .ok_or_else(|| format!("no `{key}` in {spec}"))
        };
        let (size, max_len) = (count("batch_size")?, count("max_seq_length")?);
        if size > self.records.len() {
            return Err(format!("batch_size {size} > {} records", self.records.len()));
        }
        let data = Dataset::from_tokens(self.records[..size].to_vec());
        let indices: Vec<usize> = (0..size).collect();
        let batch = tuner::make_batch(&data, &indices, max_len).map_err(e)?;
        let (loss, ntoks) = self
            .trainer
            .with_model(|m| {
                let (loss, ntoks) = tuner::default_loss(&*m, &batch.tokens, &batch.lengths)?;
                Ok((loss.item::<f32>()?, ntoks.item::<i32>()?))
            })
            .map_err(e)?;
        let mut ready = serde_json::Map::new();
        ready.insert("checksum".into(), serde_json::json!(f64::from(loss)));
        ready.insert("ntoks".into(), serde_json::json!(ntoks));
        ready.insert("shape".into(), serde_json::json!(batch.tokens.shape()));
        self.batch = Some(batch);
        Ok(ready)
    }

    fn run(&mut self, iters: usize) -> Result<f64, String> {
        let batch = self.batch.as_ref().ok_or("no batch: setup first")?;
        let start = std::time::Instant::now();
        for _ in 0..iters {
            self.trainer.step(batch, true).map_err(|e| e.to_string())?;
        }
        Ok(start.elapsed().as_secs_f64() * 1e9 / iters as f64)
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
