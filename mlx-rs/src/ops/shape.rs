//! Shape manipulation: reshaping, transposing, joining, splitting, padding and friends.

use mlx_macros::default_device;
use mlx_sys as sys;

use super::Axes;
use crate::array::normalize_axis;
use crate::vector::VectorArray;
use crate::{Array, Dtype, Error, Result, Stream, ffi};

/// `a` with the given `shape` (one entry may be `-1`, inferred), as in `mlx.core.reshape`.
///
/// Errors if the sizes do not match.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4, 5, 6], &[6])?;
/// let b = ops::reshape(&a, &[2, -1])?;
/// assert_eq!(b.shape(), &[2, 3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn reshape_device(a: &Array, shape: impl AsRef<[i32]>, stream: &Stream) -> Result<Array> {
    let shape = shape.as_ref();
    if shape.iter().any(|&d| d < -1) {
        return Err(Error::invalid("reshape", format!("invalid shape {shape:?}")));
    }
    // SAFETY: live handles; `shape` is valid for `shape.len()` ints; the output is owned by
    // `array_out`.
    ffi::array_out("reshape", |out| unsafe {
        sys::mlx_reshape(out, a.raw(), shape.as_ptr(), shape.len(), stream.raw())
    })
}

/// `a` with axes `start_axis..=end_axis` merged into one, as in `mlx.core.flatten`.
///
/// Pass `0, -1` to flatten everything.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<f32>(&[2, 3, 4])?;
/// assert_eq!(ops::flatten(&a, 1, -1)?.shape(), &[2, 12]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn flatten_device(a: &Array, start_axis: i32, end_axis: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("flatten", |out| unsafe {
        sys::mlx_flatten(out, a.raw(), start_axis, end_axis, stream.raw())
    })
}

/// `a` with `axis` split into the dimensions `shape` (one entry may be `-1`), as in
/// `mlx.core.unflatten`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<f32>(&[2, 12])?;
/// assert_eq!(ops::unflatten(&a, -1, &[3, -1])?.shape(), &[2, 3, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn unflatten_device(
    a: &Array,
    axis: i32,
    shape: impl AsRef<[i32]>,
    stream: &Stream,
) -> Result<Array> {
    let shape = shape.as_ref();
    // MLX divides by the product of the known sizes to infer a `-1`: reject a zero product.
    if shape.contains(&-1) && shape.contains(&0) {
        return Err(Error::invalid(
            "unflatten",
            format!("cannot infer a dimension of shape {shape:?}, which has a zero size"),
        ));
    }
    if shape.iter().any(|&d| d < -1) {
        return Err(Error::invalid("unflatten", format!("invalid shape {shape:?}")));
    }
    // SAFETY: live handles; `shape` is valid for `shape.len()` ints; the output is owned by
    // `array_out`.
    ffi::array_out("unflatten", |out| unsafe {
        sys::mlx_unflatten(out, a.raw(), axis, shape.as_ptr(), shape.len(), stream.raw())
    })
}

/// `a` without size-1 axes (all of them, or only `axes`), as in `mlx.core.squeeze`.
///
/// Errors if an axis is out of range or does not have size 1.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<f32>(&[1, 2, 1])?;
/// assert_eq!(ops::squeeze(&a, ..)?.shape(), &[2]);
/// assert_eq!(ops::squeeze(&a, &[-1])?.shape(), &[1, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn squeeze_device(a: &Array, axes: impl Into<Axes>, stream: &Stream) -> Result<Array> {
    match axes.into().as_slice() {
        None => {
            // SAFETY: live handles; the output is owned by `array_out`.
            ffi::array_out("squeeze", |out| unsafe { sys::mlx_squeeze(out, a.raw(), stream.raw()) })
        }
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(&[axis]) => ffi::array_out("squeeze", |out| unsafe {
            sys::mlx_squeeze_axis(out, a.raw(), axis, stream.raw())
        }),
        // SAFETY: live handles; `axes` is valid for its length; the output is owned by
        // `array_out`.
        Some(axes) => ffi::array_out("squeeze", |out| unsafe {
            sys::mlx_squeeze_axes(out, a.raw(), axes.as_ptr(), axes.len(), stream.raw())
        }),
    }
}

