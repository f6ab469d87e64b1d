//! GGUF files: named arrays plus typed metadata.

use std::collections::HashMap;
use std::ffi::c_int;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use mlx_sys as sys;

use super::{c_path, io_error, load_stream, std_io_error};
use crate::array::Array;
use crate::error::{Error, ErrorKind, Result};
use crate::ffi;
use crate::stream::Stream;
use crate::vector::VectorString;

/// One GGUF metadata value, as MLX represents it (`mlx.core.load(..., return_metadata=True)`
/// gives a `str`, a `list[str]` or an `array`).
#[derive(Clone, Debug)]
pub enum GgufMetadata {
    /// A string.
    String(String),
    /// A list of strings (e.g. a tokenizer's vocabulary).
    Strings(Vec<String>),
    /// A number, boolean, or array of numbers: a scalar array for one value, a 1-D array for
    /// a list.
    Array(Array),
}

/// Named arrays and metadata, as a GGUF file holds them.
type Loaded = (HashMap<String, Array>, HashMap<String, GgufMetadata>);

/// An owned `mlx_io_gguf`.
struct Gguf(sys::mlx_io_gguf);

impl Gguf {
    fn new(op: &'static str) -> Result<Gguf> {
        // SAFETY: no preconditions; mlx-c returns an empty handle on failure.
        ffi::handle_out(op, || unsafe { sys::mlx_io_gguf_new() }, Gguf)
    }
}

impl Drop for Gguf {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_io_gguf_free(self.0) });
    }
}

/// What mlx-c's GGUF getters return for a missing key.
const NOT_FOUND: c_int = 2;

/// Loads a GGUF file: its tensors by name and its metadata, as in
/// `mlx.core.load(path, return_metadata=True)` (on the CPU stream).
///
/// MLX copies the tensors while loading. Tensors of the quantized types Q4_0, Q4_1 and Q8_0
/// come back as MLX's quantized triple (`name` as packed `uint32`, `name.scales`,
/// `name.biases`); Q2_K, Q4_K, Q6_K and BF16 tensors come back as float16; other quantized
/// types are an error (or, for types newer than MLX's GGUF reader, left out, as MLX does).
/// Metadata values MLX does not represent (e.g. lists of lists) are left out.
///
/// Errors ([`ErrorKind::Io`]): the file is missing, unreadable, not GGUF, truncated or corrupt.
///
/// ```
/// use std::collections::HashMap;
/// use mlx_rs::{io::{self, GgufMetadata}, Array};
/// let path = std::env::temp_dir().join(format!("mlx_rs_gguf_doc_{}.gguf", std::process::id()));
/// let arrays = HashMap::from([("w".to_owned(), Array::from_slice(&[1.0f32, 2.0], &[2])?)]);
/// let metadata =
///     HashMap::from([("general.name".to_owned(), GgufMetadata::String("tiny".to_owned()))]);
/// io::save_gguf(&path, &arrays, &metadata)?;
/// let (loaded, meta) = io::load_gguf(&path)?;
/// assert_eq!(loaded["w"].to_vec::<f32>()?, [1.0, 2.0]);
/// assert!(matches!(&meta["general.name"], GgufMetadata::String(s) if s == "tiny"));
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn load_gguf(path: impl AsRef<Path>) -> Result<Loaded> {
    load_gguf_device(path, &load_stream()?)
}

/// [`load_gguf`] on the given stream.
pub fn load_gguf_device(path: impl AsRef<Path>, stream: &Stream) -> Result<Loaded> {
    const OP: &str = "load_gguf";
    let path = path.as_ref();
    let c = c_path(OP, path)?;
    // MLX 0.32.2 trusts the header's counts and lengths (and can crash on a corrupt one): check
    // the structure first. The walk also yields the metadata keys, which mlx-c cannot list.
    let metadata_keys = validate(OP, path)?;
    let mut gguf = Gguf(ffi::empty());
    // SAFETY: `c` is NUL-terminated and outlives the call; the call fills `gguf`, which owns
    // the result (an empty handle is freed harmlessly).
    io_error(ffi::status(OP, || unsafe {
        sys::mlx_load_gguf(&mut gguf.0, c.as_ptr(), stream.raw())
    }))?;
    // Past this point a bad name or value (not UTF-8, a NUL byte) is a fault of the file.
    read_loaded(&gguf, metadata_keys).map_err(|e| Error::new(ErrorKind::Io, OP, e.message()))
}

