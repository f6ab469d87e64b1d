//! [`BoundedIndices`]: index arrays that carry proof of their range, so that the indexing ops
//! can skip the clamp that keeps unchecked indices inside the indexed array.

use mlx_macros::default_device;

use super::Axes;
use crate::array::IntoIndex;
use crate::{Array, Dtype, Error, Result, Stream};

/// An integer index array whose every value `v` is known to satisfy `0 <= v < bound`.
///
/// MLX does not check index values, so [`take`](super::take), [`take_along_axis`](super::take_along_axis),
/// [`gather_mm`](crate::quantization::gather_mm), [`gather_qmm`](crate::quantization::gather_qmm)
/// and their kin clamp plain index arrays into range with an extra op per call. Indices that
/// come from an op whose output range is known — [`argsort`](BoundedIndices::argsort),
/// [`argpartition`](BoundedIndices::argpartition), [`argmax`](BoundedIndices::argmax) over an
/// axis of known size — or that were clamped once ([`BoundedIndices::clamped`]) and are used
/// many times (the three expert projections of an MoE layer) skip that clamp whenever `bound`
/// fits the indexed axis. Only value-preserving transformations (reshapes, slices, taking
/// elements, `stop_gradient`, widening casts) keep the proof, so it cannot be forged in safe
/// code.
///
/// ```
/// use mlx_rs::{Array, ops, ops::BoundedIndices, Ellipsis};
/// let scores = Array::from_slice(&[0.1f32, 0.9, 0.5, 0.7, 0.2, 0.3], &[2, 3])?;
/// // Top-2 experts per row: argpartition's output lies in [0, 3).
/// let top = BoundedIndices::argpartition(&scores.negative()?, 1, -1)?.index((Ellipsis, ..2))?;
/// assert_eq!(top.bound(), 3);
/// let table = Array::from_slice(&[10i32, 20, 30], &[3])?;
/// let picked = ops::take(&table, &top, 0)?; // no clamp: 3 fits the axis
/// assert_eq!(picked.shape(), [2, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BoundedIndices {
    array: Array,
    bound: i64,
}

/// An index argument: a plain [`Array`] (clamped into range by the op) or [`BoundedIndices`]
/// (used as they are when their bound fits). Sealed: only this crate can vouch for a bound.
pub trait IndexArray: sealed::Sealed + std::fmt::Debug {
    /// The index array.
    fn index_array(&self) -> &Array;
    /// An exclusive upper bound on every value (all of which are non-negative), if known.
    fn value_bound(&self) -> Option<i64>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::Array {}
    impl Sealed for super::BoundedIndices {}
}

impl IndexArray for Array {
    fn index_array(&self) -> &Array {
        self
    }
    fn value_bound(&self) -> Option<i64> {
        None
    }
}

impl IndexArray for BoundedIndices {
    fn index_array(&self) -> &Array {
        &self.array
    }
    fn value_bound(&self) -> Option<i64> {
        Some(self.bound)
    }
}

impl AsRef<Array> for BoundedIndices {
    fn as_ref(&self) -> &Array {
        &self.array
    }
}

/// True when `indices` is known to lie in `[0, n - size]`, so no clamp is needed for an axis of
/// size `n` read `size` positions at a time.
pub(crate) fn within<I: IndexArray + ?Sized>(indices: &I, n: i64) -> bool {
    indices.value_bound().is_some_and(|bound| bound <= n)
}

/// The size of `axis` of `a`.
fn axis_size(op: &'static str, a: &Array, axis: i32) -> Result<i64> {
    Ok(i64::from(a.dim(axis).map_err(|e| Error::invalid(op, e.message()))?))
}

impl BoundedIndices {
    fn new(array: Array, bound: i64) -> BoundedIndices {
        BoundedIndices { array, bound }
    }

    /// Indices this crate computed in `[0, bound)` itself: written by one of its kernels, which
    /// clamp every value they write (`kernels::routing`), or by [`BoundedIndices`]'s own ops
    /// inside a compiled function. Not public: only this crate can vouch for them.
    pub(crate) fn vouched(array: Array, bound: i64) -> BoundedIndices {
        Self::new(array, bound)
    }

    /// The exclusive upper bound on the values.
    pub fn bound(&self) -> i64 {
        self.bound
    }

