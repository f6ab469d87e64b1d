//! Indexing ops: take, gather, scatter, slices and their updates, `where`.
//!
//! MLX does not check the *values* of index arrays (nor the start positions of the dynamic
//! slices) against the indexed array's bounds, and an out-of-range value makes it read or write
//! outside the array. Checking would need the values, which are lazy, so every op here clamps
//! its index arrays into range with MLX ops instead (as JAX does): the clamped indices stay lazy,
//! nothing is evaluated, and every access stays inside the array. Like numpy, negative index
//! values count from the end.

use mlx_macros::default_device;
use mlx_sys as sys;

use super::shape::{broadcast_to_device, concatenate_device, reshape_device};
use super::{Axes, IndexArray};
use crate::array::normalize_axis;
use std::rc::Rc;

use super::Number;
use crate::dtype::ArrayElement;
use crate::vector::VectorArray;
use crate::{Array, Dtype, Error, Result, Stream, ffi};

/// What a negative index value means to an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Negative {
    /// Counts from the end of the axis, and MLX already reads it so (take, gather, scatter).
    MlxWraps,
    /// Counts from the end of the axis, but MLX does not read it so: wrapped here (the dynamic
    /// slices, whose negative starts MLX would use as they are).
    Wrap,
    /// Has no meaning; clamped to the first position.
    Clamp,
}

/// `values` (each saturated to the range of `T`) as an array of `T` with `shape`.
fn typed_bounds<T: ArrayElement + TryFrom<i64>>(
    values: &[i64],
    shape: &[i32],
    lo: i64,
    hi: i64,
) -> Result<Array> {
    let data: Vec<T> = values.iter().filter_map(|&v| T::try_from(v.clamp(lo, hi)).ok()).collect();
    Array::from_slice(&data, shape)
}

/// `values` as an integer array of `dtype` and `shape`, each saturated to the dtype's range.
fn int_bounds(op: &'static str, values: &[i64], shape: &[i32], dtype: Dtype) -> Result<Rc<Array>> {
    let (lo, hi) = int_range(op, dtype)?;
    if let ([value], []) = (values, shape) {
        // One bound for every index (the common case): a cached scalar, not a new array.
        return super::cached_scalar(op, Number::Int(i128::from((*value).clamp(lo, hi))), dtype);
    }
    let array = match dtype {
        Dtype::Uint8 => typed_bounds::<u8>(values, shape, lo, hi),
        Dtype::Uint16 => typed_bounds::<u16>(values, shape, lo, hi),
        Dtype::Uint32 => typed_bounds::<u32>(values, shape, lo, hi),
        Dtype::Uint64 => typed_bounds::<u64>(values, shape, lo, hi),
        Dtype::Int8 => typed_bounds::<i8>(values, shape, lo, hi),
        Dtype::Int16 => typed_bounds::<i16>(values, shape, lo, hi),
        Dtype::Int32 => typed_bounds::<i32>(values, shape, lo, hi),
        _ => typed_bounds::<i64>(values, shape, lo, hi),
    };
    array.map(Rc::new)
}

/// The range of the integer `dtype` (`u64`'s capped at `i64::MAX`).
pub(crate) fn int_range(op: &'static str, dtype: Dtype) -> Result<(i64, i64)> {
    Ok(match dtype {
        Dtype::Uint8 => (0, u8::MAX.into()),
        Dtype::Uint16 => (0, u16::MAX.into()),
        Dtype::Uint32 => (0, u32::MAX.into()),
        Dtype::Uint64 => (0, i64::MAX),
        Dtype::Int8 => (i8::MIN.into(), i8::MAX.into()),
        Dtype::Int16 => (i16::MIN.into(), i16::MAX.into()),
        Dtype::Int32 => (i32::MIN.into(), i32::MAX.into()),
        Dtype::Int64 => (i64::MIN, i64::MAX),
        _ => {
            return Err(Error::invalid(
                op,
                format!("indices must have an integer dtype, got {dtype}"),
            ));
        }
    })
}

