//! Criterion benches of `mlx-rs` and their Python twins, measured side by side against Python
//! MLX on the same native library (see BENCHMARKING.md in the shared project documents).
//!
//! The `floor` binary measures the host cost of building a graph against a C program on mlx-c
//! and against Python ([`floor`]), and the cost of index clamping ([`clamp`]); see
//! `benches/floor/README.md`.

pub mod clamp;
pub mod cli;
pub mod env;
pub mod floor;
pub mod stats;
