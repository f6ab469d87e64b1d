//! Compiles the C floor program `floor/chain.c` against the very mlx-c and `libmlx` that
//! `mlx-sys` built and links, and gives the `floor` and `compare` binaries and the criterion
//! benches an rpath to that `libmlx`.
//!
//! The paths come from the `DEP_MLX_*` metadata of `mlx-sys` (see the README, "Run time"). The
//! executable lands in `OUT_DIR/floor-chain`; its path reaches the `floor` binary as the
//! compile-time variable `FLOOR_CHAIN_C` (`floor paths` prints it). Both binaries carry a
//! RUNPATH, which `LD_LIBRARY_PATH` overrides: a copy run on the GPU machine loads the CUDA
//! `libmlx` that comes first there.
//!
//! A failure to compile the C program does not fail the crate: it becomes a warning, and the
//! runner reports the reason (`FLOOR_CHAIN_C_ERROR`) when asked to run the C side.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=floor/chain.c");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    let lib_dir = env::var_os("DEP_MLX_LIB_DIR").map(PathBuf::from);
    if let Some(dir) = &lib_dir
        && env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
    {
        // RUNPATH (not RPATH): LD_LIBRARY_PATH still comes first.
        let rpath = format!("-Wl,--enable-new-dtags,-rpath,{}", dir.display());
        println!("cargo:rustc-link-arg-bin=floor={rpath}");
        println!("cargo:rustc-link-arg-bin=compare={rpath}");
        println!("cargo:rustc-link-arg-benches={rpath}");
    }
    match build_chain(lib_dir.as_deref()) {
        Ok(path) => {
            println!("cargo:rustc-env=FLOOR_CHAIN_C={}", path.display());
            println!("cargo:rustc-env=FLOOR_CHAIN_C_ERROR=");
        }
        Err(err) => {
            // docs.rs-style builds (`DOCS_RS`) have no native library: nothing to warn about.
            if env::var_os("DOCS_RS").is_none() {
                println!("cargo:warning=floor/chain.c was not built: {err}");
            }
            println!("cargo:rustc-env=FLOOR_CHAIN_C=");
            println!("cargo:rustc-env=FLOOR_CHAIN_C_ERROR={}", err.replace('\n', " "));
        }
    }
}

fn var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|_| {
        format!("{name} is not set (it comes from the mlx-sys build; is mlx-sys a dependency?)")
    })
}

/// The directory holding `libmlxc.a`: `DEP_MLX_MLX_C_LIB_DIR` when mlx-sys exports it, else the
/// CMake build directory beside mlx-sys's patched mlx-c copy (`OUT_DIR/cmake-build[/<config>]`).
fn mlx_c_lib_dir(mlx_c_include: &Path) -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("DEP_MLX_MLX_C_LIB_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let build = mlx_c_include.parent().map(|p| p.join("cmake-build")).unwrap_or_default();
    let mut candidates = vec![build.clone()];
    for config in ["Release", "RelWithDebInfo", "Debug", "MinSizeRel"] {
        candidates.push(build.join(config));
    }
    candidates.into_iter().find(|dir| dir.join("libmlxc.a").is_file()).ok_or_else(|| {
        format!("no libmlxc.a under {} (the mlx-sys CMake build directory)", build.display())
    })
}

fn build_chain(lib_dir: Option<&Path>) -> Result<PathBuf, String> {
    let out_dir = PathBuf::from(var("OUT_DIR")?);
    let include = PathBuf::from(var("DEP_MLX_MLX_C_INCLUDE")?);
    let lib_dir = lib_dir.ok_or("DEP_MLX_LIB_DIR is not set")?;
    let mlx_c_lib = mlx_c_lib_dir(&include)?;
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let source = PathBuf::from(var("CARGO_MANIFEST_DIR")?).join("floor/chain.c");
    let exe = out_dir.join("floor-chain");

    let compiler = cc::Build::new().cargo_metadata(false).get_compiler();
    let mut cmd = compiler.to_command();
    cmd.args(["-O2", "-std=c11", "-Wall"])
        .arg("-isystem")
        .arg(&include)
        .arg(&source)
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", mlx_c_lib.display()))
        .arg("-lmlxc")
        .arg(format!("-L{}", lib_dir.display()))
        .arg("-lmlx");
    if target_os == "macos" {
        cmd.arg("-lc++");
        if var("DEP_MLX_BACKEND").as_deref() == Ok("metal") {
            // The macOS source build links MLX statically.
            for framework in ["Metal", "Foundation", "QuartzCore", "Accelerate"] {
                cmd.args(["-framework", framework]);
            }
        }
        cmd.arg(format!("-Wl,-rpath,{}", lib_dir.display()));
    } else {
        cmd.args(["-lstdc++", "-lm", "-lpthread"]);
        cmd.arg(format!("-Wl,--enable-new-dtags,-rpath,{}", lib_dir.display()));
    }
    let line = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let output = cmd.output().map_err(|e| format!("cannot run the C compiler ({line}): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the C compiler failed ({line}): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    // The exact command, for the README's manual build and for `floor paths`.
    std::fs::write(out_dir.join("floor-chain.cmd"), &line)
        .map_err(|e| format!("cannot write {}: {e}", out_dir.join("floor-chain.cmd").display()))?;
    Ok(exe)
}
