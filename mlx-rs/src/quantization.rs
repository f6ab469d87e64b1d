//! Quantization: packing weights into low-bit formats and multiplying with them, as in
//! `mlx.core.quantize`, `dequantize`, `quantized_matmul`, `gather_qmm` and friends.
//!
//! `group_size` and `bits` are `Option<i32>`: `None` takes MLX's default for the mode (affine:
//! 64 and 4). Every entry point checks the combination first: affine takes group sizes 32, 64
//! and 128 and 2, 3, 4, 5, 6 or 8 bits; mxfp4 takes (32, 4), nvfp4 (16, 4) and mxfp8 (32, 8).
//! Anything else is an `InvalidArgument` error (MLX itself would divide by a zero group size or
//! zero bits). Shapes that do not fit the parameters come back as `Err` from MLX.

use std::ffi::CStr;

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::error::{Error, Result};
use crate::ops::{IndexArray, Negative};
use crate::{Array, Dtype, Stream, ffi};

/// The quantization format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum QuantizationMode {
    /// Integer codes with a per-group scale and bias (MLX's default).
    #[default]
    Affine,
    /// OCP MX 4-bit floats with a shared 8-bit exponent per 32 values.
    Mxfp4,
    /// NVIDIA 4-bit floats with an 8-bit float scale per 16 values.
    Nvfp4,
    /// OCP MX 8-bit floats with a shared 8-bit exponent per 32 values.
    Mxfp8,
}

impl QuantizationMode {
    /// The name MLX uses.
    pub fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or("affine")
    }

    fn c_name(self) -> &'static CStr {
        match self {
            QuantizationMode::Affine => c"affine",
            QuantizationMode::Mxfp4 => c"mxfp4",
            QuantizationMode::Nvfp4 => c"nvfp4",
            QuantizationMode::Mxfp8 => c"mxfp8",
        }
    }

    /// True when the format stores a bias per group besides the scale.
    pub fn has_biases(self) -> bool {
        self == QuantizationMode::Affine
    }
}

/// Shared quantization parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuantizationParams {
    /// Elements per group sharing a scale; `None` for the mode's default.
    pub group_size: Option<i32>,
    /// Bits per element; `None` for the mode's default.
    pub bits: Option<i32>,
    /// The format.
    pub mode: QuantizationMode,
}

impl QuantizationParams {
    /// The group size and bits with the mode's defaults filled in, or an error of `op` for a
    /// combination MLX does not support. Every entry point checks here before MLX sees the
    /// parameters: MLX 0.32.2 divides by the group size and the bits before validating them (a
    /// group size or bits of 0 raise SIGFPE).
    pub(crate) fn checked(self, op: &'static str) -> Result<(i32, i32)> {
        let (default_group, default_bits, groups, bits): (i32, i32, &[i32], &[i32]) =
            match self.mode {
                QuantizationMode::Affine => (64, 4, &[32, 64, 128], &[2, 3, 4, 5, 6, 8]),
                QuantizationMode::Mxfp4 => (32, 4, &[32], &[4]),
                QuantizationMode::Nvfp4 => (16, 4, &[16], &[4]),
                QuantizationMode::Mxfp8 => (32, 8, &[32], &[8]),
            };
        let group_size = self.group_size.unwrap_or(default_group);
        let bit_count = self.bits.unwrap_or(default_bits);
        let mode = self.mode.name();
        if !groups.contains(&group_size) {
            return Err(Error::invalid(
                op,
                format!(
                    "group size {group_size} is not supported by {mode} quantization \
                     (supported: {groups:?})"
                ),
            ));
        }
        if !bits.contains(&bit_count) {
            return Err(Error::invalid(
                op,
                format!(
                    "{bit_count} bits are not supported by {mode} quantization (supported: {bits:?})"
                ),
            ));
        }
        Ok((group_size, bit_count))
    }
}

/// The parts of a quantized matrix.
#[derive(Clone, Debug)]
pub struct Quantized {
    /// The packed elements (`uint32`).
    pub weights: Array,
    /// One scale per group.
    pub scales: Array,
    /// One bias per group, for [`QuantizationMode::Affine`].
    pub biases: Option<Array>,
}

