//! Pseudo-random number generation, as in `mlx.core.random`.
//!
//! MLX's generator is counter based: a *key* (a `uint32` array of shape `[2]`, made by [`key`])
//! fully determines the values drawn with it, on every device and in every language binding. So
//! the same key gives the same numbers here as in Python MLX. Split a key with [`split`] to get
//! independent streams of numbers.
//!
//! Every sampler takes `key: Option<&Array>`; `None` draws from MLX's global key (set by [`seed`])
//! and advances it.
//!
//! ```
//! use mlx_rs::{Dtype, random};
//! let key = random::key(42)?;
//! let a = random::normal(&[3], Dtype::Float32, 0.0, 1.0, Some(&key))?;
//! let b = random::normal(&[3], Dtype::Float32, 0.0, 1.0, Some(&key))?;
//! assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?); // same key, same numbers
//! # Ok::<(), mlx_rs::Error>(())
//! ```

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::{Array, Dtype, Error, Result, Stream, ffi};

/// A PRNG key from a seed: a `uint32` array of shape `[2]`.
///
/// ```
/// let key = mlx_rs::random::key(5)?;
/// assert_eq!(key.to_vec::<u32>()?, [0, 5]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn key(seed: u64) -> Result<Array> {
    // SAFETY: the output is owned by `array_out`.
    ffi::array_out("key", |out| unsafe { sys::mlx_random_key(out, seed) })
}

/// Seeds MLX's global key, which every sampler called with `key: None` draws from.
///
/// The global key is process-wide state shared by all threads.
pub fn seed(seed: u64) -> Result<()> {
    // SAFETY: no handles involved.
    ffi::status("seed", || unsafe { sys::mlx_random_seed(seed) })
}

/// Splits `key` into `num` new keys, returned as a `uint32` array of shape `[num, 2]`.
///
/// Fails if `key` is not a `uint32` array of shape `[2]` or if `num` is negative.
///
/// ```
/// use mlx_rs::random;
/// let keys = random::split(&random::key(0)?, 3)?;
/// assert_eq!(keys.shape(), &[3, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn split_device(key: &Array, num: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("split", |out| unsafe {
        sys::mlx_random_split_num(out, key.raw(), num, stream.raw())
    })
}

/// Splits `key` into two new keys (the common `k1, k2 = split(key)` of Python).
///
/// ```
/// use mlx_rs::random;
/// let (k1, k2) = random::split_pair(&random::key(0)?)?;
/// assert_eq!(k1.shape(), &[2]);
/// assert_ne!(k1.to_vec::<u32>()?, k2.to_vec::<u32>()?);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn split_pair_device(key: &Array, stream: &Stream) -> Result<(Array, Array)> {
    ffi::pair_out("split", |first, second| {
        // SAFETY: live handles; both outputs are owned by `pair_out`.
        unsafe { sys::mlx_random_split(first, second, key.raw(), stream.raw()) }
    })
}

/// Samples uniformly from `[low, high)` (broadcast against `shape`), with the given float dtype.
///
/// ```
/// use mlx_rs::{Array, Dtype, random};
/// let key = random::key(0)?;
/// let u = random::uniform(&Array::scalar(2.0f32), &Array::scalar(3.0f32), &[100], Dtype::Float32, Some(&key))?;
/// assert!(u.to_vec::<f32>()?.iter().all(|&x| (2.0..3.0).contains(&x)));
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn uniform_device(
    low: &Array,
    high: &Array,
    shape: &[i32],
    dtype: Dtype,
    key: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    // SAFETY: live handles; `shape` outlives the call; the output is owned by `array_out`.
    ffi::array_out("uniform", |out| unsafe {
        sys::mlx_random_uniform(
            out,
            low.raw(),
            high.raw(),
            shape.as_ptr(),
            shape.len(),
            dtype.to_raw(),
            ffi::optional_array(key),
            stream.raw(),
        )
    })
}

