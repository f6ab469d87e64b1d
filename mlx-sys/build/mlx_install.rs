//! An installed MLX, laid out as MLX installs itself, read from its CMake package directory.
//!
//! Shared by [`crate::mlx_package`] (which decides which installation to use) and
//! [`crate::wheel`] (which unpacks one), so that neither imports the other.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::BuildError;
use crate::pins;

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
