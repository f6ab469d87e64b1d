//! Criterion benches of `mlx-rs` and their Python twins, measured side by side against Python
//! MLX on the same native library (see BENCHMARKING.md in the shared project documents).
//!
//! The `compare` binary ([`compare`]) runs the microbenchmark workloads ([`workloads`], the same
//! code as the criterion benches in `benches/benches/`) in this process and in the Python twin
//! `benches/python/micro.py` ([`python`]), interleaved, and writes JSON, Markdown and an SVG
//! chart ([`chart`]) under `benches/results/`.
//!
//! The `floor` binary measures the host cost of building a graph against a C program on mlx-c
//! and against Python ([`floor`]), and the cost of index clamping ([`clamp`]); see
//! `benches/floor/README.md`.
//!
//! The `moe_paths` binary times the expert-matmul paths of MoE layers (`gather_qmm`,
//! dequantized, the crate's grouped kernel) against each other and writes their crossovers
//! ([`moe_paths`]).
//!
//! The `fused_paths` binary times the fused elementwise kernels (gated activations, dropout)
//! against MLX's ops and their compiled form ([`fused_paths`]).

pub mod chart;
pub mod clamp;
pub mod cli;
pub mod compare;
pub mod env;
pub mod floor;
pub mod fused_paths;
pub mod models;
pub mod moe_paths;
pub mod python;
pub mod stats;
pub mod workloads;
