//! Numpy-style indexing: [`Array::index`] (`a[idx]`) and [`Array::index_put`] (`a[idx] = v`).
//! The forms of an index are described on [`IntoIndex`].

use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

use mlx_macros::default_device;

use crate::{Array, Error, Result, Stream, ops};

/// `None` in a Python index: inserts an axis of size 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct NewAxis;

/// `...` in a Python index: as many full slices as needed to index every axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Ellipsis;

/// A Python slice `start:stop:step`; `None` bounds mean "from the beginning" and "to the end"
/// (in the direction of `step`).
///
/// Rust ranges convert into it (`1..3`, `2..`, `..4`, `..`, `1..=2`); [`Slice::stepped`] adds a
/// step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slice {
    /// First position (negative counts from the end).
    pub start: Option<i32>,
    /// Position to stop before (negative counts from the end).
    pub stop: Option<i32>,
    /// Step between positions; negative steps run backwards. Must not be zero.
    pub step: i32,
}

impl Slice {
    /// `:` — the whole axis.
    pub const FULL: Slice = Slice { start: None, stop: None, step: 1 };

    /// `start:stop:step`.
    pub fn new(start: Option<i32>, stop: Option<i32>, step: i32) -> Slice {
        Slice { start, stop, step }
    }

    /// A range with a step: `Slice::stepped(1.., 2)` is Python's `1::2`, `Slice::stepped(.., -1)`
    /// is `::-1`.
    pub fn stepped(range: impl Into<Slice>, step: i32) -> Slice {
        Slice { step, ..range.into() }
    }
}

impl Default for Slice {
    fn default() -> Slice {
        Slice::FULL
    }
}

impl From<Range<i32>> for Slice {
    fn from(r: Range<i32>) -> Slice {
        Slice::new(Some(r.start), Some(r.end), 1)
    }
}

impl From<RangeFrom<i32>> for Slice {
    fn from(r: RangeFrom<i32>) -> Slice {
        Slice::new(Some(r.start), None, 1)
    }
}

impl From<RangeTo<i32>> for Slice {
    fn from(r: RangeTo<i32>) -> Slice {
        Slice::new(None, Some(r.end), 1)
    }
}

impl From<RangeFull> for Slice {
    fn from(_: RangeFull) -> Slice {
        Slice::FULL
    }
}

/// The exclusive stop after an inclusive `end`: `-1` (the last element) becomes "to the end".
fn inclusive_stop(end: i32) -> Option<i32> {
    if end == -1 { None } else { end.checked_add(1) }
}

impl From<RangeInclusive<i32>> for Slice {
    fn from(r: RangeInclusive<i32>) -> Slice {
        Slice::new(Some(*r.start()), inclusive_stop(*r.end()), 1)
    }
}

impl From<RangeToInclusive<i32>> for Slice {
    fn from(r: RangeToInclusive<i32>) -> Slice {
        Slice::new(None, inclusive_stop(r.end), 1)
    }
}

/// One item of an index expression.
#[derive(Clone, Debug)]
pub enum Index {
    /// An integer: selects one position and removes the axis.
    Int(i32),
    /// A slice: keeps the axis.
    Slice(Slice),
    /// `None`: inserts an axis of size 1.
    NewAxis,
    /// `...`: full slices for the axes not otherwise indexed.
    Ellipsis,
    /// An integer array (numpy advanced indexing).
    Array(Array),
}

impl From<i32> for Index {
    fn from(i: i32) -> Index {
        Index::Int(i)
    }
}

impl From<Slice> for Index {
    fn from(s: Slice) -> Index {
        Index::Slice(s)
    }
}

impl From<NewAxis> for Index {
    fn from(_: NewAxis) -> Index {
        Index::NewAxis
    }
}

impl From<Ellipsis> for Index {
    fn from(_: Ellipsis) -> Index {
        Index::Ellipsis
    }
}

impl From<Array> for Index {
    fn from(a: Array) -> Index {
        Index::Array(a)
    }
}

impl From<&Array> for Index {
    fn from(a: &Array) -> Index {
        Index::Array(a.clone())
    }
}