/// `indices` with every value clamped into range, lazily (as JAX does): nothing is evaluated.
///
/// `extents` holds `(n, size)` pairs: an index reads or writes `size` consecutive positions of
/// an axis of size `n`, so a valid (non-negative) index lies in `[0, n - size]`. With one pair it
/// applies to every element of `indices`; otherwise there is one pair per element of a bounds
/// array of `bounds_shape`, which broadcasts against `indices`. Negative values are first
/// wrapped (counted from the end) or clamped to 0, per `negative`.
///
/// Errors for an axis of size 0 (no position is valid) unless `indices` is empty, for a `size`
/// outside `[0, n]`, or for non-integer indices.
pub(crate) fn clamp_indices(
    op: &'static str,
    indices: &Array,
    extents: &[(i64, i64)],
    bounds_shape: &[i32],
    negative: Negative,
    stream: &Stream,
) -> Result<Array> {
    if indices.size() == 0 || extents.is_empty() {
        return Ok(indices.clone());
    }
    for &(n, size) in extents {
        if n == 0 {
            return Err(Error::invalid(
                op,
                "cannot index an empty axis (size 0) with a non-empty index array",
            ));
        }
        if size < 0 || size > n {
            return Err(Error::invalid(
                op,
                format!("a slice of size {size} does not fit an axis of size {n}"),
            ));
        }
    }
    let dtype = indices.dtype();
    if !dtype.is_integer() {
        return Err(Error::invalid(op, format!("indices must have an integer dtype, got {dtype}")));
    }
    let ns: Vec<i64> = extents.iter().map(|&(n, _)| n).collect();
    let highest: Vec<i64> = extents.iter().map(|&(n, size)| n - size).collect();
    let bounds = |values: &[i64], dtype: Dtype| int_bounds(op, values, bounds_shape, dtype);
    let clip = |x: &Array, lo: Option<&Array>, hi: &Array| {
        super::arithmetic::clip_device(x, lo, Some(hi), stream)
    };
    let unsigned = matches!(dtype, Dtype::Uint8 | Dtype::Uint16 | Dtype::Uint32 | Dtype::Uint64);
    if unsigned {
        return clip(indices, None, &*bounds(&highest, dtype)?);
    }
    let single = extents.iter().all(|&(_, size)| size == 1);
    if negative == Negative::MlxWraps && single {
        // MLX itself wraps values in [-n, 0): one clip keeps the dtype and the graph small.
        let lowest: Vec<i64> = ns.iter().map(|n| -n).collect();
        return clip(indices, Some(&*bounds(&lowest, dtype)?), &*bounds(&highest, dtype)?);
    }
    // Wrapping adds `n`, which must not overflow: work in int32 (int64 when needed).
    let wide = dtype == Dtype::Int64 || ns.iter().any(|&n| n > i64::from(i32::MAX));
    let work = if wide { Dtype::Int64 } else { Dtype::Int32 };
    let mut x = if dtype == work {
        indices.clone()
    } else {
        super::conversion::astype_device(indices, work, stream)?
    };
    let zeros = vec![0; ns.len()];
    if negative != Negative::Clamp {
        let lowest: Vec<i64> = ns.iter().map(|n| -n).collect();
        let last: Vec<i64> = ns.iter().map(|n| n - 1).collect();
        x = clip(&x, Some(&*bounds(&lowest, work)?), &*bounds(&last, work)?)?;
        let below = super::comparison::less_device(&x, &*bounds(&zeros, work)?, stream)?;
        let wrapped = super::arithmetic::add_device(&x, &*bounds(&ns, work)?, stream)?;
        x = where_device(&below, &wrapped, &x, stream)?;
    }
    clip(&x, Some(&*bounds(&zeros, work)?), &*bounds(&highest, work)?)
}

/// `indices` for an axis of size `n`: as they are when their bound proves them in range,
/// otherwise clamped (see [`clamp_indices`]; negative values count from the end).
fn clamp_unless_bounded<I: IndexArray + ?Sized>(
    op: &'static str,
    indices: &I,
    n: i64,
    stream: &Stream,
) -> Result<Array> {
    let array = indices.index_array();
    check_index_dtypes(op, &[array])?;
    if super::bounded::within(indices, n) {
        return Ok(array.clone());
    }
    clamp_indices(op, array, &[(n, 1)], &[], Negative::MlxWraps, stream)
}

/// The size of `axis` of `a` as an `i64`.
fn axis_len(a: &Array, axis: usize) -> i64 {
    a.shape().get(axis).map_or(0, |&n| i64::from(n))
}

/// Errors unless every index array has an integer dtype.
fn check_index_dtypes<A: AsRef<Array>>(op: &'static str, indices: &[A]) -> Result<()> {
    for index in indices {
        let dtype = index.as_ref().dtype();
        if !dtype.is_integer() {
            return Err(Error::invalid(
                op,
                format!("indices must have an integer dtype, got {dtype}"),
            ));
        }
    }
    Ok(())
}

/// Errors unless `values` has one entry per dimension of `a` and `strides` none that is zero.
fn check_slice_args(
    op: &'static str,
    a: &Array,
    start: &[i32],
    stop: &[i32],
    strides: &[i32],
) -> Result<()> {
    let ndim = a.ndim();
    if start.len() != ndim || stop.len() != ndim || strides.len() != ndim {
        return Err(Error::invalid(
            op,
            format!(
                "got {} starts, {} stops and {} strides for an array with {ndim} dimensions",
                start.len(),
                stop.len(),
                strides.len()
            ),
        ));
    }
    if strides.contains(&0) {
        return Err(Error::invalid(op, "slice step cannot be zero"));
    }
    Ok(())
}

