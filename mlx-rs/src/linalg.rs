//! Linear algebra, as in `mlx.core.linalg`.
//!
//! Functions work on the last two dimensions of their inputs and batch over the others.
//!
//! # Devices
//! In MLX 0.32.2 the factorizations and solvers ([`qr`], [`svd`], [`inv`], [`tri_inv`],
//! [`cholesky`], [`cholesky_inv`], [`pinv`], [`det`], [`slogdet`], [`eig`], [`eigh`],
//! [`eigvals`], [`eigvalsh`], [`lu`], [`lu_factor`], [`solve`], [`solve_triangular`], and
//! [`norm`] with [`NormOrd::Nuc`] or a matrix 2-norm) run on the CPU only. Their default-device
//! form works when the default device is the CPU; on a GPU default device it returns an
//! [`Error`] saying so. Pass a CPU stream explicitly to run them anywhere:
//!
//! ```
//! use mlx_rs::{Array, Stream, linalg};
//! let a = Array::from_slice(&[4.0f32, 7.0, 2.0, 6.0], &[2, 2])?;
//! let a_inv = linalg::inv_device(&a, &Stream::cpu()?)?;
//! let want = [0.6f32, -0.7, -0.2, 0.4];
//! for (x, y) in a_inv.to_vec::<f32>()?.iter().zip(want) {
//!     assert!((x - y).abs() < 1e-5);
//! }
//! # Ok::<(), mlx_rs::Error>(())
//! ```
//!
//! [`norm`] (other orders) and [`cross`] run on every device.

use std::ffi::CStr;
use std::fmt;
use std::str::FromStr;

use mlx_macros::default_device;
use mlx_sys as sys;

use crate::{Array, Error, ErrorKind, Result, Stream, ffi};

/// MLX 0.32.2 divides by zero (SIGFPE, killing the process) when some LAPACK-backed ops get
/// matrices with a zero dimension; reject those before calling it.
fn reject_empty_matrix(op: &'static str, a: &Array) -> Result<()> {
    let shape = a.shape();
    if shape.len() >= 2 && shape[shape.len() - 2..].contains(&0) {
        return Err(Error::invalid(
            op,
            format!("matrices with a zero dimension are not supported (input shape {shape:?})"),
        ));
    }
    Ok(())
}

/// The order of a norm for [`norm`], as Python's `ord` argument.
///
/// Numbers give vector p-norms (and the matrix norms for `1`, `-1`, `2`, `-2`, `inf`, `-inf`);
/// [`NormOrd::Fro`] and [`NormOrd::Nuc`] are the Frobenius and nuclear matrix norms. Python's
/// strings parse with [`str::parse`]: `"fro"`, `"nuc"`, `"inf"`, `"-inf"` or a number.
///
/// ```
/// use mlx_rs::linalg::NormOrd;
/// assert_eq!("fro".parse::<NormOrd>()?, NormOrd::Fro);
/// assert_eq!("-inf".parse::<NormOrd>()?, NormOrd::P(f64::NEG_INFINITY));
/// assert!("foo".parse::<NormOrd>().is_err());
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormOrd {
    /// A numeric order (`0`, `1`, `2`, `f64::INFINITY`, ...).
    P(f64),
    /// The Frobenius norm `"fro"` (matrices only).
    Fro,
    /// The nuclear norm `"nuc"`, the sum of singular values (matrices only; CPU only).
    Nuc,
}

impl From<f64> for NormOrd {
    fn from(p: f64) -> NormOrd {
        NormOrd::P(p)
    }
}

impl From<i32> for NormOrd {
    fn from(p: i32) -> NormOrd {
        NormOrd::P(f64::from(p))
    }
}

impl FromStr for NormOrd {
    type Err = Error;