/// Samples from the normal distribution with mean `loc` and standard deviation `scale`.
///
/// For `complex64`, the real and imaginary parts each have variance `scale² / 2`. See
/// [`normal_broadcast`] for array-valued `loc` and `scale`.
///
/// ```
/// use mlx_rs::{Dtype, random};
/// let x = random::normal(&[2, 3], Dtype::Float32, 0.0, 1.0, Some(&random::key(1)?))?;
/// assert_eq!(x.shape(), &[2, 3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn normal_device(
    shape: &[i32],
    dtype: Dtype,
    loc: f32,
    scale: f32,
    key: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    // SAFETY: live handles; `shape` outlives the call; the output is owned by `array_out`.
    ffi::array_out("normal", |out| unsafe {
        sys::mlx_random_normal(
            out,
            shape.as_ptr(),
            shape.len(),
            dtype.to_raw(),
            loc,
            scale,
            ffi::optional_array(key),
            stream.raw(),
        )
    })
}

/// Samples from the normal distribution with array-valued mean `loc` and standard deviation
/// `scale` (each optional: `None` means 0 and 1), broadcast against `shape`.
///
/// ```
/// use mlx_rs::{Array, Dtype, random};
/// let loc = Array::from_slice(&[0.0f32, 100.0], &[2])?;
/// let x = random::normal_broadcast(&[2], Dtype::Float32, Some(&loc), None, Some(&random::key(0)?))?;
/// assert!(x.to_vec::<f32>()?[1] > 50.0);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn normal_broadcast_device(
    shape: &[i32],
    dtype: Dtype,
    loc: Option<&Array>,
    scale: Option<&Array>,
    key: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    // SAFETY: live handles (empty ones mean "none"); `shape` outlives the call; the output is
    // owned by `array_out`.
    ffi::array_out("normal", |out| unsafe {
        sys::mlx_random_normal_broadcast(
            out,
            shape.as_ptr(),
            shape.len(),
            dtype.to_raw(),
            ffi::optional_array(loc),
            ffi::optional_array(scale),
            ffi::optional_array(key),
            stream.raw(),
        )
    })
}

/// Samples from the standard normal distribution truncated to `[lower, upper]` (broadcast
/// against `shape`).
///
/// ```
/// use mlx_rs::{Array, Dtype, random};
/// let (lo, hi) = (Array::scalar(-0.5f32), Array::scalar(0.5f32));
/// let x = random::truncated_normal(&lo, &hi, &[50], Dtype::Float32, Some(&random::key(0)?))?;
/// assert!(x.to_vec::<f32>()?.iter().all(|&v| (-0.5..=0.5).contains(&v)));
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn truncated_normal_device(
    lower: &Array,
    upper: &Array,
    shape: &[i32],
    dtype: Dtype,
    key: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    // SAFETY: live handles; `shape` outlives the call; the output is owned by `array_out`.
    ffi::array_out("truncated_normal", |out| unsafe {
        sys::mlx_random_truncated_normal(
            out,
            lower.raw(),
            upper.raw(),
            shape.as_ptr(),
            shape.len(),
            dtype.to_raw(),
            ffi::optional_array(key),
            stream.raw(),
        )
    })
}

/// Samples booleans that are `true` with probability `p`; `shape: None` uses `p`'s shape.
///
/// ```
/// use mlx_rs::{Array, random};
/// let b = random::bernoulli(&Array::scalar(1.0f32), Some(&[4]), Some(&random::key(0)?))?;
/// assert_eq!(b.to_vec::<bool>()?, [true; 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn bernoulli_device(
    p: &Array,
    shape: Option<&[i32]>,
    key: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    let shape = shape.unwrap_or(p.shape());
    // SAFETY: live handles; `shape` outlives the call; the output is owned by `array_out`.
    ffi::array_out("bernoulli", |out| unsafe {
        sys::mlx_random_bernoulli(
            out,
            p.raw(),
            shape.as_ptr(),
            shape.len(),
            ffi::optional_array(key),
            stream.raw(),
        )
    })
}

/// Samples integers uniformly from `[low, high)` with the given integer dtype.
///
/// ```
/// use mlx_rs::{Array, Dtype, random};
/// let (lo, hi) = (Array::scalar(0i32), Array::scalar(10i32));
/// let x = random::randint(&lo, &hi, &[20], Dtype::Int32, Some(&random::key(0)?))?;
/// assert!(x.to_vec::<i32>()?.iter().all(|v| (0..10).contains(v)));
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn randint_device(
    low: &Array,
    high: &Array,
    shape: &[i32],
    dtype: Dtype,
    key: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    // SAFETY: live handles; `shape` outlives the call; the output is owned by `array_out`.
    ffi::array_out("randint", |out| unsafe {
        sys::mlx_random_randint(
            out,
            low.raw(),
            high.raw(),
            shape.as_ptr(),
            shape.len(),
            dtype.to_raw(),
            ffi::optional_array(key),
            stream.raw(),
        )
    })
}

