//! Tensor parallelism over MLX's ring backend: this test binary re-runs itself as two processes
//! on localhost, each loads its half of every fixture model with `load_model_sharded`, and both
//! check that the sharded logits and greedy continuations equal those of the whole model loaded
//! in the same process.
//!
//! Covered: every architecture in float32 (llama, mistral, qwen3, qwen3_moe, mixtral,
//! glm4_moe) and 4-bit (llama and qwen3 fixtures; the MoE 4-bit fixtures are too narrow to
//! split, which must be a clear error, so wider random 4-bit MoE models are written for the
//! test), the error for heads the group cannot split, and the peak memory of a sharded load;
//! then pipeline parallelism (`load_model_pipelined`, layers split into two stages) on one
//! fixture of each architecture, and its error for fewer layers than ranks.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mlx_lm::presets::{random_model, save_model_dir};
use mlx_lm::{
    GenerateOptions, Generation, LanguageModel, ModelConfig, load_model, load_model_pipelined,
    load_model_sharded, models,
};
use mlx_rs::distributed::{self, Backend, Group};
use mlx_rs::{Array, Dtype, memory};
use serde_json::Value;

const ROLE: &str = "MLX_LM_SHARDED_TEST_RANK";
const WORK_DIR: &str = "MLX_LM_SHARDED_TEST_DIR";
/// How long the two ranks may take together before they are killed.
const TIMEOUT: Duration = Duration::from_secs(240);

/// Fixtures that split across two processes.
const SHARDABLE: [&str; 9] = [
    "llama_f32",
    "llama_q4",
    "mistral_f32",
    "qwen3_f32",
    "qwen3_q4",
    "qwen3_moe_f32",
    "mixtral_f32",
    "mixtral_long_f32",
    "glm4_moe_f32",
];

/// 4-bit fixtures with group size 32 whose expert (or attention output) rows hold a single
/// quantization group: nothing to split between two ranks.
const TOO_NARROW: [&str; 4] = ["qwen3_moe_q4", "mixtral_q4", "mixtral_long_q4", "glm4_moe_q4"];

/// A generated model: its name, the fixture whose config it widens, and the widened fields.
type WideModel = (&'static str, &'static str, &'static [(&'static str, i64)]);

/// Random 4-bit MoE models written by the parent: `(name, fixture whose config is widened,
/// the widened fields)`.
const WIDE_Q4: [WideModel; 3] = [
    ("qwen3_moe_wide_q4", "qwen3_moe_q4", &[("moe_intermediate_size", 64)]),
    ("mixtral_wide_q4", "mixtral_q4", &[("hidden_size", 64), ("intermediate_size", 64)]),
    ("glm4_moe_wide_q4", "glm4_moe_q4", &[("moe_intermediate_size", 64)]),
];

/// The prompt of the generated models.
const PROMPT: [i32; 10] = [1, 5, 9, 3, 17, 42, 7, 11, 2, 30];

/// A float32 Llama large enough for its weights to dominate the process's memory.
const BIG: &str = "llama_big_f32";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Writes the generated models into `dir` (the wide 4-bit MoE models and the big Llama).
fn write_generated_models(dir: &Path) {
    for (name, base, fields) in WIDE_Q4 {
        let text = std::fs::read_to_string(common::fixture_dir(base).join("config.json")).unwrap();
        let mut raw: Value = serde_json::from_str(&text).unwrap();
        for (key, value) in fields {
            raw[*key] = Value::from(*value);
        }
        raw["torch_dtype"] = Value::from("float32");
        let config = ModelConfig::from_json_str(&raw.to_string(), name).unwrap();
        let model = random_model(&config, 7).unwrap();
        save_model_dir(model.model.as_ref(), &config, dir.join(name)).unwrap();
    }
    let text =
        std::fs::read_to_string(common::fixture_dir("llama_f32").join("config.json")).unwrap();
    let mut raw: Value = serde_json::from_str(&text).unwrap();
    raw["hidden_size"] = Value::from(256);
    raw["intermediate_size"] = Value::from(1024);
    raw["num_hidden_layers"] = Value::from(4);
    raw["torch_dtype"] = Value::from("float32");
    let config = ModelConfig::from_json_str(&raw.to_string(), BIG).unwrap();
    let model = random_model(&config, 3).unwrap();
    save_model_dir(model.model.as_ref(), &config, dir.join(BIG)).unwrap();
}

