//! Convolutions and transposed convolutions over 1, 2 or 3 spatial axes, and `conv_general`.
//!
//! # Layout
//! MLX is channels-last: the input is `(N, spatial.., C_in)`, the weight
//! `(C_out, kernel.., C_in / groups)`, and the output `(N, spatial.., C_out)`. For example a 2-D
//! convolution takes `(N, H, W, C_in)` and `(C_out, KH, KW, C_in / groups)`. (PyTorch's `NCHW`
//! tensors need a transpose first.) Channel counts that do not match, or that `groups` does not
//! divide, give an [`Error`](crate::Error).
//!
//! These ops cross-correlate (the kernel is not flipped), as MLX, PyTorch and NumPy's
//! `correlate` do; [`conv_general`] can flip it.

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::{Array, Error, Result, Stream, ffi};

/// Stride, padding, dilation and groups for [`conv1d`], [`conv2d`], [`conv3d`] and their
/// transposed forms, with one entry per spatial axis (`N` of them).
///
/// The builder methods set a value on every axis; set the fields for per-axis values:
///
/// ```
/// use mlx_rs::ops::ConvOptions;
/// let same = ConvOptions::<2>::new().stride(2).padding(1);
/// assert_eq!(same.stride, [2, 2]);
/// let mixed = ConvOptions { stride: [2, 1], ..ConvOptions::new() };
/// assert_eq!(mixed.padding, [0, 0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvOptions<const N: usize> {
    /// Step of the kernel over the input, per spatial axis (default 1).
    pub stride: [i32; N],
    /// Zeros added on both sides of the input, per spatial axis (default 0). For the transposed
    /// convolutions, as in PyTorch: the amount removed from both sides of the output.
    pub padding: [i32; N],
    /// Spacing between kernel elements, per spatial axis (default 1).
    pub dilation: [i32; N],
    /// Transposed convolutions only: extra size added to one side of the output, to pick among
    /// the output sizes a strided convolution maps to the same input size (default 0). Must be 0
    /// for the forward convolutions.
    pub output_padding: [i32; N],
    /// Number of channel groups; `C_in` and `C_out` must be multiples of it (default 1).
    pub groups: i32,
}

impl<const N: usize> Default for ConvOptions<N> {
    fn default() -> Self {
        ConvOptions {
            stride: [1; N],
            padding: [0; N],
            dilation: [1; N],
            output_padding: [0; N],
            groups: 1,
        }
    }
}

impl<const N: usize> ConvOptions<N> {
    /// The defaults: stride 1, no padding, dilation 1, no output padding, one group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the stride of every spatial axis.
    pub fn stride(mut self, stride: i32) -> Self {
        self.stride = [stride; N];
        self
    }

    /// Sets the padding of every spatial axis.
    pub fn padding(mut self, padding: i32) -> Self {
        self.padding = [padding; N];
        self
    }

    /// Sets the kernel dilation of every spatial axis.
    pub fn dilation(mut self, dilation: i32) -> Self {
        self.dilation = [dilation; N];
        self
    }

    /// Sets the output padding of every spatial axis (transposed convolutions only).
    pub fn output_padding(mut self, output_padding: i32) -> Self {
        self.output_padding = [output_padding; N];
        self
    }

    /// Sets the number of groups.
    pub fn groups(mut self, groups: i32) -> Self {
        self.groups = groups;
        self
    }

    /// Rejects an output padding for a forward convolution, where MLX has no such argument.
    fn forward_only(&self, op: &'static str) -> Result<()> {
        if self.output_padding.iter().any(|&p| p != 0) {
            return Err(Error::invalid(
                op,
                format!(
                    "output_padding {:?} applies to transposed convolutions only; it must be 0 here",
                    self.output_padding
                ),
            ));
        }
        Ok(())
    }
}

/// The shared check of every convolution: a group count below 1 and a weight with an empty
/// dimension (no output channels, an empty kernel or no input channels). MLX 0.32.2's CPU
/// convolution divides the channel count by `groups` before checking it, and by the channel
/// count (SIGFPE; Python MLX crashes the same way), or hands BLAS a zero leading dimension,
/// which leaves the output unwritten.
fn check_weight(op: &'static str, weight: &Array, groups: i32) -> Result<()> {
    if groups < 1 {
        return Err(Error::invalid(op, format!("groups must be at least 1, got {groups}")));
    }
    if weight.shape().contains(&0) {
        return Err(Error::invalid(
            op,
            format!(
                "the weight has shape {:?}: a convolution needs at least one output channel, \
                 kernel element and input channel",
                weight.shape()
            ),
        ));
    }
    Ok(())
}