/// `a` with new size-1 axes inserted at `axes` (positions in the output), as in
/// `mlx.core.expand_dims`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<f32>(&[2, 3])?;
/// assert_eq!(ops::expand_dims(&a, &[0, -1])?.shape(), &[1, 2, 3, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn expand_dims_device(a: &Array, axes: impl Into<Axes>, stream: &Stream) -> Result<Array> {
    match axes.into().listed("expand_dims")? {
        // SAFETY: live handles; the output is owned by `array_out`.
        &[axis] => ffi::array_out("expand_dims", |out| unsafe {
            sys::mlx_expand_dims(out, a.raw(), axis, stream.raw())
        }),
        // SAFETY: live handles; `axes` is valid for its length; the output is owned by
        // `array_out`.
        axes => ffi::array_out("expand_dims", |out| unsafe {
            sys::mlx_expand_dims_axes(out, a.raw(), axes.as_ptr(), axes.len(), stream.raw())
        }),
    }
}

/// `a` with its axes permuted (reversed when `axes` is `..`), as in `mlx.core.transpose`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4, 5, 6], &[2, 3])?;
/// let t = ops::transpose(&a, ..)?;
/// assert_eq!(t.shape(), &[3, 2]);
/// assert_eq!(t.to_vec::<i32>()?, [1, 4, 2, 5, 3, 6]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn transpose_device(a: &Array, axes: impl Into<Axes>, stream: &Stream) -> Result<Array> {
    match axes.into().as_slice() {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("transpose", |out| unsafe {
            sys::mlx_transpose(out, a.raw(), stream.raw())
        }),
        // SAFETY: live handles; `axes` is valid for its length; the output is owned by
        // `array_out`.
        Some(axes) => ffi::array_out("transpose", |out| unsafe {
            sys::mlx_transpose_axes(out, a.raw(), axes.as_ptr(), axes.len(), stream.raw())
        }),
    }
}

/// `a` with two axes swapped, as in `mlx.core.swapaxes`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<f32>(&[2, 3, 4])?;
/// assert_eq!(ops::swapaxes(&a, 0, -1)?.shape(), &[4, 3, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn swapaxes_device(a: &Array, axis1: i32, axis2: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("swapaxes", |out| unsafe {
        sys::mlx_swapaxes(out, a.raw(), axis1, axis2, stream.raw())
    })
}

/// `a` with axis `source` moved to position `destination`, as in `mlx.core.moveaxis`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<f32>(&[2, 3, 4])?;
/// assert_eq!(ops::moveaxis(&a, 0, -1)?.shape(), &[3, 4, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn moveaxis_device(a: &Array, source: i32, destination: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("moveaxis", |out| unsafe {
        sys::mlx_moveaxis(out, a.raw(), source, destination, stream.raw())
    })
}

/// `a` broadcast to `shape`, as in `mlx.core.broadcast_to`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2], &[2])?;
/// let b = ops::broadcast_to(&a, &[2, 2])?;
/// assert_eq!(b.to_vec::<i32>()?, [1, 2, 1, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn broadcast_to_device(a: &Array, shape: impl AsRef<[i32]>, stream: &Stream) -> Result<Array> {
    let shape = shape.as_ref();
    // SAFETY: live handles; `shape` is valid for its length; the output is owned by `array_out`.
    ffi::view_out("broadcast_to", |out| unsafe {
        sys::mlx_broadcast_to(out, a.raw(), shape.as_ptr(), shape.len(), stream.raw())
    })
}

