//! Runnable programs built on `mlx-rs`; see the `[[example]]` entries of this package.
//!
//! The examples use only the safe API of `mlx-rs`. This library holds what they share: the
//! exit status, the config of a preset name or a config file, and the `--serve` protocol of
//! the benches' comparison runner ([`serve`]).

use std::process::ExitCode;

use mlx_lm::ModelConfig;
use mlx_lm::presets::Preset;

pub mod serve;

/// Turns an example's result into its exit status, printing the error readably.
pub fn exit_status(result: mlx_rs::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The config of `name`: a file when it ends in `.json` (e.g. the small scale-downs in
/// `examples/presets-small/`), else a preset of [`mlx_lm::presets::PRESETS`].
pub fn preset_or_file(name: &str) -> mlx_rs::Result<ModelConfig> {
    if name.ends_with(".json") {
        let text = std::fs::read_to_string(name).map_err(|e| {
            mlx_rs::Error::invalid("preset", format!("cannot read config `{name}`: {e}"))
        })?;
        return ModelConfig::from_json_str(&text, name);
    }
    Preset::named(name)?.config()
}