macro_rules! index_from_range {
    ($($t:ty),*) => {$(
        impl From<$t> for Index {
            fn from(r: $t) -> Index {
                Index::Slice(r.into())
            }
        }
    )*};
}

index_from_range!(Range<i32>, RangeFrom<i32>, RangeTo<i32>, RangeFull, RangeInclusive<i32>);
index_from_range!(RangeToInclusive<i32>);

/// Anything usable as an index expression: a single item ([`Index`] or what converts into it:
/// `i32`, ranges, [`Slice`], [`NewAxis`], [`Ellipsis`], `&Array`, `Array`), a tuple of up to
/// eight items, or a `Vec`, array or slice of [`Index`].
///
/// The forms, next to Python:
///
/// | Python            | Rust                                   |
/// |-------------------|----------------------------------------|
/// | `a[1]`, `a[-1]`   | `a.index(1)`, `a.index(-1)`            |
/// | `a[1:3]`, `a[2:]` | `a.index(1..3)`, `a.index(2..)`        |
/// | `a[:, ::2]`       | `a.index((.., Slice::stepped(.., 2)))` |
/// | `a[::-1]`         | `a.index(Slice::stepped(.., -1))`      |
/// | `a[None]`         | `a.index(NewAxis)`                     |
/// | `a[..., 0]`       | `a.index((Ellipsis, 0))`               |
/// | `a[idx, 1:]`      | `a.index((&idx, 1..))`                 |
///
/// Integer arrays select elements as in numpy's advanced indexing: the index arrays (and any
/// integers beside them) are broadcast together, and their shape replaces the indexed axes,
/// in place when those axes are adjacent and first otherwise. Boolean masks are not supported
/// (their result shape depends on the values); use [`ops::where_device`](crate::ops::where_device) or
/// [`ops::masked_scatter`](crate::ops::masked_scatter).
///
/// Integers and slice steps are checked here: an integer out of range, a zero step, more than
/// one ellipsis or more indices than dimensions give an `Err`. The *values* inside index arrays
/// cannot be checked without evaluating them: negative values count from the end, and
/// out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices. So on an
/// axis of size `n`, values above `n - 1` select the last position and values below `-n` the
/// first.
pub trait IntoIndex {
    /// The items, in order.
    fn into_indices(self) -> Vec<Index>;
}

macro_rules! into_index_single {
    ($($t:ty),*) => {$(
        impl IntoIndex for $t {
            fn into_indices(self) -> Vec<Index> {
                vec![self.into()]
            }
        }
    )*};
}

into_index_single!(Index, i32, Slice, NewAxis, Ellipsis, Array, &Array);
into_index_single!(Range<i32>, RangeFrom<i32>, RangeTo<i32>, RangeFull, RangeInclusive<i32>);
into_index_single!(RangeToInclusive<i32>);

impl IntoIndex for Vec<Index> {
    fn into_indices(self) -> Vec<Index> {
        self
    }
}

impl IntoIndex for &[Index] {
    fn into_indices(self) -> Vec<Index> {
        self.to_vec()
    }
}

impl<const N: usize> IntoIndex for [Index; N] {
    fn into_indices(self) -> Vec<Index> {
        self.into()
    }
}

impl IntoIndex for () {
    fn into_indices(self) -> Vec<Index> {
        Vec::new()
    }
}

macro_rules! into_index_tuple {
    ($($name:ident),+) => {
        impl<$($name: Into<Index>),+> IntoIndex for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_indices(self) -> Vec<Index> {
                let ($($name,)+) = self;
                vec![$($name.into()),+]
            }
        }
    };
}

into_index_tuple!(A);
into_index_tuple!(A, B);
into_index_tuple!(A, B, C);
into_index_tuple!(A, B, C, D);
into_index_tuple!(A, B, C, D, E);
into_index_tuple!(A, B, C, D, E, F);
into_index_tuple!(A, B, C, D, E, F, G);
into_index_tuple!(A, B, C, D, E, F, G, H);

