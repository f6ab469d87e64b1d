//! Language models on [`mlx_rs`], mirroring Python's mlx-lm 0.32.0.
//!
//! ```no_run
//! use mlx_lm::{load_model, GenerateOptions, Generation, Tokenizer};
//! let dir = "Mistral-7B-Instruct-v0.3-4bit"; // an mlx-community model directory
//! let loaded = load_model(dir)?;
//! let tokenizer = Tokenizer::from_dir(dir)?;
//! let prompt = tokenizer.encode_prompt("The capital of France is")?;
//! let options = GenerateOptions { max_tokens: Some(32), ..Default::default() };
//! let eos = &loaded.config.eos_token_ids;
//! let mut last = None;
//! for response in Generation::new(loaded.model.as_ref(), None, Some(&tokenizer), &prompt, eos, options)? {
//!     let response = response?;
//!     print!("{}", response.text);
//!     last = Some(response);
//! }
//! if let Some(last) = last {
//!     println!("\n{}", last.report()); // prompt and generation tok/s, peak memory
//! }
//! # Ok::<(), mlx_rs::Error>(())
//! ```
//!
//! - [`models`]: the architectures (`llama`/`mistral`, `mixtral`, `qwen3`, `qwen3_moe`,
//!   `glm4_moe`), each a port of mlx-lm's file of the same name with its `sanitize`; [`model`]
//!   has the traits they implement.
//! - [`load`]: mlx-community directories (every `model*.safetensors`, quantization with
//!   per-module overrides, strict, no float copy of quantized weights), and
//!   [`load_model_sharded`]: each process of a distributed group loads only its part of the
//!   model for tensor parallelism ([`LanguageModel::shard`]); [`load_model_pipelined`]: each
//!   process runs a stage of consecutive layers ([`LanguageModel::pipeline`]).
//! - [`generate`]: chunked prefill, `async_eval`-pipelined decoding, speculative decoding with a
//!   draft model, stop conditions, prompt-cache reuse, and mlx-lm's figures.
//! - [`presets`]: random-weight models with the shapes of real checkpoints, drawn identically by
//!   Rust and Python (`examples/presets.py`).
//! - [`tokenizer`]: `tokenizer.json` (offline), special tokens, EOS ids, chat templates rendered
//!   as `transformers` renders them, and a streaming detokenizer that never splits a character.
//! - [`sample`]: mlx-lm's logits processors and samplers (top-p, min-p, XTC, top-k,
//!   temperature), seeded through [`mlx_rs::random`] keys, on the device.
//! - [`tuner`]: LoRA / DoRA / full fine-tuning as `mlx_lm.lora` (adapters in mlx-lm's format,
//!   jsonl datasets, the compiled training loop) and `mlx_lm.fuse`.
//! - [`config`]: `config.json` (with quantization and per-module overrides) and
//!   `generation_config.json`; [`rope`]: the rope scalings configs ask for.
//!
//! The crate uses only the safe API of `mlx-rs`.

#![forbid(unsafe_code)]

pub mod config;
pub mod generate;
pub mod load;
pub mod model;
pub mod models;
pub mod presets;
pub mod rope;
pub mod sample;
pub mod tokenizer;
pub mod tuner;

pub use config::{ModelConfig, QuantMode, QuantParams, QuantizationConfig};
pub use generate::{GenerateOptions, Generation, GenerationResponse, TokenStream};
pub use load::{LoadedModel, load_model, load_model_pipelined, load_model_sharded};
pub use model::{Architecture, LanguageModel, Weights};
pub use sample::{LogitsProcessor, LogitsProcessorSettings, Sampler, SamplerSettings};
pub use tokenizer::{ChatTemplateOptions, StreamingDetokenizer, Tokenizer};
