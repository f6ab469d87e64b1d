//! Everything the build reads from its environment, read in one place.
//!
//! Each user-facing variable goes through [`user_var`], which also tells cargo to re-run the build
//! script when it changes. Variables that cargo itself sets go through [`cargo_var`]. The Apple
//! toolchain is asked here too ([`Config::probe_xcode`]), once, before anything is configured.

use std::env;
use std::path::PathBuf;
use std::process::Command;

use crate::error::BuildError;
use crate::macos;
use crate::pins;
use crate::process::run;

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
    /// The target architecture (`CARGO_CFG_TARGET_ARCH`).
    pub target_arch: String,
    /// Cargo's target triple (`TARGET`).
    pub target: String,
    /// Cargo's host triple (`HOST`).
    pub host: String,
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
    /// Cargo's home (`CARGO_HOME`, else `~/.cargo`), whose registry cache may hold mlx-c.
    pub cargo_home: Option<PathBuf>,
    /// `MLX_C_SRC`: an mlx-c checkout to build instead of the pinned archive.
    pub mlx_c_src: Option<PathBuf>,
    /// `MLX_DIR`: an installed MLX's CMake package directory.
    pub mlx_dir: Option<PathBuf>,
    /// `FETCHCONTENT_SOURCE_DIR_MLX`: an MLX checkout for the macOS source build.
    pub mlx_src: Option<PathBuf>,
    /// `FETCHCONTENT_SOURCE_DIR_<NAME>` for MLX's own dependencies (macOS source build), by name.
    pub dependency_sources: Vec<(&'static str, PathBuf)>,
    /// `MLX_METAL_COMPAT`.
    pub metal_compat: MetalCompat,
    /// The CMake build type of the native code (`MLX_SYS_BUILD_TYPE`; optimised by default).
    pub cmake_build_type: &'static str,
    /// Parallel jobs for the native build (cargo's `NUM_JOBS`).
    pub jobs: String,
    /// macOS only: the validated deployment target of the native code.
    pub deployment_target: Option<String>,
    /// True when `MACOSX_DEPLOYMENT_TARGET` is set, so that rustc links for the same version.
    pub deployment_target_in_env: bool,
    /// macOS only: `MLX_METAL_PATH`, the directory for `mlx.metallib` chosen by the user.
    pub metal_path: Option<PathBuf>,
    /// macOS only: the C and C++ compilers chosen with `CC`/`CXX` (or their per-target forms).
    pub compilers: (Option<String>, Option<String>),
    /// `DEVELOPER_DIR`: the Xcode or command line tools in use, when set.
    pub developer_dir: Option<String>,
}

