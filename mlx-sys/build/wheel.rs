//! Fetches MLX's official Linux wheels with pip, checks them against the pinned SHA-256 and
//! unpacks them into the cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::{Backend, Config};
use crate::error::BuildError;
use crate::files::{CacheEntry, verify_sha256};
use crate::mlx_install::MlxInstall;
use crate::pins;
use crate::process::run;

/// The PyPI distribution that ships `libmlx` for a backend.
fn distribution(backend: Backend) -> Result<&'static str, BuildError> {
    match backend {
        Backend::Cpu => Ok("mlx-cpu"),
        Backend::Cuda => Ok("mlx-cuda-13"),
        Backend::Metal => Err(BuildError::new(
            "MLX publishes no Metal wheel with a C++ package; macOS builds MLX from source",
        )),
    }
}

/// Returns the unpacked wheel for `backend`, fetching it on first use.
pub fn install(cfg: &Config, backend: Backend) -> Result<MlxInstall, BuildError> {
    let dist = distribution(backend)?;
    let arch = &cfg.target_arch;
    let platform = format!("manylinux_2_35_{arch}");
    let file_name =
        format!("{}-{}-py3-none-{platform}.whl", dist.replace('-', "_"), pins::MLX_VERSION);
    let expected = pins::WHEEL_SHA256
        .iter()
        .find(|(name, _)| *name == file_name)
        .map(|(_, sha)| *sha)
        .ok_or_else(|| {
            BuildError::new(format!(
                "no official {dist} {} wheel is pinned for {arch} Linux; build MLX {} yourself \
                 and point MLX_DIR at its share/cmake/MLX",
                pins::MLX_VERSION,
                pins::MLX_VERSION
            ))
        })?;
    let entry =
        CacheEntry::new(&cfg.cache_dir, &format!("wheel-{dist}-{}-{arch}", pins::MLX_VERSION));
    if !entry.is_complete() {
        if cfg.offline {
            return Err(offline_error(cfg, dist));
        }
        entry.fill(|staging| {
            let download = staging.join("download");
            pip_download(cfg, dist, &platform, &download)?;
            let wheel = download.join(&file_name);
            verify_sha256(&wheel, expected)?;
            unzip(cfg, &wheel, &staging.join("site"))?;
            fs::remove_dir_all(&download).map_err(|e| BuildError::io("remove", &download, e))
        })?;
    }
    let cmake_dir = site_dir(&entry.dir).join("mlx/share/cmake/MLX");
    MlxInstall::from_cmake_dir(&cmake_dir, &format!("the {dist} wheel"))
}

fn site_dir(entry: &Path) -> PathBuf {
    entry.join("site")
}

fn pip_download(cfg: &Config, dist: &str, platform: &str, into: &Path) -> Result<(), BuildError> {
    run(
        Command::new(&cfg.python)
            .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check"])
            .args(["--no-deps", "--only-binary=:all:", "--platform", platform, "--dest"])
            .arg(into)
            .arg(format!("{dist}=={}", pins::MLX_VERSION)),
        &format!(
            "the build fetches MLX's {dist} wheel with `{} -m pip`: install pip (Debian: apt-get \
             install python3-pip), set MLX_SYS_PYTHON to a Python that has it, or point MLX_DIR \
             at an installed MLX {}",
            cfg.python,
            pins::MLX_VERSION
        ),
    )
    .map(drop)
}

fn unzip(cfg: &Config, wheel: &Path, into: &Path) -> Result<(), BuildError> {
    run(
        Command::new(&cfg.python).args(["-m", "zipfile", "-e"]).arg(wheel).arg(into),
        "the wheel is unpacked with Python's zipfile module",
    )
    .map(drop)
}

fn offline_error(cfg: &Config, dist: &str) -> BuildError {
    BuildError::new(format!(
        "offline build, and no MLX {ver} is available. Options:\n  \
         1. point MLX_DIR at an installed MLX {ver} (its share/cmake/MLX directory);\n  \
         2. `pip install \"mlx[cpu]=={ver}\"` into the Python the build uses ({python}, or MLX_SYS_PYTHON);\n  \
         3. build once online (the {dist} wheel is cached in {cache});\n  \
         4. unset CARGO_NET_OFFLINE / MLX_SYS_OFFLINE to let the build fetch the wheel.",
        ver = pins::MLX_VERSION,
        python = cfg.python,
        cache = cfg.cache_dir.display(),
    ))
}
