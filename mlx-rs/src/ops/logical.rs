//! Element-wise logical ops (on truth values, any dtype) and bitwise ops (on integers and
//! booleans).
//!
//! Logical ops treat non-zero as true and return `bool` arrays. Bitwise ops fail for floating
//! point and complex arrays.

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::{Array, Dtype, Result, Stream, ffi};

binary_ops! {
    /// Element-wise logical and: a `bool` array. Fails when the shapes cannot be broadcast.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[true, true, false], &[3])?;
    /// let b = Array::from_slice(&[true, false, false], &[3])?;
    /// assert_eq!(ops::logical_and(&a, &b)?.to_vec::<bool>()?, [true, false, false]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    logical_and_device, mlx_logical_and, "logical_and";
    /// Element-wise logical or: a `bool` array. Fails when the shapes cannot be broadcast.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[true, true, false], &[3])?;
    /// let b = Array::from_slice(&[true, false, false], &[3])?;
    /// assert_eq!(ops::logical_or(&a, &b)?.to_vec::<bool>()?, [true, true, false]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    logical_or_device, mlx_logical_or, "logical_or";
    /// Element-wise logical exclusive or: a `bool` array. Fails when the shapes cannot be
    /// broadcast.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[true, true, false], &[3])?;
    /// let b = Array::from_slice(&[true, false, false], &[3])?;
    /// assert_eq!(ops::logical_xor(&a, &b)?.to_vec::<bool>()?, [false, true, false]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    logical_xor_device, mlx_logical_xor, "logical_xor";
    /// Element-wise `a & b` on integers or booleans. Fails for floating-point inputs.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0b1100u8, 0b1010], &[2])?;
    /// assert_eq!(ops::bitwise_and(&a, &Array::scalar(0b0110u8))?.to_vec::<u8>()?, [0b0100, 0b0010]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    bitwise_and_device, mlx_bitwise_and, "bitwise_and";
    /// Element-wise `a | b` on integers or booleans. Fails for floating-point inputs.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[0b1100u8, 0b1010], &[2])?;
    /// assert_eq!(ops::bitwise_or(&a, &Array::scalar(0b0110u8))?.to_vec::<u8>()?, [0b1110, 0b1110]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    bitwise_or_device, mlx_bitwise_or, "bitwise_or";
    /// Element-wise `a << b` on integers or booleans. Fails for floating-point inputs.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[1i32, 3], &[2])?;
    /// assert_eq!(ops::left_shift(&a, &Array::scalar(2i32))?.to_vec::<i32>()?, [4, 12]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    left_shift_device, mlx_left_shift, "left_shift";
    /// Element-wise `a >> b` on integers or booleans (arithmetic for signed integers). Fails for
    /// floating-point inputs.
    ///
    /// ```
    /// use mlx_rs::{Array, ops};
    /// let a = Array::from_slice(&[16i32, -16], &[2])?;
    /// assert_eq!(ops::right_shift(&a, &Array::scalar(2i32))?.to_vec::<i32>()?, [4, -4]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    right_shift_device, mlx_right_shift, "right_shift";
}

/// Element-wise `a ^ b` on integers or booleans. Fails for floating-point inputs.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[0b1100u8, 0b1010], &[2])?;
/// assert_eq!(ops::bitwise_xor(&a, &Array::scalar(0b0110u8))?.to_vec::<u8>()?, [0b1010, 0b1100]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn bitwise_xor_device(a: &Array, b: &Array, stream: &Stream) -> Result<Array> {
    // On two booleans XOR is logical XOR. MLX 0.32.2's CPU `bitwise_xor` of two `bool` arrays
    // returns wrong values when it reuses an input's buffer (inputs that are temporaries), so
    // that case goes through `logical_xor`, which computes the same thing correctly.
    let both_bool = a.dtype() == Dtype::Bool && b.dtype() == Dtype::Bool;
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("bitwise_xor", |out| unsafe {
        if both_bool {
            sys::mlx_logical_xor(out, a.raw(), b.raw(), stream.raw())
        } else {
            sys::mlx_bitwise_xor(out, a.raw(), b.raw(), stream.raw())
        }
    })
}

/// Element-wise logical not: a `bool` array, true where `a` is zero.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[0.0f32, 2.0], &[2])?;
/// assert_eq!(ops::logical_not(&a)?.to_vec::<bool>()?, [true, false]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn logical_not_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("logical_not", |out| unsafe { sys::mlx_logical_not(out, a.raw(), stream.raw()) })
}

/// Element-wise bitwise complement `~a` of an integer array (for `bool`, logical not). Fails for
/// floating-point and complex inputs.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[0u8, 0b1111_0000], &[2])?;
/// assert_eq!(ops::bitwise_invert(&a)?.to_vec::<u8>()?, [0xff, 0b0000_1111]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn bitwise_invert_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("bitwise_invert", |out| unsafe {
        sys::mlx_bitwise_invert(out, a.raw(), stream.raw())
    })
}