    /// The index array.
    pub fn array(&self) -> &Array {
        &self.array
    }

    /// The index array, without the proof.
    pub fn into_array(self) -> Array {
        self.array
    }

    /// [`argsort`](super::argsort) of `a` along `axis`; its values lie in `[0, size(axis))`.
    pub fn argsort_device(a: &Array, axis: i32, stream: &Stream) -> Result<BoundedIndices> {
        let bound = axis_size("argsort", a, axis)?;
        Ok(Self::new(super::argsort_device(a, Some(axis), stream)?, bound))
    }

    /// [`BoundedIndices::argsort_device`] on the calling thread's default stream.
    pub fn argsort(a: &Array, axis: i32) -> Result<BoundedIndices> {
        Stream::with_thread_default(|stream| Self::argsort_device(a, axis, stream))
    }

    /// [`argpartition`](super::argpartition) of `a` along `axis`; its values lie in
    /// `[0, size(axis))`.
    pub fn argpartition_device(
        a: &Array,
        kth: i32,
        axis: i32,
        stream: &Stream,
    ) -> Result<BoundedIndices> {
        let bound = axis_size("argpartition", a, axis)?;
        Ok(Self::new(super::argpartition_device(a, kth, Some(axis), stream)?, bound))
    }

    /// [`BoundedIndices::argpartition_device`] on the calling thread's default stream.
    pub fn argpartition(a: &Array, kth: i32, axis: i32) -> Result<BoundedIndices> {
        Stream::with_thread_default(|stream| Self::argpartition_device(a, kth, axis, stream))
    }

    /// [`argmax`](super::argmax) of `a` along `axis`; its values lie in `[0, size(axis))`.
    pub fn argmax_device(
        a: &Array,
        axis: i32,
        keepdims: bool,
        stream: &Stream,
    ) -> Result<BoundedIndices> {
        let bound = axis_size("argmax", a, axis)?;
        Ok(Self::new(super::argmax_device(a, axis, keepdims, stream)?, bound))
    }

    /// [`BoundedIndices::argmax_device`] on the calling thread's default stream.
    pub fn argmax(a: &Array, axis: i32, keepdims: bool) -> Result<BoundedIndices> {
        Stream::with_thread_default(|stream| Self::argmax_device(a, axis, keepdims, stream))
    }

    /// [`argmin`](super::argmin) of `a` along `axis`; its values lie in `[0, size(axis))`.
    pub fn argmin_device(
        a: &Array,
        axis: i32,
        keepdims: bool,
        stream: &Stream,
    ) -> Result<BoundedIndices> {
        let bound = axis_size("argmin", a, axis)?;
        Ok(Self::new(super::argmin_device(a, axis, keepdims, stream)?, bound))
    }

    /// [`BoundedIndices::argmin_device`] on the calling thread's default stream.
    pub fn argmin(a: &Array, axis: i32, keepdims: bool) -> Result<BoundedIndices> {
        Stream::with_thread_default(|stream| Self::argmin_device(a, axis, keepdims, stream))
    }

