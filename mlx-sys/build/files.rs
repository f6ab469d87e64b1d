//! File-system helpers: checksums, tree copies and all-or-nothing cache entries.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::BuildError;

/// The name of the marker file that makes a cache entry complete.
const COMPLETE_MARKER: &str = ".mlx-sys-complete";

/// Lower-case hex SHA-256 of a file's contents.
pub fn sha256_file(path: &Path) -> Result<String, BuildError> {
    let mut file = fs::File::open(path).map_err(|e| BuildError::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| BuildError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Fails unless `path` hashes to `expected`.
pub fn verify_sha256(path: &Path, expected: &str) -> Result<(), BuildError> {
    let actual = sha256_file(path)?;
    if actual == expected {
        Ok(())
    } else {
        Err(BuildError::new(format!(
            "checksum mismatch for {}: expected SHA-256 {expected}, got {actual}; \
             delete the file and build again, or report it if it persists",
            path.display()
        )))
    }
}

/// Copies the directory tree `from` into `to` (created if missing), following no symlinks and
/// skipping `.git`. Files listed in `except` (relative paths with `/`) are left alone: they are
/// the patched files, which [`crate::patches::sync_patched`] writes.
pub fn copy_tree(from: &Path, to: &Path, except: &[String]) -> Result<(), BuildError> {
    copy_tree_at(from, to, "", except)
}

fn copy_tree_at(
    from: &Path,
    to: &Path,
    relative: &str,
    except: &[String],
) -> Result<(), BuildError> {
    fs::create_dir_all(to).map_err(|e| BuildError::io("create", to, e))?;
    let entries = fs::read_dir(from).map_err(|e| BuildError::io("list", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BuildError::io("list", from, e))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if relative.is_empty() { name.clone() } else { format!("{relative}/{name}") };
        let kind = entry.file_type().map_err(|e| BuildError::io("stat", &source, e))?;
        if kind.is_dir() {
            if name == ".git" {
                continue;
            }
            copy_tree_at(&source, &target, &path, except)?;
        } else if kind.is_file() && !except.contains(&path) {
            copy_if_changed(&source, &target)?;
        }
    }
    Ok(())
}

/// Copies a file unless the target already has the same contents, so that CMake sees unchanged
/// sources as unchanged.
fn copy_if_changed(source: &Path, target: &Path) -> Result<(), BuildError> {
    let data = fs::read(source).map_err(|e| BuildError::io("read", source, e))?;
    if fs::read(target).is_ok_and(|old| old == data) {
        return Ok(());
    }
    fs::write(target, data).map_err(|e| BuildError::io("write", target, e))
}

/// A cache entry: a directory that is either complete or absent.
#[derive(Debug)]
pub struct CacheEntry {
    /// The final directory.
    pub dir: PathBuf,
}

impl CacheEntry {
    /// The entry `name` under `cache_dir`.
    pub fn new(cache_dir: &Path, name: &str) -> CacheEntry {
        CacheEntry { dir: cache_dir.join(name) }
    }

    /// True when a previous build finished filling the entry.
    pub fn is_complete(&self) -> bool {
        self.dir.join(COMPLETE_MARKER).is_file()
    }

    /// Fills the entry: `fill` writes into a fresh staging directory, which then replaces the
    /// entry in one rename. A failed or interrupted fill leaves no complete entry behind.
    pub fn fill(
        &self,
        fill: impl FnOnce(&Path) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let parent = self.dir.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(|e| BuildError::io("create", parent, e))?;
        let staging = parent.join(format!(
            ".staging-{}-{}",
            self.dir.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging).map_err(|e| BuildError::io("create", &staging, e))?;
        let result = fill(&staging).and_then(|()| {
            fs::write(staging.join(COMPLETE_MARKER), b"")
                .map_err(|e| BuildError::io("write", &staging, e))
        });
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        let _ = fs::remove_dir_all(&self.dir);
        match fs::rename(&staging, &self.dir) {
            Ok(()) => Ok(()),
            // Another build filled the entry at the same time: keep theirs.
            Err(_) if self.is_complete() => {
                let _ = fs::remove_dir_all(&staging);
                Ok(())
            }
            Err(e) => Err(BuildError::io("rename into", &self.dir, e)),
        }
    }
}

/// Points `link` at `target`, replacing whatever `link` was.
pub fn symlink_dir(target: &Path, link: &Path) -> Result<(), BuildError> {
    if fs::read_link(link).is_ok_and(|old| old == target) {
        return Ok(());
    }
    let _ = fs::remove_file(link);
    let _ = fs::remove_dir_all(link);
    #[cfg(unix)]
    let made = std::os::unix::fs::symlink(target, link);
    #[cfg(windows)]
    let made = std::os::windows::fs::symlink_dir(target, link);
    made.map_err(|e| BuildError::io("link", link, e))
}
