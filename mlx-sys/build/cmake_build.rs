//! Configures and builds mlx-c (and, on macOS, MLX itself) with CMake.
//!
//! CMake is driven directly rather than through the `cmake` crate: on macOS that crate passes the
//! `cc` crate's flags, whose deployment target defaults to the SDK's version, next to the
//! `CMAKE_OSX_DEPLOYMENT_TARGET` MLX reads (objects and metallib for different macOS versions); it
//! takes the compiler from `PATH` as CMake does; it cannot tell CMake the host processor under
//! Rosetta. The README's "Why not the cmake crate" gives the details. What the crate would add
//! here (build type, job count, architecture) is three arguments below.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::{Backend, Config, Xcode};
use crate::error::BuildError;
use crate::macos;
use crate::mlx_install::MlxInstall;
use crate::pins;
use crate::process::{run, run_logged};

/// Where MLX comes from for the CMake build.
pub enum MlxSource<'a> {
    /// An installed MLX package, found with `find_package(MLX)`.
    Installed(&'a MlxInstall),
    /// MLX built from source by mlx-c's CMake, from an already patched tree.
    FromSource {
        /// The patched MLX source tree.
        source: &'a Path,
        /// Where MLX writes `mlx.metallib` and where the library looks for it at run time.
        metallib_dir: &'a Path,
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
                          cmake g++; macOS: Xcode with its Metal toolchain, and `brew install \
                          cmake`); set CMAKE to use another cmake";

/// Configures and builds mlx-c from the (patched) source tree `mlx_c_src`. `xcode` is the probe of
/// the Apple toolchain, present exactly on macOS.
pub fn build(
    cfg: &Config,
    mlx_c_src: &Path,
    mlx: MlxSource<'_>,
    xcode: Option<&Xcode>,
) -> Result<Built, BuildError> {
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
    if let (Some(xcode), Some(deployment_target)) = (xcode, &cfg.deployment_target) {
        configure.args(macos::cmake_args(&macos::CmakeTarget {
            target: &cfg.target,
            host: &cfg.host,
            target_arch: &cfg.target_arch,
            deployment_target,
            cc: &xcode.cc,
            cxx: &xcode.cxx,
        })?);
    }
    match &mlx {
        MlxSource::Installed(install) => {
            configure
                .arg("-DMLX_C_USE_SYSTEM_MLX=ON")
                .arg(format!("-DMLX_DIR={}", install.prefix.join("share/cmake/MLX").display()));
        }
        MlxSource::FromSource { source, metallib_dir } => {
            let metal = cfg.backend == Backend::Metal;
            configure
                .arg("-DMLX_C_USE_SYSTEM_MLX=OFF")
                .arg(format!("-DMLX_BUILD_METAL={}", on_off(metal)))
                .arg("-DMLX_BUILD_CPU=ON")
                .arg(format!("-DFETCHCONTENT_SOURCE_DIR_MLX={}", source.display()));
            if metal {
                configure.arg(format!("-DMLX_METAL_PATH={}", metallib_dir.display()));
            }
            for (name, dir) in &cfg.dependency_sources {
                configure.arg(format!("-DFETCHCONTENT_SOURCE_DIR_{name}={}", dir.display()));
            }
            if cfg.offline {
                let given: Vec<&str> = cfg.dependency_sources.iter().map(|(n, _)| *n).collect();
                let missing = macos::missing_offline_sources(&build_dir, &given, metal);
                if !missing.is_empty() {
                    return Err(macos::offline_sources_error(&missing, pins::MLX_VERSION));
                }
                configure.arg("-DFETCHCONTENT_FULLY_DISCONNECTED=ON");
            }
        }
    }
    run_logged(&mut configure, CMAKE_HINT)?;
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
