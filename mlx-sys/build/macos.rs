//! The decisions of the macOS build, as functions of plain values: what CMake is told (deployment
//! target, architecture, compilers, where the metallib goes), what is linked from MLX's build tree,
//! and what the user is told when the Apple toolchain is missing something.
//!
//! Nothing here runs a tool or reads the environment ([`crate::config`] does both), so that the
//! tests run every decision on Linux over synthetic build trees, command lines and outputs. This
//! file depends only on `std` and [`crate::error`].

use std::path::{Path, PathBuf};

use crate::error::BuildError;

/// The oldest macOS that MLX 0.32.2 builds for (its CMake stops below it).
pub const MIN_DEPLOYMENT_TARGET: (u32, u32) = (14, 0);

/// The first macOS SDK with the Metal 4 language and the macOS 26 availability symbols; older SDKs
/// get the Metal-compatibility patches by default.
pub const FIRST_METAL4_SDK: u32 = 26;

/// The file name of the compiler runtime that defines `___isPlatformVersionAtLeast`.
pub const CLANG_RT_OSX: &str = "libclang_rt.osx.a";

/// The FetchContent dependencies of MLX 0.32.2 besides MLX itself, as (CMake name, what it is).
/// Each can be given with `FETCHCONTENT_SOURCE_DIR_<NAME>` for offline builds. `METAL_CPP` is
/// fetched only with the Metal backend.
pub const MLX_DEPENDENCIES: [(&str, &str); 4] = [
    ("JSON", "nlohmann/json 3.11.3 (json.tar.xz release archive)"),
    ("FMT", "fmtlib/fmt 12.1.0"),
    ("GGUFLIB", "antirez/gguf-tools at 8fa6eb65236618e28fd7710a0fba565f7faa1848"),
    ("METAL_CPP", "Apple's metal-cpp_26.zip"),
];

/// `major.minor` of a version such as `15`, `15.0` or `26.2.1`.
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = match parts.next() {
        Some(minor) => minor.parse().ok()?,
        None => 0,
    };
    Some((major, minor))
}

/// The deployment target the C++ and the metallib are built for: `MACOSX_DEPLOYMENT_TARGET` when
/// set, otherwise `default`. MLX refuses anything older than [`MIN_DEPLOYMENT_TARGET`].
pub fn deployment_target(from_env: Option<&str>, default: &str) -> Result<String, BuildError> {
    let value = from_env.unwrap_or(default).trim();
    let Some(version) = parse_version(value) else {
        return Err(BuildError::new(format!(
            "MACOSX_DEPLOYMENT_TARGET={value} is not a macOS version such as {default}"
        )));
    };
    if version < MIN_DEPLOYMENT_TARGET {
        return Err(BuildError::new(format!(
            "MACOSX_DEPLOYMENT_TARGET={value} is older than macOS {}.{}, the oldest MLX builds for",
            MIN_DEPLOYMENT_TARGET.0, MIN_DEPLOYMENT_TARGET.1
        )));
    }
    Ok(value.to_owned())
}

/// The warning printed when `MACOSX_DEPLOYMENT_TARGET` is not in the build's environment: rustc
/// then links the final binary for its own, older default while the native code is built for
/// `target`.
pub fn deployment_target_warning(set_in_env: bool, target: &str) -> Option<String> {
    if set_in_env {
        return None;
    }
    Some(format!(
        "MACOSX_DEPLOYMENT_TARGET is not set: MLX is built for macOS {target}, but rustc links for \
         its own default, so the linker warns for every object and the binary starts on older \
         macOS only to fail there. Set MACOSX_DEPLOYMENT_TARGET={target} for the whole build \
         (`[env]` in .cargo/config.toml, or the environment)"
    ))
}

/// CMake's name for cargo's target architecture (`CARGO_CFG_TARGET_ARCH`). MLX 0.32.2 refuses
/// x86-64 macOS with the Metal backend, so only Apple Silicon is accepted.
pub fn cmake_architecture(target_arch: &str) -> Result<&'static str, BuildError> {
    match target_arch {
        "aarch64" => Ok("arm64"),
        other => Err(BuildError::new(format!(
            "MLX builds for Apple Silicon only on macOS, but the target architecture is {other}: \
             build for aarch64-apple-darwin"
        ))),
    }
}

