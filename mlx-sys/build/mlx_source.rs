//! Finds the MLX source tree for the macOS source build: a user checkout
//! (`FETCHCONTENT_SOURCE_DIR_MLX`) or one shallow clone of the pinned tag in the cache, shared by
//! every profile and project (mlx-c's CMake would clone it again into each build tree).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::Config;
use crate::error::BuildError;
use crate::files::CacheEntry;
use crate::macos;
use crate::pins;
use crate::process::run;

/// Returns the root of an unpatched MLX source tree at the pinned version.
pub fn locate(cfg: &Config) -> Result<PathBuf, BuildError> {
    if let Some(dir) = &cfg.mlx_src {
        check_tree(dir).map_err(|e| e.context("FETCHCONTENT_SOURCE_DIR_MLX"))?;
        println!("cargo:rerun-if-changed={}", dir.display());
        return Ok(dir.clone());
    }
    let entry = CacheEntry::new(&cfg.cache_dir, &format!("mlx-{}", pins::MLX_VERSION));
    if !entry.is_complete() {
        if cfg.offline {
            return Err(offline_error(cfg));
        }
        entry.fill(clone)?;
    }
    check_tree(&entry.dir)?;
    Ok(entry.dir)
}

/// Shallow-clones the pinned tag into `into` (an empty directory), without its `.git`.
fn clone(into: &Path) -> Result<(), BuildError> {
    run(
        Command::new("git")
            .args(["-c", "advice.detachedHead=false", "clone", "--quiet", "--depth", "1"])
            .args(["--branch", pins::MLX_GIT_TAG, pins::MLX_GIT_URL])
            .arg(into),
        &format!(
            "the macOS build clones MLX {} with git (part of Xcode's command line tools); check \
             the network, or set FETCHCONTENT_SOURCE_DIR_MLX to an MLX {} checkout",
            pins::MLX_VERSION,
            pins::MLX_VERSION
        ),
    )?;
    let git = into.join(".git");
    fs::remove_dir_all(&git).map_err(|e| BuildError::io("remove", &git, e))
}

/// Fails unless `dir` looks like MLX at the pinned version.
fn check_tree(dir: &Path) -> Result<(), BuildError> {
    let header = dir.join("mlx/version.h");
    let text = fs::read_to_string(&header).map_err(|_| {
        BuildError::new(format!("{} is not an MLX source tree (no mlx/version.h)", dir.display()))
    })?;
    match macos::mlx_version_from_header(&text) {
        Some(v) if v == pins::MLX_VERSION => Ok(()),
        Some(v) => Err(BuildError::new(format!(
            "{} holds MLX {v}, but mlx-c {} needs exactly MLX {}: check out tag {} there",
            dir.display(),
            pins::MLX_C_VERSION,
            pins::MLX_VERSION,
            pins::MLX_GIT_TAG
        ))),
        None => {
            Err(BuildError::new(format!("cannot read the MLX version from {}", header.display())))
        }
    }
}

fn offline_error(cfg: &Config) -> BuildError {
    BuildError::new(format!(
        "offline build, and the MLX {ver} sources are not available. Options:\n  \
         1. set FETCHCONTENT_SOURCE_DIR_MLX to an MLX {ver} checkout (`git clone --depth 1 \
            --branch {tag} {url}`);\n  \
         2. build once online (the sources are cached in {cache});\n  \
         3. unset CARGO_NET_OFFLINE / MLX_SYS_OFFLINE to let the build fetch them.",
        ver = pins::MLX_VERSION,
        tag = pins::MLX_GIT_TAG,
        url = pins::MLX_GIT_URL,
        cache = cfg.cache_dir.display(),
    ))
}