/// 1-D convolution: input `(N, L, C_in)`, weight `(C_out, K, C_in / groups)`, output
/// `(N, L_out, C_out)`.
///
/// ```
/// use mlx_rs::{Array, ops, ops::ConvOptions};
/// let x = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[1, 4, 1])?;
/// let w = Array::from_slice(&[1.0f32, 1.0], &[1, 2, 1])?;
/// let y = ops::conv1d(&x, &w, ConvOptions::new())?;
/// assert_eq!(y.shape(), [1, 3, 1]);
/// assert_eq!(y.to_vec::<f32>()?, [3.0, 5.0, 7.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn conv1d_device(
    input: &Array,
    weight: &Array,
    options: ConvOptions<1>,
    stream: &Stream,
) -> Result<Array> {
    check_weight("conv1d", weight, options.groups)?;
    options.forward_only("conv1d")?;
    let ConvOptions { stride: [s], padding: [p], dilation: [d], groups, .. } = options;
    ffi::array_out("conv1d", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe { sys::mlx_conv1d(out, input.raw(), weight.raw(), s, p, d, groups, stream.raw()) }
    })
}

/// 2-D convolution: input `(N, H, W, C_in)`, weight `(C_out, KH, KW, C_in / groups)`, output
/// `(N, H_out, W_out, C_out)`.
///
/// ```
/// use mlx_rs::{Array, ops, ops::ConvOptions};
/// let x = Array::from_slice(&[1.0f32; 16], &[1, 4, 4, 1])?;
/// let w = Array::from_slice(&[1.0f32; 9], &[1, 3, 3, 1])?;
/// let y = ops::conv2d(&x, &w, ConvOptions::new().padding(1).stride(2))?;
/// assert_eq!(y.shape(), [1, 2, 2, 1]);
/// assert_eq!(y.to_vec::<f32>()?, [4.0, 6.0, 6.0, 9.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn conv2d_device(
    input: &Array,
    weight: &Array,
    options: ConvOptions<2>,
    stream: &Stream,
) -> Result<Array> {
    check_weight("conv2d", weight, options.groups)?;
    options.forward_only("conv2d")?;
    let ConvOptions { stride: [s0, s1], padding: [p0, p1], dilation: [d0, d1], groups, .. } =
        options;
    ffi::array_out("conv2d", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe {
            sys::mlx_conv2d(
                out,
                input.raw(),
                weight.raw(),
                s0,
                s1,
                p0,
                p1,
                d0,
                d1,
                groups,
                stream.raw(),
            )
        }
    })
}

/// 3-D convolution: input `(N, D, H, W, C_in)`, weight `(C_out, KD, KH, KW, C_in / groups)`,
/// output `(N, D_out, H_out, W_out, C_out)`.
///
/// ```
/// use mlx_rs::{Array, ops, ops::ConvOptions};
/// let x = Array::from_slice(&[1.0f32; 27], &[1, 3, 3, 3, 1])?;
/// let w = Array::from_slice(&[1.0f32; 8], &[1, 2, 2, 2, 1])?;
/// let y = ops::conv3d(&x, &w, ConvOptions::new())?;
/// assert_eq!(y.shape(), [1, 2, 2, 2, 1]);
/// assert_eq!(y.to_vec::<f32>()?, [8.0; 8]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn conv3d_device(
    input: &Array,
    weight: &Array,
    options: ConvOptions<3>,
    stream: &Stream,
) -> Result<Array> {
    check_weight("conv3d", weight, options.groups)?;
    options.forward_only("conv3d")?;
    let ConvOptions { stride: s, padding: p, dilation: d, groups, .. } = options;
    ffi::array_out("conv3d", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe {
            sys::mlx_conv3d(
                out,
                input.raw(),
                weight.raw(),
                s[0],
                s[1],
                s[2],
                p[0],
                p[1],
                p[2],
                d[0],
                d[1],
                d[2],
                groups,
                stream.raw(),
            )
        }
    })
}