/// One index item resolved against the size of its axis.
enum Entry {
    /// A position in `[0, n)`.
    Int(i32),
    /// `count` positions from `start` by `step` (all inside the axis).
    Slice { start: i64, count: i64, step: i64 },
    /// An integer index array.
    Array(Array),
}

impl Entry {
    /// The `(start, stop, stride)` that MLX's `slice` needs for this entry on an axis of size
    /// `n`; integer and array entries keep the whole axis when `keep_advanced`.
    fn bounds(&self, n: i32, keep_advanced: bool) -> (i32, i32, i32) {
        match self {
            Entry::Int(i) if !keep_advanced => (*i, *i + 1, 1),
            Entry::Int(_) | Entry::Array(_) => (0, n, 1),
            Entry::Slice { count: 0, .. } => (0, 0, 1),
            Entry::Slice { start, count, step } if *step > 0 => {
                let last = start + (count - 1) * step;
                (*start as i32, (last + 1) as i32, *step as i32)
            }
            Entry::Slice { start, count, step } => {
                // MLX reads a negative stop as counting from the end, so "before position 0"
                // is spelled `-(n + 1)`.
                let last = start + (count - 1) * step;
                let stop = if last == 0 { -i64::from(n) - 1 } else { last - 1 };
                (*start as i32, stop as i32, *step as i32)
            }
        }
    }

    /// The size of this entry's axis after basic slicing.
    fn kept(&self, n: i32) -> i32 {
        match self {
            Entry::Slice { count, .. } => *count as i32,
            Entry::Int(_) => 1,
            Entry::Array(_) => n,
        }
    }

    fn is_advanced(&self) -> bool {
        matches!(self, Entry::Array(_))
    }
}

/// Numpy's slice normalization for an axis of size `n`: the first position and the count.
fn resolve_slice(op: &'static str, s: &Slice, n: i32) -> Result<Entry> {
    if s.step == 0 {
        return Err(Error::invalid(op, "slice step cannot be zero"));
    }
    let n = i64::from(n);
    let step = i64::from(s.step);
    let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
    let adjust = |v: Option<i32>, default: i64, lo: i64, hi: i64| match v {
        None => default,
        Some(v) => {
            let v = i64::from(v);
            clamp(if v < 0 { v + n } else { v }, lo, hi)
        }
    };
    let (start, count) = if step > 0 {
        let start = adjust(s.start, 0, 0, n);
        let stop = adjust(s.stop, n, 0, n);
        (start, if stop > start { (stop - start + step - 1) / step } else { 0 })
    } else {
        let start = adjust(s.start, n - 1, -1, n - 1);
        let stop = adjust(s.stop, -1, -1, n - 1);
        (start, if start > stop { (start - stop - step - 1) / -step } else { 0 })
    };
    Ok(Entry::Slice { start, count, step })
}

/// An index expression resolved against an array.
struct Resolved {
    /// The array with the new axes inserted.
    base: Array,
    /// One entry per axis of `base`.
    entries: Vec<Entry>,
}

