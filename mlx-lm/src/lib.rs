//! Language models on [`mlx_rs`]: the model-independent parts of mlx-lm.
//!
//! - [`tokenizer`]: `tokenizer.json` (offline), special tokens, EOS ids, chat templates rendered
//!   as `transformers` renders them, and a streaming detokenizer that never splits a character.
//! - [`sample`]: mlx-lm's logits processors and samplers (top-p, min-p, XTC, top-k,
//!   temperature), seeded through [`mlx_rs::random`] keys, on the device.
//! - [`config`]: `config.json` (with quantization and per-module overrides) and
//!   `generation_config.json`.
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

pub use config::{ModelConfig, QuantMode, QuantParams, QuantizationConfig};
pub use generate::{GenerateOptions, Generation, GenerationResponse, TokenStream};
pub use load::{LoadedModel, load_model};
pub use model::{Architecture, LanguageModel, Weights};
pub use sample::{LogitsProcessor, LogitsProcessorSettings, Sampler, SamplerSettings};
pub use tokenizer::{ChatTemplateOptions, StreamingDetokenizer, Tokenizer};