/// Elements of `a` at `indices` along `axis` (of the flattened array when `axis` is `None`), as
/// in `mlx.core.take`.
///
/// The result has `indices`' shape in place of the axis. Errors for non-integer indices or an
/// axis out of range.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices.
/// Negative values count from the end; values are clamped into `[-n, n - 1]` for an axis of size
/// `n`, and an empty axis with non-empty `indices` is an error.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4, 5, 6], &[2, 3])?;
/// let idx = Array::from_slice(&[2i32, 0], &[2])?;
/// assert_eq!(ops::take(&a, &idx, 1)?.to_vec::<i32>()?, [3, 1, 6, 4]);
/// assert_eq!(ops::take(&a, &idx, ..)?.to_vec::<i32>()?, [3, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn take_device<I: IndexArray + ?Sized>(
    a: &Array,
    indices: &I,
    axis: impl Into<Axes>,
    stream: &Stream,
) -> Result<Array> {
    let axis = axis.into().single("take")?;
    let n = match axis {
        None => i64::try_from(a.size()).unwrap_or(i64::MAX),
        Some(axis) => axis_len(a, normalize_axis("take", axis, a.ndim())?),
    };
    let indices = &clamp_unless_bounded("take", indices, n, stream)?;
    match axis {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("take", |out| unsafe {
            sys::mlx_take(out, a.raw(), indices.raw(), stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(axis) => ffi::array_out("take", |out| unsafe {
            sys::mlx_take_axis(out, a.raw(), indices.raw(), axis, stream.raw())
        }),
    }
}

/// `a` and `indices` flattened, for the `axis = None` form of the `*_along_axis` ops.
fn flat_pair(a: &Array, indices: &Array, stream: &Stream) -> Result<(Array, Array)> {
    Ok((
        super::shape::reshape_device(a, [-1], stream)?,
        super::shape::reshape_device(indices, [-1], stream)?,
    ))
}

/// Elements of `a` at `indices` along `axis`, matching them position by position on the other
/// axes (broadcasting), as in `mlx.core.take_along_axis`.
///
/// With `axis = None` both are flattened first. Errors for non-integer indices, an axis out of
/// range, or indices of another number of dimensions than `a`.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices.
/// Negative values count from the end; values are clamped into `[-n, n - 1]` for an axis of size
/// `n`, and an empty axis with non-empty `indices` is an error.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[10i32, 30, 20, 50, 40, 60], &[2, 3])?;
/// let idx = Array::from_slice(&[1i32, 0], &[2, 1])?;
/// assert_eq!(ops::take_along_axis(&a, &idx, 1)?.to_vec::<i32>()?, [30, 50]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn take_along_axis_device<I: IndexArray + ?Sized>(
    a: &Array,
    indices: &I,
    axis: impl Into<Axes>,
    stream: &Stream,
) -> Result<Array> {
    let axis = axis.into().single("take_along_axis")?;
    let bounded = indices;
    let indices = indices.index_array();
    check_index_dtypes("take_along_axis", &[indices])?;
    let flat;
    let (a, indices, axis) = match axis {
        Some(axis) => {
            normalize_axis("take_along_axis", axis, a.ndim())?;
            (a, indices, axis)
        }
        None => {
            flat = flat_pair(a, indices, stream)?;
            (&flat.0, &flat.1, 0)
        }
    };
    let n = axis_len(a, normalize_axis("take_along_axis", axis, a.ndim())?);
    let indices = &if super::bounded::within(bounded, n) {
        indices.clone()
    } else {
        clamp_indices("take_along_axis", indices, &[(n, 1)], &[], Negative::MlxWraps, stream)?
    };
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("take_along_axis", |out| unsafe {
        sys::mlx_take_along_axis(out, a.raw(), indices.raw(), axis, stream.raw())
    })
}

/// A copy of `a` with `values` written at `indices` along `axis`, as in
/// `mlx.core.put_along_axis`.
///
/// With `axis = None` the write goes to the flattened array and the result keeps `a`'s shape.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices.
/// Negative values count from the end; values are clamped into `[-n, n - 1]` for an axis of size
/// `n`, and an empty axis with non-empty `indices` is an error.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<i32>(&[2, 3])?;
/// let idx = Array::from_slice(&[1i32, 2], &[2, 1])?;
/// let out = ops::put_along_axis(&a, &idx, &Array::scalar(7i32), Some(1))?;
/// assert_eq!(out.to_vec::<i32>()?, [0, 7, 0, 0, 0, 7]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn put_along_axis_device(
    a: &Array,
    indices: &Array,
    values: &Array,
    axis: Option<i32>,
    stream: &Stream,
) -> Result<Array> {
    scatter_axis("put_along_axis", a, indices, values, axis, stream)
}

/// A copy of `a` with `values` added at `indices` along `axis` (repeated indices accumulate),
/// the additive form of [`put_along_axis`].
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices.
/// Negative values count from the end; values are clamped into `[-n, n - 1]` for an axis of size
/// `n`, and an empty axis with non-empty `indices` is an error.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<i32>(&[3])?;
/// let idx = Array::from_slice(&[1i32, 1, 2], &[3])?;
/// let out = ops::scatter_add_axis(&a, &idx, &Array::scalar(1i32), Some(0))?;
/// assert_eq!(out.to_vec::<i32>()?, [0, 2, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn scatter_add_axis_device(
    a: &Array,
    indices: &Array,
    values: &Array,
    axis: Option<i32>,
    stream: &Stream,
) -> Result<Array> {
    scatter_axis("scatter_add_axis", a, indices, values, axis, stream)
}

fn scatter_axis(
    op: &'static str,
    a: &Array,
    indices: &Array,
    values: &Array,
    axis: Option<i32>,
    stream: &Stream,
) -> Result<Array> {
    check_index_dtypes(op, &[indices])?;
    let call = |a: &Array, indices: &Array, values: &Array, axis: i32| {
        let n = axis_len(a, normalize_axis(op, axis, a.ndim())?);
        let indices = &clamp_indices(op, indices, &[(n, 1)], &[], Negative::MlxWraps, stream)?;
        ffi::array_out(op, |out| {
            if op == "put_along_axis" {
                // SAFETY: live handles; the output is owned by `array_out`.
                unsafe {
                    sys::mlx_put_along_axis(
                        out,
                        a.raw(),
                        indices.raw(),
                        values.raw(),
                        axis,
                        stream.raw(),
                    )
                }
            } else {
                // SAFETY: live handles; the output is owned by `array_out`.
                unsafe {
                    sys::mlx_scatter_add_axis(
                        out,
                        a.raw(),
                        indices.raw(),
                        values.raw(),
                        axis,
                        stream.raw(),
                    )
                }
            }
        })
    };
    match axis {
        Some(axis) => {
            normalize_axis(op, axis, a.ndim())?;
            call(a, indices, values, axis)
        }
        None => {
            let (flat_a, flat_indices) = flat_pair(a, indices, stream)?;
            let flat_values = if values.ndim() > 1 {
                super::shape::reshape_device(values, [-1], stream)?
            } else {
                values.clone()
            };
            let out = call(&flat_a, &flat_indices, &flat_values, 0)?;
            super::shape::reshape_device(&out, a.shape(), stream)
        }
    }
}

