//! Finds an installed MLX (Linux, or macOS with `MLX_DIR`): its headers to compile mlx-c against,
//! the `libmlx` to link, and the `libmlx` to load at run time.
//!
//! Discovery order: `MLX_DIR`, then the MLX of the active Python (`python3 -m mlx --cmake-dir`)
//! when its version matches, then the official wheel for the backend, fetched with pip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BuildError;
use crate::config::{Backend, Config};
use crate::pins;
use crate::wheel;

/// An MLX installation laid out as MLX installs itself: `include/`, `lib/`, `share/cmake/MLX/`.
#[derive(Clone, Debug)]
pub struct MlxInstall {
    /// The install prefix.
    pub prefix: PathBuf,
    /// True when this MLX was built with the CUDA backend.
    pub cuda: bool,
}

impl MlxInstall {
    /// Reads an installation from its CMake package directory and checks its version;
    /// `dir` may also be the install prefix (what `python3 -m mlx --cmake-dir` prints).
    pub fn from_cmake_dir(dir: &Path, origin: &str) -> Result<MlxInstall, BuildError> {
        let nested = dir.join("share/cmake/MLX");
        let cmake_dir = if nested.join("MLXConfig.cmake").is_file() { &nested } else { dir };
        let config = fs::read_to_string(cmake_dir.join("MLXConfig.cmake")).map_err(|_| {
            BuildError::new(format!(
                "{origin}: {} is not MLX's CMake package directory (no MLXConfig.cmake); it is \
                 the directory `python3 -m mlx --cmake-dir` prints, <prefix>/share/cmake/MLX",
                cmake_dir.display()
            ))
        })?;
        let version = read_package_version(cmake_dir)?;
        if version != pins::MLX_VERSION {
            return Err(BuildError::new(format!(
                "{origin}: {} is MLX {version}, but mlx-c {} needs exactly MLX {} (a mismatched \
                 pair does not compile or misbehaves at run time). Install mlx=={} there, or \
                 unset it to let the build use the official {} wheel",
                cmake_dir.display(),
                pins::MLX_C_VERSION,
                pins::MLX_VERSION,
                pins::MLX_VERSION,
                pins::MLX_VERSION
            )));
        }
        let prefix = cmake_dir
            .ancestors()
            .nth(3)
            .ok_or_else(|| BuildError::new(format!("{}: no install prefix", cmake_dir.display())))?
            .to_path_buf();
        Ok(MlxInstall { prefix, cuda: declares_cuda(&config) })
    }

    /// The directory holding `mlx/mlx.h`.
    pub fn include_dir(&self) -> PathBuf {
        self.prefix.join("include")
    }

    /// The directory holding `libmlx`.
    pub fn lib_dir(&self) -> PathBuf {
        self.prefix.join("lib")
    }
}

/// `set(PACKAGE_VERSION "x.y.z")` from `MLXConfigVersion.cmake`.
fn read_package_version(cmake_dir: &Path) -> Result<String, BuildError> {
    let path = cmake_dir.join("MLXConfigVersion.cmake");
    let text = fs::read_to_string(&path).map_err(|e| BuildError::io("read", &path, e))?;
    text.lines()
        .find_map(|line| line.trim().strip_prefix("set(PACKAGE_VERSION \""))
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned)
        .ok_or_else(|| BuildError::new(format!("no PACKAGE_VERSION in {}", path.display())))
}

/// MLX's CMake config pulls in the CUDA toolkit under `if(ON)` when built with CUDA.
fn declares_cuda(config: &str) -> bool {
    let lines: Vec<&str> = config.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines
        .windows(2)
        .any(|pair| pair[0] == "if(ON)" && pair[1].starts_with("find_dependency(CUDAToolkit"))
}

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
