//! The bad-input battery (issue 13): wrong shapes, dtypes, axes and parameters, NaN and
//! infinities, empty arrays, absurd and overflowing sizes over the op families. Each case asserts
//! an `Err` whose message names the problem, or the valid result Python MLX 0.32.2 gives, and
//! every case is followed by a computation that must still work.
//!
//! The cases that crashed the process before the crate checked them live in `crash_classes.rs`,
//! one child process each; the ones here ran without crashing under the checks in place.

use mlx_rs::fft::{self, FftNorm};
use mlx_rs::ops::{self, PadMode};
use mlx_rs::{Array, Dtype, Result, linalg, random};

fn f32s(data: &[f32], shape: &[i32]) -> Array {
    Array::from_slice(data, shape).unwrap()
}

fn m23() -> Array {
    f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])
}

/// Evaluates `result` (creation or evaluation may fail) and asserts an error whose text holds
/// every one of `needles`; then asserts that the process still computes.
#[track_caller]
fn assert_err<T>(case: &str, result: Result<T>, needles: &[&str])
where
    T: Evaluate,
{
    let outcome = result.and_then(|v| v.evaluate());
    match outcome {
        Ok(()) => panic!("{case}: expected an error"),
        Err(e) => {
            let text = e.to_string();
            for needle in needles {
                assert!(text.contains(needle), "{case}: `{needle}` not in {text:?}");
            }
        }
    }
    still_works(case);
}

/// Something that can be evaluated (an array or a list of arrays).
trait Evaluate {
    fn evaluate(self) -> Result<()>;
}

impl Evaluate for Array {
    fn evaluate(self) -> Result<()> {
        self.eval()
    }
}

impl Evaluate for Vec<Array> {
    fn evaluate(self) -> Result<()> {
        mlx_rs::transforms::eval(&self)
    }
}

#[track_caller]
fn still_works(case: &str) {
    let a = m23();
    let s = a.sum(.., false).and_then(|s| s.item::<f32>());
    assert_eq!(s.unwrap_or_else(|e| panic!("{case}: next call failed: {e}")), 21.0, "{case}");
}

#[test]
fn wrong_shapes() {
    let a = m23();
    let b = f32s(&[1.0, 2.0], &[2, 1]);
    assert_err("matmul 2x3 @ 2x1", a.matmul(&b), &["matmul"]);
    assert_err("add 2x3 + 3x2", ops::add(&a, &a.t().unwrap()), &["broadcast"]);
    assert_err("reshape 6 -> 4", a.reshape([4]), &["reshape"]);
    assert_err("reshape two -1", a.reshape([-1, -1]), &["reshape"]);
    assert_err("reshape -2", a.reshape([-2, 3]), &["reshape", "invalid shape"]);
    assert_err("broadcast_to smaller", a.broadcast_to([3]), &["broadcast"]);
    assert_err("concatenate mismatched", ops::concatenate(&[&a, &b], Some(0)), &["concatenate"]);
    assert_err("stack mismatched", ops::stack(&[&a, &b], 0), &["stack"]);
    assert_err("split 3 into 2", ops::split(&a, 2, 1), &["split"]);
    assert_err("split 0 parts", ops::split(&a, 0, 1), &["split", "positive"]);
    assert_err("from_slice mismatch", Array::from_slice(&[1.0f32; 5], &[2, 3]), &["6 elements"]);
    assert_err("inv of 2x3", linalg::inv(&a), &["inv"]);
    assert_err("cholesky of 2x3", linalg::cholesky(&a, false), &["cholesky"]);
}

#[test]
fn wrong_axes() {
    let a = m23();
    assert_err("sum axis 2", a.sum(2, false), &["axis"]);
    assert_err("sum axis -3", a.sum(-3, false), &["axis"]);
    assert_err("softmax axis 5", a.softmax(5, false), &["axis"]);
    assert_err("transpose repeated", a.transpose([0, 0]), &["transpose"]);
    assert_err("transpose too few", a.transpose([0]), &["transpose"]);
    assert_err("squeeze size 3", a.squeeze(1), &["squeeze"]);
    assert_err("expand_dims 4", a.expand_dims(4), &["expand_dims"]);
    assert_err("sort axis 2", ops::sort(&a, Some(2)), &["sort"]);
    assert_err("cumsum axis 9", ops::cumsum(&a, Some(9), false, true, None), &["cumsum"]);
    assert_err("fft axis 3", fft::fft(&a, None, 3, FftNorm::Backward), &["fft"]);
    assert_err("dim 7", a.dim(7).map(|_| m23()), &["axis 7 is out of bounds"]);
}