/// The inputs broadcast against one another, as in `mlx.core.broadcast_arrays`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2], &[2])?;
/// let b = Array::from_slice(&[3i32, 4], &[2, 1])?;
/// let out = ops::broadcast_arrays(&[a, b])?;
/// assert_eq!(out[0].shape(), &[2, 2]);
/// assert_eq!(out[1].to_vec::<i32>()?, [3, 3, 4, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn broadcast_arrays_device<A: AsRef<Array>>(
    arrays: &[A],
    stream: &Stream,
) -> Result<Vec<Array>> {
    let inputs = VectorArray::from_arrays(arrays);
    // SAFETY: live handles; the output vector is owned by `arrays_out`.
    ffi::views_out("broadcast_arrays", |out| unsafe {
        sys::mlx_broadcast_arrays(out, inputs.raw(), stream.raw())
    })
}

/// The arrays joined along `axis` (flattened first when `axis` is `None`), as in
/// `mlx.core.concatenate`.
///
/// Errors if no arrays are given or their shapes differ off the axis.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2], &[1, 2])?;
/// let b = Array::from_slice(&[3i32, 4], &[1, 2])?;
/// assert_eq!(ops::concatenate(&[&a, &b], Some(0))?.shape(), &[2, 2]);
/// assert_eq!(ops::concatenate(&[&a, &b], Some(-1))?.to_vec::<i32>()?, [1, 2, 3, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn concatenate_device<A: AsRef<Array>>(
    arrays: &[A],
    axis: Option<i32>,
    stream: &Stream,
) -> Result<Array> {
    let inputs = VectorArray::from_arrays(arrays);
    match axis {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("concatenate", |out| unsafe {
            sys::mlx_concatenate(out, inputs.raw(), stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(axis) => ffi::array_out("concatenate", |out| unsafe {
            sys::mlx_concatenate_axis(out, inputs.raw(), axis, stream.raw())
        }),
    }
}

/// The arrays (all of one shape) stacked along a new axis `axis`, as in `mlx.core.stack`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2], &[2])?;
/// let b = Array::from_slice(&[3i32, 4], &[2])?;
/// let s = ops::stack(&[&a, &b], 1)?;
/// assert_eq!(s.to_vec::<i32>()?, [1, 3, 2, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn stack_device<A: AsRef<Array>>(arrays: &[A], axis: i32, stream: &Stream) -> Result<Array> {
    let inputs = VectorArray::from_arrays(arrays);
    if axis == 0 {
        // SAFETY: live handles; the output is owned by `array_out`.
        ffi::array_out("stack", |out| unsafe { sys::mlx_stack(out, inputs.raw(), stream.raw()) })
    } else {
        // SAFETY: live handles; the output is owned by `array_out`.
        ffi::array_out("stack", |out| unsafe {
            sys::mlx_stack_axis(out, inputs.raw(), axis, stream.raw())
        })
    }
}

/// The slices of `a` along `axis`, each without that axis, as in `mlx.core.unstack`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4], &[2, 2])?;
/// let parts = ops::unstack(&a, 1)?;
/// assert_eq!(parts[1].to_vec::<i32>()?, [2, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn unstack_device(a: &Array, axis: i32, stream: &Stream) -> Result<Vec<Array>> {
    let parts = normalize_axis("unstack", axis, a.ndim()).map(|i| a.shape()[i])?;
    ffi::check_output_count("unstack", parts.unsigned_abs().into())?;
    if axis == 0 {
        // SAFETY: live handles; the output vector is owned by `arrays_out`.
        ffi::arrays_out("unstack", |out| unsafe { sys::mlx_unstack(out, a.raw(), stream.raw()) })
    } else {
        // SAFETY: live handles; the output vector is owned by `arrays_out`.
        ffi::arrays_out("unstack", |out| unsafe {
            sys::mlx_unstack_axis(out, a.raw(), axis, stream.raw())
        })
    }
}

/// `a` split along `axis` into `num_splits` equal parts, as in `mlx.core.split` with an
/// integer.
///
/// Errors if `num_splits` is not positive or does not divide the axis.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4], &[4])?;
/// let parts = ops::split(&a, 2, 0)?;
/// assert_eq!(parts[1].to_vec::<i32>()?, [3, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn split_device(a: &Array, num_splits: i32, axis: i32, stream: &Stream) -> Result<Vec<Array>> {
    if num_splits <= 0 {
        return Err(Error::invalid(
            "split",
            format!("num_splits must be positive, got {num_splits}"),
        ));
    }
    ffi::check_output_count("split", num_splits.unsigned_abs().into())?;
    // SAFETY: live handles; the output vector is owned by `arrays_out`.
    ffi::arrays_out("split", |out| unsafe {
        sys::mlx_split(out, a.raw(), num_splits, axis, stream.raw())
    })
}