/// The prompt's float32 logits, flattened.
fn logits(model: &dyn LanguageModel, prompt: &[i32]) -> Vec<f32> {
    let x = Array::from_slice(prompt, &[1, prompt.len() as i32]).unwrap();
    model.forward(&x, None).unwrap().astype(Dtype::Float32).unwrap().to_vec::<f32>().unwrap()
}

/// The largest `|got - want|`, or the first position outside `atol + rtol * |want|`.
fn largest_difference(got: &[f32], want: &[f32], rtol: f32, atol: f32) -> Result<f32, String> {
    if got.len() != want.len() {
        return Err(format!("{} logits, want {}", got.len(), want.len()));
    }
    let mut worst = 0.0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        worst = worst.max(err);
        if err > atol + rtol * w.abs() {
            return Err(format!("logit {i}: sharded {g}, whole {w}"));
        }
    }
    Ok(worst)
}

/// Compares the sharded model in `dir` with the whole one: prompt logits and 20 greedy tokens.
/// A bfloat16 model is compared as it is at bfloat16's precision (its all-sums add rounded
/// partial products, so tokens may part after a while), then both models are cast to float32,
/// where logits and tokens must agree. Failures are collected, not raised, so that both ranks
/// keep making the same collective calls.
fn compare(name: &str, dir: &Path, prompt: &[i32], group: &Group, failures: &mut Vec<String>) {
    compare_with(name, dir, prompt, group, |d, g| load_model_sharded(d, g), failures);
}

/// [`compare`] for a model split by `split` (tensor-parallel or pipelined).
fn compare_with(
    name: &str,
    dir: &Path,
    prompt: &[i32],
    group: &Group,
    split: fn(&Path, &Group) -> mlx_rs::Result<mlx_lm::LoadedModel>,
    failures: &mut Vec<String>,
) {
    let mut whole = load_model(dir).unwrap();
    let mut sharded = match split(dir, group) {
        Ok(m) => m,
        Err(e) => {
            failures.push(format!("{name}: splitting failed: {e}"));
            return;
        }
    };
    let low_precision =
        whole.model.named_parameters().iter().any(|(_, a)| a.dtype() == Dtype::Bfloat16);
    let low = low_precision.then(|| {
        let want = logits(whole.model.as_ref(), prompt);
        let got = logits(sharded.model.as_ref(), prompt);
        whole.model.set_dtype(Dtype::Float32).unwrap();
        sharded.model.set_dtype(Dtype::Float32).unwrap();
        (got, want)
    });
    let want = logits(whole.model.as_ref(), prompt);
    if let Some((got, want16)) = low {
        // bfloat16's own error: the whole model in bfloat16 against itself in float32.
        let own = largest_difference(&want16, &want, 0.0, f32::INFINITY).unwrap();
        let sharded = largest_difference(&got, &want16, 0.0, f32::INFINITY).unwrap();
        println!("{name} (bfloat16): sharded vs whole {sharded:e}; whole bf16 vs f32 {own:e}");
        if sharded > 2.0 * own + 1e-2 {
            failures.push(format!(
                "{name} (bfloat16): the sharded logits differ by {sharded:e}, more than twice \
                 bfloat16's own error ({own:e})"
            ));
        }
    }
    let want_tokens = common::greedy(whole.model.as_ref(), prompt, 20);
    let got = logits(sharded.model.as_ref(), prompt);
    let got_tokens = common::greedy(sharded.model.as_ref(), prompt, 20);
    match largest_difference(&got, &want, 1e-4, 1e-4) {
        Ok(worst) => println!("{name}: largest logit difference {worst:e}, greedy {got_tokens:?}"),
        Err(e) => failures.push(format!("{name}: {e}")),
    }
    if got_tokens != want_tokens {
        failures.push(format!("{name}: greedy {got_tokens:?}, whole model {want_tokens:?}"));
    }
    // The generator: prefill in chunks of 3 (each chunk's cache evaluated alone), then
    // pipelined decoding.
    let generated = generate(sharded.model.as_ref(), prompt);
    if generated != want_tokens[..8] {
        failures.push(format!("{name}: generated {generated:?}, whole model {want_tokens:?}"));
    }
}