/// The basic slice `a[start:stop:strides]` with one entry per axis, as in MLX's C++ `slice`.
///
/// Bounds follow numpy: negative values count from the end and are clamped to the axis; with a
/// negative stride the slice runs backwards from `start` towards `stop`. `strides` defaults to
/// all ones. Errors if the lengths do not match the number of dimensions or a stride is zero.
/// For Python's `mx.slice` (start given as an array) see [`slice_dynamic`].
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[0i32, 1, 2, 3, 4, 5], &[6])?;
/// assert_eq!(ops::slice(&a, &[1], &[5], Some(&[2]))?.to_vec::<i32>()?, [1, 3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn slice_device(
    a: &Array,
    start: &[i32],
    stop: &[i32],
    strides: Option<&[i32]>,
    stream: &Stream,
) -> Result<Array> {
    let ones = vec![1; a.ndim()];
    let strides = strides.unwrap_or(&ones);
    check_slice_args("slice", a, start, stop, strides)?;
    // SAFETY: live handles; the three slices have `ndim` ints each; the output is owned by
    // `array_out`.
    ffi::array_out("slice", |out| unsafe {
        sys::mlx_slice(
            out,
            a.raw(),
            start.as_ptr(),
            start.len(),
            stop.as_ptr(),
            stop.len(),
            strides.as_ptr(),
            strides.len(),
            stream.raw(),
        )
    })
}

/// A slice of `slice_size` whose start on `axes` is read from the integer array `start` (one
/// entry per axis in `axes`), as in Python's `mlx.core.slice`.
///
/// `slice_size` has one entry per axis of `a`; axes not in `axes` start at 0.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices. A negative
/// start counts from the end, and each start is then clamped into `[0, n - slice_size]` for an
/// axis of size `n`, so the slice always lies inside the array. Errors for a non-integer
/// `start`, a `start` with another number of entries than `axes`, repeated or out-of-range axes,
/// or slice sizes that are negative or larger than the array.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[0i32, 1, 2, 3, 4, 5], &[6])?;
/// let start = Array::from_slice(&[2i32], &[1])?;
/// assert_eq!(ops::slice_dynamic(&a, &start, &[0], &[3])?.to_vec::<i32>()?, [2, 3, 4]);
/// // A start of 5 would run past the end: it is clamped to 3.
/// let start = Array::from_slice(&[5i32], &[1])?;
/// assert_eq!(ops::slice_dynamic(&a, &start, &[0], &[3])?.to_vec::<i32>()?, [3, 4, 5]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn slice_dynamic_device(
    a: &Array,
    start: &Array,
    axes: &[i32],
    slice_size: &[i32],
    stream: &Stream,
) -> Result<Array> {
    if let Some(s) = slice_size.iter().find(|&&s| s < 0) {
        return Err(Error::invalid("slice", format!("negative slice size {s}")));
    }
    if slice_size.len() != a.ndim() {
        return Err(Error::invalid(
            "slice",
            format!(
                "got {} slice sizes for an array with {} dimensions",
                slice_size.len(),
                a.ndim()
            ),
        ));
    }
    let sizes: Vec<i64> = slice_size.iter().map(|&s| i64::from(s)).collect();
    let start = clamp_starts("slice", a, start, axes, &sizes, stream)?;
    // SAFETY: live handles; `axes` and `slice_size` are valid for their lengths; the output is
    // owned by `array_out`.
    ffi::array_out("slice", |out| unsafe {
        sys::mlx_slice_dynamic(
            out,
            a.raw(),
            start.raw(),
            axes.as_ptr(),
            axes.len(),
            slice_size.as_ptr(),
            slice_size.len(),
            stream.raw(),
        )
    })
}

/// The start positions of a dynamic slice of `sizes` (one per axis of `a`) clamped so that the
/// slice lies inside `a`; see [`clamp_indices`].
fn clamp_starts(
    op: &'static str,
    a: &Array,
    start: &Array,
    axes: &[i32],
    sizes: &[i64],
    stream: &Stream,
) -> Result<Array> {
    check_index_dtypes(op, &[start])?;
    if start.size() != axes.len() {
        return Err(Error::invalid(
            op,
            format!("got {} start positions for {} axes", start.size(), axes.len()),
        ));
    }
    let mut seen = vec![false; a.ndim()];
    let mut extents = Vec::with_capacity(axes.len());
    for &axis in axes {
        let ax = normalize_axis(op, axis, a.ndim())?;
        if std::mem::replace(&mut seen[ax], true) {
            return Err(Error::invalid(op, format!("axis {axis} is repeated")));
        }
        let (n, size) = (axis_len(a, ax), sizes.get(ax).copied().unwrap_or(1));
        if size > n {
            return Err(Error::invalid(
                op,
                format!("a slice of size {size} does not fit axis {axis} of size {n}"),
            ));
        }
        extents.push((n, size));
    }
    // Only an empty slice fits an empty axis, and it starts at 0: the extent of a single
    // element on an axis of one gives exactly that.
    for extent in &mut extents {
        if extent.0 == 0 {
            *extent = (1, 1);
        }
    }
    clamp_indices(op, start, &extents, start.shape(), Negative::Wrap, stream)
}

