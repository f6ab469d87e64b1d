//! CUDA-specific functions, as in `mlx.core.cuda`.

use crate::fast::kernel::KernelBackend;

/// True when the loaded MLX runs on an NVIDIA GPU through CUDA.
pub fn is_available() -> bool {
    KernelBackend::Cuda.is_available()
}