impl Resolved {
    fn new(op: &'static str, array: &Array, items: Vec<Index>, stream: &Stream) -> Result<Self> {
        let ndim = array.ndim();
        let ellipses = items.iter().filter(|i| matches!(i, Index::Ellipsis)).count();
        if ellipses > 1 {
            return Err(Error::invalid(op, "an index can only have a single ellipsis"));
        }
        let consumed = items
            .iter()
            .filter(|i| matches!(i, Index::Int(_) | Index::Slice(_) | Index::Array(_)))
            .count();
        if consumed > ndim {
            return Err(Error::invalid(
                op,
                format!(
                    "too many indices for array: array is {ndim}-dimensional, but {consumed} \
                     were indexed"
                ),
            ));
        }
        // Expand the ellipsis (or the implicit trailing one) into full slices.
        let mut expanded = Vec::with_capacity(items.len() + ndim);
        let fill = ndim - consumed;
        for item in items.into_iter() {
            if matches!(item, Index::Ellipsis) {
                expanded.extend((0..fill).map(|_| Index::Slice(Slice::FULL)));
            } else {
                expanded.push(item);
            }
        }
        if ellipses == 0 {
            expanded.extend((0..fill).map(|_| Index::Slice(Slice::FULL)));
        }
        let new_axes: Vec<i32> = expanded
            .iter()
            .enumerate()
            .filter(|(_, i)| matches!(i, Index::NewAxis))
            .map(|(p, _)| p as i32)
            .collect();
        let base = if new_axes.is_empty() {
            array.clone()
        } else {
            ops::expand_dims_device(array, &new_axes, stream)?
        };
        let shape = base.shape().to_vec();
        let mut entries = Vec::with_capacity(expanded.len());
        let mut source_axis = 0usize;
        for (item, &n) in expanded.into_iter().zip(&shape) {
            let entry = match item {
                Index::NewAxis | Index::Ellipsis => {
                    entries.push(resolve_slice(op, &Slice::FULL, n)?);
                    continue;
                }
                Index::Slice(s) => resolve_slice(op, &s, n)?,
                Index::Int(i) => {
                    if i < -n || i >= n {
                        return Err(Error::invalid(
                            op,
                            format!(
                                "index {i} is out of bounds for axis {source_axis} with size {n}"
                            ),
                        ));
                    }
                    Entry::Int(if i < 0 { i + n } else { i })
                }
                Index::Array(a) => {
                    let dtype = a.dtype();
                    if !dtype.is_integer() {
                        return Err(Error::invalid(
                            op,
                            format!(
                                "array indices must have an integer dtype, got {dtype} (boolean \
                                 masks are not supported)"
                            ),
                        ));
                    }
                    Entry::Array(a)
                }
            };
            source_axis += 1;
            entries.push(entry);
        }
        Ok(Resolved { base, entries })
    }

    fn has_arrays(&self) -> bool {
        self.entries.iter().any(Entry::is_advanced)
    }

    /// The basic-slicing bounds for every axis, and whether they select everything.
    fn bounds(&self, keep_advanced: bool) -> (Vec<i32>, Vec<i32>, Vec<i32>, bool) {
        let shape = self.base.shape();
        let mut start = Vec::with_capacity(shape.len());
        let mut stop = Vec::with_capacity(shape.len());
        let mut strides = Vec::with_capacity(shape.len());
        let mut everything = true;
        for (entry, &n) in self.entries.iter().zip(shape) {
            let (b, e, s) = entry.bounds(n, keep_advanced);
            everything &= b == 0 && e == n && s == 1;
            start.push(b);
            stop.push(e);
            strides.push(s);
        }
        (start, stop, strides, everything)
    }

    /// `base` sliced by the slices only (integer and array axes kept whole).
    fn sliced(&self, stream: &Stream) -> Result<Array> {
        let (start, stop, strides, everything) = self.bounds(true);
        if everything {
            return Ok(self.base.clone());
        }
        ops::slice_device(&self.base, &start, &stop, Some(&strides), stream)
    }

    /// The advanced axes (integers and arrays, when any array is present) and their index
    /// arrays.
    fn advanced(&self) -> (Vec<i32>, Vec<Array>) {
        let mut axes = Vec::new();
        let mut indices = Vec::new();
        for (axis, entry) in self.entries.iter().enumerate() {
            match entry {
                Entry::Int(i) => indices.push(Array::scalar(*i)),
                Entry::Array(a) => indices.push(a.clone()),
                Entry::Slice { .. } => continue,
            }
            axes.push(axis as i32);
        }
        (axes, indices)
    }
}

/// True when the sorted `axes` are consecutive.
fn adjacent(axes: &[i32]) -> bool {
    axes.windows(2).all(|w| w[1] == w[0] + 1)
}

/// `value` without leading size-1 axes beyond `ndim` dimensions (numpy allows them when
/// assigning).
fn strip_leading_ones(value: &Array, ndim: usize, stream: &Stream) -> Result<Array> {
    let shape = value.shape();
    let extra = shape.len().saturating_sub(ndim);
    let drop = shape[..extra].iter().take_while(|&&d| d == 1).count();
    if drop == 0 {
        return Ok(value.clone());
    }
    ops::reshape_device(value, &shape[drop..], stream)
}

