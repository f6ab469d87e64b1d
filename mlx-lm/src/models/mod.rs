//! The supported architectures, each a port of mlx-lm 0.32.0's model file of the same name,
//! and [`build`], which picks one by `model_type`.

use mlx_rs::{Error, Result};

use crate::config::ModelConfig;
use crate::load::build_architecture;
use crate::model::{LanguageModel, Weights};

pub mod glm4_moe;
pub mod llama;
pub mod mixtral;
pub mod qwen3;
pub mod qwen3_moe;

/// The `model_type`s [`build`] knows, sorted.
pub const SUPPORTED_MODEL_TYPES: &[&str] =
    &["glm4_moe", "llama", "mistral", "mixtral", "qwen3", "qwen3_moe"];

/// Builds the architecture `config.model_type` names and loads `weights` over it (see
/// [`build_architecture`]); an unknown type is an error listing the supported ones.
pub fn build(config: &ModelConfig, weights: Option<Weights>) -> Result<Box<dyn LanguageModel>> {
    match config.model_type.as_str() {
        "glm4_moe" => build_architecture::<glm4_moe::Model>(config, weights),
        "llama" | "mistral" => build_architecture::<llama::Model>(config, weights),
        "mixtral" => build_architecture::<mixtral::Model>(config, weights),
        "qwen3" => build_architecture::<qwen3::Model>(config, weights),
        "qwen3_moe" => build_architecture::<qwen3_moe::Model>(config, weights),
        _ => Err(unsupported(config)),
    }
}

/// An error unless [`build`] knows `config.model_type`.
pub fn check_supported(config: &ModelConfig) -> Result<()> {
    match SUPPORTED_MODEL_TYPES.contains(&config.model_type.as_str()) {
        true => Ok(()),
        false => Err(unsupported(config)),
    }
}

fn unsupported(config: &ModelConfig) -> Error {
    Error::invalid(
        "load_model",
        format!(
            "{}: unsupported model_type `{}` (supported: {})",
            config.file,
            config.model_type,
            SUPPORTED_MODEL_TYPES.join(", ")
        ),
    )
}