    fn from_str(s: &str) -> Result<NormOrd> {
        match s {
            "fro" => Ok(NormOrd::Fro),
            "nuc" => Ok(NormOrd::Nuc),
            "inf" => Ok(NormOrd::P(f64::INFINITY)),
            "-inf" => Ok(NormOrd::P(f64::NEG_INFINITY)),
            other => match other.parse::<f64>() {
                Ok(p) if !p.is_nan() => Ok(NormOrd::P(p)),
                _ => Err(Error::invalid(
                    "norm",
                    format!(
                        "invalid norm order {other:?}: expected \"fro\", \"nuc\", \"inf\", \
                         \"-inf\" or a number"
                    ),
                )),
            },
        }
    }
}

impl TryFrom<&str> for NormOrd {
    type Error = Error;

    fn try_from(s: &str) -> Result<NormOrd> {
        s.parse()
    }
}

impl fmt::Display for NormOrd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NormOrd::P(p) => write!(f, "{p}"),
            NormOrd::Fro => f.write_str("fro"),
            NormOrd::Nuc => f.write_str("nuc"),
        }
    }
}

/// A matrix or vector norm.
///
/// `ord: None` is the 2-norm of vectors and the Frobenius norm of matrices. `axes: None` means
/// every axis when `ord` is `None`, and otherwise needs `a` to be 1-D (vector norm) or 2-D
/// (matrix norm); one axis gives vector norms, two give matrix norms. `keepdims` keeps the
/// reduced axes with size one. Fails for orders MLX does not define for the chosen axes, and for
/// out-of-range axes.
///
/// ```
/// use mlx_rs::{Array, linalg::{self, NormOrd}};
/// let a = Array::from_slice(&[3.0f32, 4.0], &[2])?;
/// assert_eq!(linalg::norm(&a, None, None, false)?.item::<f32>()?, 5.0);
/// assert_eq!(linalg::norm(&a, Some(NormOrd::P(1.0)), None, false)?.item::<f32>()?, 7.0);
/// assert_eq!(linalg::norm(&a, Some(f64::INFINITY.into()), Some(&[0]), false)?.item::<f32>()?, 4.0);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn norm_device(
    a: &Array,
    ord: Option<NormOrd>,
    axes: Option<&[i32]>,
    keepdims: bool,
    stream: &Stream,
) -> Result<Array> {
    let (axis_ptr, axis_num) = match axes {
        Some(axes) => (axes.as_ptr(), axes.len()),
        None => (std::ptr::null(), 0),
    };
    match ord {
        // SAFETY: live handles; `axes` (or NULL for none) outlives the call; the output is
        // owned by `array_out`.
        None => ffi::array_out("norm", |out| unsafe {
            sys::mlx_linalg_norm_l2(out, a.raw(), axis_ptr, axis_num, keepdims, stream.raw())
        }),
        // SAFETY: as above.
        Some(NormOrd::P(p)) => ffi::array_out("norm", |out| unsafe {
            sys::mlx_linalg_norm(out, a.raw(), p, axis_ptr, axis_num, keepdims, stream.raw())
        }),
        Some(matrix) => {
            let ord: &CStr = if matrix == NormOrd::Fro { c"fro" } else { c"nuc" };
            // SAFETY: as above; `ord` is a static NUL-terminated string.
            ffi::array_out("norm", |out| unsafe {
                sys::mlx_linalg_norm_matrix(
                    out,
                    a.raw(),
                    ord.as_ptr(),
                    axis_ptr,
                    axis_num,
                    keepdims,
                    stream.raw(),
                )
            })
        }
    }
}

/// The QR factorization `a = Q R`, returned as `(Q, R)` (reduced: `Q` is `[m, k]`, `R` is
/// `[k, n]` with `k = min(m, n)`). CPU only (see the [module docs](self)).
///
/// ```
/// use mlx_rs::{Array, Stream, linalg};
/// let a = Array::from_slice(&[3.0f32, 1.0, 4.0, 2.0], &[2, 2])?;
/// let (q, r) = linalg::qr_device(&a, &Stream::cpu()?)?;
/// let (q, r) = (q.to_vec::<f32>()?, r.to_vec::<f32>()?);
/// assert_eq!(r[2], 0.0); // R is upper triangular
/// assert!((q[0] * r[0] - 3.0).abs() < 1e-5); // (Q R)[0][0] = a[0][0]
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn qr_device(a: &Array, stream: &Stream) -> Result<(Array, Array)> {
    ffi::pair_out("qr", |q, r| {
        // SAFETY: live handles; both outputs are owned by `pair_out`.
        unsafe { sys::mlx_linalg_qr(q, r, a.raw(), stream.raw()) }
    })
}

