//! Tells cargo what to link, where dependants find the native files, and how `cargo run`,
//! `cargo test` and `cargo bench` find `libmlx` at run time.
//!
//! Cargo puts every `rustc-link-search` directory that lies inside the target directory on the
//! dynamic-library path of the programs it runs, and drops the others. So the run-time MLX is
//! reached through a symlink inside `OUT_DIR`, and a link-time MLX that differs from it (a CPU
//! build linked for a CUDA run) is searched at its real location, which is outside.

use std::path::{Path, PathBuf};

use crate::cmake_build::Built;
use crate::config::{Config, Xcode};
use crate::error::BuildError;
use crate::files::symlink_dir;
use crate::macos;
use crate::mlx_package::Located;
use crate::pins;

/// Emits the link lines for mlx-c built against an installed MLX (`xcode` on macOS only).
pub fn installed(
    cfg: &Config,
    built: &Built,
    mlx: &Located,
    xcode: Option<&Xcode>,
) -> Result<(), BuildError> {
    static_mlx_c(built);
    // The whole install root is linked, not just `lib/`: wheels find their bundled libraries
    // through `$ORIGIN/../../<name>.libs`, relative to the path the loader used.
    let runtime_lib_dir = link_into_out_dir(cfg, "mlx-runtime", &mlx.running.prefix)?;
    if mlx.linked.prefix != mlx.running.prefix {
        println!("cargo:rustc-link-search=native={}", mlx.linked.lib_dir().display());
    }
    println!("cargo:rustc-link-search=native={}", runtime_lib_dir.display());
    println!("cargo:rustc-link-lib=dylib=mlx");
    match xcode {
        Some(xcode) => {
            println!("cargo:rustc-link-lib=dylib=c++");
            emit(&macos::clang_runtime_link_lines(xcode.clang_rt_dir.as_deref()));
        }
        None => println!("cargo:rustc-link-lib=dylib=stdc++"),
    }
    // An installed MLX keeps its metallib beside libmlx (MLX installs it to its lib directory).
    let metallib = mlx.running.lib_dir().join("mlx.metallib");
    let metallib = Some(metallib.as_path()).filter(|p| p.is_file());
    metadata(cfg, &mlx.linked.include_dir(), &runtime_lib_dir, metallib);
    Ok(())
}

/// Emits the link lines for the macOS source build (static MLX, Metal frameworks).
pub fn from_source(
    cfg: &Config,
    built: &Built,
    xcode: &Xcode,
    mlx_src: &Path,
    metallib: Option<&Path>,
) -> Result<(), BuildError> {
    static_mlx_c(built);
    let lines = macos::source_build_link_lines(
        &built.build_dir,
        cfg.cmake_build_type,
        xcode.clang_rt_dir.as_deref(),
    )?;
    emit(&lines);
    if xcode.clang_rt_dir.as_deref().is_none_or(|dir| !dir.join(macos::CLANG_RT_OSX).is_file()) {
        println!(
            "cargo:warning=no {} found through {} -print-resource-dir: with Rust older than 1.91, \
             linking may fail on ___isPlatformVersionAtLeast",
            macos::CLANG_RT_OSX,
            xcode.cxx
        );
    }
    if let Some(path) = metallib {
        if !path.is_file() {
            return Err(BuildError::new(format!("MLX's build wrote no {}", path.display())));
        }
        // The library loads it from there at run time: rebuild if it goes (cache cleared).
        println!("cargo:rerun-if-changed={}", path.display());
    }
    metadata(cfg, mlx_src, &built.build_dir.join("_deps/mlx-build"), metallib);
    Ok(())
}

fn emit(lines: &[String]) {
    for line in lines {
        println!("{line}");
    }
}

fn static_mlx_c(built: &Built) {
    println!("cargo:rustc-link-search=native={}", built.mlx_c_lib_dir.display());
    println!("cargo:rustc-link-lib=static=mlxc");
}

/// `OUT_DIR/<name>` → the parent of `prefix`; returns the `lib/` directory reached through it.
fn link_into_out_dir(cfg: &Config, name: &str, prefix: &Path) -> Result<PathBuf, BuildError> {
    let parent = prefix
        .parent()
        .ok_or_else(|| BuildError::new(format!("{} has no parent directory", prefix.display())))?;
    let link = cfg.out_dir.join(name);
    symlink_dir(parent, &link)?;
    let leaf = prefix
        .file_name()
        .ok_or_else(|| BuildError::new(format!("{} has no final component", prefix.display())))?;
    Ok(link.join(leaf).join("lib"))
}

/// `DEP_MLX_*` variables for packages that depend on mlx-sys, and compile-time constants for
/// mlx-sys itself.
fn metadata(cfg: &Config, mlx_include: &Path, runtime_lib_dir: &Path, metallib: Option<&Path>) {
    if let Some(metallib) = metallib {
        println!("{}", macos::metallib_metadata(metallib));
    }
    println!("cargo:include={}", mlx_include.display());
    println!("cargo:lib_dir={}", runtime_lib_dir.display());
    println!("cargo:backend={}", cfg.backend.name());
    println!("cargo:mlx_version={}", pins::MLX_VERSION);
    println!("cargo:mlx_c_version={}", pins::MLX_C_VERSION);
    println!("cargo:rustc-env=MLX_SYS_BACKEND={}", cfg.backend.name());
    println!("cargo:rustc-env=MLX_SYS_LIB_DIR={}", runtime_lib_dir.display());
}
