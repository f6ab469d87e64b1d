//! Replays the fuzzing corpora through the fuzz targets' own harness functions.
//!
//! `fuzz/src/lib.rs` (the crate the cargo-fuzz targets call) is included here as a module, so
//! each committed input, `fuzz/corpus/<target>/*` (minimised seeds) and
//! `fuzz/regressions/<target>/*` (inputs that crashed once, kept after their fix), runs exactly
//! as under the fuzzer: every call must return `Err` or arrays that evaluate and read back
//! well formed. See `fuzz/README.md` for running the fuzzers themselves.

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code, unused_imports)]
mod harness;

use std::path::{Path, PathBuf};

/// The committed inputs of `target`: its corpus and its regressions, sorted by path.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else { continue };
        files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
    }
    files.sort();
    files
}

/// Runs `harness` on every committed input of `target`; there must be some.
fn replay(target: &str, harness: fn(&[u8])) {
    let files = inputs(target);
    assert!(files.len() >= 10, "only {} committed inputs for {target}", files.len());
    for path in &files {
        let data = std::fs::read(path).unwrap();
        eprintln!("{}", path.display());
        harness(&data);
    }
    // The process still computes after the whole corpus.
    let a = mlx_rs::Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    assert_eq!(a.sum(.., false).unwrap().item::<f32>().unwrap(), 3.0);
}

#[test]
fn safetensors_corpus() {
    replay("safetensors", harness::safetensors);
}

#[test]
fn gguf_corpus() {
    replay("gguf", harness::gguf);
}

#[test]
fn npy_corpus() {
    replay("npy", harness::npy);
}

#[test]
fn ops_corpus() {
    replay("ops", harness::ops);
}
