//! Runnable programs built on `mlx-rs`; see the `[[example]]` entries of this package.
//!
//! The examples use only the safe API of `mlx-rs`.
