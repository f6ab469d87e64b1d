//! safetensors files: named arrays plus string metadata.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::path::Path;

use mlx_sys as sys;

use super::bridge::{Attached, Direction, ReaderTarget, WriterTarget, user_io};
use super::file_reader::FileReader;
use super::{c_path, check_loaded, io_error, load_stream};
use crate::array::Array;
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::Result;
use crate::ffi;
use crate::map::{MapStringToArray, MapStringToString};
use crate::stream::Stream;

/// Named arrays and string metadata, as a safetensors file holds them.
type Loaded = (HashMap<String, Array>, HashMap<String, String>);

/// Loads a safetensors file: its arrays by name and its metadata, as in
/// `mlx.core.load(path, return_metadata=True)` (on the CPU stream).
///
/// The arrays are lazy: they read their data from the file when evaluated (see the
/// [module docs](super#lazy-loading-from-paths)).
///
/// Errors ([`ErrorKind::Io`]): the file is missing or unreadable; its header is not valid
/// safetensors or describes data past the end of the file.
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<Loaded> {
    load_safetensors_device(path, &load_stream()?)
}

/// [`load_safetensors`] on the given stream.
pub fn load_safetensors_device(path: impl AsRef<Path>, stream: &Stream) -> Result<Loaded> {
    const OP: &str = "load_safetensors";
    let path = path.as_ref();
    let reader = FileReader::open(OP, path, c_path(OP, path)?)?;
    let mut arrays = MapStringToArray::new();
    let mut metadata = MapStringToString::new();
    // SAFETY: live handles; the maps are owned.
    io_error(ffi::status(OP, || unsafe {
        sys::mlx_load_safetensors_reader(
            arrays.as_raw_mut(),
            metadata.as_raw_mut(),
            reader.raw(),
            stream.raw(),
        )
    }))?;
    let arrays = arrays.to_map(OP)?;
    // MLX checks each tensor's offsets against its byte size and the file; not the shape.
    check_loaded(OP, arrays.iter().map(|(k, v)| (k.as_str(), v)))?;
    Ok((arrays, metadata.to_map(OP)?))
}

/// Loads safetensors data from `reader`. The data must start at the reader's offset 0 (tensor
/// offsets are absolute): the reader is rewound first. Eager: every array is read before this
/// returns.
///
/// Errors ([`ErrorKind::Io`]): the reader fails or panics (its message is kept) or does not
/// hold valid safetensors data.
///
/// ```
/// use std::collections::HashMap;
/// use std::io::Cursor;
/// use mlx_rs::{io, Array};
/// let arrays = HashMap::from([("x".to_owned(), Array::from_slice(&[7u8, 8, 9], &[3])?)]);
/// let mut bytes = Cursor::new(Vec::new());
/// io::save_safetensors_to_writer(&mut bytes, &arrays, &HashMap::<String, String>::new())?;
/// let (loaded, _) = io::load_safetensors_from_reader(&mut bytes)?;
/// assert_eq!(loaded["x"].to_vec::<u8>()?, [7, 8, 9]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn load_safetensors_from_reader<R: Read + Seek + Send>(reader: &mut R) -> Result<Loaded> {
    load_safetensors_from_reader_device(reader, &load_stream()?)
}

/// [`load_safetensors_from_reader`] on the given stream.
pub fn load_safetensors_from_reader_device<R: Read + Seek + Send>(
    reader: &mut R,
    stream: &Stream,
) -> Result<Loaded> {
    const OP: &str = "load_safetensors";
    user_io(OP, "cannot rewind the reader", || reader.rewind())?;
    let mut target = ReaderTarget(reader);
    let attached = Attached::new(OP, &mut target, Direction::Read, "a Rust reader")?;
    let mut arrays = MapStringToArray::new();
    let mut metadata = MapStringToString::new();
    // SAFETY: live handles; the maps are owned and freed on every path.
    let status = ffi::serialized(|| unsafe {
        sys::mlx_load_safetensors_reader(
            arrays.as_raw_mut(),
            metadata.as_raw_mut(),
            attached.reader(),
            stream.raw(),
        )
    });
    attached.check(OP, status)?;
    let arrays = arrays.to_map(OP)?;
    let metadata = metadata.to_map(OP)?;
    check_loaded(OP, arrays.iter().map(|(k, v)| (k.as_str(), v)))?;
    let all: Vec<&Array> = arrays.values().collect();
    attached.check_result(OP, ffi::eval_all(OP, &all))?;
    Ok((arrays, metadata))
}

/// Saves named arrays and string metadata to a safetensors file, as in
/// `mlx.core.save_safetensors`. MLX appends `.safetensors` to a path that does not end with it.
///
/// Errors: [`ErrorKind::Io`] when the file cannot be written or an array cannot be evaluated;
/// [`ErrorKind::InvalidArgument`] for a name or metadata entry with a NUL byte.
pub fn save_safetensors<K: AsRef<str>, M: AsRef<str>, V: AsRef<str>>(
    path: impl AsRef<Path>,
    arrays: &HashMap<K, Array>,
    metadata: &HashMap<M, V>,
) -> Result<()> {
    const OP: &str = "save_safetensors";
    let c = c_path(OP, path.as_ref())?;
    let arrays = MapStringToArray::from_map(OP, arrays)?;
    let metadata = MapStringToString::from_map(OP, metadata)?;
    // SAFETY: live handles; `c` is NUL-terminated and outlives the call.
    io_error(ffi::status(OP, || unsafe {
        sys::mlx_save_safetensors(c.as_ptr(), arrays.raw(), metadata.raw())
    }))
}

/// Writes named arrays and string metadata in safetensors format to `writer`.
///
/// Errors ([`ErrorKind::Io`]): the writer fails or panics (its message is kept); see also
/// [`save_safetensors`].
pub fn save_safetensors_to_writer<W: Write + Send, K: AsRef<str>, M: AsRef<str>, V: AsRef<str>>(
    writer: &mut W,
    arrays: &HashMap<K, Array>,
    metadata: &HashMap<M, V>,
) -> Result<()> {
    const OP: &str = "save_safetensors";
    let arrays = MapStringToArray::from_map(OP, arrays)?;
    let metadata = MapStringToString::from_map(OP, metadata)?;
    let mut target = WriterTarget { inner: writer, written: 0 };
    let attached = Attached::new(OP, &mut target, Direction::Write, "a Rust writer")?;
    // SAFETY: live handles.
    let status = ffi::serialized(|| unsafe {
        sys::mlx_save_safetensors_writer(attached.writer(), arrays.raw(), metadata.raw())
    });
    attached.check(OP, status)?;
    drop(attached);
    user_io(OP, "cannot flush the writer", || target.inner.flush())
}
