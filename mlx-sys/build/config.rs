//! Everything the build reads from its environment, read in one place.
//!
//! Each user-facing variable goes through [`user_var`], which also tells cargo to re-run the build
//! script when it changes. Variables that cargo itself sets go through [`cargo_var`].

use std::env;
use std::path::PathBuf;

use crate::BuildError;

/// The native backend MLX runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The CPU build (`mlx-cpu` wheel on Linux).
    Cpu,
    /// NVIDIA GPUs through MLX's CUDA backend (`mlx-cuda-13` wheel on Linux).
    Cuda,
    /// Apple GPUs through Metal (source build on macOS).
    Metal,
}

impl Backend {
    /// The lowercase name used in `MLX_BACKEND` and in the exported metadata.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
            Backend::Metal => "metal",
        }
    }
}

/// Whether the Metal-compatibility patches are applied on macOS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetalCompat {
    /// Applied when the macOS SDK predates macOS 26 (the default).
    Auto,
    /// Always applied.
    On,
    /// Never applied.
    Off,
}

/// The build's view of its environment.
#[derive(Debug)]
pub struct Config {
    /// Cargo's `OUT_DIR`.
    pub out_dir: PathBuf,
    /// The `mlx-sys` package directory.
    pub manifest_dir: PathBuf,
    /// The target operating system (`CARGO_CFG_TARGET_OS`).
    pub target_os: String,
    /// The selected backend.
    pub backend: Backend,
    /// True when nothing may be downloaded.
    pub offline: bool,
    /// Where fetched sources and wheels are kept between builds and projects.
    pub cache_dir: PathBuf,
    /// The Python interpreter used for discovery and for pip.
    pub python: String,
    /// The cmake executable.
    pub cmake: String,
    /// The cargo executable (used to fetch the mlx-c package from the registry).
    pub cargo: String,
    /// `MLX_C_SRC`: an mlx-c checkout to build instead of the pinned archive.
    pub mlx_c_src: Option<PathBuf>,
    /// `MLX_DIR`: an installed MLX's CMake package directory.
    pub mlx_dir: Option<PathBuf>,
    /// `FETCHCONTENT_SOURCE_DIR_MLX`: an MLX checkout for the macOS source build.
    pub mlx_src: Option<PathBuf>,
    /// `MLX_METAL_COMPAT`.
    pub metal_compat: MetalCompat,
    /// The CMake build type that follows the cargo profile.
    pub cmake_build_type: &'static str,
    /// Parallel jobs for the native build (cargo's `NUM_JOBS`).
    pub jobs: String,
}

/// Reads a variable the user may set, and asks cargo to re-run the build when it changes.
/// Empty values count as unset.
pub fn user_var(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Reads a variable that cargo sets for build scripts.
pub fn cargo_var(name: &str) -> Result<String, BuildError> {
    env::var(name).map_err(|_| BuildError::new(format!("cargo did not set {name}")))
}

fn truthy(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// True when the build runs on docs.rs, which has neither network nor MLX.
pub fn is_docs_rs() -> bool {
    user_var("DOCS_RS").is_some()
}

impl Config {
    /// Reads the whole configuration, failing on contradictory or unknown settings.
    pub fn from_env() -> Result<Config, BuildError> {
        let target_os = cargo_var("CARGO_CFG_TARGET_OS")?;
        let backend = select_backend(&target_os)?;
        let offline = user_var("CARGO_NET_OFFLINE").is_some_and(|v| truthy(&v))
            || user_var("MLX_SYS_OFFLINE").is_some_and(|v| truthy(&v));
        let metal_compat =
            match user_var("MLX_METAL_COMPAT").as_deref().map(str::to_ascii_lowercase) {
                None => MetalCompat::Auto,
                Some(v) if v == "auto" => MetalCompat::Auto,
                Some(v) if truthy(&v) => MetalCompat::On,
                Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => MetalCompat::Off,
                Some(v) => {
                    return Err(BuildError::new(format!(
                        "MLX_METAL_COMPAT={v} is not understood: use auto, on or off"
                    )));
                }
            };
        let opt_level = cargo_var("OPT_LEVEL")?;
        let debug = cargo_var("DEBUG").is_ok_and(|v| v == "true");
        let cmake_build_type = match (opt_level.as_str(), debug) {
            ("0", _) => "Debug",
            (_, true) => "RelWithDebInfo",
            _ => "Release",
        };
        Ok(Config {
            out_dir: PathBuf::from(cargo_var("OUT_DIR")?),
            manifest_dir: PathBuf::from(cargo_var("CARGO_MANIFEST_DIR")?),
            target_os,
            backend,
            offline,
            cache_dir: cache_dir()?,
            python: user_var("MLX_SYS_PYTHON").unwrap_or_else(|| "python3".to_owned()),
            cmake: user_var("CMAKE").unwrap_or_else(|| "cmake".to_owned()),
            cargo: env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()),
            mlx_c_src: user_var("MLX_C_SRC").map(PathBuf::from),
            mlx_dir: user_var("MLX_DIR").map(PathBuf::from),
            mlx_src: user_var("FETCHCONTENT_SOURCE_DIR_MLX").map(PathBuf::from),
            metal_compat,
            cmake_build_type,
            jobs: cargo_var("NUM_JOBS").unwrap_or_else(|_| "1".to_owned()),
        })
    }

    /// True when building for macOS.
    pub fn is_macos(&self) -> bool {
        self.target_os == "macos"
    }
}

fn select_backend(target_os: &str) -> Result<Backend, BuildError> {
    let cuda_feature = env::var_os("CARGO_FEATURE_CUDA").is_some();
    let backend = match user_var("MLX_BACKEND").map(|v| v.to_ascii_lowercase()) {
        Some(v) if v == "cpu" => Backend::Cpu,
        Some(v) if v == "cuda" => Backend::Cuda,
        Some(v) if v == "metal" => Backend::Metal,
        Some(v) => {
            return Err(BuildError::new(format!(
                "MLX_BACKEND={v} is not a backend: use cpu, cuda (Linux) or metal (macOS)"
            )));
        }
        None if cuda_feature => Backend::Cuda,
        None if target_os == "macos" => Backend::Metal,
        None => Backend::Cpu,
    };
    match (backend, target_os) {
        (Backend::Metal, os) if os != "macos" => Err(BuildError::new(format!(
            "the metal backend needs macOS, but the target OS is {os}"
        ))),
        (Backend::Cuda, "macos") => Err(BuildError::new(
            "the cuda backend needs Linux with an NVIDIA GPU; macOS uses metal or cpu",
        )),
        _ => Ok(backend),
    }
}

fn cache_dir() -> Result<PathBuf, BuildError> {
    if let Some(dir) = user_var("MLX_SYS_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = user_var("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("mlx-sys"));
    }
    match user_var("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("mlx-sys")),
        None => Err(BuildError::new(
            "no cache directory: set MLX_SYS_CACHE_DIR (or XDG_CACHE_HOME or HOME)",
        )),
    }
}
