//! The loaders, fed arbitrary bytes: each through a file on disk and, where the crate has one,
//! through a reader.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use mlx_rs::io;

use super::check::check_array;

/// A file holding `data` in the temporary directory, removed on drop; unique per process and
/// call, so that parallel tests and fuzzing jobs do not share one.
struct TempFile(PathBuf);

impl TempFile {
    fn new(extension: &str, data: &[u8]) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("mlx-rs-fuzz-{}-{n}.{extension}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `io::load_safetensors` (lazy: the arrays are evaluated while the file exists) and
/// `io::load_safetensors_from_reader` on `data`.
pub fn safetensors(data: &[u8]) {
    super::check::init();
    let file = TempFile::new("safetensors", data);
    if let Ok((arrays, _metadata)) = io::load_safetensors(&file.0) {
        arrays.values().for_each(|a| {
            check_array(a);
        });
    }
    drop(file);
    if let Ok((arrays, _metadata)) = io::load_safetensors_from_reader(&mut Cursor::new(data)) {
        arrays.values().for_each(|a| {
            check_array(a);
        });
    }
}

/// `io::load_gguf` on `data`, metadata arrays included. mlx-c 0.7.0 has no GGUF reader form.
pub fn gguf(data: &[u8]) {
    super::check::init();
    let file = TempFile::new("gguf", data);
    if let Ok((arrays, metadata)) = io::load_gguf(&file.0) {
        arrays.values().for_each(|a| {
            check_array(a);
        });
        for value in metadata.values() {
            if let io::GgufMetadata::Array(a) = value {
                check_array(a);
            }
        }
    }
}

/// `io::load` (lazy) and `io::load_from_reader` on `data`.
pub fn npy(data: &[u8]) {
    super::check::init();
    let file = TempFile::new("npy", data);
    if let Ok(a) = io::load(&file.0) {
        check_array(&a);
    }
    drop(file);
    if let Ok(a) = io::load_from_reader(&mut Cursor::new(data)) {
        check_array(&a);
    }
}