/// 1-D transposed convolution (the gradient of [`conv1d`] with respect to its input): input
/// `(N, L, C_in)`, weight `(C_out, K, C_in / groups)`, output `(N, L_out, C_out)` with
/// `L_out = (L - 1) * stride - 2 * padding + dilation * (K - 1) + output_padding + 1`.
///
/// ```
/// use mlx_rs::{Array, ops, ops::ConvOptions};
/// let x = Array::from_slice(&[1.0f32, 2.0], &[1, 2, 1])?;
/// let w = Array::from_slice(&[1.0f32, 10.0], &[1, 2, 1])?;
/// let y = ops::conv_transpose1d(&x, &w, ConvOptions::new().stride(2))?;
/// assert_eq!(y.to_vec::<f32>()?, [1.0, 10.0, 2.0, 20.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn conv_transpose1d_device(
    input: &Array,
    weight: &Array,
    options: ConvOptions<1>,
    stream: &Stream,
) -> Result<Array> {
    check_weight("conv_transpose1d", weight, options.groups)?;
    let ConvOptions { stride: [s], padding: [p], dilation: [d], output_padding: [o], groups } =
        options;
    ffi::array_out("conv_transpose1d", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe {
            sys::mlx_conv_transpose1d(
                out,
                input.raw(),
                weight.raw(),
                s,
                p,
                d,
                o,
                groups,
                stream.raw(),
            )
        }
    })
}

/// 2-D transposed convolution: input `(N, H, W, C_in)`, weight `(C_out, KH, KW, C_in / groups)`,
/// output `(N, H_out, W_out, C_out)` (sizes as in [`conv_transpose1d`], per axis).
///
/// ```
/// use mlx_rs::{Array, ops, ops::ConvOptions};
/// let x = Array::from_slice(&[1.0f32; 4], &[1, 2, 2, 1])?;
/// let w = Array::from_slice(&[1.0f32; 4], &[1, 2, 2, 1])?;
/// let y = ops::conv_transpose2d(&x, &w, ConvOptions::new().stride(2))?;
/// assert_eq!(y.shape(), [1, 4, 4, 1]);
/// assert_eq!(y.to_vec::<f32>()?, [1.0; 16]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn conv_transpose2d_device(
    input: &Array,
    weight: &Array,
    options: ConvOptions<2>,
    stream: &Stream,
) -> Result<Array> {
    check_weight("conv_transpose2d", weight, options.groups)?;
    let ConvOptions { stride: s, padding: p, dilation: d, output_padding: o, groups } = options;
    ffi::array_out("conv_transpose2d", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe {
            sys::mlx_conv_transpose2d(
                out,
                input.raw(),
                weight.raw(),
                s[0],
                s[1],
                p[0],
                p[1],
                d[0],
                d[1],
                o[0],
                o[1],
                groups,
                stream.raw(),
            )
        }
    })
}

/// 3-D transposed convolution: input `(N, D, H, W, C_in)`, weight
/// `(C_out, KD, KH, KW, C_in / groups)`, output `(N, D_out, H_out, W_out, C_out)`.
///
/// ```
/// use mlx_rs::{Array, ops, ops::ConvOptions};
/// let x = Array::from_slice(&[1.0f32], &[1, 1, 1, 1, 1])?;
/// let w = Array::from_slice(&[2.0f32; 8], &[1, 2, 2, 2, 1])?;
/// let y = ops::conv_transpose3d(&x, &w, ConvOptions::new())?;
/// assert_eq!(y.shape(), [1, 2, 2, 2, 1]);
/// assert_eq!(y.to_vec::<f32>()?, [2.0; 8]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn conv_transpose3d_device(
    input: &Array,
    weight: &Array,
    options: ConvOptions<3>,
    stream: &Stream,
) -> Result<Array> {
    check_weight("conv_transpose3d", weight, options.groups)?;
    let ConvOptions { stride: s, padding: p, dilation: d, output_padding: o, groups } = options;
    ffi::array_out("conv_transpose3d", |out| {
        // SAFETY: live handles; the output is owned by `array_out`.
        unsafe {
            sys::mlx_conv_transpose3d(
                out,
                input.raw(),
                weight.raw(),
                s[0],
                s[1],
                s[2],
                p[0],
                p[1],
                p[2],
                d[0],
                d[1],
                d[2],
                o[0],
                o[1],
                o[2],
                groups,
                stream.raw(),
            )
        }
    })
}

/// Options for [`conv_general`], which works for any number of spatial axes.
///
/// Each list has one entry per spatial axis; a list with one entry applies to every axis, and
/// an empty list means the default (stride 1, padding 0, dilation 1).
///
/// ```
/// use mlx_rs::ops::ConvGeneralOptions;
/// let o = ConvGeneralOptions::new().stride(2).padding(1).flip(true);
/// assert_eq!((o.padding_lo, o.padding_hi), (vec![1], vec![1]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeneralOptions {
    /// Kernel stride.
    pub stride: Vec<i32>,
    /// Zeros added before the input on each spatial axis.
    pub padding_lo: Vec<i32>,
    /// Zeros added after the input on each spatial axis.
    pub padding_hi: Vec<i32>,
    /// Spacing between kernel elements.
    pub kernel_dilation: Vec<i32>,
    /// Spacing inserted between input elements (a fractionally strided convolution).
    pub input_dilation: Vec<i32>,
    /// Number of channel groups (default 1).
    pub groups: i32,
    /// Flip the kernel's spatial axes: a true convolution rather than a cross-correlation.
    pub flip: bool,
}