/// The arrays and metadata of a loaded GGUF.
fn read_loaded(gguf: &Gguf, metadata_keys: Vec<String>) -> Result<Loaded> {
    const OP: &str = "load_gguf";
    let mut keys = VectorString::new();
    // SAFETY: both handles are live; the call fills `keys`.
    ffi::status(OP, || unsafe { sys::mlx_io_gguf_get_keys(keys.as_raw_mut(), gguf.0) })?;
    let mut arrays = HashMap::new();
    for key in keys.to_strings(OP)? {
        let c_key = ffi::c_string(OP, &key)?;
        // SAFETY: live handles; `c_key` is NUL-terminated; the output is owned by `array_out`.
        let array = ffi::array_out(OP, |out| unsafe {
            sys::mlx_io_gguf_get_array(out, gguf.0, c_key.as_ptr())
        })?;
        arrays.insert(key, array);
    }

    let mut metadata = HashMap::new();
    for key in metadata_keys {
        if let Some(value) = metadata_value(OP, gguf, &key)? {
            metadata.insert(key, value);
        }
    }
    Ok((arrays, metadata))
}

/// The metadata value of `key` in `gguf`, if MLX holds one.
fn metadata_value(op: &'static str, gguf: &Gguf, key: &str) -> Result<Option<GgufMetadata>> {
    let c_key = ffi::c_string(op, key)?;
    let has =
        |f: unsafe extern "C" fn(*mut bool, sys::mlx_io_gguf, *const std::ffi::c_char) -> c_int| {
            let mut flag = false;
            // SAFETY: live handle; `c_key` is NUL-terminated; writes one bool.
            let status = unsafe { f(&mut flag, gguf.0, c_key.as_ptr()) };
            match status {
                0 => Ok(flag),
                NOT_FOUND => Ok(false),
                other => ffi::check(op, other).map(|()| false),
            }
        };
    if has(sys::mlx_io_gguf_has_metadata_string)? {
        let mut text = ffi::MlxString::new();
        // SAFETY: live handles; the call fills `text`, which owns the result.
        ffi::status(op, || unsafe {
            sys::mlx_io_gguf_get_metadata_string(text.as_raw_mut(), gguf.0, c_key.as_ptr())
        })?;
        return Ok(Some(GgufMetadata::String(text.to_string_lossy())));
    }
    if has(sys::mlx_io_gguf_has_metadata_vector_string)? {
        let mut strings = VectorString::new();
        // SAFETY: live handles; the call fills `strings`, which owns the result.
        ffi::status(op, || unsafe {
            sys::mlx_io_gguf_get_metadata_vector_string(
                strings.as_raw_mut(),
                gguf.0,
                c_key.as_ptr(),
            )
        })?;
        return Ok(Some(GgufMetadata::Strings(strings.to_strings(op)?)));
    }
    if has(sys::mlx_io_gguf_has_metadata_array)? {
        // SAFETY: live handles; the output is owned by `array_out`.
        let array = ffi::array_out(op, |out| unsafe {
            sys::mlx_io_gguf_get_metadata_array(out, gguf.0, c_key.as_ptr())
        })?;
        return Ok(Some(GgufMetadata::Array(array)));
    }
    Ok(None)
}

/// Saves named arrays and metadata to a GGUF file, as in `mlx.core.save_gguf`. MLX appends
/// `.gguf` to a path that does not end with it.
///
/// GGUF stores float32, float16, bfloat16 and integer tensors of up to 4 dimensions; metadata
/// arrays must be scalars or 1-D. Other input is an error from MLX.
///
/// Errors: [`ErrorKind::Io`] when MLX rejects an array or cannot write the file;
/// [`ErrorKind::InvalidArgument`] for a name or string with a NUL byte.
pub fn save_gguf<K: AsRef<str>, M: AsRef<str>>(
    path: impl AsRef<Path>,
    arrays: &HashMap<K, Array>,
    metadata: &HashMap<M, GgufMetadata>,
) -> Result<()> {
    const OP: &str = "save_gguf";
    let c = c_path(OP, path.as_ref())?;
    let gguf = Gguf::new(OP)?;
    for (key, array) in arrays {
        let c_key = ffi::c_string(OP, key.as_ref())?;
        // SAFETY: live handles; `c_key` is NUL-terminated and copied.
        ffi::status(OP, || unsafe {
            sys::mlx_io_gguf_set_array(gguf.0, c_key.as_ptr(), array.raw())
        })?;
    }
    for (key, value) in metadata {
        let c_key = ffi::c_string(OP, key.as_ref())?;
        match value {
            GgufMetadata::String(text) => {
                let c_text = ffi::c_string(OP, text)?;
                // SAFETY: live handle; both strings NUL-terminated and copied.
                ffi::status(OP, || unsafe {
                    sys::mlx_io_gguf_set_metadata_string(gguf.0, c_key.as_ptr(), c_text.as_ptr())
                })?;
            }
            GgufMetadata::Strings(list) => {
                let vector = VectorString::from_strs(OP, list)?;
                // SAFETY: live handles; `c_key` NUL-terminated; the strings are copied.
                ffi::status(OP, || unsafe {
                    sys::mlx_io_gguf_set_metadata_vector_string(
                        gguf.0,
                        c_key.as_ptr(),
                        vector.raw(),
                    )
                })?;
            }
            GgufMetadata::Array(array) => {
                // SAFETY: live handles; `c_key` NUL-terminated and copied.
                ffi::status(OP, || unsafe {
                    sys::mlx_io_gguf_set_metadata_array(gguf.0, c_key.as_ptr(), array.raw())
                })?;
            }
        }
    }
    // SAFETY: live handle; `c` is NUL-terminated and outlives the call.
    io_error(ffi::status(OP, || unsafe { sys::mlx_save_gguf(c.as_ptr(), gguf.0) }))
}