/// `a` split along `axis` at the given indices, as in `mlx.core.split` with a list.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4, 5], &[5])?;
/// let parts = ops::split_sections(&a, &[1, 3], 0)?;
/// assert_eq!(parts.len(), 3);
/// assert_eq!(parts[1].to_vec::<i32>()?, [2, 3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn split_sections_device(
    a: &Array,
    indices: &[i32],
    axis: i32,
    stream: &Stream,
) -> Result<Vec<Array>> {
    // SAFETY: live handles; `indices` is valid for its length; the output vector is owned by
    // `arrays_out`.
    ffi::arrays_out("split", |out| unsafe {
        sys::mlx_split_sections(out, a.raw(), indices.as_ptr(), indices.len(), axis, stream.raw())
    })
}

/// `a` repeated `reps` times along each axis, as in `mlx.core.tile`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2], &[2])?;
/// assert_eq!(ops::tile(&a, &[2])?.to_vec::<i32>()?, [1, 2, 1, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn tile_device(a: &Array, reps: &[i32], stream: &Stream) -> Result<Array> {
    if let Some(r) = reps.iter().find(|&&r| r < 0) {
        return Err(Error::invalid("tile", format!("negative repetition {r}")));
    }
    // SAFETY: live handles; `reps` is valid for its length; the output is owned by `array_out`.
    ffi::array_out("tile", |out| unsafe {
        sys::mlx_tile(out, a.raw(), reps.as_ptr(), reps.len(), stream.raw())
    })
}

/// Each element of `a` repeated `repeats` times along `axis` (of the flattened array when
/// `axis` is `None`), as in `mlx.core.repeat`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2], &[2])?;
/// assert_eq!(ops::repeat(&a, 2, None)?.to_vec::<i32>()?, [1, 1, 2, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn repeat_device(a: &Array, repeats: i32, axis: Option<i32>, stream: &Stream) -> Result<Array> {
    match axis {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("repeat", |out| unsafe {
            sys::mlx_repeat(out, a.raw(), repeats, stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(axis) => ffi::array_out("repeat", |out| unsafe {
            sys::mlx_repeat_axis(out, a.raw(), repeats, axis, stream.raw())
        }),
    }
}

/// How [`pad`] fills the new elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PadMode {
    /// With a constant value (`"constant"`, the default).
    #[default]
    Constant,
    /// With the edge values (`"edge"`).
    Edge,
    /// With the reflection of the array, not repeating the edge (`"reflect"`).
    Reflect,
    /// With the reflection of the array, repeating the edge (`"symmetric"`).
    Symmetric,
}

impl PadMode {
    fn c_name(self) -> &'static std::ffi::CStr {
        match self {
            PadMode::Constant => c"constant",
            PadMode::Edge => c"edge",
            PadMode::Reflect => c"reflect",
            PadMode::Symmetric => c"symmetric",
        }
    }
}

