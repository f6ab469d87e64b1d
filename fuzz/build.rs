//! Gives the fuzz targets an rpath to the `libmlx` mlx-sys linked: cargo-fuzz runs the target
//! binaries itself, not through `cargo run`, so the library path cargo would set is missing.

fn main() {
    // mlx-sys (`links = "mlx"`) exports its run-time library directory as `cargo:lib_dir`.
    if let Ok(dir) = std::env::var("DEP_MLX_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!("cargo:rerun-if-env-changed=DEP_MLX_LIB_DIR");
}
