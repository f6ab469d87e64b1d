//! Build script of `mlx-sys`: obtains the pinned mlx-c and MLX, patches, builds, and links them.
//!
//! The steps, one module each: read the environment and ask the Apple toolchain ([`config`]);
//! find the mlx-c sources ([`mlx_c_source`]); find or fetch MLX ([`mlx_package`], [`wheel`],
//! [`mlx_install`]; on macOS its sources, [`mlx_source`]); apply `patches/` ([`patches`]); build
//! with CMake ([`cmake_build`]); generate the FFI when asked ([`bindings`]); emit link and run-time
//! metadata ([`link`]). The macOS decisions are plain functions in [`macos`]; errors are
//! [`error::BuildError`]; pinned versions live in [`pins`].

mod bindings;
mod cmake_build;
mod config;
mod error;
mod files;
mod link;
mod macos;
mod mlx_c_source;
mod mlx_install;
mod mlx_package;
mod mlx_source;
mod patches;
mod pins;
mod process;
mod wheel;

use std::path::Path;

use cmake_build::MlxSource;
use config::{Config, Xcode};
use error::BuildError;

fn main() {
    if let Err(err) = run() {
        eprintln!("\nmlx-sys: {err}\n");
        std::process::exit(1);
    }
}

fn run() -> Result<(), BuildError> {
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rustc-env=MLX_SYS_MLX_VERSION={}", pins::MLX_VERSION);
    println!("cargo:rustc-env=MLX_SYS_MLX_C_VERSION={}", pins::MLX_C_VERSION);
    if config::is_docs_rs() {
        // Documentation only: the committed bindings need nothing native.
        println!("cargo:rustc-env=MLX_SYS_BACKEND=none");
        return Ok(());
    }
    let cfg = Config::from_env()?;
    let patches_dir = cfg.manifest_dir.join("../patches");
    println!("cargo:rerun-if-changed={}", patches_dir.display());
    let all_patches = patches::load_dir(&patches_dir).map_err(BuildError::new)?;

    // macOS: fail now, with what to install, rather than in the middle of MLX's configure.
    let xcode = if cfg.is_macos() { Some(cfg.probe_xcode(cfg.mlx_dir.is_none())?) } else { None };
    if let Some(target) = &cfg.deployment_target
        && let Some(warning) =
            macos::deployment_target_warning(cfg.deployment_target_in_env, target)
    {
        println!("cargo:warning={warning}");
    }
    let metal_compat = cfg.metal_compat_needed(xcode.as_ref())?;

    let pristine = mlx_c_source::locate(&cfg)?;
    let mlx_c_src = cfg.out_dir.join("mlx-c");
    patched_copy(&all_patches, "mlx-c", pins::MLX_C_VERSION, metal_compat, &pristine, &mlx_c_src)?;
    println!("cargo:mlx_c_include={}", mlx_c_src.display());

    match &xcode {
        Some(xcode) if cfg.mlx_dir.is_none() => {
            build_from_source(&cfg, xcode, &all_patches, metal_compat, &mlx_c_src)?
        }
        _ => {
            let mlx = mlx_package::locate(&cfg)?;
            let built = cmake_build::build(
                &cfg,
                &mlx_c_src,
                MlxSource::Installed(&mlx.linked),
                xcode.as_ref(),
            )?;
            link::installed(&cfg, &built, &mlx, xcode.as_ref())?;
        }
    }

    #[cfg(feature = "bindgen")]
    bindings::generate(&cfg, &mlx_c_src)?;
    Ok(())
}

/// The macOS default: MLX from source (patched copy of the shared clone), built by mlx-c's CMake.
fn build_from_source(
    cfg: &Config,
    xcode: &Xcode,
    all_patches: &[patches::Patch],
    metal_compat: bool,
    mlx_c_src: &Path,
) -> Result<(), BuildError> {
    let pristine = mlx_source::locate(cfg)?;
    let mlx_src = cfg.out_dir.join("mlx-src");
    patched_copy(all_patches, "mlx", pins::MLX_VERSION, metal_compat, &pristine, &mlx_src)?;
    let deployment_target =
        cfg.deployment_target.as_deref().unwrap_or(pins::MACOS_DEPLOYMENT_TARGET);
    let metallib_dir = match &cfg.metal_path {
        Some(dir) => dir.clone(),
        None => macos::metallib_dir(
            &cfg.cache_dir,
            &macos::MetallibKey {
                mlx_version: pins::MLX_VERSION,
                deployment_target,
                sdk_version: &xcode.sdk_version,
                build_type: cfg.cmake_build_type,
                custom_source: cfg.mlx_src.as_deref(),
            },
        ),
    };
    let metal = cfg.backend == config::Backend::Metal;
    if metal {
        std::fs::create_dir_all(&metallib_dir)
            .map_err(|e| BuildError::io("create", &metallib_dir, e))?;
    }
    let built = cmake_build::build(
        cfg,
        mlx_c_src,
        MlxSource::FromSource { source: &mlx_src, metallib_dir: &metallib_dir },
        Some(xcode),
    )?;
    let metallib = metal.then(|| macos::metallib_file(&metallib_dir));
    link::from_source(cfg, &built, xcode, &mlx_src, metallib.as_deref())
}

/// Makes `copy` the pristine tree `pristine` with the patches that target `tree` at `version`
/// and whose condition holds. Files are written only when their text changes, and a patch whose
/// condition no longer holds is undone.
fn patched_copy(
    all: &[patches::Patch],
    tree: &str,
    version: &str,
    metal_compat: bool,
    pristine: &Path,
    copy: &Path,
) -> Result<(), BuildError> {
    let (chosen, stale) = patches::select(all, tree, version, |when| match when {
        "metal-compat" => metal_compat,
        _ => false,
    });
    for patch in &stale {
        println!(
            "cargo:warning=patch {} targets {} {}, but the build uses {tree} {version}: not applied",
            patch.name, patch.tree, patch.version
        );
    }
    let known: Vec<&patches::Patch> =
        all.iter().filter(|p| p.tree == tree && p.version == version).collect();
    let touched = patches::touched_paths(&known);
    files::copy_tree(pristine, copy, &touched)?;
    patches::sync_patched(pristine, copy, &known, &chosen).map_err(BuildError::new)?;
    Ok(())
}