/// Walks a GGUF header (version 2 or 3), checking every count and length against the file
/// size, and returns the metadata keys. Tensor data offsets are left to MLX, which checks them.
fn validate(op: &'static str, path: &Path) -> Result<Vec<String>> {
    let file = File::open(path).map_err(|e| std_io_error(op, path, e))?;
    let len = file.metadata().map_err(|e| std_io_error(op, path, e))?.len();
    let mut walk = Walk { input: BufReader::new(file), left: len, total: len, path };
    walk.header(op)
}

/// Corrupt or truncated-file error of `op` about `path`.
fn corrupt(op: &'static str, path: &Path, what: &str) -> Error {
    Error::new(
        ErrorKind::Io,
        op,
        format!(
            "{} is not a valid GGUF file: {what}. Perhaps an incomplete download or corrupt file?",
            path.display()
        ),
    )
}

/// GGUF value types (the GGUF specification's `gguf_metadata_value_type`).
const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;
const TYPE_FLOAT64: u32 = 12;

/// The size in bytes of a fixed-size GGUF value type, `None` for strings, arrays and unknown
/// types.
fn fixed_size(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1), // u8, i8, bool
        2 | 3 => Some(2),     // u16, i16
        4..=6 => Some(4),     // u32, i32, f32
        10..=12 => Some(8),   // u64, i64, f64
        _ => None,
    }
}

/// The largest GGML tensor type id of the GGUF specification's `ggml_type` (MXFP4 = 39).
const MAX_TENSOR_TYPE: u32 = 39;

struct Walk<'p> {
    input: BufReader<File>,
    /// Bytes not yet walked.
    left: u64,
    /// The file size.
    total: u64,
    path: &'p Path,
}

