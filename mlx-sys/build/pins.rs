//! Every pinned version and checksum of the native build, in one place.
//!
//! MLX and mlx-c move together: mlx-c 0.7.0 compiles only against MLX 0.32.2. An upgrade changes
//! this file, regenerates `src/bindings.rs` and passes every test in the same change.

/// The MLX release that mlx-c [`MLX_C_VERSION`] is written against.
pub const MLX_VERSION: &str = "0.32.2";

/// The mlx-c release whose C API the bindings cover.
pub const MLX_C_VERSION: &str = "0.7.0";

/// The Rust registry package that carries the mlx-c sources (under `src/mlx-c`).
pub const MLX_C_CRATE: &str = "mlx-sys";

/// SHA-256 of the `.crate` archive of [`MLX_C_CRATE`] at [`MLX_C_VERSION`].
pub const MLX_C_CRATE_SHA256: &str =
    "da965f83ce211b80f9b681d9bbd6fa625fe6bb2e659ba7bc55dd95eea8d3b028";

/// The directory inside that archive that holds the mlx-c source tree.
pub const MLX_C_CRATE_SUBDIR: &str = "src/mlx-c";

/// SHA-256 of every official MLX wheel the build may fetch, by file name.
pub const WHEEL_SHA256: &[(&str, &str)] = &[
    (
        "mlx_cpu-0.32.2-py3-none-manylinux_2_35_x86_64.whl",
        "fc5d31b90fc4f457b2f9614ed45651a567d22a6a11a03d114a90a4e10bdd8878",
    ),
    (
        "mlx_cpu-0.32.2-py3-none-manylinux_2_35_aarch64.whl",
        "d0f94625588b51a878786dd51cec5617894ce586cf3c94645ce1b64e24c27c0b",
    ),
    (
        "mlx_cuda_13-0.32.2-py3-none-manylinux_2_35_x86_64.whl",
        "335094ccd1c0c6dc3e09c8caba207c8180602bacc0c38ba20c1d81e9456ab394",
    ),
    (
        "mlx_cuda_13-0.32.2-py3-none-manylinux_2_35_aarch64.whl",
        "49b1a25df9021f3b519a534fd39a32a5cdbf93a1b265a31e59671c2d9fc9f4a2",
    ),
];

/// The macOS deployment target used when `MACOSX_DEPLOYMENT_TARGET` is not set. MLX picks its
/// Metal language from it at build time: 15.0 gives Metal 3.2 and compiles the NAX kernels out.
pub const MACOS_DEPLOYMENT_TARGET: &str = "15.0";

/// Where the macOS source build clones MLX from (the repository mlx-c's CMake names).
pub const MLX_GIT_URL: &str = "https://github.com/ml-explore/mlx.git";

/// The tag of [`MLX_VERSION`] in [`MLX_GIT_URL`] (the tag mlx-c's CMake fetches).
pub const MLX_GIT_TAG: &str = "v0.32.2";
