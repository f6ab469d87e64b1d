//! Fuzz target: see `mlx_rs_fuzz::gguf` (the same function replays the corpus in `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mlx_rs_fuzz::gguf(data));
