//! Operations on arrays, as in `mlx.core`.
//!
//! Every op comes as `foo_device(.., &Stream)` and `foo(..)` (the calling thread's default
//! stream). Broadcasting and type promotion follow MLX.

#[macro_use]
mod macros;

mod arithmetic;
mod axes;
mod bounded;
mod comparison;
mod conversion;
mod convolution;
mod creation;
mod cumulative;
mod indexing;
mod linear;
mod logical;
mod math;
mod reduction;
mod shape;
mod sort;

pub use arithmetic::*;
pub use axes::Axes;
pub use bounded::{BoundedIndices, IndexArray};
pub use comparison::*;
pub use conversion::*;
pub use convolution::*;
pub use creation::*;
pub use cumulative::*;
pub use indexing::*;
pub use linear::*;
pub use logical::*;
pub use math::*;
pub use reduction::*;
pub use shape::*;
pub use sort::*;

/// The result of a scan, sort or partition, made safe for empty arrays: MLX 0.32.2's CPU
/// kernels for these divide by the size of the axis they work along and die of SIGFPE on an
/// array with no elements (found by the `ops` fuzz target; Python MLX crashes the same way).
/// An empty result holds nothing to compute, so it is replaced by a fresh empty array of the
/// shape and dtype MLX has already worked out (argument errors are still MLX's).
fn empty_safe(
    out: crate::Result<crate::Array>,
    stream: &crate::Stream,
) -> crate::Result<crate::Array> {
    let out = out?;
    if out.size() == 0 {
        return creation::zeros_device(out.shape(), out.dtype(), stream);
    }
    Ok(out)
}
