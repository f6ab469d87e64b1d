//! Passes the location of the mlx-c headers (from `mlx-sys`'s `links` metadata) to the coverage
//! test, which lists the C API and checks that the safe API wraps all of it.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_MLX_MLX_C_INCLUDE");
    if let Ok(dir) = std::env::var("DEP_MLX_MLX_C_INCLUDE") {
        println!("cargo:rustc-env=MLX_C_INCLUDE_DIR={dir}");
    }
}