/// The singular value decomposition: `[U, S, Vt]` with `a = U diag(S) Vt` when `compute_uv`, or
/// `[S]` alone. CPU only (see the [module docs](self)).
///
/// ```
/// use mlx_rs::{Array, Stream, linalg};
/// let a = Array::from_slice(&[3.0f32, 0.0, 0.0, -2.0], &[2, 2])?;
/// let s = linalg::svd_device(&a, false, &Stream::cpu()?)?;
/// assert_eq!(s.len(), 1);
/// assert_eq!(s[0].to_vec::<f32>()?, [3.0, 2.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn svd_device(a: &Array, compute_uv: bool, stream: &Stream) -> Result<Vec<Array>> {
    ffi::arrays_out("svd", |out| {
        // SAFETY: live handles; the output vector is owned by `arrays_out`.
        unsafe { sys::mlx_linalg_svd(out, a.raw(), compute_uv, stream.raw()) }
    })
}

/// The inverse of a square matrix. Fails for non-square, non-float, singular or empty matrices.
/// CPU only (see the [module docs](self)).
#[default_device]
pub fn inv_device(a: &Array, stream: &Stream) -> Result<Array> {
    reject_empty_matrix("inv", a)?;
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("inv", |out| unsafe { sys::mlx_linalg_inv(out, a.raw(), stream.raw()) })
}

/// The inverse of a triangular matrix (`upper` or lower). CPU only (see the [module docs](self)).
///
/// ```
/// use mlx_rs::{Array, Stream, linalg};
/// let a = Array::from_slice(&[2.0f32, 0.0, 1.0, 4.0], &[2, 2])?;
/// let inv = linalg::tri_inv_device(&a, false, &Stream::cpu()?)?;
/// assert_eq!(inv.to_vec::<f32>()?, [0.5, 0.0, -0.125, 0.25]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn tri_inv_device(a: &Array, upper: bool, stream: &Stream) -> Result<Array> {
    reject_empty_matrix("tri_inv", a)?;
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("tri_inv", |out| unsafe {
        sys::mlx_linalg_tri_inv(out, a.raw(), upper, stream.raw())
    })
}

/// The Cholesky factor of a symmetric positive-definite matrix: lower `L` with `a = L Lᵀ`, or
/// upper `U` with `a = Uᵀ U`. MLX does not check that `a` is positive definite. CPU only (see
/// the [module docs](self)).
///
/// ```
/// use mlx_rs::{Array, Stream, linalg};
/// let a = Array::from_slice(&[4.0f32, 2.0, 2.0, 5.0], &[2, 2])?;
/// let l = linalg::cholesky_device(&a, false, &Stream::cpu()?)?;
/// assert_eq!(l.to_vec::<f32>()?, [2.0, 0.0, 1.0, 2.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn cholesky_device(a: &Array, upper: bool, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("cholesky", |out| unsafe {
        sys::mlx_linalg_cholesky(out, a.raw(), upper, stream.raw())
    })
}

/// The inverse of a symmetric positive-definite matrix from its Cholesky factor `a` (lower, or
/// `upper`). CPU only (see the [module docs](self)).
#[default_device]
pub fn cholesky_inv_device(a: &Array, upper: bool, stream: &Stream) -> Result<Array> {
    reject_empty_matrix("cholesky_inv", a)?;
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("cholesky_inv", |out| unsafe {
        sys::mlx_linalg_cholesky_inv(out, a.raw(), upper, stream.raw())
    })
}