#[test]
fn wrong_parameters() {
    let a = m23();
    assert_err("topk k > size", ops::topk(&a, 4, Some(1)), &["topk"]);
    assert_err("tile negative", ops::tile(&a, &[-1]), &["negative repetition"]);
    assert_err("repeat negative", ops::repeat(&a, -1, Some(0)), &["repeat"]);
    assert_err("pad negative", ops::pad(&a, &[(0, 0), (-5, 0)], PadMode::Constant, None), &["pad"]);
    assert_err("fft n 0", fft::fft(&a, Some(0), 1, FftNorm::Backward), &["fft"]);
    assert_err(
        "linspace negative num",
        ops::linspace(0.0, 1.0, -1, true, Dtype::Float32),
        &["linspace"],
    );
    assert_err("arange step 0", ops::arange(0.0, 1.0, 0.0, Dtype::Float32), &["arange"]);
    assert_err("eye negative", ops::eye(-2, None, 0, Dtype::Float32), &["eye"]);
}

#[test]
fn absurd_and_overflowing_sizes() {
    let a = m23();
    assert_err(
        "arange 1e12 elements",
        ops::arange(0.0, 1e12, 1.0, Dtype::Float32),
        &["Maximum size exceeded"],
    );
    assert_err("arange past i32", ops::arange(0.0, 1e19, 1.0, Dtype::Float32), &["arange"]);
    assert_err("eye 1e6", ops::eye(1_000_000, None, 0, Dtype::Float32), &["cannot allocate"]);
    assert_err("tile huge", ops::tile(&a, &[1 << 30, 1 << 30]), &["tile"]);
    assert_err("repeat huge", ops::repeat(&a, i32::MAX, Some(0)), &["repeat"]);
    assert_err(
        "pad huge",
        ops::pad(&a, &[(0, i32::MAX - 1), (0, i32::MAX - 1)], PadMode::Constant, None),
        &["pad"],
    );
    assert_err(
        "normal huge",
        random::normal(&[1 << 20, 1 << 20, 4], Dtype::Float32, 0.0, 1.0, None),
        &["cannot allocate"],
    );
}

#[test]
fn nan_and_infinities_give_ieee_results() {
    // Python: mx.sort([nan, 1, -inf, inf]) == [-inf, 1, inf, nan]; argmax picks the NaN (0).
    let x = f32s(&[f32::NAN, 1.0, f32::NEG_INFINITY, f32::INFINITY], &[4]);
    let sorted = ops::sort(&x, Some(0)).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(&sorted[..3], &[f32::NEG_INFINITY, 1.0, f32::INFINITY]);
    assert!(sorted[3].is_nan());
    assert!(x.sum(.., false).unwrap().item::<f32>().unwrap().is_nan());
    let sm = x.softmax(.., false).unwrap().to_vec::<f32>().unwrap();
    assert!(sm.iter().all(|v| v.is_nan()), "{sm:?}");
    still_works("nan");
}

#[test]
fn empty_arrays() {
    let e = ops::zeros(&[0, 3], Dtype::Float32).unwrap();
    // Python: sum of an empty axis is 0, mean is NaN, max raises.
    assert_eq!(e.sum(0, false).unwrap().to_vec::<f32>().unwrap(), [0.0, 0.0, 0.0]);
    assert!(e.mean(0, false).unwrap().to_vec::<f32>().unwrap().iter().all(|v| v.is_nan()));
    assert_err("max of empty", e.max(0, false), &["max"]);
    assert_err("argmax of empty", ops::argmax(&e, Some(0), false), &["argmax"]);
    assert_eq!(e.matmul(ops::zeros(&[3, 2], Dtype::Float32).unwrap()).unwrap().shape(), [0, 2]);
    assert_eq!(e.reshape([0, 1, 3]).unwrap().shape(), [0, 1, 3]);
    assert_eq!(ops::sort(&e, Some(0)).unwrap().shape(), [0, 3]);
    assert_err(
        "inv of empty",
        linalg::inv(&ops::zeros(&[0, 0], Dtype::Float32).unwrap()),
        &["inv"],
    );
    assert!(e.to_vec::<f32>().unwrap().is_empty());
    still_works("empty");
}

