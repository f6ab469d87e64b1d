//! Build script of `mlx-sys`: obtains the pinned mlx-c and MLX, patches, builds, and links them.
//!
//! The steps, one module each: read the environment ([`config`]); find the mlx-c sources
//! ([`mlx_c_source`]); find or fetch MLX ([`mlx_package`], [`wheel`]); apply `patches/`
//! ([`patches`]); build with CMake ([`cmake_build`]); generate the FFI when asked ([`bindings`]);
//! emit link and run-time metadata ([`link`]). Pinned versions live in [`pins`].

mod bindings;
mod cmake_build;
mod config;
mod files;
mod link;
mod mlx_c_source;
mod mlx_package;
mod patches;
mod pins;
mod process;
mod wheel;

use std::fmt;
use std::path::Path;
use std::process::Command;

use cmake_build::MlxSource;
use config::{Config, MetalCompat};

/// A build failure, printed as a readable message.
#[derive(Debug)]
pub struct BuildError(String);

impl BuildError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> BuildError {
        BuildError(message.into())
    }

    /// A failed file-system operation on `path`.
    pub fn io(action: &str, path: &Path, err: std::io::Error) -> BuildError {
        BuildError(format!("cannot {action} {}: {err}", path.display()))
    }

    /// Prefixes the message with where the problem came from.
    pub fn context(self, what: &str) -> BuildError {
        BuildError(format!("{what}: {}", self.0))
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

    let pristine = mlx_c_source::locate(&cfg)?;
    let mlx_c_src = cfg.out_dir.join("mlx-c");
    files::copy_tree(&pristine, &mlx_c_src)?;
    apply_patches(&cfg, &all_patches, "mlx-c", pins::MLX_C_VERSION, &mlx_c_src)?;
    println!("cargo:mlx_c_include={}", mlx_c_src.display());

    if cfg.is_macos() && cfg.mlx_dir.is_none() {
        let patch_mlx =
            |root: &Path| apply_patches(&cfg, &all_patches, "mlx", pins::MLX_VERSION, root);
        let built =
            cmake_build::build(&cfg, &mlx_c_src, MlxSource::FromSource { patch: &patch_mlx })?;
        link::from_source(&cfg, &built)?;
    } else {
        let mlx = mlx_package::locate(&cfg)?;
        let built = cmake_build::build(&cfg, &mlx_c_src, MlxSource::Installed(&mlx.linked))?;
        link::installed(&cfg, &built, &mlx)?;
    }

    #[cfg(feature = "bindgen")]
    bindings::generate(&cfg, &mlx_c_src)?;
    Ok(())
}

/// Applies the patches that target `tree` at `version` to `root`.
fn apply_patches(
    cfg: &Config,
    all: &[patches::Patch],
    tree: &str,
    version: &str,
    root: &Path,
) -> Result<(), BuildError> {
    let (chosen, stale) = patches::select(all, tree, version, |when| match when {
        "metal-compat" => metal_compat_needed(cfg),
        _ => false,
    });
    for patch in stale {
        println!(
            "cargo:warning=patch {} targets {} {}, but the build uses {tree} {version}: not applied",
            patch.name, patch.tree, patch.version
        );
    }
    for patch in chosen {
        patches::apply(patch, root).map_err(BuildError::new)?;
    }
    Ok(())
}

/// Whether MLX needs the Metal-compatibility patches: asked for with `MLX_METAL_COMPAT`, or, by
/// default, when the macOS SDK predates macOS 26 (no Metal 4 language, no `macOS 26` availability
/// symbols).
fn metal_compat_needed(cfg: &Config) -> bool {
    if !cfg.is_macos() || cfg.backend != config::Backend::Metal {
        return false;
    }
    match cfg.metal_compat {
        MetalCompat::On => true,
        MetalCompat::Off => false,
        MetalCompat::Auto => {
            let sdk =
                Command::new("xcrun").args(["--sdk", "macosx", "--show-sdk-version"]).output();
            let major = sdk.ok().filter(|out| out.status.success()).and_then(|out| {
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.trim().split('.').next().and_then(|m| m.parse::<u32>().ok())
            });
            match major {
                Some(major) => major < 26,
                None => {
                    println!(
                        "cargo:warning=cannot read the macOS SDK version (xcrun); applying the \
                         Metal-compatibility patches. Set MLX_METAL_COMPAT=off to skip them"
                    );
                    true
                }
            }
        }
    }
}