/// The Moore-Penrose pseudo-inverse. CPU only (see the [module docs](self)).
#[default_device]
pub fn pinv_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("pinv", |out| unsafe { sys::mlx_linalg_pinv(out, a.raw(), stream.raw()) })
}

/// The determinant of square matrices. CPU only (see the [module docs](self)).
///
/// ```
/// use mlx_rs::{Array, Stream, linalg};
/// let a = Array::from_slice(&[4.0f32, 1.0, 2.0, 3.0], &[2, 2])?;
/// assert_eq!(linalg::det_device(&a, &Stream::cpu()?)?.item::<f32>()?, 10.0);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn det_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("det", |out| unsafe { sys::mlx_linalg_det(out, a.raw(), stream.raw()) })
}

/// The sign and the natural log of the absolute value of the determinant, `(sign, logabsdet)`.
/// CPU only (see the [module docs](self)).
#[default_device]
pub fn slogdet_device(a: &Array, stream: &Stream) -> Result<(Array, Array)> {
    ffi::pair_out("slogdet", |sign, logabsdet| {
        // SAFETY: live handles; both outputs are owned by `pair_out`.
        unsafe { sys::mlx_linalg_slogdet(sign, logabsdet, a.raw(), stream.raw()) }
    })
}

/// Eigenvalues and right eigenvectors of a general square matrix, `(values, vectors)`, both
/// `complex64`. CPU only (see the [module docs](self)).
#[default_device]
pub fn eig_device(a: &Array, stream: &Stream) -> Result<(Array, Array)> {
    ffi::pair_out("eig", |values, vectors| {
        // SAFETY: live handles; both outputs are owned by `pair_out`.
        unsafe { sys::mlx_linalg_eig(values, vectors, a.raw(), stream.raw()) }
    })
}

/// Checks Python's `UPLO` argument and returns it as a C string.
fn parse_uplo(op: &'static str, uplo: &str) -> Result<&'static CStr> {
    match uplo {
        "L" => Ok(c"L"),
        "U" => Ok(c"U"),
        other => Err(Error::invalid(op, format!("UPLO must be \"L\" or \"U\", not {other:?}"))),
    }
}

/// Eigenvalues (ascending) and eigenvectors of a real symmetric or complex Hermitian matrix,
/// `(values, vectors)`, reading its lower (`UPLO = "L"`) or upper (`"U"`) triangle. Fails for any
/// other `UPLO`. CPU only (see the [module docs](self)).
///
/// ```
/// use mlx_rs::{Array, Stream, linalg};
/// let a = Array::from_slice(&[2.0f32, 0.0, 0.0, 1.0], &[2, 2])?;
/// let (w, _v) = linalg::eigh_device(&a, "L", &Stream::cpu()?)?;
/// assert_eq!(w.to_vec::<f32>()?, [1.0, 2.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn eigh_device(a: &Array, uplo: &str, stream: &Stream) -> Result<(Array, Array)> {
    let triangle = parse_uplo("eigh", uplo)?;
    ffi::pair_out("eigh", |values, vectors| {
        // SAFETY: live handles; `triangle` is a static C string; both outputs are owned by
        // `pair_out`.
        unsafe { sys::mlx_linalg_eigh(values, vectors, a.raw(), triangle.as_ptr(), stream.raw()) }
    })
}

/// Eigenvalues of a general square matrix (`complex64`). CPU only (see the [module docs](self)).
#[default_device]
pub fn eigvals_device(a: &Array, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("eigvals", |out| unsafe { sys::mlx_linalg_eigvals(out, a.raw(), stream.raw()) })
}

/// Eigenvalues (ascending) of a real symmetric or complex Hermitian matrix; `UPLO` as in
/// [`eigh`]. CPU only (see the [module docs](self)).
#[default_device]
pub fn eigvalsh_device(a: &Array, uplo: &str, stream: &Stream) -> Result<Array> {
    let triangle = parse_uplo("eigvalsh", uplo)?;
    // SAFETY: live handles; `triangle` is a static C string; the output is owned by `array_out`.
    ffi::array_out("eigvalsh", |out| unsafe {
        sys::mlx_linalg_eigvalsh(out, a.raw(), triangle.as_ptr(), stream.raw())
    })
}

