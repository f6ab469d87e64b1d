//! Raw FFI to [mlx-c](https://ml-explore.github.io/mlx-c/) 0.7.0, the C API of Apple's MLX 0.32.2.
//!
//! Nothing here is safe to use directly: every function is a C call with C's rules (handles that
//! must be freed, pointers that may be NULL until an array is evaluated, a process-global error
//! handler). Use the `mlx-rs` crate instead.
//!
//! The build script finds or fetches the pinned native libraries, builds mlx-c as a static library
//! and links `libmlx`; see the repository README for every option. The bindings are generated from
//! the mlx-c headers by bindgen and committed (`src/bindings.rs`); the `bindgen` feature
//! regenerates them at build time.
//!
//! Dependants receive, through cargo's `links` metadata:
//! `DEP_MLX_INCLUDE` (MLX headers), `DEP_MLX_MLX_C_INCLUDE` (mlx-c headers), `DEP_MLX_LIB_DIR`
//! (the directory of the `libmlx` loaded at run time, for an rpath), `DEP_MLX_BACKEND`,
//! `DEP_MLX_MLX_VERSION` and `DEP_MLX_MLX_C_VERSION`.

#![no_std]

#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
mod generated {
    #[cfg(not(feature = "bindgen"))]
    include!("bindings.rs");
    #[cfg(feature = "bindgen")]
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub use generated::*;

/// The MLX version these bindings are built for and linked against.
pub const MLX_VERSION: &str = env!("MLX_SYS_MLX_VERSION");

/// The mlx-c version these bindings are generated from.
pub const MLX_C_VERSION: &str = env!("MLX_SYS_MLX_C_VERSION");

/// The backend selected at build time: `cpu`, `cuda` or `metal` (`none` on docs.rs).
pub const BACKEND: &str = env!("MLX_SYS_BACKEND");
