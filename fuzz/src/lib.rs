//! The harness functions of the mlx-rs fuzz targets.
//!
//! Each fuzz target in `fuzz_targets/` calls one function of this crate on the fuzzer's bytes;
//! `mlx-rs/tests/fuzz_corpus.rs` includes this file and calls the same functions on every file
//! of the committed corpora (`fuzz/corpus/<target>/`), so `cargo test` replays them.
//!
//! The contract checked is the crate's: safe code never crashes. Every call may return `Err`;
//! an array that comes back `Ok` is evaluated and, if that succeeds, read back completely and
//! checked for being well formed ([`check_array`]). A crash, or a panic from a failed check,
//! is a finding.

mod check;
mod files;
mod ops;

pub use check::check_array;
pub use files::{gguf, npy, safetensors};
pub use ops::ops;