/// The LU factorization with partial pivoting, `(p, L, U)`: `p` (`uint32`) holds the row
/// permutation, so that `a[p] = L U`. CPU only (see the [module docs](self)).
#[default_device]
pub fn lu_device(a: &Array, stream: &Stream) -> Result<(Array, Array, Array)> {
    reject_empty_matrix("lu", a)?;
    let parts = ffi::arrays_out("lu", |out| {
        // SAFETY: live handles; the output vector is owned by `arrays_out`.
        unsafe { sys::mlx_linalg_lu(out, a.raw(), stream.raw()) }
    })?;
    match <[Array; 3]>::try_from(parts) {
        Ok([p, l, u]) => Ok((p, l, u)),
        Err(parts) => Err(Error::new(
            ErrorKind::Mlx,
            "lu",
            format!("MLX returned {} arrays instead of 3", parts.len()),
        )),
    }
}

/// The compact LU factorization, `(LU, pivots)` as in LAPACK's `getrf`: `L` (unit diagonal,
/// not stored) and `U` share one matrix; `pivots` (`uint32`) are the row swaps. CPU only (see
/// the [module docs](self)).
#[default_device]
pub fn lu_factor_device(a: &Array, stream: &Stream) -> Result<(Array, Array)> {
    reject_empty_matrix("lu_factor", a)?;
    ffi::pair_out("lu_factor", |lu, pivots| {
        // SAFETY: live handles; both outputs are owned by `pair_out`.
        unsafe { sys::mlx_linalg_lu_factor(lu, pivots, a.raw(), stream.raw()) }
    })
}

/// Solves `a x = b` for `x` (`b` a vector or a matrix of right-hand sides). Fails for
/// mismatched shapes and singular or empty `a`. CPU only (see the [module docs](self)).
///
/// ```
/// use mlx_rs::{Array, Stream, linalg};
/// let a = Array::from_slice(&[2.0f32, 0.0, 0.0, 4.0], &[2, 2])?;
/// let b = Array::from_slice(&[2.0f32, 2.0], &[2])?;
/// assert_eq!(linalg::solve_device(&a, &b, &Stream::cpu()?)?.to_vec::<f32>()?, [1.0, 0.5]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn solve_device(a: &Array, b: &Array, stream: &Stream) -> Result<Array> {
    reject_empty_matrix("solve", a)?;
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("solve", |out| unsafe {
        sys::mlx_linalg_solve(out, a.raw(), b.raw(), stream.raw())
    })
}

/// Solves `a x = b` for a triangular `a` (`upper` or lower). CPU only (see the
/// [module docs](self)).
#[default_device]
pub fn solve_triangular_device(
    a: &Array,
    b: &Array,
    upper: bool,
    stream: &Stream,
) -> Result<Array> {
    reject_empty_matrix("solve_triangular", a)?;
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("solve_triangular", |out| unsafe {
        sys::mlx_linalg_solve_triangular(out, a.raw(), b.raw(), upper, stream.raw())
    })
}

/// The cross product of 3-vectors (or 2-vectors, padded with a zero) along `axis`, with
/// broadcasting. Fails if that axis does not have size 2 or 3.
///
/// ```
/// use mlx_rs::{Array, linalg};
/// let x = Array::from_slice(&[1.0f32, 0.0, 0.0], &[3])?;
/// let y = Array::from_slice(&[0.0f32, 1.0, 0.0], &[3])?;
/// assert_eq!(linalg::cross(&x, &y, -1)?.to_vec::<f32>()?, [0.0, 0.0, 1.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[default_device]
pub fn cross_device(a: &Array, b: &Array, axis: i32, stream: &Stream) -> Result<Array> {
    // SAFETY: live handles; the output is owned by `array_out`.
    ffi::array_out("cross", |out| unsafe {
        sys::mlx_linalg_cross(out, a.raw(), b.raw(), axis, stream.raw())
    })
}
