//! Fast Fourier transforms, as in `mlx.core.fft`.
//!
//! The arguments follow Python: one-dimensional transforms take an optional length `n` (default:
//! the size of `axis`, or `2 * (size - 1)` for [`irfft`]) and an `axis`; the two- and
//! n-dimensional ones take optional sizes `s` and `axes`. Inputs are truncated or zero-padded to
//! the requested sizes. Every transform also takes the normalization [`FftNorm`] (Python's
//! `norm`, default [`FftNorm::Backward`]).
//!
//! ```
//! use mlx_rs::{Array, fft::{self, FftNorm}};
//! use num_complex::Complex32;
//! let x = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[4])?;
//! let y = fft::fft(&x, None, -1, FftNorm::Backward)?;
//! assert_eq!(y.to_vec::<Complex32>()?[0], Complex32::new(10.0, 0.0));
//! let back = fft::irfft(&fft::rfft(&x, None, -1, FftNorm::Backward)?, Some(4), -1, FftNorm::Backward)?;
//! assert!(back.to_vec::<f32>()?.iter().zip([1.0, 2.0, 3.0, 4.0]).all(|(a, b)| (a - b).abs() < 1e-5));
//! # Ok::<(), mlx_rs::Error>(())
//! ```

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::array::normalize_axis;
use crate::{Array, Error, Result, Stream, ffi};

/// How a transform is scaled, as Python's `norm` argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FftNorm {
    /// `"backward"`: the forward transform is unscaled, the inverse scaled by `1/n`.
    #[default]
    Backward,
    /// `"ortho"`: both directions scaled by `1/sqrt(n)`.
    Ortho,
    /// `"forward"`: the forward transform scaled by `1/n`, the inverse unscaled.
    Forward,
}

impl FftNorm {
    fn to_raw(self) -> sys::mlx_fft_norm {
        match self {
            FftNorm::Backward => sys::MLX_FFT_NORM_BACKWARD,
            FftNorm::Ortho => sys::MLX_FFT_NORM_ORTHO,
            FftNorm::Forward => sys::MLX_FFT_NORM_FORWARD,
        }
    }
}

/// Which default length a transform uses for an axis whose size is not given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    /// The input's size along the axis.
    SameSize,
    /// `2 * (size - 1)` along the last transformed axis (the inverse real transforms).
    InverseReal,
}

/// The default length along `axis` (already checked).
fn default_len(a: &Array, index: usize, output: Output, last: bool) -> i32 {
    let size = a.shape()[index];
    if output == Output::InverseReal && last { 2 * (size - 1) } else { size }
}

/// Python's defaults for `(s, axes)`: axes default to `default_axes` (or, with `s` given and no
/// default, the last `len(s)` axes); sizes default to the input's sizes along the axes.
fn resolve(
    op: &'static str,
    a: &Array,
    s: Option<&[i32]>,
    axes: Option<&[i32]>,
    default_axes: Option<&[i32]>,
    output: Output,
) -> Result<(Vec<i32>, Vec<i32>)> {
    let ndim = a.ndim() as i32;
    let axes: Vec<i32> = match (axes, default_axes, s) {
        (Some(axes), _, _) => axes.to_vec(),
        (None, Some(default), _) => default.to_vec(),
        (None, None, Some(s)) => {
            let count = i32::try_from(s.len()).unwrap_or(i32::MAX);
            if count > ndim {
                return Err(Error::invalid(
                    op,
                    format!("{count} sizes were given for an array of {ndim} dimensions"),
                ));
            }
            (ndim - count..ndim).collect()
        }
        (None, None, None) => (0..ndim).collect(),
    };
    let mut indices = Vec::with_capacity(axes.len());
    for &axis in &axes {
        indices.push(normalize_axis(op, axis, a.ndim())?);
    }
    let sizes = match s {
        Some(s) => s.to_vec(),
        None => {
            let last = indices.len().saturating_sub(1);
            indices
                .iter()
                .enumerate()
                .map(|(i, &index)| default_len(a, index, output, i == last))
                .collect()
        }
    };
    Ok((sizes, axes))
}