#[test]
fn wrong_dtypes() {
    let a = m23();
    let i = Array::from_slice(&[1i32, 2, 3], &[3]).unwrap();
    assert_err("read f32 as i32", a.item::<i32>().map(|_| m23()), &["float32", "read as int32"]);
    assert_err(
        "to_vec f32 as f64",
        a.to_vec::<f64>().map(|_| m23()),
        &["float32", "read as float64"],
    );
    assert_err("bitwise on float", ops::bitwise_and(&a, &a), &["bitwise"]);
    assert_err("inv of int", linalg::inv(&ops::eye(2, None, 0, Dtype::Int32).unwrap()), &["inv"]);
    // Python: mx.fft.fft(mx.array([True, True, True])) == [3+0j, 0j, 0j] (complex64) on the
    // CPU. MLX 0.32.2's CUDA FFT of a bool array gives 3+3j (seen on an H200): checked on the
    // CPU stream.
    let s = mlx_rs::Stream::cpu().unwrap();
    let f = fft::fft_device(&ops::equal(&i, &i).unwrap(), None, 0, FftNorm::Backward, &s).unwrap();
    assert_eq!(f.dtype(), Dtype::Complex64);
    let f = f.to_vec::<num_complex::Complex32>().unwrap();
    let want = [3.0, 0.0, 0.0].map(|re| num_complex::Complex32::new(re, 0.0));
    assert!(f.iter().zip(&want).all(|(g, w)| (g - w).norm() < 1e-5), "{f:?}");
    still_works("dtypes");
}

/// Found by the `ops` fuzz target: a `view` as a wider dtype of a slice at an odd offset has a
/// buffer that is not aligned for the wider type; it reads through `to_vec` and `item` (Python
/// MLX: `[4629700418010611712]`) and `as_slice` refuses it with a reason.
#[test]
fn reads_of_unaligned_views() {
    let a = f32s(&[1.0, 2.0, 3.0], &[3]);
    let tail = ops::slice(&a, &[1], &[3], None).unwrap();
    let wide = ops::view(&tail, Dtype::Uint64).unwrap();
    assert_eq!(wide.shape(), [1]);
    let expected = u64::from(2.0f32.to_bits()) | (u64::from(3.0f32.to_bits()) << 32);
    assert_eq!(expected, 4_629_700_418_010_611_712);
    assert_eq!(wide.to_vec::<u64>().unwrap(), [expected]);
    assert_eq!(wide.item::<u64>().unwrap(), expected);
    assert_err(
        "as_slice of an unaligned view",
        wide.as_slice::<u64>().map(|s| s.len()),
        &["not aligned for uint64", "use to_vec"],
    );
}

/// Bytes other than 0 and 1 in a bool array (a `view` of other data, or a file) are read as
/// `true`, never handed out as invalid Rust `bool`s; `as_slice` refuses them.
#[test]
fn reads_of_bool_views_of_other_bytes() {
    let bytes = Array::from_slice(&[0u8, 1, 2, 255], &[4]).unwrap();
    let bools = ops::view(&bytes, Dtype::Bool).unwrap();
    assert_eq!(bools.to_vec::<bool>().unwrap(), [false, true, true, true]);
    let last = bools.index(3).unwrap();
    assert!(last.item::<bool>().unwrap());
    assert_err(
        "as_slice of non-bool bytes",
        bools.as_slice::<bool>().map(|s| s.len()),
        &["the byte 2, which is not a bool"],
    );
    let fine = ops::view(&ops::slice(&bytes, &[0], &[2], None).unwrap(), Dtype::Bool).unwrap();
    assert_eq!(fine.as_slice::<bool>().unwrap(), [false, true]);
}

/// A length read from an array: nothing left to evaluate.
impl Evaluate for usize {
    fn evaluate(self) -> Result<()> {
        Ok(())
    }
}
