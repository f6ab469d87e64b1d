//! Exporting the computation graph of lazy arrays, as in `mlx.core.export_to_dot`.
//!
//! The graph behind some outputs can be written as [Graphviz](https://graphviz.org/) DOT text
//! ([`export_to_dot`], [`to_dot`]) or as MLX's plain-text listing ([`print_graph`]). Nodes are
//! named `A`, `B`, ... unless named with a [`NodeNamer`] or the `names` argument.
//!
//! ```
//! use mlx_rs::{graph, ops, Array};
//! let x = Array::from_slice(&[1.0f32, 2.0], &[2])?;
//! let y = ops::add(&x, &x)?;
//! let dot = graph::to_dot(&[&y], &[(&x, "x")])?;
//! assert!(dot.starts_with("digraph"));
//! assert!(dot.contains("Add") && dot.contains("x"));
//! # Ok::<(), mlx_rs::Error>(())
//! ```
//!
//! Exporting reads the graph only: it evaluates nothing, so export before evaluating (evaluated
//! arrays have no graph left behind them).

use std::ffi::{CStr, c_char, c_int};
use std::io::Write;

use mlx_sys as sys;

use crate::array::Array;
use crate::error::{Error, ErrorKind, Result};
use crate::ffi;
use crate::vector::VectorArray;

/// Names for graph nodes, as in MLX's `NodeNamer`: nodes without a name get `A`, `B`, ... in
/// the order they are first asked for.
pub struct NodeNamer {
    raw: sys::mlx_node_namer,
}

impl NodeNamer {
    /// A namer with no names set.
    pub fn new() -> Result<NodeNamer> {
        ffi::handle_out(
            "node_namer_new",
            // SAFETY: no preconditions; mlx-c returns an empty handle on failure.
            || unsafe { sys::mlx_node_namer_new() },
            |raw| NodeNamer { raw },
        )
    }

    /// A namer giving each array its name.
    pub fn with_names(names: &[(&Array, &str)]) -> Result<NodeNamer> {
        let namer = NodeNamer::new()?;
        for (array, name) in names {
            namer.set_name(array, name)?;
        }
        Ok(namer)
    }

    /// Names the node of `array`; fails if `name` contains a NUL byte.
    pub fn set_name(&self, array: &Array, name: &str) -> Result<()> {
        let name = ffi::c_string("node_namer_set_name", name)?;
        // SAFETY: live handles; `name` is NUL-terminated and copied by MLX.
        ffi::status("node_namer_set_name", || unsafe {
            sys::mlx_node_namer_set_name(self.raw, array.raw(), name.as_ptr())
        })
    }

    /// The name of the node of `array`: the one set, or the next automatic one (`A`, `B`, ...),
    /// which is then kept for this array.
    pub fn get_name(&self, array: &Array) -> Result<String> {
        let mut name: *const c_char = std::ptr::null();
        // SAFETY: live handles; mlx-c points `name` at a string owned by the namer.
        ffi::status("node_namer_get_name", || unsafe {
            sys::mlx_node_namer_get_name(&mut name, self.raw, array.raw())
        })?;
        if name.is_null() {
            return Err(Error::invalid("node_namer_get_name", "MLX returned no name"));
        }
        // SAFETY: non-NULL and NUL-terminated; owned by the namer, which `&self` keeps alive.
        Ok(unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned())
    }

    /// Writes the graph of `outputs` as DOT text to `writer`, with this namer's names.
    pub fn export_to_dot<A: AsRef<Array>>(
        &self,
        writer: &mut impl Write,
        outputs: &[A],
    ) -> Result<()> {
        let outputs = VectorArray::from_arrays(outputs);
        let text = capture("export_to_dot", |file| {
            // SAFETY: live handles; `file` is an open stream that `capture` closes afterwards.
            unsafe { sys::mlx_export_to_dot(file, self.raw, outputs.raw()) }
        })?;
        write_all("export_to_dot", writer, &text)
    }

    /// Writes MLX's plain-text listing of the graph of `outputs` to `writer`, with this namer's
    /// names: one line per operation, inputs before outputs.
    pub fn print_graph<A: AsRef<Array>>(
        &self,
        writer: &mut impl Write,
        outputs: &[A],
    ) -> Result<()> {
        let outputs = VectorArray::from_arrays(outputs);
        let text = capture("print_graph", |file| {
            // SAFETY: live handles; `file` is an open stream that `capture` closes afterwards.
            unsafe { sys::mlx_print_graph(file, self.raw, outputs.raw()) }
        })?;
        write_all("print_graph", writer, &text)
    }
}