/// The reduction a slice update applies to the existing elements.
#[derive(Clone, Copy)]
enum SliceUpdate {
    Set,
    Add,
    Max,
    Min,
    Prod,
}

impl SliceUpdate {
    fn name(self) -> &'static str {
        match self {
            SliceUpdate::Set => "slice_update",
            SliceUpdate::Add => "slice_update_add",
            SliceUpdate::Max => "slice_update_max",
            SliceUpdate::Min => "slice_update_min",
            SliceUpdate::Prod => "slice_update_prod",
        }
    }
}

fn slice_update_impl(
    kind: SliceUpdate,
    src: &Array,
    update: &Array,
    (start, stop, strides): (&[i32], &[i32], Option<&[i32]>),
    stream: &Stream,
) -> Result<Array> {
    let op = kind.name();
    let ones = vec![1; src.ndim()];
    let strides = strides.unwrap_or(&ones);
    check_slice_args(op, src, start, stop, strides)?;
    let f = match kind {
        SliceUpdate::Set => sys::mlx_slice_update,
        SliceUpdate::Add => sys::mlx_slice_update_add,
        SliceUpdate::Max => sys::mlx_slice_update_max,
        SliceUpdate::Min => sys::mlx_slice_update_min,
        SliceUpdate::Prod => sys::mlx_slice_update_prod,
    };
    // SAFETY: live handles; the three slices have `ndim` ints each; the output is owned by
    // `array_out`.
    ffi::array_out(op, |out| unsafe {
        f(
            out,
            src.raw(),
            update.raw(),
            start.as_ptr(),
            start.len(),
            stop.as_ptr(),
            stop.len(),
            strides.as_ptr(),
            strides.len(),
            stream.raw(),
        )
    })
}

/// A copy of `src` with the slice `start:stop:strides` replaced by `update` (broadcast to the
/// slice and cast to `src`'s dtype), as in MLX's C++ `slice_update`.
///
/// Bounds and errors are those of [`slice()`].
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<i32>(&[5])?;
/// let b = ops::slice_update(&a, &Array::scalar(1i32), &[1], &[5], Some(&[2]))?;
/// assert_eq!(b.to_vec::<i32>()?, [0, 1, 0, 1, 0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn slice_update_device(
    src: &Array,
    update: &Array,
    start: &[i32],
    stop: &[i32],
    strides: Option<&[i32]>,
    stream: &Stream,
) -> Result<Array> {
    slice_update_impl(SliceUpdate::Set, src, update, (start, stop, strides), stream)
}

/// [`slice_update`] that adds `update` to the slice.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::ones::<i32>(&[3])?;
/// let b = ops::slice_update_add(&a, &Array::scalar(5i32), &[1], &[3], None)?;
/// assert_eq!(b.to_vec::<i32>()?, [1, 6, 6]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn slice_update_add_device(
    src: &Array,
    update: &Array,
    start: &[i32],
    stop: &[i32],
    strides: Option<&[i32]>,
    stream: &Stream,
) -> Result<Array> {
    slice_update_impl(SliceUpdate::Add, src, update, (start, stop, strides), stream)
}

/// [`slice_update`] that keeps the maximum of the slice and `update`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 5, 3], &[3])?;
/// let b = ops::slice_update_max(&a, &Array::scalar(4i32), &[0], &[3], None)?;
/// assert_eq!(b.to_vec::<i32>()?, [4, 5, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn slice_update_max_device(
    src: &Array,
    update: &Array,
    start: &[i32],
    stop: &[i32],
    strides: Option<&[i32]>,
    stream: &Stream,
) -> Result<Array> {
    slice_update_impl(SliceUpdate::Max, src, update, (start, stop, strides), stream)
}

/// [`slice_update`] that keeps the minimum of the slice and `update`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 5, 3], &[3])?;
/// let b = ops::slice_update_min(&a, &Array::scalar(4i32), &[0], &[3], None)?;
/// assert_eq!(b.to_vec::<i32>()?, [1, 4, 3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn slice_update_min_device(
    src: &Array,
    update: &Array,
    start: &[i32],
    stop: &[i32],
    strides: Option<&[i32]>,
    stream: &Stream,
) -> Result<Array> {
    slice_update_impl(SliceUpdate::Min, src, update, (start, stop, strides), stream)
}

/// [`slice_update`] that multiplies the slice by `update`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 5, 3], &[3])?;
/// let b = ops::slice_update_prod(&a, &Array::scalar(2i32), &[1], &[3], None)?;
/// assert_eq!(b.to_vec::<i32>()?, [1, 10, 6]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn slice_update_prod_device(
    src: &Array,
    update: &Array,
    start: &[i32],
    stop: &[i32],
    strides: Option<&[i32]>,
    stream: &Stream,
) -> Result<Array> {
    slice_update_impl(SliceUpdate::Prod, src, update, (start, stop, strides), stream)
}