/// `a` padded on each axis by `(before, after)` elements, as in `mlx.core.pad`.
///
/// `pad_width` holds one pair per axis, or a single pair used for every axis.
/// `constant_value` (default `0`) fills the new elements in [`PadMode::Constant`]. Errors if
/// `pad_width` has another length or a negative width.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2], &[2])?;
/// let p = ops::pad(&a, &[(1, 2)], ops::PadMode::Constant, Some(&Array::scalar(9i32)))?;
/// assert_eq!(p.to_vec::<i32>()?, [9, 1, 2, 9, 9]);
/// let e = ops::pad(&a, &[(1, 1)], ops::PadMode::Edge, None)?;
/// assert_eq!(e.to_vec::<i32>()?, [1, 1, 2, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn pad_device(
    a: &Array,
    pad_width: &[(i32, i32)],
    mode: PadMode,
    constant_value: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    if let Some((lo, hi)) = pad_width.iter().find(|(lo, hi)| *lo < 0 || *hi < 0) {
        return Err(Error::invalid(
            "pad",
            format!("padding sizes must be non-negative, got ({lo}, {hi})"),
        ));
    }
    let zero;
    let value = match constant_value {
        Some(v) => v,
        None => {
            zero = Array::scalar(0i32);
            &zero
        }
    };
    let mode_name = mode.c_name();
    if let &[(lo, hi)] = pad_width {
        if lo != hi {
            return pad_pairs(a, &[(lo, hi)], mode_name, value, stream);
        }
        // SAFETY: live handles; `mode_name` is NUL-terminated and static; the output is owned
        // by `array_out`.
        return ffi::array_out("pad", |out| unsafe {
            sys::mlx_pad_symmetric(out, a.raw(), lo, value.raw(), mode_name.as_ptr(), stream.raw())
        });
    }
    pad_pairs(a, pad_width, mode_name, value, stream)
}

/// `pad` with explicit pairs, through `mlx_pad`.
fn pad_pairs(
    a: &Array,
    pad_width: &[(i32, i32)],
    mode_name: &std::ffi::CStr,
    value: &Array,
    stream: &Stream,
) -> Result<Array> {
    let ndim = a.ndim();
    let pairs: Vec<(i32, i32)> = match pad_width.len() {
        1 => vec![pad_width[0]; ndim],
        n if n == ndim => pad_width.to_vec(),
        n => {
            return Err(Error::invalid(
                "pad",
                format!("got {n} (before, after) pairs for an array with {ndim} dimensions"),
            ));
        }
    };
    let axes: Vec<i32> = (0..ndim as i32).collect();
    let low: Vec<i32> = pairs.iter().map(|p| p.0).collect();
    let high: Vec<i32> = pairs.iter().map(|p| p.1).collect();
    // SAFETY: live handles; the three slices have `ndim` ints each; `mode_name` is
    // NUL-terminated; the output is owned by `array_out`.
    ffi::array_out("pad", |out| unsafe {
        sys::mlx_pad(
            out,
            a.raw(),
            axes.as_ptr(),
            axes.len(),
            low.as_ptr(),
            low.len(),
            high.as_ptr(),
            high.len(),
            value.raw(),
            mode_name.as_ptr(),
            stream.raw(),
        )
    })
}

/// `a` with its elements shifted by `shift` along `axes` (of the flattened array when `axes` is
/// `..`), wrapping around, as in `mlx.core.roll`.
///
/// With `..` or a single axis, the shifts are summed. With several axes, `shift` holds one
/// value per axis or a single value for all of them.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4], &[2, 2])?;
/// assert_eq!(ops::roll(&a, &[1], ..)?.to_vec::<i32>()?, [4, 1, 2, 3]);
/// assert_eq!(ops::roll(&a, &[1], &[1])?.to_vec::<i32>()?, [2, 1, 4, 3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn roll_device(
    a: &Array,
    shift: &[i32],
    axes: impl Into<Axes>,
    stream: &Stream,
) -> Result<Array> {
    if shift.is_empty() {
        return Err(Error::invalid("roll", "no shift given"));
    }
    // Shifts are reduced modulo the axis size here, so that no sum or negation overflows in MLX.
    let reduce = |total: i64, size: i64| -> i32 {
        if size == 0 { 0 } else { total.rem_euclid(size) as i32 }
    };
    let total: i64 = shift.iter().map(|&s| i64::from(s)).sum();
    match axes.into().as_slice() {
        None => {
            let shift = [reduce(total, a.size() as i64)];
            // SAFETY: live handles; `shift` holds one int; the output is owned by `array_out`.
            ffi::array_out("roll", |out| unsafe {
                sys::mlx_roll(out, a.raw(), shift.as_ptr(), 1, stream.raw())
            })
        }
        Some(&[axis]) => {
            let index = normalize_axis("roll", axis, a.ndim())?;
            let shift = [reduce(total, i64::from(a.shape()[index]))];
            // SAFETY: live handles; `shift` holds one int; the output is owned by `array_out`.
            ffi::array_out("roll", |out| unsafe {
                sys::mlx_roll_axis(out, a.raw(), shift.as_ptr(), 1, axis, stream.raw())
            })
        }
        Some(axes) => {
            if shift.len() != 1 && shift.len() != axes.len() {
                return Err(Error::invalid(
                    "roll",
                    format!("got {} shifts for {} axes", shift.len(), axes.len()),
                ));
            }
            let mut shifts = Vec::with_capacity(axes.len());
            for (i, &axis) in axes.iter().enumerate() {
                let index = normalize_axis("roll", axis, a.ndim())?;
                let s = if shift.len() == 1 { shift[0] } else { shift[i] };
                shifts.push(reduce(i64::from(s), i64::from(a.shape()[index])));
            }
            // SAFETY: live handles; `shifts` and `axes` have the same length; the output is
            // owned by `array_out`.
            ffi::array_out("roll", |out| unsafe {
                sys::mlx_roll_axes(
                    out,
                    a.raw(),
                    shifts.as_ptr(),
                    shifts.len(),
                    axes.as_ptr(),
                    axes.len(),
                    stream.raw(),
                )
            })
        }
    }
}