/// Rejects an array whose last axis is empty where a quantized op packs or reads groups along
/// it: MLX 0.32.2 quantizes a `[n, 0]` matrix without complaint, and its CPU matmul kernels
/// for the floating-point modes then divide by the empty group count (SIGFPE; found by the
/// `ops` fuzz target).
fn check_last_axis(op: &'static str, what: &str, a: &Array) -> Result<()> {
    if a.shape().last() == Some(&0) {
        return Err(Error::invalid(
            op,
            format!("{what} has shape {:?}: quantization needs a non-empty last axis", a.shape()),
        ));
    }
    Ok(())
}

/// [`check_last_axis`] for the packed weights and the scales of `q`.
fn check_packed(op: &'static str, q: &Quantized) -> Result<()> {
    check_last_axis(op, "the packed weight", &q.weights)?;
    check_last_axis(op, "the scales", &q.scales)
}

/// Quantizes `w` (at least 2-D) along its last axis.
///
/// ```
/// use mlx_rs::{Array, quantization::{quantize, dequantize, QuantizationParams}};
/// let w = Array::from_slice(&(0..128).map(|i| i as f32 / 128.0).collect::<Vec<_>>(), &[2, 64])?;
/// let q = quantize(&w, QuantizationParams::default())?;
/// let back = dequantize(&q, QuantizationParams::default(), None)?;
/// assert_eq!(back.shape(), &[2, 64]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn quantize_device(
    w: &Array,
    params: QuantizationParams,
    stream: &Stream,
) -> Result<Quantized> {
    params.checked("quantize")?;
    check_last_axis("quantize", "the matrix", w)?;
    let parts = ffi::arrays_out("quantize", |out| {
        // SAFETY: live handles; the optional global scale is an empty handle; the output
        // vector is owned by `arrays_out`.
        unsafe {
            sys::mlx_quantize(
                out,
                w.raw(),
                ffi::optional_int(params.group_size),
                ffi::optional_int(params.bits),
                params.mode.c_name().as_ptr(),
                ffi::optional_array(None),
                stream.raw(),
            )
        }
    })?;
    let mut parts = parts.into_iter();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(weights), Some(scales), biases) => Ok(Quantized { weights, scales, biases }),
        _ => Err(Error::invalid("quantize", "MLX returned fewer than two arrays")),
    }
}

/// Recovers a matrix from its quantized parts, in `dtype` (default: the scales' dtype).
#[default_device]
pub fn dequantize_device(
    quantized: &Quantized,
    params: QuantizationParams,
    dtype: Option<Dtype>,
    stream: &Stream,
) -> Result<Array> {
    params.checked("dequantize")?;
    check_packed("dequantize", quantized)?;
    let dtype = ffi::optional_dtype(dtype);
    ffi::array_out("dequantize", |out| {
        // SAFETY: live handles or empty handles for the absent biases and global scale.
        unsafe {
            sys::mlx_dequantize(
                out,
                quantized.weights.raw(),
                quantized.scales.raw(),
                ffi::optional_array(quantized.biases.as_ref()),
                ffi::optional_int(params.group_size),
                ffi::optional_int(params.bits),
                params.mode.c_name().as_ptr(),
                ffi::optional_array(None),
                dtype,
                stream.raw(),
            )
        }
    })
}

/// `x @ dequantize(w)ᵀ` (or without the transpose) without materialising the dequantized matrix.
#[default_device]
pub fn quantized_matmul_device(
    x: &Array,
    w: &Quantized,
    transpose: bool,
    params: QuantizationParams,
    stream: &Stream,
) -> Result<Array> {
    params.checked("quantized_matmul")?;
    check_packed("quantized_matmul", w)?;
    ffi::array_out("quantized_matmul", |out| {
        // SAFETY: live handles or an empty handle for absent biases.
        unsafe {
            sys::mlx_quantized_matmul(
                out,
                x.raw(),
                w.weights.raw(),
                w.scales.raw(),
                ffi::optional_array(w.biases.as_ref()),
                transpose,
                ffi::optional_int(params.group_size),
                ffi::optional_int(params.bits),
                params.mode.c_name().as_ptr(),
                stream.raw(),
            )
        }
    })
}

