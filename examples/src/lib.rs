//! Runnable programs built on `mlx-rs`; see the `[[example]]` entries of this package.
//!
//! The examples use only the safe API of `mlx-rs`. This library holds what they share.

use std::process::ExitCode;

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