/// 8 greedy tokens through `mlx_lm::Generation`, prefilling 3 tokens at a time.
fn generate(model: &dyn LanguageModel, prompt: &[i32]) -> Vec<i32> {
    let prompt: Vec<u32> = prompt.iter().map(|&t| t as u32).collect();
    let options =
        GenerateOptions { max_tokens: Some(8), prefill_step_size: 3, ..Default::default() };
    Generation::new(model, None, None, &prompt, &[], options)
        .unwrap()
        .map(|r| r.unwrap().token as i32)
        .collect()
}

/// The work of one rank when this binary runs as a child of
/// `two_ring_processes_shard_every_architecture` (ignored in a normal run).
#[test]
#[ignore = "run by two_ring_processes_shard_every_architecture as a child process"]
fn sharded_rank_worker() {
    let Ok(rank) = std::env::var(ROLE) else { panic!("run me through the parent test") };
    let rank: i32 = rank.parse().unwrap();
    let work = PathBuf::from(std::env::var_os(WORK_DIR).unwrap());
    // The ring backend communicates from the CPU; keep the whole computation there.
    mlx_rs::Device::cpu().set_default().unwrap();
    let group = distributed::init(true, Backend::Ring).unwrap();
    assert_eq!((group.size(), group.rank()), (2, rank));
    let mut failures = Vec::new();

    // Peak memory of a sharded load: this rank's half of the split weights, the replicated
    // ones, and one whole tensor at a time; well under the checkpoint's size.
    let big = work.join(BIG);
    let file_bytes = std::fs::metadata(big.join("model.safetensors")).unwrap().len() as usize;
    memory::reset_peak_memory().unwrap();
    let before = memory::get_active_memory().unwrap();
    let model = load_model_sharded(&big, &group).unwrap();
    let peak = memory::get_peak_memory().unwrap() - before;
    let held: usize = model.model.named_parameters().iter().map(|(_, a)| a.nbytes()).sum();
    println!("{BIG}: checkpoint {file_bytes} B, this rank holds {held} B, load peak {peak} B");
    if held > file_bytes * 6 / 10 || peak > file_bytes * 7 / 10 {
        failures.push(format!(
            "{BIG}: holds {held} B with a load peak of {peak} B for a {file_bytes} B checkpoint"
        ));
    }
    drop(model);
    // A pipeline stage holds its own layers (half of them) and the replicated embeddings.
    let model = load_model_pipelined(&big, &group).unwrap();
    let stage: usize = model.model.named_parameters().iter().map(|(_, a)| a.nbytes()).sum();
    println!("{BIG}: this pipeline stage holds {stage} B");
    if stage > file_bytes * 6 / 10 {
        failures.push(format!("{BIG}: a pipeline stage holds {stage} B of {file_bytes} B"));
    }
    drop(model);

    for name in SHARDABLE {
        let prompt = common::expected(name).prompt;
        compare(name, &common::fixture_dir(name), &prompt, &group, &mut failures);
    }
    for (name, _, _) in WIDE_Q4 {
        compare(name, &work.join(name), &PROMPT, &group, &mut failures);
    }
    for name in TOO_NARROW {
        match load_model_sharded(common::fixture_dir(name), &group) {
            Ok(_) => failures.push(format!("{name}: sharded although a row has one group")),
            Err(e) if e.to_string().contains("cannot split") => {
                println!("{name}: {e}");
            }
            Err(e) => failures.push(format!("{name}: unexpected error {e}")),
        }
    }
    // Pipeline parallelism: rank 1 runs the first half of the layers, rank 0 the rest.
    for name in ["llama_f32", "qwen3_q4", "qwen3_moe_f32", "mixtral_q4", "glm4_moe_q4"] {
        let prompt = common::expected(name).prompt;
        let dir = common::fixture_dir(name);
        let label = format!("{name} (pipeline)");
        compare_with(
            &label,
            &dir,
            &prompt,
            &group,
            |d, g| load_model_pipelined(d, g),
            &mut failures,
        );
    }
    // One key/value head cannot be split in two: an error before anything changes.
    let text =
        std::fs::read_to_string(common::fixture_dir("llama_f32").join("config.json")).unwrap();
    let mut raw: Value = serde_json::from_str(&text).unwrap();
    raw["num_key_value_heads"] = Value::from(1);
    let config = ModelConfig::from_json_str(&raw.to_string(), "one kv head").unwrap();
    let mut model = models::build(&config, None).unwrap();
    match model.shard(&group) {
        Err(e) if e.to_string().contains("1 key/value heads cannot be split evenly across 2") => {}
        other => failures.push(format!("one kv head: {other:?}")),
    }
    // The presets' shapes (built lazily, nothing evaluated): the real checkpoints split in two,
    // except GLM-4.5-Air, whose dense MLP (10944 features, 171 groups of 64) cannot.
    for preset in mlx_lm::presets::PRESETS {
        let mut model = models::build(&preset.config().unwrap(), None).unwrap();
        let result = model.shard(&group);
        match (preset.name, result) {
            ("glm45-air-3bit", Err(e))
                if e.to_string().contains("model.layers.0")
                    && e.to_string().contains("down_proj") =>
            {
                println!("{}: {e}", preset.name)
            }
            ("glm45-air-3bit", other) => failures.push(format!("glm45-air-3bit: {other:?}")),
            (name, Ok(())) => println!("{name}: shards over 2 processes"),
            (name, Err(e)) => failures.push(format!("{name}: {e}")),
        }
    }
    // One layer cannot make two pipeline stages.
    raw["num_hidden_layers"] = Value::from(1);
    let config = ModelConfig::from_json_str(&raw.to_string(), "one layer").unwrap();
    let mut model = models::build(&config, None).unwrap();
    match model.pipeline(&group) {
        Err(e) if e.to_string().contains("1 layers cannot be split into 2 pipeline stages") => {}
        other => failures.push(format!("one layer: {other:?}")),
    }
    assert!(failures.is_empty(), "rank {rank}:\n{}", failures.join("\n"));
    println!("rank {rank} ok");
}