/// Index arrays that pick the matrices of a batched (gathered) matmul, as in mixture-of-experts
/// layers. `None` uses every batch element in order.
///
/// The values are flat indices into the batch dimensions (all but the last two) of the
/// corresponding operand, so for batch dimensions `B1, ..., BS` they lie in
/// `[0, B1 * ... * BS)`. Out-of-range indices are clamped into range (as in JAX): MLX does not
/// check index values, and clamping keeps every access inside the array without evaluating the
/// indices. Negative values have no meaning to MLX here and clamp to 0; values past the end clamp
/// to the last matrix. An operand with an empty batch and non-empty indices is an error.
#[derive(Clone, Copy, Debug, Default)]
pub struct GatherIndices<'a> {
    /// Indices into the batch dimensions of the left operand (an [`Array`], or
    /// [`BoundedIndices`](crate::ops::BoundedIndices) that skip the clamp).
    pub lhs: Option<&'a dyn IndexArray>,
    /// Indices into the batch dimensions of the right operand (an [`Array`], or
    /// [`BoundedIndices`](crate::ops::BoundedIndices) that skip the clamp).
    pub rhs: Option<&'a dyn IndexArray>,
    /// True when `rhs` is sorted (lets MLX use a faster kernel).
    pub sorted: bool,
}

/// The number of matrices in the batch dimensions (all but the last two) of `a`.
fn batch_len(a: &Array) -> i64 {
    let shape = a.shape();
    let batch = &shape[..shape.len().saturating_sub(2)];
    batch.iter().fold(1i64, |acc, &d| acc.saturating_mul(i64::from(d)))
}

/// `indices`' index arrays clamped into the batches of `lhs` and `rhs` (see [`GatherIndices`]).
fn clamp_gather_indices(
    op: &'static str,
    lhs: &Array,
    rhs: &Array,
    indices: GatherIndices<'_>,
    stream: &Stream,
) -> Result<(Option<Array>, Option<Array>)> {
    let clamp = |index: Option<&dyn IndexArray>, operand: &Array| {
        index
            .map(|bounded| {
                let index = bounded.index_array();
                if !index.dtype().is_integer() {
                    return Err(Error::invalid(
                        op,
                        format!("indices must have an integer dtype, got {}", index.dtype()),
                    ));
                }
                let n = batch_len(operand);
                if bounded.value_bound().is_some_and(|bound| bound <= n) {
                    return Ok(index.clone());
                }
                crate::ops::clamp_indices(op, index, &[(n, 1)], &[], Negative::Clamp, stream)
            })
            .transpose()
    };
    Ok((clamp(indices.lhs, lhs)?, clamp(indices.rhs, rhs)?))
}

/// Quantized matmul with matrices gathered by index (`mlx.core.gather_qmm`): `indices.lhs`
/// selects matrices of `x`, `indices.rhs` of `w`.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices (see
/// [`GatherIndices`]).
#[default_device]
pub fn gather_qmm_device(
    x: &Array,
    w: &Quantized,
    indices: GatherIndices<'_>,
    transpose: bool,
    params: QuantizationParams,
    stream: &Stream,
) -> Result<Array> {
    params.checked("gather_qmm")?;
    check_packed("gather_qmm", w)?;
    let (lhs, rhs) = clamp_gather_indices("gather_qmm", x, &w.weights, indices, stream)?;
    ffi::array_out("gather_qmm", |out| {
        // SAFETY: live handles or empty handles for the absent optional arrays.
        unsafe {
            sys::mlx_gather_qmm(
                out,
                x.raw(),
                w.weights.raw(),
                w.scales.raw(),
                ffi::optional_array(w.biases.as_ref()),
                ffi::optional_array(lhs.as_ref()),
                ffi::optional_array(rhs.as_ref()),
                transpose,
                ffi::optional_int(params.group_size),
                ffi::optional_int(params.bits),
                params.mode.c_name().as_ptr(),
                indices.sorted,
                stream.raw(),
            )
        }
    })
}