/// What the macOS configure step is told about the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmakeTarget<'a> {
    /// Cargo's `TARGET` triple.
    pub target: &'a str,
    /// Cargo's `HOST` triple.
    pub host: &'a str,
    /// Cargo's `CARGO_CFG_TARGET_ARCH`.
    pub target_arch: &'a str,
    /// The deployment target, from [`deployment_target`].
    pub deployment_target: &'a str,
    /// The C compiler.
    pub cc: &'a str,
    /// The C++ compiler.
    pub cxx: &'a str,
}

/// The `-D` arguments that pin the deployment target, the architecture and the compilers.
///
/// `CMAKE_APPLE_SILICON_PROCESSOR` makes CMake report the target architecture as the host's even
/// when CMake itself runs under Rosetta, where MLX would otherwise see x86-64 and stop. When cargo
/// cross-compiles (the host triple differs), CMake is told the system explicitly.
pub fn cmake_args(t: &CmakeTarget<'_>) -> Result<Vec<String>, BuildError> {
    let arch = cmake_architecture(t.target_arch)?;
    let mut args = vec![
        format!("-DCMAKE_OSX_DEPLOYMENT_TARGET={}", t.deployment_target),
        format!("-DCMAKE_OSX_ARCHITECTURES={arch}"),
        format!("-DCMAKE_APPLE_SILICON_PROCESSOR={arch}"),
    ];
    if t.host != t.target {
        args.push("-DCMAKE_SYSTEM_NAME=Darwin".to_owned());
        args.push(format!("-DCMAKE_SYSTEM_PROCESSOR={arch}"));
    }
    args.push(format!("-DCMAKE_C_COMPILER={}", t.cc));
    args.push(format!("-DCMAKE_CXX_COMPILER={}", t.cxx));
    Ok(args)
}

/// The compiler the user chose for `tool` (`CC` or `CXX`), looked up as the `cc` crate does:
/// `<tool>_<target>`, `<tool>_<target with underscores>`, `TARGET_<tool>` when cross-compiling,
/// then `<tool>`. `None` means: use the Xcode toolchain's clang, found with `xcrun`.
pub fn compiler_override(
    lookup: impl Fn(&str) -> Option<String>,
    tool: &str,
    target: &str,
    host: &str,
) -> Option<String> {
    let mut names =
        vec![format!("{tool}_{target}"), format!("{tool}_{}", target.replace('-', "_"))];
    if target != host {
        names.push(format!("TARGET_{tool}"));
    }
    names.push(tool.to_owned());
    names.iter().find_map(|name| lookup(name))
}

/// Whether the Metal-compatibility patches are needed by default for an SDK version such as
/// `15.5` or `26.2`.
pub fn metal_compat_for_sdk(sdk_version: &str) -> Result<bool, BuildError> {
    match parse_version(sdk_version) {
        Some((major, _)) => Ok(major < FIRST_METAL4_SDK),
        None => Err(BuildError::new(format!(
            "`xcrun --sdk macosx --show-sdk-version` printed {sdk_version:?}, not a version; set \
             MLX_METAL_COMPAT=on or off to decide without it"
        ))),
    }
}

fn developer_dir_note(developer_dir: Option<&str>) -> String {
    match developer_dir {
        Some(dir) => format!(" (active developer directory: {dir})"),
        None => String::new(),
    }
}

/// The error for a failed `xcrun --sdk macosx --show-sdk-version`: without an SDK neither the
/// compat decision nor MLX's configure can go on.
pub fn sdk_error(stderr: &str, developer_dir: Option<&str>) -> BuildError {
    BuildError::new(format!(
        "xcrun found no macOS SDK{}: {}\n  hint: install Xcode (or the command line tools: \
         `xcode-select --install`), then check `xcrun --sdk macosx --show-sdk-version`; \
         DEVELOPER_DIR or SDKROOT, if set, must point at an installed one",
        developer_dir_note(developer_dir),
        stderr.trim()
    ))
}

