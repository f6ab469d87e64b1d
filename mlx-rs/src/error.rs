//! The crate's one error type.
//!
//! Every fallible call returns [`Result<T>`]. An [`Error`] names the operation that failed, says
//! what kind of failure it was, and carries the message: MLX's own (captured on the thread that
//! made the call) or one written by this crate when it rejects an argument before calling MLX.

use std::fmt;
use std::sync::Arc;

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
///
/// It names the operation that failed and its kind, carries the message, and may carry a chain
/// of context added on the way up ([`Context::context`]: "loading model.safetensors", "at
/// `layers.3.q_proj.weight`") and the underlying error ([`std::error::Error::source`], e.g. an
/// [`std::io::Error`]). `Display` prints the context outermost first, then `op: message`:
///
/// ```
/// use mlx_rs::{Array, Context, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0], &[2])?;
/// let b = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3])?;
/// let err = ops::add(&a, &b).context("at `layers.3.mlp`").context("forward").unwrap_err();
/// assert_eq!(err.op(), "add");
/// assert!(err.to_string().starts_with("forward: at `layers.3.mlp`: add: "));
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[derive(Clone)]
pub struct Error {
    // Boxed so that `Result<Array>` stays two words on every op's return path.
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    op: &'static str,
    message: String,
    /// Innermost first (the order in which it was added).
    context: Vec<String>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` raised by `op`.
    pub fn new(kind: ErrorKind, op: &'static str, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                op,
                message: message.into(),
                context: Vec::new(),
                source: None,
            }),
        }
    }

    /// An [`ErrorKind::InvalidArgument`] error.
    pub fn invalid(op: &'static str, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, op, message)
    }

    /// This error with `source` as its underlying cause (see [`std::error::Error::source`]).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The operation that failed, e.g. `"matmul"`.
    pub fn op(&self) -> &'static str {
        self.inner.op
    }

    /// The message, without the operation name or context.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The context added on the way up, outermost first.
    pub fn context_chain(&self) -> impl Iterator<Item = &str> {
        self.inner.context.iter().rev().map(String::as_str)
    }

    /// This error with `context` added as its new outermost context.
    pub fn add_context(mut self, context: impl fmt::Display) -> Error {
        self.inner.context.push(context.to_string());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for context in self.context_chain() {
            write!(f, "{context}: ")?;
        }
        write!(f, "{}: {}", self.inner.op, self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("op", &self.inner.op)
            .field("message", &self.inner.message)
            .field("context", &self.inner.context)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl PartialEq for Error {
    /// Errors are equal when kind, op, message and context agree (sources are not compared).
    fn eq(&self, other: &Error) -> bool {
        let (a, b) = (&self.inner, &other.inner);
        a.kind == b.kind && a.op == b.op && a.message == b.message && a.context == b.context
    }
}

impl Eq for Error {}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Adds context to the error of a [`Result`], as it travels up (like `anyhow::Context`).
pub trait Context<T> {
    /// Adds `context` to the error, if any.
    fn context(self, context: impl fmt::Display) -> Result<T>;

    /// Adds the context that `f` makes to the error, if any; `f` runs only on failure.
    fn with_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.add_context(context))
    }

    fn with_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.add_context(f()))
    }
}
