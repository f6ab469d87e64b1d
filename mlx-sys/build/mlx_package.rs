//! Finds an installed MLX (Linux, or macOS with `MLX_DIR`): its headers to compile mlx-c against,
//! the `libmlx` to link, and the `libmlx` to load at run time.
//!
//! Discovery order: `MLX_DIR`, then the MLX of the active Python (`python3 -m mlx --cmake-dir`)
//! when its version matches, then the official wheel for the backend, fetched with pip.

use std::path::PathBuf;
use std::process::Command;

use crate::config::{Backend, Config};
use crate::error::BuildError;
use crate::mlx_install::MlxInstall;
use crate::wheel;

/// The MLX to link and the MLX to load at run time.
#[derive(Debug)]
pub struct Located {
    /// What mlx-c is compiled and linked against. A CUDA build of MLX cannot be linked without the
    /// CUDA libraries, so this is a CPU build unless `MLX_DIR` says otherwise.
    pub linked: MlxInstall,
    /// What is loaded at run time: the CUDA build for the CUDA backend (same soname, same C++ API),
    /// otherwise `linked`.
    pub running: MlxInstall,
}

/// Finds (or fetches) both installations.
pub fn locate(cfg: &Config) -> Result<Located, BuildError> {
    if let Some(dir) = &cfg.mlx_dir {
        let linked = MlxInstall::from_cmake_dir(dir, "MLX_DIR")?;
        let running = running_for(cfg, &linked, None)?;
        return Ok(Located { linked, running });
    }
    let python = from_python(cfg);
    let linked = match &python {
        Some(found) if !found.cuda => found.clone(),
        _ => wheel::install(cfg, Backend::Cpu)?,
    };
    let running = running_for(cfg, &linked, python)?;
    Ok(Located { linked, running })
}

fn running_for(
    cfg: &Config,
    linked: &MlxInstall,
    python: Option<MlxInstall>,
) -> Result<MlxInstall, BuildError> {
    if cfg.backend != Backend::Cuda || linked.cuda {
        return Ok(linked.clone());
    }
    match python {
        Some(found) if found.cuda => Ok(found),
        _ => wheel::install(cfg, Backend::Cuda),
    }
}

/// The MLX of the active Python, when it has one at the pinned version.
fn from_python(cfg: &Config) -> Option<MlxInstall> {
    let output = Command::new(&cfg.python).args(["-m", "mlx", "--cmake-dir"]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    match MlxInstall::from_cmake_dir(&dir, &format!("the MLX of {}", cfg.python)) {
        Ok(found) => Some(found),
        Err(e) => {
            println!("cargo:warning=ignoring {}: {e}", dir.display());
            None
        }
    }
}