/// What is wrong with the Metal compiler, from `xcrun -sdk macosx metal --version`: `None` when it
/// ran. MLX's own probe of it fails without a message at configure time, so the build checks first.
pub fn metal_toolchain_problem(
    ran: bool,
    stderr: &str,
    developer_dir: Option<&str>,
) -> Option<String> {
    if ran {
        return None;
    }
    let stderr = stderr.trim();
    let fix = if stderr.contains("missing Metal Toolchain") || stderr.contains("downloadComponent")
    {
        "Xcode's Metal toolchain is not installed (Xcode 26 and later ship it separately): run \
         `xcodebuild -downloadComponent MetalToolchain`"
            .to_owned()
    } else if developer_dir.is_some_and(|dir| dir.contains("CommandLineTools")) {
        "the command line tools have no Metal compiler: install Xcode, select it with `sudo \
         xcode-select --switch /Applications/Xcode.app` (or DEVELOPER_DIR), and with Xcode 26 or \
         later run `xcodebuild -downloadComponent MetalToolchain`"
            .to_owned()
    } else {
        "install Xcode (the command line tools have no Metal compiler), select it with `sudo \
         xcode-select --switch /Applications/Xcode.app`, and with Xcode 26 or later run \
         `xcodebuild -downloadComponent MetalToolchain`"
            .to_owned()
    };
    Some(format!(
        "the Metal backend needs Apple's Metal compiler, and `xcrun -sdk macosx metal` does not \
         run{}: {stderr}\n  hint: {fix}; or build without the GPU with MLX_BACKEND=cpu",
        developer_dir_note(developer_dir)
    ))
}

/// The directory holding [`CLANG_RT_OSX`], from the output of `clang -print-resource-dir`.
pub fn clang_runtime_dir(resource_dir_output: &str) -> Option<PathBuf> {
    let dir = resource_dir_output.lines().next()?.trim();
    if dir.is_empty() {
        return None;
    }
    Some(Path::new(dir).join("lib").join("darwin"))
}

/// What decides the contents of `mlx.metallib`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetallibKey<'a> {
    /// The MLX version.
    pub mlx_version: &'a str,
    /// The deployment target (it selects the Metal language version and the kernels).
    pub deployment_target: &'a str,
    /// The macOS SDK version (the Metal compiler that builds the kernels).
    pub sdk_version: &'a str,
    /// The CMake build type (Debug adds debug info to the kernels).
    pub build_type: &'a str,
    /// A user's MLX checkout, whose kernels may differ from the release's.
    pub custom_source: Option<&'a Path>,
}

/// The stable, versioned directory MLX writes `mlx.metallib` into and bakes into the library
/// (`MLX_METAL_PATH`): under the cache, so that it outlives `cargo clean` and serves binaries
/// installed with `cargo install`; one directory per distinct metallib, so that builds for
/// different settings never overwrite each other's.
pub fn metallib_dir(cache_dir: &Path, key: &MetallibKey<'_>) -> PathBuf {
    let mut name = format!(
        "metallib-mlx-{}-macos{}-sdk{}-{}",
        key.mlx_version,
        key.deployment_target,
        key.sdk_version,
        key.build_type.to_ascii_lowercase()
    );
    if let Some(source) = key.custom_source {
        name.push_str(&format!("-src{:016x}", fnv1a(source.to_string_lossy().as_bytes())));
    }
    cache_dir.join(name)
}

/// The metallib inside a [`metallib_dir`].
pub fn metallib_file(dir: &Path) -> PathBuf {
    dir.join("mlx.metallib")
}

/// The metadata line that dependants read as `DEP_MLX_METALLIB` (the package `links` "mlx").
pub fn metallib_metadata(file: &Path) -> String {
    format!("cargo:metallib={}", file.display())
}

/// 64-bit FNV-1a: a short, stable name for a path (not a checksum).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The static library `lib<name>.a` in `dir` or in its per-configuration subdirectory (Xcode and
/// other multi-configuration generators put archives in `<dir>/<build type>/`).
fn find_static_lib(dir: &Path, build_type: &str, name: &str) -> Option<PathBuf> {
    let file = format!("lib{name}.a");
    [dir.to_path_buf(), dir.join(build_type)].into_iter().find(|d| d.join(&file).is_file())
}

