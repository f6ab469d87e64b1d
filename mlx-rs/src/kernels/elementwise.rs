//! What the elementwise kernels ([`activation`](super::activation) and
//! [`dropout`](mod@super::dropout)) share: which GPU backend runs them, how they are launched over a
//! flat array, and the measured-crossover table that [`Fused::Auto`] reads.
//!
//! Every elementwise kernel works on one flat row-contiguous array of `n` elements; each GPU
//! thread takes `vector_width` consecutive elements (16 bytes of each input), so a launch has
//! `ceil(n / width)` threads and the last one takes the tail.

use crate::fast::kernel::KernelBackend;
use crate::kernels::Fused;
use crate::{Array, Dtype};

/// Threads per block (CUDA) or thread group (Metal).
pub(crate) const THREADS: i32 = 256;

/// From how many elements an elementwise kernel measured faster than MLX's ops for one dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeCrossover {
    /// The dtype of the measured arrays.
    pub dtype: Dtype,
    /// Elements from which the kernel is faster.
    pub from_elements: usize,
}

/// The GPU backend that runs the crate's elementwise kernels on the thread's default stream
/// ([`gpu_backend`](super::gpu_backend)), or why there is none.
pub(crate) fn gpu_backend() -> std::result::Result<KernelBackend, String> {
    super::gpu_backend()
        .ok_or_else(|| "needs MLX's CUDA or Metal backend and the default stream on the GPU".into())
}

/// Why the elementwise kernels cannot take `x` (float32, bfloat16 or float16, 1 to `i32::MAX`
/// elements), or `Ok`.
pub(crate) fn check_array(x: &Array) -> std::result::Result<(), String> {
    if !matches!(x.dtype(), Dtype::Float32 | Dtype::Bfloat16 | Dtype::Float16) {
        return Err(format!("{} (float32, bfloat16 or float16 only)", x.dtype()));
    }
    if x.size() == 0 {
        return Err("empty array (nothing to compute)".into());
    }
    if i32::try_from(x.size()).is_err() {
        return Err(format!("{} elements (at most {})", x.size(), i32::MAX));
    }
    Ok(())
}

/// Elements per thread: 16 bytes' worth (4 float32 or 8 bfloat16 / float16).
pub(crate) fn vector_width(dtype: Dtype) -> i32 {
    16 / i32::try_from(dtype.size()).unwrap_or(16).max(1)
}

/// The launch grid, in threads, for `n` elements of `dtype` (`n` checked by [`check_array`]).
pub(crate) fn grid(n: i32, dtype: Dtype) -> (i32, i32, i32) {
    let width = vector_width(dtype);
    (n / width + i32::from(n % width != 0), 1, 1)
}

/// Whether a kernel that supports the case (`supported`) runs under `policy` for `n` elements of
/// `dtype` on `backend`, given its measured CUDA crossovers (none are measured on Metal, so
/// [`Fused::Auto`] keeps MLX's ops there).
pub(crate) fn use_kernel(
    policy: Fused,
    supported: &std::result::Result<KernelBackend, String>,
    cuda_crossovers: &[SizeCrossover],
    dtype: Dtype,
    n: usize,
) -> bool {
    match (policy, supported) {
        (Fused::Off, _) | (_, Err(_)) => false,
        (Fused::On, Ok(_)) => true,
        (Fused::Auto, Ok(KernelBackend::Cuda)) => {
            cuda_crossovers.iter().any(|c| c.dtype == dtype && n >= c.from_elements)
        }
        (Fused::Auto, Ok(KernelBackend::Metal)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_every_element_once() {
        for (n, dtype, threads) in [
            (1, Dtype::Float32, 1),
            (4, Dtype::Float32, 1),
            (5, Dtype::Float32, 2),
            (4097, Dtype::Bfloat16, 513),
            (16, Dtype::Float16, 2),
        ] {
            assert_eq!(grid(n, dtype), (threads, 1, 1), "{n} {dtype}");
        }
    }

    #[test]
    fn auto_follows_the_table() {
        let table = [SizeCrossover { dtype: Dtype::Bfloat16, from_elements: 1000 }];
        let cuda = Ok(KernelBackend::Cuda);
        assert!(!use_kernel(Fused::Auto, &cuda, &table, Dtype::Bfloat16, 999));
        assert!(use_kernel(Fused::Auto, &cuda, &table, Dtype::Bfloat16, 1000));
        assert!(!use_kernel(Fused::Auto, &cuda, &table, Dtype::Float32, 1 << 20));
        assert!(!use_kernel(Fused::Auto, &Ok(KernelBackend::Metal), &table, Dtype::Bfloat16, 1000));
        assert!(use_kernel(Fused::On, &cuda, &[], Dtype::Float32, 1));
        assert!(!use_kernel(Fused::Off, &cuda, &table, Dtype::Bfloat16, 1000));
        assert!(!use_kernel(Fused::On, &Err("cpu".into()), &table, Dtype::Bfloat16, 1000));
    }
}