/// `a` with the order of elements reversed along `axes` (all axes when `..`), as in
/// `mlx.core.flip`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4], &[2, 2])?;
/// assert_eq!(ops::flip(&a, ..)?.to_vec::<i32>()?, [4, 3, 2, 1]);
/// assert_eq!(ops::flip(&a, &[-1])?.to_vec::<i32>()?, [2, 1, 4, 3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn flip_device(a: &Array, axes: impl Into<Axes>, stream: &Stream) -> Result<Array> {
    match axes.into().as_slice() {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("flip", |out| unsafe { sys::mlx_flip(out, a.raw(), stream.raw()) }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(&[axis]) => ffi::array_out("flip", |out| unsafe {
            sys::mlx_flip_axis(out, a.raw(), axis, stream.raw())
        }),
        // SAFETY: live handles; `axes` is valid for its length; the output is owned by
        // `array_out`.
        Some(axes) => ffi::array_out("flip", |out| unsafe {
            sys::mlx_flip_axes(out, a.raw(), axes.as_ptr(), axes.len(), stream.raw())
        }),
    }
}

/// `a` with at least one dimension, as in `mlx.core.atleast_1d`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// assert_eq!(ops::atleast_1d(&Array::scalar(1.0f32))?.shape(), &[1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn atleast_1d_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("atleast_1d", |out| unsafe { sys::mlx_atleast_1d(out, a.raw(), stream.raw()) })
}

/// `a` with at least two dimensions, as in `mlx.core.atleast_2d`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// assert_eq!(ops::atleast_2d(&Array::zeros::<f32>(&[3])?)?.shape(), &[1, 3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn atleast_2d_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("atleast_2d", |out| unsafe { sys::mlx_atleast_2d(out, a.raw(), stream.raw()) })
}

/// `a` with at least three dimensions, as in `mlx.core.atleast_3d`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// assert_eq!(ops::atleast_3d(&Array::zeros::<f32>(&[3])?)?.shape(), &[1, 3, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn atleast_3d_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("atleast_3d", |out| unsafe { sys::mlx_atleast_3d(out, a.raw(), stream.raw()) })
}