/// The cargo lines that link MLX built from source by mlx-c's CMake in `build_dir` (mlx-c itself
/// is linked separately): `libmlx.a`, then the archives MLX's CMake keeps apart when it built
/// them, `libgguflib.a` (GGUF, `_deps/mlx-build/mlx/io/`) and `libjaccl.a` (distributed over
/// Thunderbolt, SDK 26.2 or newer, `jaccl/` of the top-level build tree), the frameworks, libc++
/// and, when found, the compiler runtime for `__builtin_available`.
pub fn source_build_link_lines(
    build_dir: &Path,
    build_type: &str,
    clang_rt_dir: Option<&Path>,
) -> Result<Vec<String>, BuildError> {
    let mlx_build = build_dir.join("_deps/mlx-build");
    let mlx = find_static_lib(&mlx_build, build_type, "mlx").ok_or_else(|| {
        BuildError::new(format!("CMake built no libmlx.a under {}", mlx_build.display()))
    })?;
    let mut lines = vec![
        format!("cargo:rustc-link-search=native={}", mlx.display()),
        "cargo:rustc-link-lib=static=mlx".to_owned(),
    ];
    let optional = [
        (mlx_build.join("mlx/io"), "gguflib"),
        (build_dir.join("jaccl"), "jaccl"),
        (mlx_build.join("jaccl"), "jaccl"),
    ];
    let mut linked: Vec<&str> = Vec::new();
    for (dir, name) in optional {
        if linked.contains(&name) {
            continue;
        }
        if let Some(found) = find_static_lib(&dir, build_type, name) {
            lines.push(format!("cargo:rustc-link-search=native={}", found.display()));
            lines.push(format!("cargo:rustc-link-lib=static={name}"));
            linked.push(name);
        }
    }
    for framework in ["Metal", "Foundation", "QuartzCore", "Accelerate"] {
        lines.push(format!("cargo:rustc-link-lib=framework={framework}"));
    }
    lines.push("cargo:rustc-link-lib=dylib=c++".to_owned());
    lines.extend(clang_runtime_link_lines(clang_rt_dir));
    Ok(lines)
}

/// Links [`CLANG_RT_OSX`] from `dir` when it is there. rustc links with `-nodefaultlibs`, so the
/// compiler runtime that clang would add is missing; it defines `___isPlatformVersionAtLeast`,
/// which MLX's `__builtin_available` checks call. `-bundle` keeps it a plain `-l` on the final link,
/// where only the members that resolve a missing symbol are taken (Rust 1.91 and later define the
/// symbol weakly in std, and both link together).
pub fn clang_runtime_link_lines(dir: Option<&Path>) -> Vec<String> {
    match dir {
        Some(dir) if dir.join(CLANG_RT_OSX).is_file() => vec![
            format!("cargo:rustc-link-search=native={}", dir.display()),
            "cargo:rustc-link-lib=static:-bundle=clang_rt.osx".to_owned(),
        ],
        _ => Vec::new(),
    }
}

/// The FetchContent dependencies of MLX that an offline configure in `build_dir` lacks: neither
/// given with `FETCHCONTENT_SOURCE_DIR_<NAME>` (`given`) nor already fetched by an earlier
/// configure of the same build tree (`_deps/<name>-src`).
pub fn missing_offline_sources(build_dir: &Path, given: &[&str], metal: bool) -> Vec<&'static str> {
    MLX_DEPENDENCIES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| metal || *name != "METAL_CPP")
        .filter(|name| !given.contains(name))
        .filter(|name| {
            !build_dir.join("_deps").join(format!("{}-src", name.to_ascii_lowercase())).is_dir()
        })
        .collect()
}

/// The message for an offline macOS build that lacks sources, naming every variable that supplies
/// one.
pub fn offline_sources_error(missing: &[&str], mlx_version: &str) -> BuildError {
    let mut text = format!(
        "offline build, and MLX {mlx_version}'s build would download {}. Options:\n  \
         1. build once online (MLX is cached in the mlx-sys cache; the other sources stay in \
         this build's OUT_DIR);\n  \
         2. point these variables at local copies:",
        missing.join(", ")
    );
    for (name, what) in MLX_DEPENDENCIES {
        if missing.contains(&name) {
            text.push_str(&format!("\n     FETCHCONTENT_SOURCE_DIR_{name}: {what}"));
        }
    }
    text.push_str("\n  3. unset CARGO_NET_OFFLINE / MLX_SYS_OFFLINE to let the build fetch them.");
    BuildError::new(text)
}

/// The MLX version `x.y.z` from the text of `mlx/version.h`.
pub fn mlx_version_from_header(text: &str) -> Option<String> {
    let part = |key: &str| {
        text.lines().find_map(|line| {
            let rest = line.trim().strip_prefix("#define")?.trim_start().strip_prefix(key)?;
            rest.trim().parse::<u32>().ok()
        })
    };
    Some(format!(
        "{}.{}.{}",
        part("MLX_VERSION_MAJOR")?,
        part("MLX_VERSION_MINOR")?,
        part("MLX_VERSION_PATCH")?
    ))
}