/// Samples from the standard Gumbel distribution.
///
/// ```
/// use mlx_rs::{Dtype, random};
/// let g = random::gumbel(&[3], Dtype::Float32, Some(&random::key(0)?))?;
/// assert_eq!(g.shape(), &[3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn gumbel_device(
    shape: &[i32],
    dtype: Dtype,
    key: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    // SAFETY: live handles; `shape` outlives the call; the output is owned by `array_out`.
    ffi::array_out("gumbel", |out| unsafe {
        sys::mlx_random_gumbel(
            out,
            shape.as_ptr(),
            shape.len(),
            dtype.to_raw(),
            ffi::optional_array(key),
            stream.raw(),
        )
    })
}

/// Samples from the Laplace distribution with location `loc` and scale `scale`.
///
/// ```
/// use mlx_rs::{Dtype, random};
/// let x = random::laplace(&[3], Dtype::Float32, 0.0, 1.0, Some(&random::key(0)?))?;
/// assert_eq!(x.shape(), &[3]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn laplace_device(
    shape: &[i32],
    dtype: Dtype,
    loc: f32,
    scale: f32,
    key: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    // SAFETY: live handles; `shape` outlives the call; the output is owned by `array_out`.
    ffi::array_out("laplace", |out| unsafe {
        sys::mlx_random_laplace(
            out,
            shape.as_ptr(),
            shape.len(),
            dtype.to_raw(),
            loc,
            scale,
            ffi::optional_array(key),
            stream.raw(),
        )
    })
}

/// Samples category indices (`uint32`) from the unnormalized log-probabilities `logits` along
/// `axis`.
///
/// At most one of `shape` and `num_samples` may be given: `shape` is the output shape (broadcast
/// compatible with `logits`' shape without `axis`); `num_samples` draws that many samples per
/// distribution, in a new last dimension; with neither, one sample per distribution.
///
/// ```
/// use mlx_rs::{Array, random};
/// let logits = Array::from_slice(&[0.0f32, 100.0, 0.0], &[3])?; // almost surely 1
/// let c = random::categorical(&logits, -1, None, Some(4), Some(&random::key(0)?))?;
/// assert_eq!(c.to_vec::<u32>()?, [1, 1, 1, 1]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn categorical_device(
    logits: &Array,
    axis: i32,
    shape: Option<&[i32]>,
    num_samples: Option<i32>,
    key: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    let key = ffi::optional_array(key);
    match (shape, num_samples) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "categorical",
            "at most one of shape or num_samples can be specified",
        )),
        // SAFETY: live handles; `shape` outlives the call; the output is owned by `array_out`.
        (Some(shape), None) => ffi::array_out("categorical", |out| unsafe {
            sys::mlx_random_categorical_shape(
                out,
                logits.raw(),
                axis,
                shape.as_ptr(),
                shape.len(),
                key,
                stream.raw(),
            )
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        (None, Some(num)) => ffi::array_out("categorical", |out| unsafe {
            sys::mlx_random_categorical_num_samples(out, logits.raw(), axis, num, key, stream.raw())
        }),
        // SAFETY: live handles; the output is owned by `array_out`.
        (None, None) => ffi::array_out("categorical", |out| unsafe {
            sys::mlx_random_categorical(out, logits.raw(), axis, key, stream.raw())
        }),
    }
}

