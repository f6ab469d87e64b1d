//! Finds the pinned mlx-c source tree: a user checkout (`MLX_C_SRC`), the cache, or the registry.
//!
//! mlx-c's only copy reachable from a Rust registry is inside the `mlx-sys` 0.7.0 package. It is
//! fetched with cargo itself (so registry mirrors and `CARGO_HOME` are honoured, and the archive is
//! shared with every other project on the machine), checked against the pinned SHA-256, and its
//! `src/mlx-c` tree is unpacked into the cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::read::GzDecoder;

use crate::config::Config;
use crate::error::BuildError;
use crate::files::{CacheEntry, verify_sha256};
use crate::pins;
use crate::process::run;

/// Returns the root of an unpatched mlx-c source tree at the pinned version.
pub fn locate(cfg: &Config) -> Result<PathBuf, BuildError> {
    if let Some(dir) = &cfg.mlx_c_src {
        check_tree(dir).map_err(|e| e.context("MLX_C_SRC"))?;
        println!("cargo:rerun-if-changed={}", dir.display());
        return Ok(dir.clone());
    }
    let entry = CacheEntry::new(&cfg.cache_dir, &format!("mlx-c-{}", pins::MLX_C_VERSION));
    if !entry.is_complete() {
        let archive = registry_archive(cfg)?;
        verify_sha256(&archive, pins::MLX_C_CRATE_SHA256)?;
        entry.fill(|staging| unpack_mlx_c(&archive, staging))?;
    }
    check_tree(&entry.dir)?;
    Ok(entry.dir)
}

/// Fails unless `dir` looks like mlx-c at the pinned version.
fn check_tree(dir: &Path) -> Result<(), BuildError> {
    let cmake_lists = dir.join("CMakeLists.txt");
    let text = fs::read_to_string(&cmake_lists).map_err(|_| {
        BuildError::new(format!(
            "{} is not an mlx-c source tree (no CMakeLists.txt)",
            dir.display()
        ))
    })?;
    if !dir.join("mlx/c/mlx.h").is_file() {
        return Err(BuildError::new(format!(
            "{} is not an mlx-c source tree (no mlx/c/mlx.h)",
            dir.display()
        )));
    }
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("set(MLX_C_VERSION "))
        .map(|rest| rest.trim_end_matches(')').trim().to_owned());
    match version {
        Some(v) if v == pins::MLX_C_VERSION => Ok(()),
        Some(v) => Err(BuildError::new(format!(
            "{} holds mlx-c {v}, but these bindings are pinned to mlx-c {} (with MLX {}): \
             check out tag v{} there, or unset MLX_C_SRC to use the pinned archive",
            dir.display(),
            pins::MLX_C_VERSION,
            pins::MLX_VERSION,
            pins::MLX_C_VERSION
        ))),
        None => Err(BuildError::new(format!(
            "cannot read the mlx-c version from {}",
            cmake_lists.display()
        ))),
    }
}

/// The registry cache cargo keeps `.crate` archives in.
fn cargo_registry_cache(cfg: &Config) -> Option<PathBuf> {
    Some(cfg.cargo_home.as_ref()?.join("registry").join("cache"))
}

fn find_cached_archive(cfg: &Config) -> Option<PathBuf> {
    let file = format!("{}-{}.crate", pins::MLX_C_CRATE, pins::MLX_C_VERSION);
    let registries = fs::read_dir(cargo_registry_cache(cfg)?).ok()?;
    registries
        .filter_map(Result::ok)
        .map(|registry| registry.path().join(&file))
        .find(|candidate| candidate.is_file())
}

/// The path of the pinned `.crate` archive, fetching it with cargo if no registry cache has it.
fn registry_archive(cfg: &Config) -> Result<PathBuf, BuildError> {
    if let Some(found) = find_cached_archive(cfg) {
        return Ok(found);
    }
    if cfg.offline {
        return Err(offline_error(cfg));
    }
    let project = cfg.cache_dir.join("fetch-mlx-c");
    fs::create_dir_all(project.join("src")).map_err(|e| BuildError::io("create", &project, e))?;
    let manifest = format!(
        "[package]\nname = \"mlx-sys-fetch-mlx-c\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[workspace]\n\n[dependencies]\n{} = \"={}\"\n",
        pins::MLX_C_CRATE,
        pins::MLX_C_VERSION
    );
    let manifest_path = project.join("Cargo.toml");
    fs::write(&manifest_path, manifest).map_err(|e| BuildError::io("write", &manifest_path, e))?;
    let lib = project.join("src/lib.rs");
    fs::write(&lib, "").map_err(|e| BuildError::io("write", &lib, e))?;
    run(
        Command::new(&cfg.cargo)
            .arg("fetch")
            .arg("--manifest-path")
            .arg(&manifest_path)
            .env_remove("CARGO_TARGET_DIR"),
        "cargo could not fetch the mlx-c sources from the registry; check the network, or point \
         MLX_C_SRC at an mlx-c 0.7.0 checkout",
    )?;
    find_cached_archive(cfg).ok_or_else(|| {
        BuildError::new(format!(
            "cargo fetched {} {} but its archive is not under {:?}",
            pins::MLX_C_CRATE,
            pins::MLX_C_VERSION,
            cargo_registry_cache(cfg)
        ))
    })
}

/// Unpacks the mlx-c tree out of the `.crate` archive into `into`.
fn unpack_mlx_c(archive: &Path, into: &Path) -> Result<(), BuildError> {
    let file = fs::File::open(archive).map_err(|e| BuildError::io("open", archive, e))?;
    let prefix = Path::new(&format!("{}-{}", pins::MLX_C_CRATE, pins::MLX_C_VERSION))
        .join(pins::MLX_C_CRATE_SUBDIR);
    let mut tar = tar::Archive::new(GzDecoder::new(file));
    let entries = tar.entries().map_err(|e| BuildError::io("read", archive, e))?;
    let mut unpacked = 0usize;
    for entry in entries {
        let mut entry = entry.map_err(|e| BuildError::io("read", archive, e))?;
        let path = entry.path().map_err(|e| BuildError::io("read", archive, e))?.into_owned();
        let Ok(relative) = path.strip_prefix(&prefix) else {
            continue;
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = into.join(relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| BuildError::io("create", parent, e))?;
        }
        entry.unpack(&target).map_err(|e| BuildError::io("unpack", &target, e))?;
        unpacked += 1;
    }
    if unpacked == 0 {
        return Err(BuildError::new(format!(
            "{} has no {} directory",
            archive.display(),
            pins::MLX_C_CRATE_SUBDIR
        )));
    }
    Ok(())
}

fn offline_error(cfg: &Config) -> BuildError {
    BuildError::new(format!(
        "offline build, and the mlx-c {ver} sources are not available. Options:\n  \
         1. point MLX_C_SRC at an mlx-c {ver} checkout;\n  \
         2. build once online (the sources are cached in {cache});\n  \
         3. run `cargo fetch` in a project that depends on {krate} = \"={ver}\" while online \
            (the build reuses cargo's registry cache);\n  \
         4. unset CARGO_NET_OFFLINE / MLX_SYS_OFFLINE to let the build fetch it.",
        ver = pins::MLX_C_VERSION,
        cache = cfg.cache_dir.display(),
        krate = pins::MLX_C_CRATE,
    ))
}
