//! NumPy `.npy` files: one array each.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use mlx_sys as sys;

use super::bridge::{Attached, Direction, ReaderTarget, WriterTarget, user_io};
use super::file_reader::{FileReader, read_up_to};
use super::{c_path, io_error, load_stream, std_io_error};
use crate::array::Array;
use crate::error::{Error, ErrorKind, Result};
use crate::ffi;
use crate::stream::Stream;

/// Loads the array of a `.npy` file, as in `mlx.core.load` (on the CPU stream).
///
/// The array is lazy: it reads its data from the file when evaluated (see the
/// [module docs](super#lazy-loading-from-paths)).
///
/// Errors ([`ErrorKind::Io`]): the file is missing, unreadable, not `.npy`, or shorter than its
/// header says.
///
/// ```
/// use mlx_rs::{io, Array};
/// let path = std::env::temp_dir().join(format!("mlx_rs_npy_doc_{}.npy", std::process::id()));
/// io::save(&path, &Array::from_slice(&[1i32, 2, 3, 4], &[2, 2])?)?;
/// let a = io::load(&path)?;
/// assert_eq!(a.shape(), &[2, 2]);
/// assert_eq!(a.to_vec::<i32>()?, [1, 2, 3, 4]);
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn load(path: impl AsRef<Path>) -> Result<Array> {
    load_device(path, &load_stream()?)
}

/// [`load`] on the given stream.
pub fn load_device(path: impl AsRef<Path>, stream: &Stream) -> Result<Array> {
    const OP: &str = "load";
    let path = path.as_ref();
    let reader = FileReader::open(OP, path, c_path(OP, path)?)?;
    check_header_fits_file(OP, path, reader.file())?;
    // SAFETY: live handles; the output is owned by `array_out`.
    let array = io_error(ffi::array_out_unchecked(OP, |out| unsafe {
        sys::mlx_load_reader(out, reader.raw(), stream.raw())
    }))?;
    check_complete(OP, path, reader.file(), &array)?;
    Ok(array)
}

/// Loads a `.npy` array from `reader`, starting at its current position. Eager: the array is
/// read before this returns.
///
/// Errors ([`ErrorKind::Io`]): the reader fails or panics (its message is kept), ends early,
/// or does not hold `.npy` data.
///
/// ```
/// use std::io::Cursor;
/// use mlx_rs::{io, Array};
/// let mut bytes = Cursor::new(Vec::new());
/// io::save_to_writer(&mut bytes, &Array::from_slice(&[1.5f32, -2.0], &[2])?)?;
/// bytes.set_position(0);
/// assert_eq!(io::load_from_reader(&mut bytes)?.to_vec::<f32>()?, [1.5, -2.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn load_from_reader<R: Read + Seek + Send>(reader: &mut R) -> Result<Array> {
    load_from_reader_device(reader, &load_stream()?)
}

/// [`load_from_reader`] on the given stream.
pub fn load_from_reader_device<R: Read + Seek + Send>(
    reader: &mut R,
    stream: &Stream,
) -> Result<Array> {
    const OP: &str = "load";
    check_header_fits_reader(OP, reader)?;
    let mut target = ReaderTarget(reader);
    let attached = Attached::new(OP, &mut target, Direction::Read, "a Rust reader")?;
    // SAFETY: live handles; the output is owned by `array_out`.
    let loaded = ffi::array_out_unchecked(OP, |out| unsafe {
        sys::mlx_load_reader(out, attached.reader(), stream.raw())
    });
    let array = attached.check_result(OP, loaded)?;
    super::check_loaded(OP, [("array", &array)])?;
    attached.check_result(OP, ffi::eval_all(OP, &[&array]))?;
    Ok(array)
}

/// Saves `array` to a `.npy` file, as in `mlx.core.save`. MLX appends `.npy` to a path that
/// does not end with it.
///
/// Errors ([`ErrorKind::Io`]): the file cannot be written; evaluating `array` fails.
pub fn save(path: impl AsRef<Path>, array: &Array) -> Result<()> {
    const OP: &str = "save";
    let c = c_path(OP, path.as_ref())?;
    // SAFETY: `c` is NUL-terminated and outlives the call; the array is live.
    io_error(ffi::status(OP, || unsafe { sys::mlx_save(c.as_ptr(), array.raw()) }))
}