    /// `indices` clamped once into `[0, bound)` (negative values become 0), for reuse by many
    /// indexing ops without a clamp each. Errors for a non-integer dtype or `bound < 1`.
    ///
    /// ```
    /// use mlx_rs::{Array, ops::BoundedIndices};
    /// let ids = BoundedIndices::clamped(&Array::from_slice(&[-3i32, 1, 9], &[3])?, 4)?;
    /// assert_eq!(ids.array().to_vec::<i32>()?, [0, 1, 3]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    pub fn clamped_device(indices: &Array, bound: i64, stream: &Stream) -> Result<BoundedIndices> {
        if bound < 1 {
            return Err(Error::invalid(
                "clamped",
                format!("the bound must be positive, got {bound}"),
            ));
        }
        let array = super::indexing::clamp_indices(
            "clamped",
            indices,
            &[(bound, 1)],
            &[],
            super::indexing::Negative::Clamp,
            stream,
        )?;
        Ok(Self::new(array, bound))
    }

    /// [`BoundedIndices::clamped_device`] on the calling thread's default stream.
    pub fn clamped(indices: &Array, bound: i64) -> Result<BoundedIndices> {
        Stream::with_thread_default(|stream| Self::clamped_device(indices, bound, stream))
    }

    /// The same values under a value-preserving op.
    fn keep(&self, array: Result<Array>) -> Result<BoundedIndices> {
        Ok(Self::new(array?, self.bound))
    }

    /// `self[idx]` (see [`Array::index`]): a subset of the values, so the bound holds.
    #[default_device]
    pub fn index_device(&self, idx: impl IntoIndex, stream: &Stream) -> Result<BoundedIndices> {
        self.keep(self.array.index_device(idx, stream))
    }

    /// [`reshape`](super::reshape) of the indices.
    #[default_device]
    pub fn reshape_device(
        &self,
        shape: impl AsRef<[i32]>,
        stream: &Stream,
    ) -> Result<BoundedIndices> {
        self.keep(super::reshape_device(&self.array, shape, stream))
    }

    /// [`flatten`](super::flatten) of the indices.
    #[default_device]
    pub fn flatten_device(
        &self,
        start_axis: i32,
        end_axis: i32,
        stream: &Stream,
    ) -> Result<BoundedIndices> {
        self.keep(super::flatten_device(&self.array, start_axis, end_axis, stream))
    }

    /// [`expand_dims`](super::expand_dims) of the indices.
    #[default_device]
    pub fn expand_dims_device(
        &self,
        axes: impl Into<Axes>,
        stream: &Stream,
    ) -> Result<BoundedIndices> {
        self.keep(super::expand_dims_device(&self.array, axes, stream))
    }

    /// [`squeeze`](super::squeeze) of the indices.
    #[default_device]
    pub fn squeeze_device(&self, axes: impl Into<Axes>, stream: &Stream) -> Result<BoundedIndices> {
        self.keep(super::squeeze_device(&self.array, axes, stream))
    }

    /// [`transpose`](super::transpose) of the indices.
    #[default_device]
    pub fn transpose_device(
        &self,
        axes: impl Into<Axes>,
        stream: &Stream,
    ) -> Result<BoundedIndices> {
        self.keep(super::transpose_device(&self.array, axes, stream))
    }

    /// The indices with gradients stopped (as MoE layers do in training).
    #[default_device]
    pub fn stop_gradient_device(&self, stream: &Stream) -> Result<BoundedIndices> {
        self.keep(crate::transforms::stop_gradient_device(&self.array, stream))
    }

    /// The elements of `self` at `indices` along `axis` (see [`take`](super::take)): a subset of
    /// the values, so the bound holds.
    #[default_device]
    pub fn take_device<I: IndexArray + ?Sized>(
        &self,
        indices: &I,
        axis: i32,
        stream: &Stream,
    ) -> Result<BoundedIndices> {
        self.keep(super::take_device(&self.array, indices, axis, stream))
    }

    /// The indices converted to the integer `dtype`, which must hold every value below the bound.
    #[default_device]
    pub fn astype_device(&self, dtype: Dtype, stream: &Stream) -> Result<BoundedIndices> {
        let (_, max) = super::indexing::int_range("astype", dtype)
            .map_err(|_| Error::invalid("astype", format!("indices cannot become {dtype}")))?;
        if self.bound - 1 > max {
            return Err(Error::invalid(
                "astype",
                format!("{dtype} cannot hold index values up to {}", self.bound - 1),
            ));
        }
        self.keep(super::astype_device(&self.array, dtype, stream))
    }

    /// `self // divisor` for a positive `divisor`: values in `[0, ceil(bound / divisor))`
    /// (mixture-of-experts layers map sorted (token, expert) pairs back to tokens so).
    #[default_device]
    pub fn floor_divide_device(&self, divisor: i32, stream: &Stream) -> Result<BoundedIndices> {
        if divisor < 1 {
            return Err(Error::invalid(
                "floor_divide",
                format!("the divisor must be positive, got {divisor}"),
            ));
        }
        let d = super::cached_scalar(
            "floor_divide",
            super::Number::Int(i128::from(divisor)),
            self.array.dtype(),
        )?;
        // Non-negative values over a positive divisor: MLX's own division is exact here.
        let array = super::arithmetic::raw_floor_divide(&self.array, &d, stream)?;
        let divisor = i64::from(divisor);
        Ok(Self::new(array, (self.bound + divisor - 1) / divisor))
    }
}