fn spawn_rank(exe: &Path, rank: usize, hostfile: &Path, work: &Path) -> Child {
    let log = |kind: &str| std::fs::File::create(work.join(format!("rank{rank}.{kind}"))).unwrap();
    Command::new(exe)
        .args(["--exact", "sharded_rank_worker", "--ignored", "--nocapture", "--test-threads=1"])
        .env(ROLE, rank.to_string())
        .env(WORK_DIR, work)
        .env("MLX_RANK", rank.to_string())
        .env("MLX_HOSTFILE", hostfile)
        .env("MLX_LM_DIR", common::crate_dir())
        .stdout(Stdio::from(log("out")))
        .stderr(Stdio::from(log("err")))
        .spawn()
        .unwrap()
}

#[test]
fn two_ring_processes_shard_every_architecture() {
    let work = std::env::temp_dir().join(format!("mlx-lm-sharded-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    write_generated_models(&work);
    let hostfile = work.join("hosts.json");
    let (a, b) = (free_port(), free_port());
    std::fs::write(&hostfile, format!(r#"[["127.0.0.1:{a}"], ["127.0.0.1:{b}"]]"#)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<Child> = (0..2).map(|r| spawn_rank(&exe, r, &hostfile, &work)).collect();
    let start = Instant::now();
    let mut status = [None; 2];
    while status.iter().any(Option::is_none) && start.elapsed() < TIMEOUT {
        for (s, child) in status.iter_mut().zip(children.iter_mut()) {
            if s.is_none() {
                *s = child.try_wait().unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (s, child) in status.iter().zip(children.iter_mut()) {
        if s.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    let read = |rank: usize, kind: &str| {
        std::fs::read_to_string(work.join(format!("rank{rank}.{kind}"))).unwrap_or_default()
    };
    for (rank, s) in status.iter().enumerate() {
        let (out, err) = (read(rank, "out"), read(rank, "err"));
        match s {
            None => panic!("rank {rank} did not finish within {TIMEOUT:?}:\n{out}\n{err}"),
            Some(s) => assert!(
                s.success() && out.contains(&format!("rank {rank} ok")),
                "rank {rank} failed ({s}):\n{out}\n{err}"
            ),
        }
        if rank == 0 {
            eprintln!("{out}");
        }
    }
    std::fs::remove_dir_all(work).unwrap();
}
