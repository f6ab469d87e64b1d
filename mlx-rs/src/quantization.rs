//! Quantization: packing weights into low-bit formats and multiplying with them, as in
//! `mlx.core.quantize`, `dequantize`, `quantized_matmul`, `gather_qmm` and friends.
//!
//! `group_size` and `bits` are `Option<i32>`: `None` takes MLX's default for the mode (affine:
//! 64 and 4). Invalid combinations (a group size that does not divide the last axis, bits MLX does
//! not support for the mode) come back as `Err` from MLX.

use std::ffi::CStr;

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::error::{Error, Result};
use crate::vector::arrays_out;
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
    let parts = arrays_out("quantize", |out| {
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
    let dtype = sys::mlx_optional_dtype {
        value: dtype.map_or(sys::MLX_FLOAT32, Dtype::to_raw),
        has_value: dtype.is_some(),
    };
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
#[derive(Clone, Copy, Debug, Default)]
pub struct GatherIndices<'a> {
    /// Indices into the batch dimensions of the left operand.
    pub lhs: Option<&'a Array>,
    /// Indices into the batch dimensions of the right operand.
    pub rhs: Option<&'a Array>,
    /// True when `rhs` is sorted (lets MLX use a faster kernel).
    pub sorted: bool,
}

/// Quantized matmul with matrices gathered by index (`mlx.core.gather_qmm`).
#[default_device]
pub fn gather_qmm_device(
    x: &Array,
    w: &Quantized,
    indices: GatherIndices<'_>,
    transpose: bool,
    params: QuantizationParams,
    stream: &Stream,
) -> Result<Array> {
    ffi::array_out("gather_qmm", |out| {
        // SAFETY: live handles or empty handles for the absent optional arrays.
        unsafe {
            sys::mlx_gather_qmm(
                out,
                x.raw(),
                w.weights.raw(),
                w.scales.raw(),
                ffi::optional_array(w.biases.as_ref()),
                ffi::optional_array(indices.lhs),
                ffi::optional_array(indices.rhs),
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

/// Matmul with matrices gathered by index (`mlx.core.gather_mm`). On MLX's CPU backend it runs
/// float32 only.
#[default_device]
pub fn gather_mm_device(
    a: &Array,
    b: &Array,
    indices: GatherIndices<'_>,
    stream: &Stream,
) -> Result<Array> {
    ffi::array_out("gather_mm", |out| {
        // SAFETY: live handles or empty handles for the absent index arrays.
        unsafe {
            sys::mlx_gather_mm(
                out,
                a.raw(),
                b.raw(),
                ffi::optional_array(indices.lhs),
                ffi::optional_array(indices.rhs),
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
#[default_device]
pub fn segmented_mm_device(
    a: &Array,
    b: &Array,
    segments: &Array,
    stream: &Stream,
) -> Result<Array> {
    ffi::array_out("segmented_mm", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe { sys::mlx_segmented_mm(out, a.raw(), b.raw(), segments.raw(), stream.raw()) }
    })
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

/// [`qqmm`] with matrices gathered by index (`mlx.core.gather_qqmm`).
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
    ffi::array_out("gather_qqmm", |out| {
        // SAFETY: live handles or empty handles for the absent optional arrays.
        unsafe {
            sys::mlx_gather_qqmm(
                out,
                x.raw(),
                w.raw(),
                ffi::optional_array(w_scales),
                ffi::optional_array(indices.lhs),
                ffi::optional_array(indices.rhs),
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
