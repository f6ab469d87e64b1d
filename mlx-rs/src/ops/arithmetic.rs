//! Element-wise arithmetic with broadcasting.

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::{Array, Result, Stream, ffi};

/// Element-wise `a + b` with broadcasting and type promotion.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3], &[3])?;
/// let sum = ops::add(&a, &Array::scalar(10i32))?;
/// assert_eq!(sum.to_vec::<i32>()?, [11, 12, 13]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn add_device(a: &Array, b: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("add", |out| unsafe { sys::mlx_add(out, a.raw(), b.raw(), stream.raw()) })
}