/// What the build learned from the Apple toolchain, asked once before configuring.
#[derive(Debug, Clone)]
pub struct Xcode {
    /// The macOS SDK version (`xcrun --sdk macosx --show-sdk-version`).
    pub sdk_version: String,
    /// The C compiler: the user's, or the SDK toolchain's clang.
    pub cc: String,
    /// The C++ compiler: the user's, or the SDK toolchain's clang++.
    pub cxx: String,
    /// Where that compiler keeps `libclang_rt.osx.a`, when it says.
    pub clang_rt_dir: Option<PathBuf>,
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
        let cmake_build_type =
            cmake_build_type(user_var("MLX_SYS_BUILD_TYPE").as_deref(), &opt_level, debug)?;
        let target = cargo_var("TARGET")?;
        let host = cargo_var("HOST")?;
        let macos = target_os == "macos";
        let deployment_env = user_var("MACOSX_DEPLOYMENT_TARGET");
        let deployment_target = if macos {
            Some(macos::deployment_target(
                deployment_env.as_deref(),
                pins::MACOS_DEPLOYMENT_TARGET,
            )?)
        } else {
            None
        };
        let compilers = if macos {
            let lookup = |name: &str| user_var(name);
            (
                macos::compiler_override(lookup, "CC", &target, &host),
                macos::compiler_override(lookup, "CXX", &target, &host),
            )
        } else {
            (None, None)
        };
        let dependency_sources = macos::MLX_DEPENDENCIES
            .iter()
            .filter_map(|(name, _)| {
                user_var(&format!("FETCHCONTENT_SOURCE_DIR_{name}")).map(|d| (*name, d.into()))
            })
            .collect();
        // Read for their re-run lines: both change the SDK and toolchain that xcrun finds.
        let developer_dir = user_var("DEVELOPER_DIR");
        let _ = user_var("SDKROOT");
        Ok(Config {
            out_dir: PathBuf::from(cargo_var("OUT_DIR")?),
            manifest_dir: PathBuf::from(cargo_var("CARGO_MANIFEST_DIR")?),
            target_arch: cargo_var("CARGO_CFG_TARGET_ARCH")?,
            target,
            host,
            target_os,
            backend,
            offline,
            cache_dir: cache_dir()?,
            python: user_var("MLX_SYS_PYTHON").unwrap_or_else(|| "python3".to_owned()),
            cmake: user_var("CMAKE").unwrap_or_else(|| "cmake".to_owned()),
            cargo: env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()),
            cargo_home: user_var("CARGO_HOME")
                .map(PathBuf::from)
                .or_else(|| user_var("HOME").map(|h| PathBuf::from(h).join(".cargo"))),
            mlx_c_src: user_var("MLX_C_SRC").map(PathBuf::from),
            mlx_dir: user_var("MLX_DIR").map(PathBuf::from),
            mlx_src: user_var("FETCHCONTENT_SOURCE_DIR_MLX").map(PathBuf::from),
            dependency_sources,
            metal_compat,
            cmake_build_type,
            jobs: cargo_var("NUM_JOBS").unwrap_or_else(|_| "1".to_owned()),
            deployment_target,
            deployment_target_in_env: deployment_env.is_some(),
            metal_path: if macos { user_var("MLX_METAL_PATH").map(PathBuf::from) } else { None },
            compilers,
            developer_dir,
        })
    }

    /// True when building for macOS.
    pub fn is_macos(&self) -> bool {
        self.target_os == "macos"
    }

    /// Asks the Apple toolchain for the SDK, the compilers, the Metal compiler (when `metal_kernels`:
    /// MLX is built from source with the Metal backend) and the compiler runtime, failing before
    /// anything is configured when one is missing.
    pub fn probe_xcode(&self, metal_kernels: bool) -> Result<Xcode, BuildError> {
        let developer_dir = self.developer_dir.clone().or_else(xcode_select_path);
        let sdk = Command::new("xcrun").args(["--sdk", "macosx", "--show-sdk-version"]).output();
        let sdk_version = match sdk {
            Ok(out) if out.status.success() => {
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            }
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                return Err(macos::sdk_error(&stderr, developer_dir.as_deref()));
            }
            Err(e) => {
                let why = format!("cannot start xcrun: {e}");
                return Err(macos::sdk_error(&why, developer_dir.as_deref()));
            }
        };
        let find = |tool: &str| -> Result<String, BuildError> {
            let out = run(
                Command::new("xcrun").args(["--sdk", "macosx", "--find", tool]),
                "the build uses the Xcode toolchain's compilers unless CC and CXX are set",
            )?;
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let cc = match &self.compilers.0 {
            Some(cc) => cc.clone(),
            None => find("clang")?,
        };
        let cxx = match &self.compilers.1 {
            Some(cxx) => cxx.clone(),
            None => find("clang++")?,
        };
        if metal_kernels && self.backend == Backend::Metal {
            let metal =
                Command::new("xcrun").args(["-sdk", "macosx", "metal", "--version"]).output();
            let (ran, stderr) = match metal {
                Ok(out) => {
                    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
                }
                Err(e) => (false, format!("cannot start xcrun: {e}")),
            };
            if let Some(problem) =
                macos::metal_toolchain_problem(ran, &stderr, developer_dir.as_deref())
            {
                return Err(BuildError::new(problem));
            }
        }
        let clang_rt_dir = Command::new(&cxx)
            .arg("-print-resource-dir")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| macos::clang_runtime_dir(&String::from_utf8_lossy(&out.stdout)));
        Ok(Xcode { sdk_version, cc, cxx, clang_rt_dir })
    }

    /// Whether MLX gets the Metal-compatibility patches: asked for with `MLX_METAL_COMPAT`, or, by
    /// default, when the macOS SDK predates macOS 26 (no Metal 4 language, no `macOS 26`
    /// availability symbols). Never off macOS or off the Metal backend.
    pub fn metal_compat_needed(&self, xcode: Option<&Xcode>) -> Result<bool, BuildError> {
        if !self.is_macos() || self.backend != Backend::Metal {
            return Ok(false);
        }
        match (self.metal_compat, xcode) {
            (MetalCompat::On, _) => Ok(true),
            (MetalCompat::Off, _) => Ok(false),
            (MetalCompat::Auto, Some(xcode)) => macos::metal_compat_for_sdk(&xcode.sdk_version),
            (MetalCompat::Auto, None) => Err(BuildError::new(
                "MLX_METAL_COMPAT=auto needs the macOS SDK version, which was not read",
            )),
        }
    }
}

/// The active developer directory, as `xcode-select -p` prints it.
fn xcode_select_path() -> Option<String> {
    let out = Command::new("xcode-select").arg("-p").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The CMake build type of the native code. By default `Release` in every cargo profile, as most
/// -sys crates do (an `-O0` MLX makes every test and run slow). `MLX_SYS_BUILD_TYPE=cargo` follows
/// the profile instead (`Debug` at opt-level 0, `RelWithDebInfo` with debug info, else `Release`);
/// CMake's own names choose one directly.
pub fn cmake_build_type(
    setting: Option<&str>,
    opt_level: &str,
    debug: bool,
) -> Result<&'static str, BuildError> {
    let Some(setting) = setting.map(str::trim) else {
        return Ok("Release");
    };
    let named = ["Debug", "Release", "RelWithDebInfo", "MinSizeRel"]
        .into_iter()
        .find(|name| name.eq_ignore_ascii_case(setting));
    match named {
        Some(name) => Ok(name),
        None if setting.eq_ignore_ascii_case("cargo") => Ok(match (opt_level, debug) {
            ("0", _) => "Debug",
            ("s" | "z", _) => "MinSizeRel",
            (_, true) => "RelWithDebInfo",
            _ => "Release",
        }),
        None => Err(BuildError::new(format!(
            "MLX_SYS_BUILD_TYPE={setting} is not understood: use cargo (follow the cargo profile), \
             Release, RelWithDebInfo, MinSizeRel or Debug"
        ))),
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
