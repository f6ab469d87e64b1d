//! Configures and builds mlx-c (and, on macOS, MLX itself) with CMake.
//!
//! CMake is driven directly rather than through a one-shot helper because the macOS source build
//! must patch MLX between configuring (which fetches MLX) and building.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BuildError;
use crate::config::{Backend, Config};
use crate::files::copy_tree;
use crate::mlx_package::MlxInstall;
use crate::process::{run, run_logged};

/// Where MLX comes from for the CMake build.
pub enum MlxSource<'a> {
    /// An installed MLX package, found with `find_package(MLX)`.
    Installed(&'a MlxInstall),
    /// MLX built from source by mlx-c's CMake; `patch` runs on MLX's source tree after
    /// configuring and before building.
    FromSource {
        /// Applies the MLX patches to the given source root.
        patch: &'a dyn Fn(&Path) -> Result<(), BuildError>,
    },
}

/// The products of the native build.
#[derive(Debug)]
pub struct Built {
    /// The CMake build directory.
    pub build_dir: PathBuf,
    /// The directory holding the static `libmlxc`.
    pub mlx_c_lib_dir: PathBuf,
}

const CMAKE_HINT: &str = "the build needs CMake 3.25 or newer and a C++20 compiler (Debian: apt-get install \
                          cmake g++; macOS: Xcode command line tools and `brew install cmake`); set \
                          CMAKE to use another cmake";

/// Configures and builds mlx-c from the (patched) source tree `mlx_c_src`.
pub fn build(cfg: &Config, mlx_c_src: &Path, mlx: MlxSource<'_>) -> Result<Built, BuildError> {
    let build_dir = cfg.out_dir.join("cmake-build");
    let mut configure = Command::new(&cfg.cmake);
    configure
        .arg("-S")
        .arg(mlx_c_src)
        .arg("-B")
        .arg(&build_dir)
        .arg(format!("-DCMAKE_BUILD_TYPE={}", cfg.cmake_build_type))
        .arg("-DBUILD_SHARED_LIBS=OFF")
        .arg("-DMLX_C_BUILD_EXAMPLES=OFF")
        .arg("-DCMAKE_POSITION_INDEPENDENT_CODE=ON");
    if cfg.is_macos() {
        let target = crate::config::user_var("MACOSX_DEPLOYMENT_TARGET")
            .unwrap_or_else(|| crate::pins::MACOS_DEPLOYMENT_TARGET.to_owned());
        configure.arg(format!("-DCMAKE_OSX_DEPLOYMENT_TARGET={target}"));
    }
    match &mlx {
        MlxSource::Installed(install) => {
            configure
                .arg("-DMLX_C_USE_SYSTEM_MLX=ON")
                .arg(format!("-DMLX_DIR={}", install.prefix.join("share/cmake/MLX").display()));
        }
        MlxSource::FromSource { .. } => {
            configure
                .arg("-DMLX_C_USE_SYSTEM_MLX=OFF")
                .arg(format!("-DMLX_BUILD_METAL={}", on_off(cfg.backend == Backend::Metal)))
                .arg("-DMLX_BUILD_CPU=ON");
            if let Some(src) = &cfg.mlx_src {
                // Patch a private copy, never the user's checkout.
                let copy = cfg.out_dir.join("mlx-src");
                copy_tree(src, &copy)?;
                configure.arg(format!("-DFETCHCONTENT_SOURCE_DIR_MLX={}", copy.display()));
            } else if cfg.offline {
                configure.arg("-DFETCHCONTENT_FULLY_DISCONNECTED=ON");
            }
        }
    }
    run_logged(&mut configure, CMAKE_HINT)?;
    if let MlxSource::FromSource { patch } = &mlx {
        let source = match &cfg.mlx_src {
            Some(_) => cfg.out_dir.join("mlx-src"),
            None => build_dir.join("_deps/mlx-src"),
        };
        if !source.join("CMakeLists.txt").is_file() {
            return Err(BuildError::new(format!(
                "CMake did not fetch MLX into {}: set FETCHCONTENT_SOURCE_DIR_MLX to an MLX {} \
                 checkout for offline builds",
                source.display(),
                crate::pins::MLX_VERSION
            )));
        }
        patch(&source)?;
    }
    run(
        Command::new(&cfg.cmake).arg("--build").arg(&build_dir).args([
            "--config",
            cfg.cmake_build_type,
            "--parallel",
            &cfg.jobs,
        ]),
        CMAKE_HINT,
    )?;
    let mlx_c_lib_dir = [build_dir.clone(), build_dir.join(cfg.cmake_build_type)]
        .into_iter()
        .find(|dir| dir.join(static_lib_name("mlxc")).is_file())
        .ok_or_else(|| {
            BuildError::new(format!(
                "CMake built no {} under {}",
                static_lib_name("mlxc"),
                build_dir.display()
            ))
        })?;
    Ok(Built { build_dir, mlx_c_lib_dir })
}

fn on_off(on: bool) -> &'static str {
    if on { "ON" } else { "OFF" }
}

/// The file name of a static library on this host.
pub fn static_lib_name(name: &str) -> String {
    if cfg!(windows) { format!("{name}.lib") } else { format!("lib{name}.a") }
}
