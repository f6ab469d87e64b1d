//! CUDA-specific functions, as in `mlx.core.cuda`.

/// True when the loaded MLX runs on an NVIDIA GPU through CUDA.
pub fn is_available() -> bool {
    crate::ffi::cuda_available()
}
