//! The crate's one error type.
//!
//! Every fallible call returns [`Result<T>`]. An [`Error`] names the operation that failed, says
//! what kind of failure it was, and carries the message: MLX's own (captured on the thread that
//! made the call) or one written by this crate when it rejects an argument before calling MLX.

use std::fmt;

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// MLX rejected the call (bad shapes, axes, dtypes, unsupported on this device, ...).
    Mlx,
    /// This crate rejected an argument before calling MLX.
    InvalidArgument,
    /// An array was read as an element type other than its dtype.
    DtypeMismatch,
    /// A user closure passed to a transform returned an error or panicked.
    Closure,
    /// A file or stream could not be read or written.
    Io,
    /// The operation is not available in this build or on this device.
    Unsupported,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Mlx => "MLX error",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::DtypeMismatch => "dtype mismatch",
            ErrorKind::Closure => "closure failed",
            ErrorKind::Io => "I/O error",
            ErrorKind::Unsupported => "unsupported",
        })
    }
}

/// An error from MLX or from this crate's argument checks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct Error {
    kind: ErrorKind,
    op: &'static str,
    message: String,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` raised by `op`.
    pub fn new(kind: ErrorKind, op: &'static str, message: impl Into<String>) -> Error {
        Error { kind, op, message: message.into() }
    }

    /// An [`ErrorKind::InvalidArgument`] error.
    pub fn invalid(op: &'static str, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, op, message)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed, e.g. `"matmul"`.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The message, without the operation name.
    pub fn message(&self) -> &str {
        &self.message
    }
}