impl Array {
    /// `self[idx]` with numpy semantics (see [`IntoIndex`] for the forms of `idx`).
    ///
    /// Errors for an integer out of range, a zero step, more than one ellipsis, more indices
    /// than dimensions, a non-integer index array, or a non-empty index array on an empty axis.
    ///
    /// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
    /// and clamping keeps every access inside the array without evaluating the indices.
    ///
    /// ```
    /// use mlx_rs::{Array, Ellipsis, NewAxis, Slice};
    /// let a = Array::from_slice(&(0..24).collect::<Vec<i32>>(), &[2, 3, 4])?;
    /// assert_eq!(a.index(1)?.shape(), &[3, 4]);
    /// assert_eq!(a.index((-1, 0, 2))?.item::<i32>()?, 14);
    /// // a[1:, ::2, None, ...]
    /// let b = a.index((1.., Slice::stepped(.., 2), NewAxis, Ellipsis))?;
    /// assert_eq!(b.shape(), &[1, 2, 1, 4]);
    /// // a[..., ::-1][0, 0]
    /// let r = a.index((Ellipsis, Slice::stepped(.., -1)))?.index((0, 0))?;
    /// assert_eq!(r.to_vec::<i32>()?, [3, 2, 1, 0]);
    /// // integer arrays: a[0, [2, 0], 1:3]
    /// let rows = Array::from_slice(&[2i32, 0], &[2])?;
    /// assert_eq!(a.index((0, &rows, 1..3))?.to_vec::<i32>()?, [9, 10, 1, 2]);
    /// assert!(a.index(5).is_err());
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    #[default_device]
    pub fn index_device(&self, idx: impl IntoIndex, stream: &Stream) -> Result<Array> {
        let resolved = Resolved::new("index", self, idx.into_indices(), stream)?;
        if !resolved.has_arrays() {
            let (start, stop, strides, everything) = resolved.bounds(false);
            let mut out = if everything {
                resolved.base.clone()
            } else {
                ops::slice_device(&resolved.base, &start, &stop, Some(&strides), stream)?
            };
            let int_axes: Vec<i32> = (0..resolved.entries.len() as i32)
                .filter(|&a| matches!(resolved.entries[a as usize], Entry::Int(_)))
                .collect();
            if !int_axes.is_empty() {
                out = ops::squeeze_device(&out, &int_axes, stream)?;
            }
            return Ok(out);
        }
        let sliced = resolved.sliced(stream)?;
        let (axes, indices) = resolved.advanced();
        let mut slice_sizes = sliced.shape().to_vec();
        for &axis in &axes {
            slice_sizes[axis as usize] = 1;
        }
        let gathered = ops::gather_device(&sliced, &indices, &axes, &slice_sizes, stream)?;
        // The gathered array is [broadcast index dims..., sliced dims (1 on `axes`)...].
        let index_ndim = gathered.ndim() - sliced.ndim();
        let squeeze_axes: Vec<i32> = axes.iter().map(|&a| a + index_ndim as i32).collect();
        let out = ops::squeeze_device(&gathered, &squeeze_axes, stream)?;
        let first = axes[0] as usize;
        if !adjacent(&axes) || first == 0 {
            return Ok(out);
        }
        // Adjacent advanced axes: numpy puts the index dims where those axes were.
        let perm: Vec<i32> = (index_ndim..index_ndim + first)
            .chain(0..index_ndim)
            .chain(index_ndim + first..out.ndim())
            .map(|a| a as i32)
            .collect();
        ops::transpose_device(&out, &perm, stream)
    }

