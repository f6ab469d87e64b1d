//! Sorting, partitioning, top-k and binary search.
//!
//! These ops take `axis: Option<i32>`: `Some(axis)` works along one axis (negative counts from the
//! end; Python's default is `Some(-1)`), `None` works on the flattened array. An axis out of
//! range gives an [`Error`](crate::Error).

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::{Array, Result, Stream, ffi};

/// Which insertion point [`searchsorted`] returns for values equal to elements of the sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SearchSide {
    /// The first suitable index (`side="left"`): `sorted[i - 1] < v <= sorted[i]`.
    #[default]
    Left,
    /// The last suitable index (`side="right"`): `sorted[i - 1] <= v < sorted[i]`.
    Right,
}

/// A sorted copy of `a` along `axis` (`None`: the flattened array, sorted).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[3, 1, 2, 9, 7, 8], &[2, 3])?;
/// assert_eq!(ops::sort(&a, Some(-1))?.to_vec::<i32>()?, [1, 2, 3, 7, 8, 9]);
/// assert_eq!(ops::sort(&a, Some(0))?.to_vec::<i32>()?, [3, 1, 2, 9, 7, 8]);
/// assert_eq!(ops::sort(&a, None)?.shape(), [6]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn sort_device(a: &Array, axis: Option<i32>, stream: &Stream) -> Result<Array> {
    let out = match axis {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("sort", |out| unsafe { sys::mlx_sort(out, a.raw(), stream.raw()) }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(axis) => ffi::array_out("sort", |out| unsafe {
            sys::mlx_sort_axis(out, a.raw(), axis, stream.raw())
        }),
    };
    super::empty_safe(out, stream)
}

/// The indices that sort `a` along `axis` (`None`: the flattened array), as `uint32`.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[0.3f32, 0.1, 0.2], &[3])?;
/// assert_eq!(ops::argsort(&a, Some(-1))?.to_vec::<u32>()?, [1, 2, 0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn argsort_device(a: &Array, axis: Option<i32>, stream: &Stream) -> Result<Array> {
    let out = match axis {
        None => {
            // SAFETY: live handles; the output is owned by `array_out`.
            ffi::array_out("argsort", |out| unsafe { sys::mlx_argsort(out, a.raw(), stream.raw()) })
        }
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(axis) => ffi::array_out("argsort", |out| unsafe {
            sys::mlx_argsort_axis(out, a.raw(), axis, stream.raw())
        }),
    };
    super::empty_safe(out, stream)
}

/// A copy of `a` partitioned along `axis` (`None`: the flattened array) so that the element at
/// index `kth` is the one a sort would put there, every element before it is no larger and every
/// element after it is no smaller (the order within each side is unspecified). `kth` may be
/// negative (counting from the end); out of range is an error.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[5, 1, 4, 2, 3], &[5])?;
/// let p = ops::partition(&a, 2, Some(-1))?.to_vec::<i32>()?;
/// assert_eq!(p[2], 3);
/// assert!(p[..2].iter().all(|&x| x < 3) && p[3..].iter().all(|&x| x > 3));
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn partition_device(a: &Array, kth: i32, axis: Option<i32>, stream: &Stream) -> Result<Array> {
    let out = match axis {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("partition", |out| unsafe {
            sys::mlx_partition(out, a.raw(), kth, stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(axis) => ffi::array_out("partition", |out| unsafe {
            sys::mlx_partition_axis(out, a.raw(), kth, axis, stream.raw())
        }),
    };
    super::empty_safe(out, stream)
}

/// The indices (`uint32`) that [`partition`] `a` around `kth` along `axis` (`None`: the
/// flattened array).
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[5, 1, 4, 2, 3], &[5])?;
/// let idx = ops::argpartition(&a, 0, Some(-1))?.to_vec::<u32>()?;
/// assert_eq!(idx[0], 1);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn argpartition_device(
    a: &Array,
    kth: i32,
    axis: Option<i32>,
    stream: &Stream,
) -> Result<Array> {
    let out = match axis {
        // SAFETY: live handles; the output is owned by `array_out`.
        None => ffi::array_out("argpartition", |out| unsafe {
            sys::mlx_argpartition(out, a.raw(), kth, stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(axis) => ffi::array_out("argpartition", |out| unsafe {
            sys::mlx_argpartition_axis(out, a.raw(), kth, axis, stream.raw())
        }),
    };
    super::empty_safe(out, stream)
}

/// The `k` largest elements along `axis` (`None`: of the flattened array), in unspecified
/// order. `k` must be in `1..=size` of that axis, otherwise an error.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[5, 1, 4, 2, 3], &[5])?;
/// let top = ops::sort(&ops::topk(&a, 2, Some(-1))?, Some(-1))?;
/// assert_eq!(top.to_vec::<i32>()?, [4, 5]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn topk_device(a: &Array, k: i32, axis: Option<i32>, stream: &Stream) -> Result<Array> {
    let out = match axis {
        None => {
            // SAFETY: live handles; the output is owned by `array_out`.
            ffi::array_out("topk", |out| unsafe { sys::mlx_topk(out, a.raw(), k, stream.raw()) })
        }
        // SAFETY: live handles; the output is owned by `array_out`.
        Some(axis) => ffi::array_out("topk", |out| unsafe {
            sys::mlx_topk_axis(out, a.raw(), k, axis, stream.raw())
        }),
    };
    super::empty_safe(out, stream)
}

/// The indices (`uint32`) at which inserting `values` keeps the 1-D `sorted_sequence` sorted;
/// `side` picks the first or last such index for equal elements. A sequence that is not 1-D is
/// an error.
///
/// ```
/// use mlx_rs::{Array, ops, ops::SearchSide};
/// let seq = Array::from_slice(&[1, 2, 2, 3], &[4])?;
/// let v = Array::from_slice(&[2, 5], &[2])?;
/// assert_eq!(ops::searchsorted(&seq, &v, SearchSide::Left)?.to_vec::<u32>()?, [1, 4]);
/// assert_eq!(ops::searchsorted(&seq, &v, SearchSide::Right)?.to_vec::<u32>()?, [3, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn searchsorted_device(
    sorted_sequence: &Array,
    values: &Array,
    side: SearchSide,
    stream: &Stream,
) -> Result<Array> {
    let side = match side {
        SearchSide::Left => c"left",
        SearchSide::Right => c"right",
    };
    ffi::array_out("searchsorted", |out| {
        // SAFETY: live handles; `side` is a static NUL-terminated string; the output is owned by
        // `array_out`.
        unsafe {
            sys::mlx_searchsorted(
                out,
                sorted_sequence.raw(),
                values.raw(),
                side.as_ptr(),
                stream.raw(),
            )
        }
    })
}
