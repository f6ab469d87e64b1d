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
