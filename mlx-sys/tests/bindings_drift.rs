//! The committed `src/bindings.rs` must match what bindgen generates from the mlx-c headers.
//!
//! Run with `cargo test -p mlx-sys --features bindgen --test bindings_drift`; add
//! `UPDATE_BINDINGS=1` to rewrite the committed file after an mlx-c upgrade.
#![cfg(feature = "bindgen")]

use std::fs;
use std::path::Path;

#[test]
fn committed_bindings_match_the_headers() {
    let fresh = fs::read_to_string(concat!(env!("OUT_DIR"), "/bindings.rs"))
        .expect("the build script writes OUT_DIR/bindings.rs with the bindgen feature");
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bindings.rs");
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        fs::write(&committed_path, &fresh).expect("write src/bindings.rs");
        return;
    }
    let committed = fs::read_to_string(&committed_path).expect("read src/bindings.rs");
    if committed != fresh {
        let line = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| committed.lines().count().min(fresh.lines().count()), |i| i);
        panic!(
            "src/bindings.rs is stale (first difference at line {}); regenerate it with \
             UPDATE_BINDINGS=1 cargo test -p mlx-sys --features bindgen --test bindings_drift",
            line + 1
        );
    }
}