/// Samples from the multivariate normal distribution with mean `mean` (`[.., n]`) and covariance
/// `cov` (`[.., n, n]`); the output has shape `shape + [n]`. Only `float32` is supported.
///
/// MLX factors `cov` with an SVD, which runs on the CPU only: on a GPU default device use
/// [`multivariate_normal_device`] with [`Stream::cpu`].
///
/// ```
/// use mlx_rs::{Array, Dtype, Stream, random};
/// let mean = Array::from_slice(&[0.0f32, 0.0], &[2])?;
/// let cov = Array::from_slice(&[1.0f32, 0.0, 0.0, 1.0], &[2, 2])?;
/// let key = random::key(0)?;
/// let x = random::multivariate_normal_device(&mean, &cov, &[5], Dtype::Float32, Some(&key), &Stream::cpu()?)?;
/// assert_eq!(x.shape(), &[5, 2]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn multivariate_normal_device(
    mean: &Array,
    cov: &Array,
    shape: &[i32],
    dtype: Dtype,
    key: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    // SAFETY: live handles; `shape` outlives the call; the output is owned by `array_out`.
    ffi::array_out("multivariate_normal", |out| unsafe {
        sys::mlx_random_multivariate_normal(
            out,
            mean.raw(),
            cov.raw(),
            shape.as_ptr(),
            shape.len(),
            dtype.to_raw(),
            ffi::optional_array(key),
            stream.raw(),
        )
    })
}

/// Randomly permutes the entries of `x` along `axis`.
///
/// Fails if `axis` is out of range. Permuting an axis of size 0 returns `x` unchanged.
///
/// ```
/// use mlx_rs::{Array, random};
/// let x = Array::from_slice(&[1i32, 2, 3, 4], &[4])?;
/// let mut p = random::permutation(&x, 0, Some(&random::key(0)?))?.to_vec::<i32>()?;
/// p.sort();
/// assert_eq!(p, [1, 2, 3, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn permutation_device(
    x: &Array,
    axis: i32,
    key: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    let index = crate::array::normalize_axis("permutation", axis, x.ndim())?;
    // MLX 0.32.2 divides by zero (SIGFPE) when the permuted axis is empty; there is nothing to
    // permute, so the input is the answer.
    if x.shape()[index] == 0 {
        return Ok(x.clone());
    }
    let index = i32::try_from(index)
        .map_err(|_| Error::invalid("permutation", format!("axis {axis} is too large")))?;
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("permutation", |out| unsafe {
        sys::mlx_random_permutation(out, x.raw(), index, ffi::optional_array(key), stream.raw())
    })
}

/// A random permutation of `0..n` (`uint32`), Python's `permutation(n)`.
///
/// Fails if `n` is negative; `n == 0` gives an empty array.
///
/// ```
/// use mlx_rs::random;
/// let mut p = random::permutation_arange(5, Some(&random::key(0)?))?.to_vec::<u32>()?;
/// p.sort();
/// assert_eq!(p, [0, 1, 2, 3, 4]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn permutation_arange_device(n: i32, key: Option<&Array>, stream: &Stream) -> Result<Array> {
    if n < 0 {
        return Err(Error::invalid(
            "permutation",
            format!("cannot permute a negative number ({n}) of elements"),
        ));
    }
    if n == 0 {
        // MLX 0.32.2 divides by zero (SIGFPE) here; the permutation of nothing is empty.
        return Array::from_slice::<u32>(&[], &[0]);
    }
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("permutation", |out| unsafe {
        sys::mlx_random_permutation_arange(out, n, ffi::optional_array(key), stream.raw())
    })
}

/// Random bits: an array of `shape` whose elements are `width` bytes wide (1, 2 or 4, giving
/// `uint8`, `uint16` or `uint32`).
///
/// Fails for any other `width`.
///
/// ```
/// use mlx_rs::{Dtype, random};
/// let b = random::bits(&[3], 1, Some(&random::key(0)?))?;
/// assert_eq!(b.dtype(), Dtype::Uint8);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn bits_device(
    shape: &[i32],
    width: i32,
    key: Option<&Array>,
    stream: &Stream,
) -> Result<Array> {
    if !matches!(width, 1 | 2 | 4) {
        return Err(Error::invalid("bits", format!("width must be 1, 2 or 4 bytes, not {width}")));
    }
    // SAFETY: live handles; `shape` outlives the call; the output is owned by `array_out`.
    ffi::array_out("bits", |out| unsafe {
        sys::mlx_random_bits(
            out,
            shape.as_ptr(),
            shape.len(),
            width,
            ffi::optional_array(key),
            stream.raw(),
        )
    })
}
