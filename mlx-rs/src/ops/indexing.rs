//! Indexing ops: take, gather, scatter, slices and their updates, `where`.
//!
//! MLX does not check the *values* of index arrays (nor the start positions of the dynamic
//! slices) against the indexed array's bounds: checking would need the values, which are lazy.
//! Like numpy, negative index values count from the end; values outside `[-n, n)` are not
//! detected and must not be passed (MLX would read or write outside the array).

use mlx_macros::default_device;
use mlx_sys as sys;

use super::shape::normalize_axis;
use crate::vector::VectorArray;
use crate::{Array, Dtype, Error, Result, Stream, ffi};

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
/// The values of `indices` are not checked (MLX reads and writes outside the array for values out
/// of range): keep them in `[-n, n)` for an axis of size `n`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1i32, 2, 3, 4, 5, 6], &[2, 3])?;
/// let idx = Array::from_slice(&[2i32, 0], &[2])?;
/// assert_eq!(ops::take(&a, &idx, Some(1))?.to_vec::<i32>()?, [3, 1, 6, 4]);
/// assert_eq!(ops::take(&a, &idx, None)?.to_vec::<i32>()?, [3, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn take_device(
    a: &Array,
    indices: &Array,
    axis: Option<i32>,
    stream: &Stream,
) -> Result<Array> {
    check_index_dtypes("take", &[indices])?;
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
        super::shape::reshape_device(a, &[-1], stream)?,
        super::shape::reshape_device(indices, &[-1], stream)?,
    ))
}

/// Elements of `a` at `indices` along `axis`, matching them position by position on the other
/// axes (broadcasting), as in `mlx.core.take_along_axis`.
///
/// With `axis = None` both are flattened first. Errors for non-integer indices, an axis out of
/// range, or indices of another number of dimensions than `a`.
///
/// The values of `indices` are not checked (MLX reads and writes outside the array for values out
/// of range): keep them in `[-n, n)` for an axis of size `n`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[10i32, 30, 20, 50, 40, 60], &[2, 3])?;
/// let idx = Array::from_slice(&[1i32, 0], &[2, 1])?;
/// assert_eq!(ops::take_along_axis(&a, &idx, Some(1))?.to_vec::<i32>()?, [30, 50]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn take_along_axis_device(
    a: &Array,
    indices: &Array,
    axis: Option<i32>,
    stream: &Stream,
) -> Result<Array> {
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
/// The values of `indices` are not checked (MLX reads and writes outside the array for values out
/// of range): keep them in `[-n, n)` for an axis of size `n`.
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
/// The values of `indices` are not checked (MLX reads and writes outside the array for values out
/// of range): keep them in `[-n, n)` for an axis of size `n`.
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
                super::shape::reshape_device(values, &[-1], stream)?
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

/// A slice of `slice_size` whose start on `axes` is read from the integer array `start`, as in
/// Python's `mlx.core.slice`.
///
/// `slice_size` has one entry per axis of `a`. The start positions are not checked (MLX does not
/// check them either): keep `start + slice_size` within each axis, as MLX reads outside the
/// array otherwise.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[0i32, 1, 2, 3, 4, 5], &[6])?;
/// let start = Array::from_slice(&[2i32], &[1])?;
/// assert_eq!(ops::slice_dynamic(&a, &start, &[0], &[3])?.to_vec::<i32>()?, [2, 3, 4]);
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
/// Bounds and errors are those of [`slice`].
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
/// array `start`, as in Python's `mlx.core.slice_update`.
///
/// The start positions are not checked (MLX does not check them either): keep the update within
/// each axis, as MLX writes outside the array otherwise.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::zeros::<i32>(&[5])?;
/// let upd = Array::from_slice(&[1i32, 2], &[2])?;
/// let start = Array::from_slice(&[3i32], &[1])?;
/// let b = ops::slice_update_dynamic(&a, &upd, &start, &[0])?;
/// assert_eq!(b.to_vec::<i32>()?, [0, 0, 0, 1, 2]);
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
/// The values of `indices` are not checked (MLX reads and writes outside the array for values out
/// of range): keep them in `[-n, n)` for an axis of size `n`.
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
    if let ([index], &[axis]) = (indices, axes) {
        let index = index.as_ref();
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
    let vector = VectorArray::from_arrays(indices);
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
    if let ([index], &[axis]) = (indices, axes) {
        let index = index.as_ref();
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
    let vector = VectorArray::from_arrays(indices);
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
/// The values of `indices` are not checked (MLX reads and writes outside the array for values out
/// of range): keep them in `[-n, n)` for an axis of size `n`.
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
/// `mask` is boolean and its shape is a prefix of `a`'s. Errors otherwise; evaluation fails if
/// `src` has fewer elements than the mask selects.
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
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("masked_scatter", |out| unsafe {
        sys::mlx_masked_scatter(out, a.raw(), mask.raw(), src.raw(), stream.raw())
    })
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
    where_device(condition, x, y, &Stream::thread_default()?)
}