/// The length `n` of a one-dimensional transform: the given one, or the default for `axis`.
fn length(op: &'static str, a: &Array, n: Option<i32>, axis: i32, output: Output) -> Result<i32> {
    let index = normalize_axis(op, axis, a.ndim())?;
    Ok(n.unwrap_or_else(|| default_len(a, index, output, true)))
}

/// The last two axes, the default of the two-dimensional transforms.
const LAST_TWO: &[i32] = &[-2, -1];

/// Defines one-dimensional transforms (`fn foo_device(a, n, axis, norm, stream)`), one mlx-c
/// function each; `$output` picks the default length `n`.
macro_rules! fft_1d {
    ($($(#[$doc:meta])* $device:ident, $op:literal, $ffi:ident, $output:ident;)*) => {$(
        $(#[$doc])*
        #[default_device]
        pub fn $device(
            a: &Array,
            n: Option<i32>,
            axis: i32,
            norm: FftNorm,
            stream: &Stream,
        ) -> Result<Array> {
            let n = length($op, a, n, axis, Output::$output)?;
            // SAFETY: live handles; the output is owned by `array_out`.
            ffi::array_out($op, |out| unsafe {
                sys::$ffi(out, a.raw(), n, axis, norm.to_raw(), stream.raw())
            })
        }
    )*};
}

/// Defines transforms over several axes (`fn foo_device(a, s, axes, norm, stream)`), one mlx-c
/// function each; `$default` is the default axes (`None`: from `s`, see `resolve`) and
/// `$output` picks the default sizes.
macro_rules! fft_nd {
    ($(
        $(#[$doc:meta])* $device:ident, $op:literal, $ffi:ident, $default:expr, $output:ident;
    )*) => {$(
        $(#[$doc])*
        #[default_device]
        pub fn $device(
            a: &Array,
            s: Option<&[i32]>,
            axes: Option<&[i32]>,
            norm: FftNorm,
            stream: &Stream,
        ) -> Result<Array> {
            let (s, axes) = resolve($op, a, s, axes, $default, Output::$output)?;
            // SAFETY: live handles; `s` and `axes` outlive the call; the output is owned by
            // `array_out`.
            ffi::array_out($op, |out| unsafe {
                sys::$ffi(
                    out,
                    a.raw(),
                    s.as_ptr(),
                    s.len(),
                    axes.as_ptr(),
                    axes.len(),
                    norm.to_raw(),
                    stream.raw(),
                )
            })
        }
    )*};
}

fft_1d! {
    /// The one-dimensional discrete Fourier transform along `axis` (complex64 output).
    ///
    /// `n` (default: the size of `axis`) truncates or zero-pads the input. Fails if `axis` is out
    /// of range or `n <= 0`.
    ///
    /// ```
    /// use mlx_rs::{Array, fft::{self, FftNorm}};
    /// use num_complex::Complex32;
    /// let x = Array::from_slice(&[1.0f32, 0.0, 0.0, 0.0], &[4])?;
    /// let y = fft::fft(&x, None, -1, FftNorm::Backward)?;
    /// assert_eq!(y.to_vec::<Complex32>()?, [Complex32::new(1.0, 0.0); 4]);
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    fft_device, "fft", mlx_fft_fft, SameSize;

    /// The inverse of [`fft`].
    ifft_device, "ifft", mlx_fft_ifft, SameSize;

    /// The one-dimensional Fourier transform of a real input: `n / 2 + 1` complex outputs along
    /// `axis`.
    rfft_device, "rfft", mlx_fft_rfft, SameSize;

    /// The inverse of [`rfft`]: a real output of length `n` along `axis` (default
    /// `2 * (size - 1)`; pass the original length to recover odd lengths).
    irfft_device, "irfft", mlx_fft_irfft, InverseReal;
}

fft_nd! {
    /// The two-dimensional Fourier transform over `axes` (default: the last two).
    ///
    /// ```
    /// use mlx_rs::{Array, fft::{self, FftNorm}};
    /// use num_complex::Complex32;
    /// let x = Array::from_slice(&[1.0f32, 1.0, 1.0, 1.0], &[2, 2])?;
    /// let y = fft::fft2(&x, None, None, FftNorm::Backward)?.to_vec::<Complex32>()?;
    /// assert_eq!(y[0], Complex32::new(4.0, 0.0));
    /// assert_eq!(y[3], Complex32::new(0.0, 0.0));
    /// # Ok::<(), mlx_rs::Error>(())
    /// ```
    fft2_device, "fft2", mlx_fft_fft2, Some(LAST_TWO), SameSize;

    /// The inverse of [`fft2`].
    ifft2_device, "ifft2", mlx_fft_ifft2, Some(LAST_TWO), SameSize;

    /// The n-dimensional Fourier transform over `axes` (default: the last `len(s)` axes, or all
    /// axes when `s` is `None` too), with sizes `s` (default: the input's).
    fftn_device, "fftn", mlx_fft_fftn, None, SameSize;

    /// The inverse of [`fftn`].
    ifftn_device, "ifftn", mlx_fft_ifftn, None, SameSize;

    /// The two-dimensional Fourier transform of a real input; the last axis keeps `s[-1] / 2 + 1`
    /// outputs.
    rfft2_device, "rfft2", mlx_fft_rfft2, Some(LAST_TWO), SameSize;

    /// The inverse of [`rfft2`]; the last axis defaults to `2 * (size - 1)` outputs.
    irfft2_device, "irfft2", mlx_fft_irfft2, Some(LAST_TWO), InverseReal;

    /// The n-dimensional Fourier transform of a real input (axes and sizes as in [`fftn`]).
    rfftn_device, "rfftn", mlx_fft_rfftn, None, SameSize;

    /// The inverse of [`rfftn`]; the last axis defaults to `2 * (size - 1)` outputs.
    irfftn_device, "irfftn", mlx_fft_irfftn, None, InverseReal;
}

/// Every axis of `a`, the default of the shifts.
fn all_axes(a: &Array) -> Vec<i32> {
    (0..a.ndim() as i32).collect()
}

/// Moves the zero-frequency term to the center, over `axes` (default: all).
///
/// ```
/// use mlx_rs::{Array, fft};
/// let f = Array::from_slice(&[0i32, 1, 2, -2, -1], &[5])?;
/// assert_eq!(fft::fftshift(&f, None)?.to_vec::<i32>()?, [-2, -1, 0, 1, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn fftshift_device(a: &Array, axes: Option<&[i32]>, stream: &Stream) -> Result<Array> {
    let axes = axes.map_or_else(|| all_axes(a), <[i32]>::to_vec);
    // SAFETY: live handles; `axes` outlives the call; the output is owned by `array_out`.
    ffi::array_out("fftshift", |out| unsafe {
        sys::mlx_fft_fftshift(out, a.raw(), axes.as_ptr(), axes.len(), stream.raw())
    })
}

/// The inverse of [`fftshift`].
#[default_device]
pub fn ifftshift_device(a: &Array, axes: Option<&[i32]>, stream: &Stream) -> Result<Array> {
    let axes = axes.map_or_else(|| all_axes(a), <[i32]>::to_vec);
    // SAFETY: live handles; `axes` outlives the call; the output is owned by `array_out`.
    ffi::array_out("ifftshift", |out| unsafe {
        sys::mlx_fft_ifftshift(out, a.raw(), axes.as_ptr(), axes.len(), stream.raw())
    })
}

/// The sample frequencies of [`fft`] for a window of length `n` and sample spacing `d`
/// (Python's default `d` is 1.0). Fails if `n <= 0` or `d == 0`.
///
/// ```
/// use mlx_rs::fft;
/// assert_eq!(fft::fftfreq(4, 1.0)?.to_vec::<f32>()?, [0.0, 0.25, -0.5, -0.25]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn fftfreq_device(n: i32, d: f64, stream: &Stream) -> Result<Array> {
    // SAFETY: live stream; the output is owned by `array_out`.
    ffi::array_out("fftfreq", |out| unsafe { sys::mlx_fft_fftfreq(out, n, d, stream.raw()) })
}

/// The sample frequencies of [`rfft`] (`n / 2 + 1` of them). Fails if `n <= 0` or `d == 0`.
#[default_device]
pub fn rfftfreq_device(n: i32, d: f64, stream: &Stream) -> Result<Array> {
    // SAFETY: live stream; the output is owned by `array_out`.
    ffi::array_out("rfftfreq", |out| unsafe { sys::mlx_fft_rfftfreq(out, n, d, stream.raw()) })
}