impl Walk<'_> {
    fn need(&mut self, op: &'static str, n: u64, what: &str) -> Result<()> {
        if n > self.left {
            return Err(corrupt(
                op,
                self.path,
                &format!("{what} extends past the end of the file"),
            ));
        }
        self.left -= n;
        Ok(())
    }

    fn bytes<const N: usize>(&mut self, op: &'static str, what: &str) -> Result<[u8; N]> {
        self.need(op, N as u64, what)?;
        let mut buf = [0u8; N];
        self.input.read_exact(&mut buf).map_err(|e| std_io_error(op, self.path, e))?;
        Ok(buf)
    }

    fn u32(&mut self, op: &'static str, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes::<4>(op, what)?))
    }

    fn u64(&mut self, op: &'static str, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes::<8>(op, what)?))
    }

    fn skip(&mut self, op: &'static str, n: u64, what: &str) -> Result<()> {
        self.need(op, n, what)?;
        let n = i64::try_from(n).map_err(|_| corrupt(op, self.path, what))?;
        self.input.seek(SeekFrom::Current(n)).map_err(|e| std_io_error(op, self.path, e))?;
        Ok(())
    }

    fn string(&mut self, op: &'static str, what: &str) -> Result<String> {
        let n = self.u64(op, what)?;
        self.need(op, n, what)?;
        let mut text = vec![0u8; usize::try_from(n).map_err(|_| corrupt(op, self.path, what))?];
        self.input.read_exact(&mut text).map_err(|e| std_io_error(op, self.path, e))?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    fn value(&mut self, op: &'static str, kind: u32, depth: u32) -> Result<()> {
        if kind == TYPE_FLOAT64 {
            return Err(self.float64(op));
        }
        if let Some(size) = fixed_size(kind) {
            return self.skip(op, size, "a metadata value");
        }
        match kind {
            TYPE_STRING => {
                let n = self.u64(op, "a metadata string")?;
                self.skip(op, n, "a metadata string")
            }
            TYPE_ARRAY if depth < 4 => {
                let elem = self.u32(op, "a metadata array")?;
                let count = self.u64(op, "a metadata array")?;
                if elem == TYPE_FLOAT64 {
                    return Err(self.float64(op));
                }
                if let Some(size) = fixed_size(elem) {
                    let total = count.checked_mul(size).ok_or_else(|| {
                        corrupt(op, self.path, "a metadata array is impossibly long")
                    })?;
                    return self.skip(op, total, "a metadata array");
                }
                // Variable-size elements take at least 8 bytes each (a length or a header).
                if count > self.left / 8 {
                    return Err(corrupt(
                        op,
                        self.path,
                        "a metadata array extends past the end of the file",
                    ));
                }
                for _ in 0..count {
                    self.value(op, elem, depth + 1)?;
                }
                Ok(())
            }
            TYPE_ARRAY => Err(corrupt(op, self.path, "metadata arrays are nested too deeply")),
            other => Err(corrupt(op, self.path, &format!("unknown metadata value type {other}"))),
        }
    }

    /// The error for a float64 metadata value: valid GGUF, but MLX 0.32.2's GGUF reader loses
    /// its place after one and then reads the tensor table from the wrong offset (SIGSEGV, in
    /// Python MLX too; found by the `gguf` fuzz target).
    fn float64(&self, op: &'static str) -> Error {
        Error::new(
            ErrorKind::Io,
            op,
            format!(
                "{} holds float64 metadata, which MLX 0.32.2's GGUF reader cannot read safely",
                self.path.display()
            ),
        )
    }

    fn header(&mut self, op: &'static str) -> Result<Vec<String>> {
        let magic = self.bytes::<4>(op, "the header")?;
        if &magic != b"GGUF" {
            return Err(corrupt(op, self.path, "it does not start with \"GGUF\""));
        }
        let version = self.u32(op, "the header")?;
        if !(2..=3).contains(&version) {
            return Err(corrupt(op, self.path, &format!("unsupported GGUF version {version}")));
        }
        let tensors = self.u64(op, "the header")?;
        let entries = self.u64(op, "the header")?;
        // A metadata entry takes at least 8 + 4 + 1 bytes; a tensor entry 8 + 4 + 4 + 8.
        if entries > self.left / 13 || tensors > self.left / 24 {
            return Err(corrupt(
                op,
                self.path,
                "the header counts more entries than the file holds",
            ));
        }
        let mut keys = Vec::new();
        for _ in 0..entries {
            let key = self.string(op, "a metadata key")?;
            if key.contains('\0') {
                return Err(corrupt(op, self.path, "a metadata key contains a NUL byte"));
            }
            let kind = self.u32(op, "a metadata entry")?;
            if key == "general.alignment" {
                // The data section is aligned to this: zero would divide by zero in MLX.
                let align = if kind == 4 { self.u32(op, "the alignment")? } else { 0 };
                if !align.is_power_of_two() {
                    return Err(corrupt(op, self.path, "general.alignment is not a power of two"));
                }
            } else {
                self.value(op, kind, 0)?;
            }
            keys.push(key);
        }
        for _ in 0..tensors {
            let n = self.u64(op, "a tensor name")?;
            self.skip(op, n, "a tensor name")?;
            let dims = self.u32(op, "a tensor entry")?;
            if !(1..=4).contains(&dims) {
                return Err(corrupt(op, self.path, &format!("a tensor has {dims} dimensions")));
            }
            let mut elements = 1u64;
            for _ in 0..dims {
                let size = self.u64(op, "a tensor shape")?;
                // No tensor type stores an element in less than one bit.
                elements = elements.checked_mul(size).filter(|&n| n / 8 <= self.total).ok_or_else(
                    || corrupt(op, self.path, "a tensor's shape does not fit the file"),
                )?;
            }
            let kind = self.u32(op, "a tensor entry")?;
            // Types 4 and 5 were removed from GGML and have no block size (MLX divides by zero).
            if kind > MAX_TENSOR_TYPE || kind == 4 || kind == 5 {
                return Err(corrupt(op, self.path, &format!("unknown tensor type {kind}")));
            }
            self.skip(op, 8, "a tensor entry")?;
        }
        Ok(keys)
    }
}