    /// `self[idx] = value` with numpy semantics: replaces `self` by a copy with the indexed
    /// elements set to `value` (broadcast to the indexed shape and cast to `self`'s dtype).
    ///
    /// The update is functional (MLX arrays are immutable): other clones of the old array keep
    /// their values. With repeated positions in index arrays, which value lands is unspecified.
    /// Errors as [`Array::index`] does, and if `value` does not broadcast to the indexed shape.
    ///
    /// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
    /// and clamping keeps every access inside the array without evaluating the indices.
    ///
    /// ```
    /// use mlx_rs::{Array, Slice};
    /// let mut a = Array::zeros::<i32>(&[3, 4])?;
    /// a.index_put((1, Slice::stepped(.., 2)), &Array::scalar(7i32))?;
    /// let cols = Array::from_slice(&[3i32, 0], &[2])?;
    /// a.index_put((2, &cols), &Array::from_slice(&[1i32, 2], &[2])?)?;
    /// assert_eq!(a.to_vec::<i32>()?, [0, 0, 0, 0, 7, 0, 7, 0, 2, 0, 0, 1]);
    /// assert!(a.index_put((0, 0, 0), &Array::scalar(1i32)).is_err());
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    #[default_device]
    pub fn index_put_device(
        &mut self,
        idx: impl IntoIndex,
        value: &Array,
        stream: &Stream,
    ) -> Result<()> {
        let resolved = Resolved::new("index_put", self, idx.into_indices(), stream)?;
        let base_shape = resolved.base.shape().to_vec();
        let updated = if !resolved.has_arrays() {
            let (start, stop, strides, _) = resolved.bounds(false);
            // The numpy view shape drops integer axes; the slice keeps them as size 1.
            let kept: Vec<i32> =
                resolved.entries.iter().zip(&base_shape).map(|(e, &n)| e.kept(n)).collect();
            let view: Vec<i32> = resolved
                .entries
                .iter()
                .zip(&kept)
                .filter(|(e, _)| !matches!(e, Entry::Int(_)))
                .map(|(_, &k)| k)
                .collect();
            let value = strip_leading_ones(value, view.len(), stream)?;
            let value = ops::broadcast_to_device(&value, &view, stream)?;
            let value = ops::reshape_device(&value, &kept, stream)?;
            ops::slice_update_device(&resolved.base, &value, &start, &stop, Some(&strides), stream)?
        } else {
            let sub = resolved.sliced(stream)?;
            let (axes, indices) = resolved.advanced();
            let indices = ops::broadcast_arrays_device(&indices, stream)?;
            let index_shape = indices[0].shape().to_vec();
            let index_ndim = index_shape.len();
            let rest: Vec<i32> = sub
                .shape()
                .iter()
                .enumerate()
                .filter(|(a, _)| !axes.contains(&(*a as i32)))
                .map(|(_, &d)| d)
                .collect();
            let first = axes[0] as usize;
            let in_place = adjacent(&axes) && first > 0;
            // The shape numpy gives `self[idx]`, which `value` must broadcast to.
            let result_shape: Vec<i32> = if in_place {
                rest[..first].iter().chain(&index_shape).chain(&rest[first..]).copied().collect()
            } else {
                index_shape.iter().chain(&rest).copied().collect()
            };
            let value = strip_leading_ones(value, result_shape.len(), stream)?;
            let mut value = ops::broadcast_to_device(&value, &result_shape, stream)?;
            if in_place {
                let perm: Vec<i32> = (first..first + index_ndim)
                    .chain(0..first)
                    .chain(first + index_ndim..result_shape.len())
                    .map(|a| a as i32)
                    .collect();
                value = ops::transpose_device(&value, &perm, stream)?;
            }
            // Updates are [index dims..., sub dims with 1 on the indexed axes...].
            let ones: Vec<i32> = axes.iter().map(|&a| a + index_ndim as i32).collect();
            let updates = ops::expand_dims_device(&value, &ones, stream)?;
            let sub = ops::scatter_device(&sub, &indices, &updates, &axes, stream)?;
            let (start, stop, strides, everything) = resolved.bounds(true);
            if everything {
                sub
            } else {
                ops::slice_update_device(
                    &resolved.base,
                    &sub,
                    &start,
                    &stop,
                    Some(&strides),
                    stream,
                )?
            }
        };
        *self = ops::reshape_device(&updated, self.shape(), stream)?;
        Ok(())
    }
}