/// A copy of `src` with `update` written at the position on `axes` read from the integer
/// array `start` (one entry per axis in `axes`), as in Python's `mlx.core.slice_update`.
///
/// `update` is aligned with the trailing axes of `src` (missing leading axes have size 1) and
/// broadcast to the updated region; axes not in `axes` start at 0.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices. A negative
/// start counts from the end, and each start is then clamped into `[0, n - m]` for an axis of
/// size `n` and an update of size `m`, so the update always lands inside the array. Errors for a
/// non-integer `start`, a `start` with another number of entries than `axes`, repeated or
/// out-of-range axes, or an update with more dimensions than `src` or larger than it.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<i32>(&[5])?;
/// let upd = Array::from_slice(&[1i32, 2], &[2])?;
/// let start = Array::from_slice(&[3i32], &[1])?;
/// let b = ops::slice_update_dynamic(&a, &upd, &start, &[0])?;
/// assert_eq!(b.to_vec::<i32>()?, [0, 0, 0, 1, 2]);
/// // A start of 4 would run past the end: it is clamped to 3.
/// let start = Array::from_slice(&[4i32], &[1])?;
/// assert_eq!(ops::slice_update_dynamic(&a, &upd, &start, &[0])?.to_vec::<i32>()?, [0, 0, 0, 1, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn slice_update_dynamic_device(
    src: &Array,
    update: &Array,
    start: &Array,
    axes: &[i32],
    stream: &Stream,
) -> Result<Array> {
    let (ndim, update_ndim) = (src.ndim(), update.ndim());
    if update_ndim > ndim {
        return Err(Error::invalid(
            "slice_update",
            format!("the update has {update_ndim} dimensions, more than the array's {ndim}"),
        ));
    }
    // The update's extent on every axis of `src` (1 on the missing leading axes).
    let sizes: Vec<i64> = (0..ndim)
        .map(|axis| match axis.checked_sub(ndim - update_ndim) {
            Some(u) => axis_len(update, u),
            None => 1,
        })
        .collect();
    let start = clamp_starts("slice_update", src, start, axes, &sizes, stream)?;
    // SAFETY: live handles; `axes` is valid for its length; the output is owned by `array_out`.
    ffi::array_out("slice_update", |out| unsafe {
        sys::mlx_slice_update_dynamic(
            out,
            src.raw(),
            update.raw(),
            start.raw(),
            axes.as_ptr(),
            axes.len(),
            stream.raw(),
        )
    })
}

/// Slices of `a` of size `slice_sizes` starting at the positions given by the index arrays on
/// `axes`, as in MLX's C++ `gather`.
///
/// The index arrays are broadcast together; the result has their shape followed by
/// `slice_sizes`. Errors for non-integer indices, mismatched `indices` and `axes`, repeated or
/// out-of-range axes, or slice sizes larger than `a`.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices.
/// Negative values count from the end; a start on an axis of size `n` with a slice of size `s`
/// is clamped so that the slice lies inside the axis (into `[-n, n - 1]` when `s` is 1), and an
/// empty axis with non-empty indices is an error.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4, 5, 6], &[3, 2])?;
/// let rows = Array::from_slice(&[2i32, 0], &[2])?;
/// let g = ops::gather(&a, &[rows], &[0], &[1, 2])?;
/// assert_eq!(g.shape(), &[2, 1, 2]);
/// assert_eq!(g.to_vec::<i32>()?, [5, 6, 1, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn gather_device<A: AsRef<Array>>(
    a: &Array,
    indices: &[A],
    axes: &[i32],
    slice_sizes: &[i32],
    stream: &Stream,
) -> Result<Array> {
    check_index_dtypes("gather", indices)?;
    if slice_sizes.len() != a.ndim() {
        return Err(Error::invalid(
            "gather",
            format!(
                "got {} slice sizes for an array with {} dimensions",
                slice_sizes.len(),
                a.ndim()
            ),
        ));
    }
    let size = |axis: usize| slice_sizes.get(axis).map_or(1, |&s| i64::from(s));
    let indices = clamp_on_axes("gather", a, indices, axes, size, stream)?;
    if let ([index], &[axis]) = (indices.as_slice(), axes) {
        // SAFETY: live handles; `slice_sizes` is valid for its length; the output is owned by
        // `array_out`.
        return ffi::array_out("gather", |out| unsafe {
            sys::mlx_gather_single(
                out,
                a.raw(),
                index.raw(),
                axis,
                slice_sizes.as_ptr(),
                slice_sizes.len(),
                stream.raw(),
            )
        });
    }
    let vector = VectorArray::from_arrays(&indices);
    // SAFETY: live handles; `axes` and `slice_sizes` are valid for their lengths; the output is
    // owned by `array_out`.
    ffi::array_out("gather", |out| unsafe {
        sys::mlx_gather(
            out,
            a.raw(),
            vector.raw(),
            axes.as_ptr(),
            axes.len(),
            slice_sizes.as_ptr(),
            slice_sizes.len(),
            stream.raw(),
        )
    })
}