impl Drop for NodeNamer {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_node_namer_free(self.raw) });
    }
}

/// Writes the graph of `outputs` as DOT text to `writer`, as in `mlx.core.export_to_dot`.
/// `names` names some of the nodes (e.g. the inputs); the others are named `A`, `B`, ...
///
/// Errors: [`ErrorKind::Io`] when `writer` fails; a name containing a NUL byte.
pub fn export_to_dot<A: AsRef<Array>>(
    writer: &mut impl Write,
    outputs: &[A],
    names: &[(&Array, &str)],
) -> Result<()> {
    NodeNamer::with_names(names)?.export_to_dot(writer, outputs)
}

/// The graph of `outputs` as DOT text (see [`export_to_dot`]).
pub fn to_dot<A: AsRef<Array>>(outputs: &[A], names: &[(&Array, &str)]) -> Result<String> {
    let mut text = Vec::new();
    export_to_dot(&mut text, outputs, names)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// Writes MLX's plain-text listing of the graph of `outputs` to `writer` (MLX's
/// `print_graph`); `names` as in [`export_to_dot`].
///
/// ```
/// use mlx_rs::{graph, ops, Array};
/// let x = Array::from_slice(&[1.0f32, 2.0], &[2])?;
/// let y = ops::multiply(&x, &x)?;
/// let mut out = Vec::new();
/// graph::print_graph(&mut out, &[&y], &[(&x, "x")])?;
/// assert!(String::from_utf8_lossy(&out).contains("Multiply"));
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn print_graph<A: AsRef<Array>>(
    writer: &mut impl Write,
    outputs: &[A],
    names: &[(&Array, &str)],
) -> Result<()> {
    NodeNamer::with_names(names)?.print_graph(writer, outputs)
}

fn write_all(op: &'static str, writer: &mut impl Write, text: &[u8]) -> Result<()> {
    writer
        .write_all(text)
        .and_then(|()| writer.flush())
        .map_err(|e| Error::new(ErrorKind::Io, op, e.to_string()))
}

/// The buffer and length that `open_memstream` fills; freed on drop.
struct MemBuffer {
    data: *mut c_char,
    len: usize,
}

impl Drop for MemBuffer {
    fn drop(&mut self) {
        // SAFETY: `data` is NULL or the buffer `open_memstream` allocated with `malloc`, freed
        // once here.
        unsafe { libc::free(self.data.cast()) };
    }
}

/// Runs `call` with a C `FILE*` writing to memory and returns what it wrote. The stream is
/// closed and its buffer freed on every path.
fn capture(op: &'static str, call: impl FnOnce(*mut sys::FILE) -> c_int) -> Result<Vec<u8>> {
    ffi::init();
    // Boxed: the C library keeps pointers to both fields until the stream is closed.
    let mut buffer = Box::new(MemBuffer { data: std::ptr::null_mut(), len: 0 });
    // SAFETY: both pointers are to live fields of the boxed buffer, which outlives the stream
    // (closed below, before `buffer` drops).
    let file = unsafe { libc::open_memstream(&mut buffer.data, &mut buffer.len) };
    if file.is_null() {
        let error = std::io::Error::last_os_error();
        return Err(Error::new(ErrorKind::Io, op, format!("cannot open a memory stream: {error}")));
    }
    let status = ffi::serialized(|| call(file.cast()));
    // SAFETY: `file` is the open stream from above, closed exactly once. After closing,
    // `buffer.data` and `buffer.len` describe everything written.
    let closed = unsafe { libc::fclose(file) };
    ffi::check(op, status)?;
    if closed != 0 {
        let error = std::io::Error::last_os_error();
        return Err(Error::new(
            ErrorKind::Io,
            op,
            format!("cannot close the memory stream: {error}"),
        ));
    }
    if buffer.data.is_null() {
        return Ok(Vec::new());
    }
    // SAFETY: after `fclose`, `data` holds `len` initialised bytes (plus a NUL), owned by
    // `buffer` until it drops.
    Ok(unsafe { std::slice::from_raw_parts(buffer.data.cast::<u8>(), buffer.len) }.to_vec())
}
