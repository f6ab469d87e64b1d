//! Fine-tuning, as mlx-lm's `tuner` package and `lora.py` / `fuse.py`: LoRA, DoRA or full
//! fine-tuning of the last blocks of any [`LanguageModel`](crate::LanguageModel), over a float
//! or quantized base (QLoRA), mixture-of-experts layers included (`LoRASwitchLinear`).
//!
//! - [`adapters`]: which layers get adapters ([`linear_to_lora_layers`], [`prepare_model`]),
//!   adapter directories in mlx-lm's format ([`save_adapters`], [`load_adapters`]) and the
//!   merged model ([`fuse_model`], [`save_fused_model`]).
//! - [`datasets`]: `train/valid/test.jsonl` in mlx-lm's formats, prompt masking, batches.
//! - [`trainer`]: [`default_loss`], [`evaluate`], the training loop ([`Trainer`]), optimizers
//!   and schedules by name.
//!
//! ```no_run
//! use mlx_lm::load_model;
//! use mlx_lm::tuner::{self, ConsoleReporter, DatasetOptions, FineTuneConfig, Trainer, TrainingArgs};
//! let loaded = load_model("Mistral-7B-Instruct-v0.3-4bit")?;
//! let tokenizer = mlx_lm::Tokenizer::from_dir("Mistral-7B-Instruct-v0.3-4bit")?;
//! let data = tuner::load_local_dataset("data", Some(&tokenizer), &DatasetOptions::default())?;
//! let mut model = loaded.model;
//! let config = FineTuneConfig::default(); // LoRA, last 16 blocks, rank 8, scale 20
//! tuner::prepare_model(model.as_mut(), &config)?;
//! config.save("adapters")?;
//! let args = TrainingArgs { adapter_file: "adapters/adapters.safetensors".into(), ..Default::default() };
//! let optimizer = tuner::build_optimizer("adamw", 1e-5.into())?;
//! let mut trainer = Trainer::new(model, optimizer, args)?;
//! trainer.train(&data.train, Some(&data.valid), &mut ConsoleReporter::default())?;
//! # Ok::<(), mlx_rs::Error>(())
//! ```

pub mod adapters;
pub mod datasets;
pub mod trainer;

pub use adapters::{
    FineTuneConfig, FineTuneType, LoraParameters, adapter_weights, fuse_model,
    linear_to_lora_layers, load_adapter_weights, load_adapters, prepare_model,
    save_adapter_weights, save_adapters, save_fused_model, unfreeze_last_layers,
};
pub use datasets::{
    Batch, Batches, DataFormat, Dataset, DatasetOptions, LocalDatasets, batch_indices,
    load_local_dataset, make_batch,
};
pub use trainer::{
    ConsoleReporter, LrSchedule, TrainReport, Trainer, TrainingArgs, TrainingCallback, ValReport,
    build_optimizer, build_schedule, default_loss, evaluate,
};