impl Default for ConvGeneralOptions {
    fn default() -> Self {
        ConvGeneralOptions {
            stride: Vec::new(),
            padding_lo: Vec::new(),
            padding_hi: Vec::new(),
            kernel_dilation: Vec::new(),
            input_dilation: Vec::new(),
            groups: 1,
            flip: false,
        }
    }
}

impl ConvGeneralOptions {
    /// The defaults: stride 1, no padding, no dilation, one group, no flip.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the stride of every spatial axis.
    pub fn stride(mut self, stride: i32) -> Self {
        self.stride = vec![stride];
        self
    }

    /// Sets the padding on both sides of every spatial axis.
    pub fn padding(mut self, padding: i32) -> Self {
        self.padding_lo = vec![padding];
        self.padding_hi = vec![padding];
        self
    }

    /// Sets the kernel dilation of every spatial axis.
    pub fn kernel_dilation(mut self, dilation: i32) -> Self {
        self.kernel_dilation = vec![dilation];
        self
    }

    /// Sets the input dilation of every spatial axis.
    pub fn input_dilation(mut self, dilation: i32) -> Self {
        self.input_dilation = vec![dilation];
        self
    }

    /// Sets the number of groups.
    pub fn groups(mut self, groups: i32) -> Self {
        self.groups = groups;
        self
    }

    /// Sets whether the kernel is flipped.
    pub fn flip(mut self, flip: bool) -> Self {
        self.flip = flip;
        self
    }
}

/// One entry per spatial axis: `values` as given, or its single entry (the default when empty)
/// repeated.
fn per_axis(values: &[i32], default: i32, spatial: usize) -> Vec<i32> {
    match values {
        [] => vec![default; spatial],
        [one] => vec![*one; spatial],
        many => many.to_vec(),
    }
}

/// Convolution over any number of spatial axes, with separate low/high padding, kernel and
/// input dilation, and an optional kernel flip. Layout as for the other convolutions:
/// input `(N, spatial.., C_in)`, weight `(C_out, kernel.., C_in / groups)`. A list whose length
/// is neither 0, 1 nor the number of spatial axes is an error.
///
/// ```
/// use mlx_rs::{Array, ops, ops::ConvGeneralOptions};
/// let x = Array::from_slice(&[1.0f32, 2.0, 3.0], &[1, 3, 1])?;
/// let w = Array::from_slice(&[1.0f32, 0.0], &[1, 2, 1])?;
/// let corr = ops::conv_general(&x, &w, &ConvGeneralOptions::new())?;
/// assert_eq!(corr.to_vec::<f32>()?, [1.0, 2.0]);
/// let conv = ops::conv_general(&x, &w, &ConvGeneralOptions::new().flip(true))?;
/// assert_eq!(conv.to_vec::<f32>()?, [2.0, 3.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn conv_general_device(
    input: &Array,
    weight: &Array,
    options: &ConvGeneralOptions,
    stream: &Stream,
) -> Result<Array> {
    check_weight("conv_general", weight, options.groups)?;
    let spatial = input.ndim().saturating_sub(2);
    let stride = per_axis(&options.stride, 1, spatial);
    let lo = per_axis(&options.padding_lo, 0, spatial);
    let hi = per_axis(&options.padding_hi, 0, spatial);
    let kernel_dilation = per_axis(&options.kernel_dilation, 1, spatial);
    let input_dilation = per_axis(&options.input_dilation, 1, spatial);
    ffi::array_out("conv_general", |out| {
        // SAFETY: live handles; every slice is valid for its length during the call (mlx-c
        // copies them); the output is owned by `array_out`.
        unsafe {
            sys::mlx_conv_general(
                out,
                input.raw(),
                weight.raw(),
                stride.as_ptr(),
                stride.len(),
                lo.as_ptr(),
                lo.len(),
                hi.as_ptr(),
                hi.len(),
                kernel_dilation.as_ptr(),
                kernel_dilation.len(),
                input_dilation.as_ptr(),
                input_dilation.len(),
                options.groups,
                options.flip,
                stream.raw(),
            )
        }
    })
}