/// A view of the row-major elements of `a` with the given `shape` and `strides` (in elements)
/// starting at element `offset`, as in `mlx.core.as_strided`.
///
/// Errors if `shape` and `strides` differ in length, a dimension is negative, or the view would
/// reach outside `a`'s elements (MLX itself does not check this).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4], &[4])?;
/// let windows = ops::as_strided(&a, &[3, 2], &[1, 1], 0)?;
/// assert_eq!(windows.to_vec::<i32>()?, [1, 2, 2, 3, 3, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn as_strided_device(
    a: &Array,
    shape: &[i32],
    strides: &[i64],
    offset: usize,
    stream: &Stream,
) -> Result<Array> {
    if shape.len() != strides.len() {
        return Err(Error::invalid(
            "as_strided",
            format!("got {} strides for a shape of {} dimensions", strides.len(), shape.len()),
        ));
    }
    let count = crate::array::element_count("as_strided", shape)?;
    if count > 0 {
        // The lowest and highest element the view reaches, relative to `offset`.
        let (mut lowest, mut highest) = (0i128, 0i128);
        for (&d, &s) in shape.iter().zip(strides) {
            let reach = i128::from(d - 1) * i128::from(s);
            if reach < 0 {
                lowest += reach;
            } else {
                highest += reach;
            }
        }
        let offset_i = offset as i128;
        if offset_i + lowest < 0 || offset_i + highest >= a.size() as i128 {
            return Err(Error::invalid(
                "as_strided",
                format!(
                    "shape {shape:?} with strides {strides:?} and offset {offset} reaches \
                     outside the {} elements of the array",
                    a.size()
                ),
            ));
        }
    }
    // SAFETY: live handles; `shape` and `strides` are valid for their lengths and, as checked
    // above, only address elements of `a`; the output is owned by `array_out`.
    ffi::view_out("as_strided", |out| unsafe {
        sys::mlx_as_strided(
            out,
            a.raw(),
            shape.as_ptr(),
            shape.len(),
            strides.as_ptr(),
            strides.len(),
            offset,
            stream.raw(),
        )
    })
}

/// The `k`-th diagonal of a 2-D `a`, or a 2-D array with the 1-D `a` on its `k`-th diagonal,
/// as in `mlx.core.diag`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let v = Array::from_slice(&[1i32, 2], &[2])?;
/// assert_eq!(ops::diag(&v, 0)?.to_vec::<i32>()?, [1, 0, 0, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn diag_device(a: &Array, k: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("diag", |out| unsafe { sys::mlx_diag(out, a.raw(), k, stream.raw()) })
}

/// The diagonal at `offset` of the 2-D sub-arrays on `axis1` and `axis2`, placed last, as in
/// `mlx.core.diagonal`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4], &[2, 2])?;
/// assert_eq!(ops::diagonal(&a, 0, 0, 1)?.to_vec::<i32>()?, [1, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn diagonal_device(
    a: &Array,
    offset: i32,
    axis1: i32,
    axis2: i32,
    stream: &Stream,
) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("diagonal", |out| unsafe {
        sys::mlx_diagonal(out, a.raw(), offset, axis1, axis2, stream.raw())
    })
}

/// The number of elements of `a` on `axes` (its inverse with `inverted`) as a scalar of
/// `dtype`, as in MLX's C++ `number_of_elements`.
///
/// Unlike `Array::size`, the count stays correct inside function transforms with shapeless
/// compilation. Errors if an axis is out of range.
///
/// ```
/// use mlx_rs::{Array, Dtype, ops};
/// let a = Array::zeros::<f32>(&[2, 3, 4])?;
/// let n = ops::number_of_elements(&a, &[0, -1], false, Dtype::Int32)?;
/// assert_eq!(n.item::<i32>()?, 8);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn number_of_elements_device(
    a: &Array,
    axes: &[i32],
    inverted: bool,
    dtype: Dtype,
    stream: &Stream,
) -> Result<Array> {
    // MLX wraps out-of-range axes (and divides by zero for a 0-D array): check them here.
    for &axis in axes {
        normalize_axis("number_of_elements", axis, a.ndim())?;
    }
    // SAFETY: live handles; `axes` is valid for its length; the output is owned by `array_out`.
    ffi::array_out("number_of_elements", |out| unsafe {
        sys::mlx_number_of_elements(
            out,
            a.raw(),
            axes.as_ptr(),
            axes.len(),
            inverted,
            dtype.to_raw(),
            stream.raw(),
        )
    })
}