/// Writes `array` in `.npy` format to `writer`.
///
/// Errors ([`ErrorKind::Io`]): the writer fails or panics (its message is kept).
pub fn save_to_writer<W: Write + Send>(writer: &mut W, array: &Array) -> Result<()> {
    const OP: &str = "save";
    let mut target = WriterTarget { inner: writer, written: 0 };
    let attached = Attached::new(OP, &mut target, Direction::Write, "a Rust writer")?;
    // SAFETY: live handles.
    let status =
        ffi::serialized(|| unsafe { sys::mlx_save_writer(attached.writer(), array.raw()) });
    attached.check(OP, status)?;
    drop(attached);
    user_io(OP, "cannot flush the writer", || target.inner.flush())
}

/// Checks that the header length a `.npy` file's first bytes (`head`) announce fits in the
/// `available` bytes from its start: MLX allocates a buffer of that length (up to 4 GiB, from
/// the 32-bit length of a version 2 or 3 header) before it finds out that the file is shorter
/// (found by the `npy` fuzz target: a 60-byte file took 2 GB). Anything that is not a `.npy`
/// header is left to MLX to refuse.
fn check_header_fits(op: &'static str, head: &[u8], available: u64, what: &str) -> Result<()> {
    if head.len() < 10 || &head[..6] != b"\x93NUMPY" {
        return Ok(());
    }
    let end = match head[6] {
        1 => 10 + u64::from(u16::from_le_bytes([head[8], head[9]])),
        _ if head.len() >= 12 => {
            12 + u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]]))
        }
        _ => return Ok(()),
    };
    if end > available {
        return Err(Error::new(
            ErrorKind::Io,
            op,
            format!(
                "{what} is not a valid .npy file: its header ends at byte {end} but it holds \
                 only {available} bytes"
            ),
        ));
    }
    Ok(())
}

/// [`check_header_fits`] for `file`, found at `path`.
fn check_header_fits_file(op: &'static str, path: &Path, file: &File) -> Result<()> {
    let len = file.metadata().map_err(|e| std_io_error(op, path, e))?.len();
    let mut head = [0u8; 12];
    let got = read_up_to(file, &mut head, 0).map_err(|e| std_io_error(op, path, e))?;
    check_header_fits(op, &head[..got], len, &path.display().to_string())
}

/// [`check_header_fits`] for `reader` from its current position, which it is left at. The
/// reader's calls run under [`user_io`], so a failing or panicking reader is an `Err`.
fn check_header_fits_reader<R: Read + Seek>(op: &'static str, reader: &mut R) -> Result<()> {
    let (head, len) = user_io(op, "the reader failed", || {
        let start = reader.stream_position()?;
        let end = reader.seek(SeekFrom::End(0))?;
        reader.seek(SeekFrom::Start(start))?;
        let mut head = Vec::with_capacity(12);
        (&mut *reader).take(12).read_to_end(&mut head)?;
        reader.seek(SeekFrom::Start(start))?;
        Ok((head, end.saturating_sub(start)))
    })?;
    check_header_fits(op, &head, len, "the reader's data")
}

/// Checks that a `.npy` file (`file`, found at `path`) holds every byte of `array` after its
/// header: MLX reads a short file without complaint and leaves the missing elements undefined.
fn check_complete(op: &'static str, path: &Path, file: &File, array: &Array) -> Result<()> {
    let len = file.metadata().map_err(|e| std_io_error(op, path, e))?.len();
    let mut head = [0u8; 12];
    read_up_to(file, &mut head, 0).map_err(|e| std_io_error(op, path, e))?;
    // MLX has parsed the header already: magic "\x93NUMPY", version, header length.
    let data_offset = match head[6] {
        1 => 10 + u64::from(u16::from_le_bytes([head[8], head[9]])),
        _ => 12 + u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]])),
    };
    super::check_loaded(op, [("array", array)])?;
    let needed = data_offset.checked_add(array.nbytes() as u64);
    if needed.is_none_or(|needed| len < needed) {
        return Err(Error::new(
            ErrorKind::Io,
            op,
            format!(
                "{} is truncated: its header describes {} bytes of data but the file holds {}. \
                 Perhaps an incomplete download or corrupt file?",
                path.display(),
                array.nbytes(),
                len.saturating_sub(data_offset)
            ),
        ));
    }
    Ok(())
}
