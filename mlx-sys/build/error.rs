//! The build script's error type: a readable message, printed once by `main`.
//!
//! This file depends only on `std`, so that the tests can include it next to the modules whose
//! logic they check.

use std::fmt;
use std::path::Path;

/// A build failure, printed as a readable message.
#[derive(Debug)]
pub struct BuildError(String);

impl BuildError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> BuildError {
        BuildError(message.into())
    }

    /// A failed file-system operation on `path`.
    pub fn io(action: &str, path: &Path, err: std::io::Error) -> BuildError {
        BuildError(format!("cannot {action} {}: {err}", path.display()))
    }

    /// Prefixes the message with where the problem came from.
    pub fn context(self, what: &str) -> BuildError {
        BuildError(format!("{what}: {}", self.0))
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