/// Matmul with matrices gathered by index (`mlx.core.gather_mm`): `indices.lhs` selects
/// matrices of `a`, `indices.rhs` of `b`. On MLX's CPU backend it runs float32 only.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices (see
/// [`GatherIndices`]).
///
/// ```
/// use mlx_rs::{Array, quantization::{gather_mm, GatherIndices}};
/// let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3, 1, 1])?;
/// let b = Array::from_slice(&[10.0f32], &[1, 1, 1])?;
/// // 7 is past the end of `a`'s batch of 3: it picks the last matrix.
/// let lhs = Array::from_slice(&[1u32, 7], &[2])?;
/// let out = gather_mm(&a, &b, GatherIndices { lhs: Some(&lhs), ..Default::default() })?;
/// assert_eq!(out.to_vec::<f32>()?, [20.0, 30.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn gather_mm_device(
    a: &Array,
    b: &Array,
    indices: GatherIndices<'_>,
    stream: &Stream,
) -> Result<Array> {
    let (lhs, rhs) = clamp_gather_indices("gather_mm", a, b, indices, stream)?;
    ffi::array_out("gather_mm", |out| {
        // SAFETY: live handles or empty handles for the absent index arrays.
        unsafe {
            sys::mlx_gather_mm(
                out,
                a.raw(),
                b.raw(),
                ffi::optional_array(lhs.as_ref()),
                ffi::optional_array(rhs.as_ref()),
                indices.sorted,
                stream.raw(),
            )
        }
    })
}

/// Block masks for [`block_masked_mm`]: each is optional.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockMasks<'a> {
    /// Mask of output blocks.
    pub out: Option<&'a Array>,
    /// Mask of blocks of the left operand.
    pub lhs: Option<&'a Array>,
    /// Mask of blocks of the right operand.
    pub rhs: Option<&'a Array>,
}

/// Matmul that skips masked-out `block_size` × `block_size` blocks (`mlx.core.block_masked_mm`).
#[default_device]
pub fn block_masked_mm_device(
    a: &Array,
    b: &Array,
    block_size: i32,
    masks: BlockMasks<'_>,
    stream: &Stream,
) -> Result<Array> {
    if block_size <= 0 {
        return Err(Error::invalid(
            "block_masked_mm",
            format!("block_size {block_size} must be positive"),
        ));
    }
    ffi::array_out("block_masked_mm", |out| {
        // SAFETY: live handles or empty handles for the absent masks.
        unsafe {
            sys::mlx_block_masked_mm(
                out,
                a.raw(),
                b.raw(),
                block_size,
                ffi::optional_array(masks.out),
                ffi::optional_array(masks.lhs),
                ffi::optional_array(masks.rhs),
                stream.raw(),
            )
        }
    })
}

/// Matmul over segments of the inner dimension (`mlx.core.segmented_mm`): `segments` has shape
/// `(..., 2)` of `[start, end)` pairs.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices. Each start
/// and end is clamped into `[0, K]` for an inner dimension `K`, and an end before its start is
/// raised to the start (an empty segment, which gives zeros). Errors for non-integer segments or
/// a last dimension other than 2.
///
/// ```
/// use mlx_rs::{Array, quantization::segmented_mm};
/// let a = Array::from_slice(&[1.0f32; 4], &[1, 4])?;
/// let b = Array::from_slice(&[1.0f32; 4], &[4, 1])?;
/// // [2, 100) is clamped to [2, 4).
/// let segments = Array::from_slice(&[0i32, 2, 2, 100], &[2, 2])?;
/// assert_eq!(segmented_mm(&a, &b, &segments)?.to_vec::<f32>()?, [2.0, 2.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn segmented_mm_device(
    a: &Array,
    b: &Array,
    segments: &Array,
    stream: &Stream,
) -> Result<Array> {
    let segments = &clamp_segments(a, b, segments, stream)?;
    ffi::array_out("segmented_mm", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe { sys::mlx_segmented_mm(out, a.raw(), b.raw(), segments.raw(), stream.raw()) }
    })
}

