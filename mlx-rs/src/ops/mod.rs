//! Operations on arrays, as in `mlx.core`.

mod arithmetic;

pub use arithmetic::*;
