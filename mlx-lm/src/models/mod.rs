//! The supported architectures, each a port of mlx-lm 0.32.0's model file of the same name,
//! and [`build`], which picks one by `model_type`.

use mlx_rs::{Error, Result};

use crate::config::ModelConfig;
use crate::load::build_architecture;
use crate::model::{LanguageModel, Weights};

pub mod llama;
pub mod mixtral;

/// The `model_type`s [`build`] knows, sorted.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["llama", "mistral", "mixtral"];

/// Builds the architecture `config.model_type` names and loads `weights` over it (see
/// [`build_architecture`]); an unknown type is an error listing the supported ones.
pub fn build(config: &ModelConfig, weights: Option<Weights>) -> Result<Box<dyn LanguageModel>> {
    match config.model_type.as_str() {
        "llama" | "mistral" => build_architecture::<llama::Model>(config, weights),
        "mixtral" => build_architecture::<mixtral::Model>(config, weights),
        other => Err(Error::invalid(
            "load_model",
            format!(
                "{}: unsupported model_type `{other}` (supported: {})",
                config.file,
                SUPPORTED_MODEL_TYPES.join(", ")
            ),
        )),
    }
}