/// Each index array of `indices` clamped into range for its axis in `axes` (see
/// [`clamp_indices`]), where `size(axis)` is the extent read or written from each position.
///
/// Errors for mismatched `indices` and `axes`, repeated or out-of-range axes, or a size that
/// does not fit its axis.
fn clamp_on_axes<A: AsRef<Array>>(
    op: &'static str,
    a: &Array,
    indices: &[A],
    axes: &[i32],
    size: impl Fn(usize) -> i64,
    stream: &Stream,
) -> Result<Vec<Array>> {
    if indices.len() != axes.len() {
        return Err(Error::invalid(
            op,
            format!("got {} index arrays for {} axes", indices.len(), axes.len()),
        ));
    }
    let mut seen = vec![false; a.ndim()];
    let mut out = Vec::with_capacity(indices.len());
    for (index, &axis) in indices.iter().zip(axes) {
        let ax = normalize_axis(op, axis, a.ndim())?;
        if std::mem::replace(&mut seen[ax], true) {
            return Err(Error::invalid(op, format!("axis {axis} is repeated")));
        }
        let extent = (axis_len(a, ax), size(ax));
        out.push(clamp_indices(op, index.as_ref(), &[extent], &[], Negative::MlxWraps, stream)?);
    }
    Ok(out)
}

/// How a scatter combines updates with the existing elements.
#[derive(Clone, Copy)]
enum ScatterMode {
    Set,
    Add,
    Max,
    Min,
    Prod,
}

fn scatter_impl<A: AsRef<Array>>(
    mode: ScatterMode,
    op: &'static str,
    a: &Array,
    indices: &[A],
    updates: &Array,
    axes: &[i32],
    stream: &Stream,
) -> Result<Array> {
    // MLX aborts the process on boolean scatter indices; reject every non-integer dtype here.
    check_index_dtypes(op, indices)?;
    // `updates` is [broadcast index dims..., one slice of `a`'s rank]: the slice sizes are its
    // trailing dimensions.
    let (ndim, update_ndim) = (a.ndim(), updates.ndim());
    if update_ndim < ndim {
        return Err(Error::invalid(
            op,
            format!("the updates have {update_ndim} dimensions, fewer than the array's {ndim}"),
        ));
    }
    let size = |axis: usize| axis_len(updates, update_ndim - ndim + axis);
    let indices = clamp_on_axes(op, a, indices, axes, size, stream)?;
    if let ([index], &[axis]) = (indices.as_slice(), axes) {
        let f = match mode {
            ScatterMode::Set => sys::mlx_scatter_single,
            ScatterMode::Add => sys::mlx_scatter_add_single,
            ScatterMode::Max => sys::mlx_scatter_max_single,
            ScatterMode::Min => sys::mlx_scatter_min_single,
            ScatterMode::Prod => sys::mlx_scatter_prod_single,
        };
        // SAFETY: live handles; the output is owned by `array_out`.
        return ffi::array_out(op, |out| unsafe {
            f(out, a.raw(), index.raw(), updates.raw(), axis, stream.raw())
        });
    }
    let f = match mode {
        ScatterMode::Set => sys::mlx_scatter,
        ScatterMode::Add => sys::mlx_scatter_add,
        ScatterMode::Max => sys::mlx_scatter_max,
        ScatterMode::Min => sys::mlx_scatter_min,
        ScatterMode::Prod => sys::mlx_scatter_prod,
    };
    let vector = VectorArray::from_arrays(&indices);
    // SAFETY: live handles; `axes` is valid for its length; the output is owned by `array_out`.
    ffi::array_out(op, |out| unsafe {
        f(out, a.raw(), vector.raw(), updates.raw(), axes.as_ptr(), axes.len(), stream.raw())
    })
}

/// A copy of `a` with `updates` written at the positions given by the index arrays on `axes`,
/// as in MLX's C++ `scatter` (the inverse of [`gather`]).
///
/// `updates` has the broadcast index shape followed by one slice size per axis of `a`. Errors
/// for non-integer indices, mismatched `indices` and `axes`, or updates of the wrong shape.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices.
/// Negative values count from the end; a position on an axis of size `n` where the updates have
/// size `s` is clamped so that the written slice lies inside the axis (into `[-n, n - 1]` when
/// `s` is 1), and an empty axis with non-empty indices is an error. The same clamping applies to
/// every `scatter_*` form.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<i32>(&[3, 2])?;
/// let rows = Array::from_slice(&[2i32], &[1])?;
/// let upd = Array::from_slice(&[7i32, 8], &[1, 1, 2])?;
/// let s = ops::scatter(&a, &[rows], &upd, &[0])?;
/// assert_eq!(s.to_vec::<i32>()?, [0, 0, 0, 0, 7, 8]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn scatter_device<A: AsRef<Array>>(
    a: &Array,
    indices: &[A],
    updates: &Array,
    axes: &[i32],
    stream: &Stream,
) -> Result<Array> {
    scatter_impl(ScatterMode::Set, "scatter", a, indices, updates, axes, stream)
}

/// [`scatter`] that adds the updates (repeated indices accumulate).
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices (see
/// [`scatter`]).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<i32>(&[3])?;
/// let idx = Array::from_slice(&[0i32, 0, 2], &[3])?;
/// let upd = Array::from_slice(&[1i32, 2, 3], &[3, 1])?;
/// assert_eq!(ops::scatter_add(&a, &[idx], &upd, &[0])?.to_vec::<i32>()?, [3, 0, 3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn scatter_add_device<A: AsRef<Array>>(
    a: &Array,
    indices: &[A],
    updates: &Array,
    axes: &[i32],
    stream: &Stream,
) -> Result<Array> {
    scatter_impl(ScatterMode::Add, "scatter_add", a, indices, updates, axes, stream)
}

