//! Loading and saving arrays, as in `mlx.core.load`, `mlx.core.save`,
//! `mlx.core.save_safetensors` and `mlx.core.save_gguf`.
//!
//! | format | load | save |
//! |---|---|---|
//! | NumPy `.npy` (one array) | [`load`], [`load_from_reader`] | [`save`], [`save_to_writer`] |
//! | safetensors (named arrays + string metadata) | [`load_safetensors`], [`load_safetensors_from_reader`] | [`save_safetensors`], [`save_safetensors_to_writer`] |
//! | GGUF (named arrays + [`GgufMetadata`]) | [`load_gguf`] | [`save_gguf`] |
//!
//! Loading from a path is lazy: the header is read and checked (shapes, sizes, the file's
//! length) when loading, the data when the arrays are evaluated, so the file must not change in
//! between. A file cut after loading (before or inside its data) makes the evaluation fail, and
//! the array stays failed (every later evaluation of it, or of an array built from it, gives
//! the same error; see the README's "Guarantees"): load the file again.
//!
//! ```
//! use std::collections::HashMap;
//! use mlx_rs::{io, Array};
//! let dir = std::env::temp_dir().join(format!("mlx_rs_io_doc_{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("weights.safetensors");
//!
//! let arrays = HashMap::from([("w".to_owned(), Array::from_slice(&[1.0f32, 2.0], &[2])?)]);
//! let metadata = HashMap::from([("format".to_owned(), "mlx".to_owned())]);
//! io::save_safetensors(&path, &arrays, &metadata)?;
//!
//! let (loaded, meta) = io::load_safetensors(&path)?;
//! assert_eq!(loaded["w"].to_vec::<f32>()?, [1.0, 2.0]);
//! assert_eq!(meta["format"], "mlx");
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), mlx_rs::Error>(())
//! ```
//!
//! # Lazy loading from paths
//! As in MLX, [`load`] and [`load_safetensors`] read the header when called and return lazy
//! arrays that read their data from the file when evaluated; they do not memory-map. The file
//! is opened once, when loading, and stays open until the last array loaded from it is dropped;
//! its contents must stay unchanged until the arrays are evaluated. The reads go through the
//! crate's own reader, with positioned reads (in parallel parts for large tensors, as MLX's
//! reader does): MLX 0.32.2's file reader does not advance its offset after a short `pread`, so
//! it read a file cut inside its data as `Ok` with repeated bytes; a short read here is an
//! error. [`load_gguf`] copies the tensors while loading (MLX's GGUF reader maps the file for
//! the duration of the call).
//!
//! Loading from a path also checks what MLX itself does not: that a `.npy` file holds all the
//! bytes its header promises (MLX would leave the missing elements undefined), and, before MLX
//! sees it, that a GGUF file's header is well formed (MLX 0.32.2 crashes on some corrupt GGUF
//! headers). Missing, truncated or corrupt files give an [`Err`], never a crash.
//!
//! # Readers and writers
//! The `*_from_reader` / `*_to_writer` forms work on any `Read + Seek` / `Write` (a `File`, a
//! `Cursor<Vec<u8>>`, ...). They are eager: the loaded arrays are evaluated before the call
//! returns, so the reader is only borrowed for the call. An I/O error or a panic in the reader or
//! writer becomes an [`ErrorKind::Io`] error carrying its message. mlx-c 0.7.0 has no reader or
//! writer form for GGUF.
//!
//! # Errors
//! Every failure to open, read, parse or write a file or stream is an [`ErrorKind::Io`] error;
//! a path that is not UTF-8 or contains a NUL byte, or a name with a NUL byte, is an
//! [`ErrorKind::InvalidArgument`] error.

mod bridge;
mod file_reader;
mod gguf;
mod npy;
mod safetensors;

use std::ffi::CString;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

pub use gguf::{GgufMetadata, load_gguf, load_gguf_device, save_gguf};
pub use npy::{load, load_device, load_from_reader, load_from_reader_device, save, save_to_writer};
pub use safetensors::{
    load_safetensors, load_safetensors_device, load_safetensors_from_reader,
    load_safetensors_from_reader_device, save_safetensors, save_safetensors_to_writer,
};

/// A path as the C string MLX takes: it must be valid UTF-8 without NUL bytes.
fn c_path(op: &'static str, path: &Path) -> Result<CString> {
    let text = path
        .to_str()
        .ok_or_else(|| Error::invalid(op, format!("the path {path:?} is not valid UTF-8")))?;
    CString::new(text)
        .map_err(|_| Error::invalid(op, format!("the path {path:?} contains a NUL byte")))
}

/// Marks an MLX failure of a load or save as an I/O error (the file could not be read, parsed
/// or written); other kinds pass through.
fn io_error<T>(result: Result<T>) -> Result<T> {
    result.map_err(|e| {
        if e.kind() == ErrorKind::Mlx { Error::new(ErrorKind::Io, e.op(), e.message()) } else { e }
    })
}

/// An [`ErrorKind::Io`] error of `op` from a Rust I/O error about `path`.
fn std_io_error(op: &'static str, path: &Path, error: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, op, format!("{}: {error}", path.display())).with_source(error)
}

/// Checks the arrays a file describes before anything evaluates them: MLX 0.32.2 takes the
/// header's shapes as they are, so a negative size or a byte size that wraps loads as `Ok` and
/// crashes on the first read. Each array must pass the op-output check (see
/// `ffi::check_output`); a failure is an [`ErrorKind::Io`] error naming the tensor.
fn check_loaded<'a>(
    op: &'static str,
    arrays: impl IntoIterator<Item = (&'a str, &'a crate::Array)>,
) -> Result<()> {
    for (name, array) in arrays {
        crate::ffi::check_output(op, array, crate::ffi::Output::Allocates).map_err(|e| {
            Error::new(ErrorKind::Io, op, format!("tensor `{name}` in the file: {}", e.message()))
        })?;
    }
    Ok(())
}

/// The CPU stream MLX loads on by default (`mlx.core.load` uses the CPU unless told otherwise).
fn load_stream() -> Result<crate::Stream> {
    crate::Stream::cpu()
}
