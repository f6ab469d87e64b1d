//! Criterion benches of `mlx-rs` and their Python twins, measured side by side against Python
//! MLX on the same native library (see BENCHMARKING.md in the shared project documents).