/// [`scatter`] that keeps the maximum of the element and the updates.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices (see
/// [`scatter`]).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[5i32, 5], &[2])?;
/// let idx = Array::from_slice(&[0i32, 1], &[2])?;
/// let upd = Array::from_slice(&[9i32, 1], &[2, 1])?;
/// assert_eq!(ops::scatter_max(&a, &[idx], &upd, &[0])?.to_vec::<i32>()?, [9, 5]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn scatter_max_device<A: AsRef<Array>>(
    a: &Array,
    indices: &[A],
    updates: &Array,
    axes: &[i32],
    stream: &Stream,
) -> Result<Array> {
    scatter_impl(ScatterMode::Max, "scatter_max", a, indices, updates, axes, stream)
}

/// [`scatter`] that keeps the minimum of the element and the updates.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices (see
/// [`scatter`]).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[5i32, 5], &[2])?;
/// let idx = Array::from_slice(&[0i32, 1], &[2])?;
/// let upd = Array::from_slice(&[9i32, 1], &[2, 1])?;
/// assert_eq!(ops::scatter_min(&a, &[idx], &upd, &[0])?.to_vec::<i32>()?, [5, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn scatter_min_device<A: AsRef<Array>>(
    a: &Array,
    indices: &[A],
    updates: &Array,
    axes: &[i32],
    stream: &Stream,
) -> Result<Array> {
    scatter_impl(ScatterMode::Min, "scatter_min", a, indices, updates, axes, stream)
}

/// [`scatter`] that multiplies the element by the updates.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices (see
/// [`scatter`]).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[2i32, 3], &[2])?;
/// let idx = Array::from_slice(&[1i32, 1], &[2])?;
/// let upd = Array::from_slice(&[2i32, 5], &[2, 1])?;
/// assert_eq!(ops::scatter_prod(&a, &[idx], &upd, &[0])?.to_vec::<i32>()?, [2, 30]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn scatter_prod_device<A: AsRef<Array>>(
    a: &Array,
    indices: &[A],
    updates: &Array,
    axes: &[i32],
    stream: &Stream,
) -> Result<Array> {
    scatter_impl(ScatterMode::Prod, "scatter_prod", a, indices, updates, axes, stream)
}

/// A copy of `a` whose elements where `mask` is true are replaced, in row-major order, by
/// consecutive elements of `src`, as in `a[mask] = src` in Python MLX.
///
/// `mask` is boolean and its shape is a prefix of `a`'s. Errors otherwise.
///
/// MLX does not check, on every backend, that `src` has as many elements as the mask selects
/// (its GPU kernels would read past the end of `src`). When `src` has fewer elements than `a`,
/// this wrapper therefore extends it to `a`'s size by repeating its last element, lazily: a mask
/// that selects more elements than `src` has gets that last element for the extra positions. An
/// empty `src` with a non-empty `a` is an error.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<i32>(&[4])?;
/// let mask = Array::from_slice(&[true, false, true, false], &[4])?;
/// let src = Array::from_slice(&[7i32, 8], &[2])?;
/// assert_eq!(ops::masked_scatter(&a, &mask, &src)?.to_vec::<i32>()?, [7, 0, 8, 0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn masked_scatter_device(
    a: &Array,
    mask: &Array,
    src: &Array,
    stream: &Stream,
) -> Result<Array> {
    if mask.dtype() != Dtype::Bool {
        return Err(Error::invalid(
            "masked_scatter",
            format!("the mask has to be boolean, got {}", mask.dtype()),
        ));
    }
    let (needed, have) = (a.size(), src.size());
    let padded;
    let src = if have >= needed {
        src
    } else if have == 0 {
        return Err(Error::invalid(
            "masked_scatter",
            format!("src is empty but `a` has {needed} elements the mask may select"),
        ));
    } else {
        let flat = reshape_device(src, [-1], stream)?;
        let last = slice_device(&flat, &[to_i32(have - 1)?], &[to_i32(have)?], None, stream)?;
        let filler = broadcast_to_device(&last, [to_i32(needed - have)?], stream)?;
        padded = concatenate_device(&[flat, filler], Some(0), stream)?;
        &padded
    };
    // SAFETY: live handles; the output is owned by `array_out`. `src` holds at least as many
    // elements as `a`, so MLX never reads past its end.
    ffi::array_out("masked_scatter", |out| unsafe {
        sys::mlx_masked_scatter(out, a.raw(), mask.raw(), src.raw(), stream.raw())
    })
}

/// A size as MLX's `int`, or an error if it does not fit.
fn to_i32(n: usize) -> Result<i32> {
    i32::try_from(n)
        .map_err(|_| Error::invalid("masked_scatter", format!("{n} elements is too many")))
}

/// Elements of `x` where `condition` is true and of `y` elsewhere, broadcasting all three, as
/// in `mlx.core.where` (in Rust `ops::r#where`).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let c = Array::from_slice(&[true, false, true], &[3])?;
/// let x = Array::from_slice(&[1i32, 2, 3], &[3])?;
/// let w = ops::r#where(&c, &x, &Array::scalar(0i32))?;
/// assert_eq!(w.to_vec::<i32>()?, [1, 0, 3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn where_device(condition: &Array, x: &Array, y: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("where", |out| unsafe {
        sys::mlx_where(out, condition.raw(), x.raw(), y.raw(), stream.raw())
    })
}

/// [`where_device`] on the calling thread's default stream (see `Stream::thread_default`).
pub fn r#where(condition: &Array, x: &Array, y: &Array) -> Result<Array> {
    Stream::with_thread_default(|stream| where_device(condition, x, y, stream))
}
