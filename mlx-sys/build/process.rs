//! Running external tools (cmake, pip, cargo, python) with errors that say what to do.

use std::process::{Command, Output};

use crate::error::BuildError;

/// Runs `command` and returns its output, or an error that names the command and shows what it
/// printed. `hint` tells the user how to fix a missing tool.
pub fn run(command: &mut Command, hint: &str) -> Result<Output, BuildError> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| BuildError::new(format!("could not start {shown}: {e}\n  hint: {hint}")))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(BuildError::new(format!(
            "{shown} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}\n  hint: {hint}",
            output.status,
            tail(&String::from_utf8_lossy(&output.stdout)),
            tail(&String::from_utf8_lossy(&output.stderr)),
        )))
    }
}

/// Runs `command` with its output going to cargo's build log (for long builds).
pub fn run_logged(command: &mut Command, hint: &str) -> Result<(), BuildError> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .map_err(|e| BuildError::new(format!("could not start {shown}: {e}\n  hint: {hint}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::new(format!(
            "{shown} failed ({status}); its output is above\n  hint: {hint}"
        )))
    }
}

/// The last lines of a long output.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(40);
    lines[start..].join("\n")
}