/// `segments` with every `[start, end)` pair clamped into `[0, K]` (`K` the inner dimension of
/// `a` and `b`, the smaller if they differ) and every end raised to at least its start.
fn clamp_segments(a: &Array, b: &Array, segments: &Array, stream: &Stream) -> Result<Array> {
    const OP: &str = "segmented_mm";
    let dtype = segments.dtype();
    if !dtype.is_integer() {
        return Err(Error::invalid(OP, format!("segments must be integral, got {dtype}")));
    }
    if segments.shape().last() != Some(&2) {
        return Err(Error::invalid(
            OP,
            format!("segments must have shape (..., 2), got {:?}", segments.shape()),
        ));
    }
    if segments.size() == 0 {
        return Ok(segments.clone());
    }
    // Positions in `[0, K]`: an extent of one element on an axis of `K + 1`.
    let k_a = a.shape().last().map_or(0, |&k| i64::from(k));
    let k_b = b.shape().len().checked_sub(2).map_or(0, |axis| i64::from(b.shape()[axis]));
    let k = k_a.min(k_b);
    let extent = (k.saturating_add(1), 1);
    let clamped = crate::ops::clamp_indices(OP, segments, &[extent], &[], Negative::Clamp, stream)?;
    // Each pair's start, in both places of the pair: max(pair, start) raises the end.
    let starts = Array::from_slice(&[0i32, 0], &[2])?;
    let starts = crate::ops::take_device(&clamped, &starts, -1, stream)?;
    crate::ops::maximum_device(&clamped, &starts, stream)
}

/// Converts to 8-bit floats (e4m3, stored as `uint8`).
#[default_device]
pub fn to_fp8_device(x: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("to_fp8", |out| unsafe { sys::mlx_to_fp8(out, x.raw(), stream.raw()) })
}

/// Converts 8-bit floats (e4m3, stored as `uint8`) to `dtype`.
#[default_device]
pub fn from_fp8_device(x: &Array, dtype: Dtype, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("from_fp8", |out| unsafe {
        sys::mlx_from_fp8(out, x.raw(), dtype.to_raw(), stream.raw())
    })
}

/// Global scales for the two-sided quantized matmuls (`nvfp4`); each optional.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlobalScales<'a> {
    /// Global scale of `x`.
    pub x: Option<&'a Array>,
    /// Global scale of `w`.
    pub w: Option<&'a Array>,
}

/// Matmul of `x` (quantized on the fly) with a quantized `w` (`mlx.core.qqmm`). `w_scales` is
/// `None` when `w` is given unquantized.
#[default_device]
pub fn qqmm_device(
    x: &Array,
    w: &Array,
    w_scales: Option<&Array>,
    params: QuantizationParams,
    global_scales: GlobalScales<'_>,
    stream: &Stream,
) -> Result<Array> {
    params.checked("qqmm")?;
    ffi::array_out("qqmm", |out| {
        // SAFETY: live handles or empty handles for the absent optional arrays.
        unsafe {
            sys::mlx_qqmm(
                out,
                x.raw(),
                w.raw(),
                ffi::optional_array(w_scales),
                ffi::optional_int(params.group_size),
                ffi::optional_int(params.bits),
                params.mode.c_name().as_ptr(),
                ffi::optional_array(global_scales.x),
                ffi::optional_array(global_scales.w),
                stream.raw(),
            )
        }
    })
}

/// [`qqmm`] with matrices gathered by index (`mlx.core.gather_qqmm`): `indices.lhs` selects
/// matrices of `x`, `indices.rhs` of `w`.
///
/// Out-of-range indices are clamped into range (as in JAX): MLX does not check index values,
/// and clamping keeps every access inside the array without evaluating the indices (see
/// [`GatherIndices`]).
#[default_device]
pub fn gather_qqmm_device(
    x: &Array,
    w: &Array,
    w_scales: Option<&Array>,
    indices: GatherIndices<'_>,
    params: QuantizationParams,
    global_scales: GlobalScales<'_>,
    stream: &Stream,
) -> Result<Array> {
    params.checked("gather_qqmm")?;
    let (lhs, rhs) = clamp_gather_indices("gather_qqmm", x, w, indices, stream)?;
    ffi::array_out("gather_qqmm", |out| {
        // SAFETY: live handles or empty handles for the absent optional arrays.
        unsafe {
            sys::mlx_gather_qqmm(
                out,
                x.raw(),
                w.raw(),
                ffi::optional_array(w_scales),
                ffi::optional_array(lhs.as_ref()),
                ffi::optional_array(rhs.as_ref()),
                ffi::optional_int(params.group_size),
                ffi::optional_int(params.bits),
                params.mode.c_name().as_ptr(),
                ffi::optional_array(global_scales.x),
                ffi::optional_array(global_scales.w),
                indices.sorted,
                stream.raw(),
            )
        }
    })
}
