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

// ---------------------------------------------------------------------------------------------
// The op families one by one. `ok` evaluates a result that Python MLX 0.32.2 also gives (noted
// beside each case) and returns it for its values to be checked.

/// Evaluates `result`, which must succeed, and checks that the process still computes.
#[track_caller]
fn ok(case: &str, result: Result<Array>) -> Array {
    let a = result.unwrap_or_else(|e| panic!("{case}: {e}"));
    a.eval().unwrap_or_else(|e| panic!("{case}: eval: {e}"));
    still_works(case);
    a
}

fn i32s(data: &[i32], shape: &[i32]) -> Array {
    Array::from_slice(data, shape).unwrap()
}

fn ones(shape: &[i32]) -> Array {
    ops::ones(shape, Dtype::Float32).unwrap()
}

fn empty(shape: &[i32]) -> Array {
    ops::zeros(shape, Dtype::Float32).unwrap()
}

fn pair(r: Result<(Array, Array)>) -> Result<Vec<Array>> {
    r.map(|(a, b)| vec![a, b])
}

#[test]
fn indexing_family() {
    let a = m23();
    let idx = i32s(&[0], &[1]);
    assert_err(
        "take_along_axis ndim",
        ops::take_along_axis(&a, &idx, 0),
        &["take_along_axis", "dimension"],
    );
    assert_err(
        "put_along_axis ndim",
        ops::put_along_axis(&a, &i32s(&[0, 1], &[2]), &f32s(&[1.0], &[1]), Some(0)),
        &["put_along_axis", "dimension"],
    );
    assert_err("slice lengths", ops::slice(&a, &[0], &[1, 2], None), &["1 starts, 2 stops"]);
    assert_err(
        "slice step 0",
        ops::slice(&a, &[0, 0], &[2, 3], Some(&[0, 1])),
        &["step cannot be zero"],
    );
    assert_err(
        "slice_update shape",
        ops::slice_update(&a, &f32s(&[1.0, 2.0, 3.0], &[3]), &[0, 0], &[1, 1], None),
        &["broadcast"],
    );
    assert_err(
        "gather axes",
        ops::gather(&a, &[&idx], &[0, 1], &[1, 1]),
        &["1 index arrays for 2 axes"],
    );
    assert_err(
        "gather slice size",
        ops::gather(&a, &[&idx], &[0], &[5, 3]),
        &["slice of size 5 does not fit an axis of size 2"],
    );
    assert_err(
        "scatter updates",
        ops::scatter(&a, &[&idx], &f32s(&[1.0], &[1]), &[0]),
        &["fewer than the array's 2"],
    );
    let mask = ops::equal(&idx, &idx).unwrap();
    assert_err(
        "masked_scatter mask",
        ops::masked_scatter(&a, &mask, &f32s(&[1.0], &[1])),
        &["masked_scatter", "mask"],
    );
    assert_err(
        "where broadcast",
        ops::r#where(&ops::equal(&a, &a).unwrap(), &a, &f32s(&[1.0, 2.0], &[2])),
        &["broadcast"],
    );
    assert_err(
        "take from an empty axis",
        ops::take(&empty(&[0, 3]), &idx, 0),
        &["cannot index an empty axis"],
    );
    for (shape, strides, offset) in
        [(&[1000][..], &[1i64][..], 0), (&[2], &[1], 100), (&[3], &[-5], 0)]
    {
        assert_err(
            "as_strided outside",
            ops::as_strided(&a, shape, strides, offset),
            &["reaches outside the 6 elements"],
        );
    }
    // Documented: indices are clamped into range (Python MLX reads outside the array here).
    let clamped = ok("take clamps", ops::take(&a, &i32s(&[7], &[1]), 0));
    assert_eq!(clamped.to_vec::<f32>().unwrap(), [4.0, 5.0, 6.0]);
}

#[test]
fn shape_family() {
    let a = m23();
    assert_err("unflatten", ops::unflatten(&a, 1, [4]), &["unflatten"]);
    assert_err("unflatten two -1", ops::unflatten(&a, 1, [-1, -1]), &["infer one dimension"]);
    assert_err("unflatten -1 with 0", ops::unflatten(&a, 1, [-1, 0]), &["zero size"]);
    assert_err("flatten axes", ops::flatten(&a, 1, 0), &["start_axis"]);
    assert_err("swapaxes", ops::swapaxes(&a, 0, 5), &["Invalid axis 5"]);
    assert_err("moveaxis", ops::moveaxis(&a, -3, 0), &["Invalid axis -3"]);
    assert_err(
        "broadcast_arrays",
        ops::broadcast_arrays(&[a.clone(), f32s(&[1.0, 2.0], &[2])]),
        &["broadcast"],
    );
    assert_err("concatenate nothing", ops::concatenate::<Array>(&[], Some(0)), &["No arrays"]);
    assert_err("stack nothing", ops::stack::<Array>(&[], 0), &["No arrays"]);
    assert_err("unstack axis", ops::unstack(&a, 3), &["axis 3 is out of bounds"]);
    assert_err("flip axis", ops::flip(&a, 4), &["Axis 4 is out of bounds"]);
    assert_err("diag of 3-D", ops::diag(&empty(&[2, 2, 2]), 0), &["1-D or 2-D"]);
    assert_err("diagonal same axes", ops::diagonal(&a, 0, 1, 1), &["same axis"]);
    assert_err("squeeze a scalar", ops::squeeze(&Array::scalar(1.0f32), 0), &["out of bounds"]);
    assert_err("reshape empty -1", empty(&[0]).reshape([-1, 0]), &["infer the shape"]);
    let wide = ops::broadcast_to(&f32s(&[1.0], &[1]), [1 << 30]).unwrap();
    let many: Vec<&Array> = std::iter::repeat_n(&wide, 10).collect();
    assert_err("concatenate past i32", ops::concatenate(&many, Some(0)), &["32-bit"]);
    // Valid results, as Python's: sections out of order give an empty middle part, no reps is
    // the array itself, zero repeats an empty axis.
    let parts = ops::split_sections(&a, &[2, 1], 1).unwrap();
    let shapes: Vec<&[i32]> = parts.iter().map(|p| p.shape()).collect();
    assert_eq!(shapes, [&[2, 2][..], &[2, 0], &[2, 2]]);
    assert_eq!(
        ok("tile no reps", ops::tile(&a, &[])).to_vec::<f32>().unwrap(),
        a.to_vec::<f32>().unwrap()
    );
    assert_eq!(ok("repeat 0", ops::repeat(&a, 0, Some(1))).shape(), [2, 0]);
}

#[test]
fn products_family() {
    let a = m23();
    let v2 = f32s(&[1.0, 2.0], &[2]);
    assert_err("addmm", ops::addmm(&a, &a, &a, 1.0, 1.0), &["addmm", "Last dimension"]);
    assert_err("inner", ops::inner(&a, &v2), &["same last dimension"]);
    assert_err("hadamard of 3", ops::hadamard_transform(&a, None), &["hadamard"]);
    assert_err("hadamard of empty", ops::hadamard_transform(&empty(&[0]), None), &["empty"]);
    assert_err("einsum shapes", ops::einsum("ij,jk->ik", &[&a, &a]), &["einsum", "broadcast"]);
    assert_err("einsum syntax", ops::einsum("ij->->k!", &[&a]), &["letters"]);
    assert_err("einsum no operands", ops::einsum::<Array>("ij", &[]), &["At least one operand"]);
    assert_err("kron of empty", ops::kron(&empty(&[0, 3]), &a), &["cannot be empty"]);
    assert_err("vecdot", ops::vecdot(&a, &v2, -1), &["vecdot"]);
    assert_err("trace of 1-D", ops::trace(&v2, 0, 0, 1, None), &["at least two dimensions"]);
    // Offsets past the matrix: an empty diagonal, as Python's.
    assert_eq!(
        ok("trace far offset", ops::trace(&a, i32::MAX, 0, 1, None)).item::<f32>().unwrap(),
        0.0
    );
    assert_eq!(ok("diagonal far offset", ops::diagonal(&a, i32::MIN, 0, 1)).shape(), [0]);
}

#[test]
fn sort_family() {
    let a = m23();
    assert_err("partition kth", ops::partition(&a, 5, Some(1)), &["invalid kth 5"]);
    assert_err("argpartition kth", ops::argpartition(&a, -9, Some(1)), &["invalid kth -9"]);
    assert_err("topk -1", ops::topk(&a, -1, Some(1)), &["invalid k=-1"]);
    assert_err("topk of empty", ops::topk(&empty(&[0]), 1, Some(0)), &["invalid k=1"]);
    assert_err(
        "searchsorted 2-D",
        ops::searchsorted(&a, &f32s(&[1.0], &[1]), ops::SearchSide::Left),
        &["must be 1-D"],
    );
    assert_err(
        "argsort axis of empty",
        ops::argsort(&empty(&[3, 0]), Some(5)),
        &["Axis 5 is out of bounds"],
    );
    assert_eq!(ok("topk 0", ops::topk(&a, 0, Some(1))).shape(), [2, 0]);
    // Sorting an empty axis: MLX 0.32.2 dies with SIGFPE (Python too); the crate returns the
    // empty result.
    for (shape, axis, want) in [
        (&[0][..], Some(0), &[0][..]),
        (&[0, 3], Some(0), &[0, 3]),
        (&[3, 0], Some(1), &[3, 0]),
        (&[3, 0], Some(-1), &[3, 0]),
        (&[3, 0], None, &[0]),
    ] {
        let sorted = ok("sort empty", ops::sort(&empty(shape), axis));
        assert_eq!((sorted.shape(), sorted.dtype()), (want, Dtype::Float32), "{shape:?} {axis:?}");
        let order = ok("argsort empty", ops::argsort(&empty(shape), axis));
        assert_eq!((order.shape(), order.dtype()), (want, Dtype::Uint32), "{shape:?} {axis:?}");
    }
    let bounded = ops::BoundedIndices::argsort(&empty(&[0]), 0).unwrap();
    assert_eq!(bounded.array().shape(), [0]);
}

#[test]
fn scan_family() {
    let a = m23();
    assert_err("cumprod axis", ops::cumprod(&a, Some(3), false, true, None), &["Axis 3"]);
    assert_err("diff n -1", ops::diff(&a, -1, 1), &["non-negative"]);
    assert_eq!(ok("diff n 100", ops::diff(&a, 100, 1)).shape(), [2, 0]);
    // Scanning an empty array: MLX 0.32.2 dies with SIGFPE (Python too); the crate returns
    // the empty result with MLX's shape and dtype.
    let ints = ops::zeros(&[0, 2], Dtype::Int8).unwrap();
    let sum = ok("cumsum empty", ops::cumsum(&ints, Some(0), false, true, None));
    let full = ops::cumsum(&ops::ones(&[1, 2], Dtype::Int8).unwrap(), Some(0), false, true, None);
    assert_eq!((sum.shape(), sum.dtype()), (&[0, 2][..], full.unwrap().dtype()));
    let flat = ok("cumsum empty flat", ops::cumsum(&empty(&[2, 0]), None, true, false, None));
    assert_eq!(flat.shape(), [0]);
    let prod =
        ok("cumprod empty", ops::cumprod(&empty(&[0]), Some(0), false, true, Some(Dtype::Float64)));
    assert_eq!((prod.shape(), prod.dtype()), (&[0][..], Dtype::Float64));
    for scan in [ops::cummax, ops::cummin, ops::logcumsumexp] {
        assert_eq!(ok("scan empty", scan(&empty(&[3, 0]), Some(1), false, true)).shape(), [3, 0]);
    }
}

#[test]
fn convolution_family() {
    use mlx_rs::ops::{ConvGeneralOptions, ConvOptions};
    let x = ones(&[1, 5, 3]);
    let w = ones(&[2, 3, 3]);
    let opts = ConvOptions::<1>::new;
    assert_err("conv1d 2-D", ops::conv1d(&m23(), &m23(), opts()), &["spatial dimensions"]);
    assert_err("conv1d channels", ops::conv1d(&x, &ones(&[2, 3, 4]), opts()), &["input channels"]);
    assert_err(
        "conv1d stride 0",
        ops::conv1d(&x, &w, opts().stride(0)),
        &["Stride sizes must be positive"],
    );
    assert_err(
        "conv1d dilation 0",
        ops::conv1d(&x, &w, opts().dilation(0)),
        &["dilation sizes must be positive"],
    );
    assert_err(
        "conv1d padding -5",
        ops::conv1d(&x, &w, opts().padding(-5)),
        &["cannot be smaller"],
    );
    assert_err(
        "conv1d kernel > input",
        ops::conv1d(&ones(&[1, 2, 3]), &ones(&[2, 9, 3]), opts()),
        &["cannot be smaller"],
    );
    assert_err(
        "conv1d ints",
        ops::conv1d(
            &ops::ones(&[1, 5, 3], Dtype::Int32).unwrap(),
            &ops::ones(&[2, 3, 3], Dtype::Int32).unwrap(),
            opts(),
        ),
        &["floating point"],
    );
    assert_err(
        "conv1d groups 3",
        ops::conv1d(&ones(&[1, 5, 4]), &ones(&[2, 3, 2]), opts().groups(3)),
        &["divisible by the number of groups"],
    );
    assert_err(
        "conv1d output padding",
        ops::conv1d(&x, &w, opts().output_padding(1)),
        &["transposed convolutions only"],
    );
    assert_err(
        "conv2d huge padding",
        ops::conv2d(
            &ones(&[1, 5, 5, 1]),
            &ones(&[1, 3, 3, 1]),
            ConvOptions::new().padding(i32::MAX / 2),
        ),
        &["32-bit"],
    );
    // A group count below 1: MLX 0.32.2 divides by it (SIGFPE; Python too). Every convolution
    // checks it.
    for groups in [0, -1, -2] {
        let needle = format!("groups must be at least 1, got {groups}");
        assert_err("conv1d groups", ops::conv1d(&x, &w, opts().groups(groups)), &[&needle]);
        assert_err(
            "conv2d groups",
            ops::conv2d(
                &ones(&[1, 5, 5, 3]),
                &ones(&[2, 3, 3, 3]),
                ConvOptions::new().groups(groups),
            ),
            &[&needle],
        );
        assert_err(
            "conv3d groups",
            ops::conv3d(
                &ones(&[1, 4, 4, 4, 3]),
                &ones(&[2, 2, 2, 2, 3]),
                ConvOptions::new().groups(groups),
            ),
            &[&needle],
        );
        assert_err(
            "conv_transpose1d groups",
            ops::conv_transpose1d(&x, &w, opts().groups(groups)),
            &[&needle],
        );
        assert_err(
            "conv_transpose2d groups",
            ops::conv_transpose2d(
                &ones(&[1, 5, 5, 3]),
                &ones(&[2, 3, 3, 3]),
                ConvOptions::new().groups(groups),
            ),
            &[&needle],
        );
        assert_err(
            "conv_transpose3d groups",
            ops::conv_transpose3d(
                &ones(&[1, 4, 4, 4, 3]),
                &ones(&[2, 2, 2, 2, 3]),
                ConvOptions::new().groups(groups),
            ),
            &[&needle],
        );
        assert_err(
            "conv_general groups",
            ops::conv_general(&x, &w, &ConvGeneralOptions::new().groups(groups)),
            &[&needle],
        );
    }
    let general = |o: ConvGeneralOptions| ops::conv_general(&x, &w, &o);
    assert_err(
        "conv_general input dilation",
        general(ConvGeneralOptions::new().input_dilation(0)),
        &["Input dilation"],
    );
    assert_err(
        "conv_general kernel dilation",
        general(ConvGeneralOptions::new().kernel_dilation(-1)),
        &["Kernel dilation"],
    );
    assert_err("conv_general stride", general(ConvGeneralOptions::new().stride(-1)), &["Stride"]);
    assert_err(
        "conv_general strides",
        general(ConvGeneralOptions { stride: vec![1, 1, 1], ..ConvGeneralOptions::default() }),
        &["Invalid strides"],
    );
    // Two groups of two channels: every output is the sum of 3 x 2 ones.
    let grouped =
        ok("conv1d groups 2", ops::conv1d(&ones(&[1, 5, 4]), &ones(&[2, 3, 2]), opts().groups(2)));
    assert_eq!(grouped.to_vec::<f32>().unwrap(), [6.0; 6]);
}

#[test]
fn creation_family() {
    assert_err("full vals", ops::full(&[2, 2], &m23(), None), &["broadcast"]);
    assert_err("tril 1-D", ops::tril(&f32s(&[1.0, 2.0], &[2]), 0), &["at least 2-D"]);
    assert_err("identity -1", ops::identity(-1, Dtype::Float32), &["positive"]);
    // A diagonal far outside the matrix: all zeros, as NumPy gives.
    let far = ok("eye k MIN", ops::eye(3, None, i32::MIN, Dtype::Float32));
    assert_eq!(far.to_vec::<f32>().unwrap(), [0.0; 9]);
    assert_err(
        "arange NaN",
        ops::arange(0.0, f64::NAN, 1.0, Dtype::Float32),
        &["Cannot compute length"],
    );
    assert_err(
        "arange inf",
        ops::arange(0.0, f64::INFINITY, 1.0, Dtype::Float32),
        &["Cannot compute length"],
    );
    assert_err("zeros negative", ops::zeros(&[-1, 3], Dtype::Float32), &["Negative dimensions"]);
    assert_err("ones overflow", ops::ones(&[i32::MAX, i32::MAX], Dtype::Float32), &["64-bit size"]);
    assert_err(
        "broadcast_to overflow",
        ops::broadcast_to(&f32s(&[1.0], &[1]), [i32::MAX, i32::MAX, i32::MAX]),
        &["64-bit size"],
    );
    assert_err(
        "outer past the limit",
        ops::outer(&ones(&[1 << 17]), &ones(&[1 << 17])),
        &["cannot allocate"],
    );
    // Valid results, as Python's: negative sizes give empty windows and matrices, a backwards
    // range is empty, NaN endpoints give NaN.
    assert_eq!(ok("tri -3", ops::tri(-3, None, 0, Dtype::Float32)).shape(), [0, 0]);
    assert_eq!(ok("hanning -3", ops::hanning(-3)).shape(), [0]);
    assert_eq!(ok("arange backwards", ops::arange(0.0, 5.0, -1.0, Dtype::Float32)).shape(), [0]);
    let nan = ok("linspace NaN", ops::linspace(f64::NAN, 1.0, 3, true, Dtype::Float32));
    assert!(nan.to_vec::<f32>().unwrap().iter().all(|v| v.is_nan()));
    let far = ok("eye k MAX", ops::eye(3, None, i32::MAX, Dtype::Float32));
    assert_eq!(far.sum(.., false).unwrap().item::<f32>().unwrap(), 0.0);
}

#[test]
fn arithmetic_and_conversion_family() {
    let a = m23();
    assert_err("clip without bounds", ops::clip(&a, None, None), &["At most one"]);
    assert_err(
        "view f32 as f64",
        ops::view(&f32s(&[1.0, 2.0, 3.0], &[3]), Dtype::Float64),
        &["multiple of the requested type size"],
    );
    // Integer division by zero and MIN / -1 (SIGFPE in MLX 0.32.2): defined as NumPy does.
    let i = i32s(&[5, i32::MIN], &[2]);
    let zero_or_minus = i32s(&[0, -1], &[2]);
    let q = ok("floor_divide", ops::floor_divide(&i, &zero_or_minus));
    assert_eq!(q.to_vec::<i32>().unwrap(), [0, i32::MIN]);
    let r = ok("remainder", ops::remainder(&i, &zero_or_minus));
    assert_eq!(r.to_vec::<i32>().unwrap(), [0, 0]);
    let (q, r) = ops::divmod(&i, &zero_or_minus).unwrap();
    assert_eq!(
        (q.to_vec::<i32>().unwrap(), r.to_vec::<i32>().unwrap()),
        (vec![0, i32::MIN], vec![0, 0])
    );
    let bytes = Array::from_slice(&[5u8], &[1]).unwrap();
    let q = ok("u8 // 0", ops::floor_divide(&bytes, &Array::from_slice(&[0u8], &[1]).unwrap()));
    assert_eq!(q.to_vec::<u8>().unwrap(), [0]);
    // IEEE results, as Python's.
    let logs = ok("log", ops::log(&f32s(&[-1.0, 0.0], &[2]))).to_vec::<f32>().unwrap();
    assert!(logs[0].is_nan() && logs[1] == f32::NEG_INFINITY);
    assert!(ok("arccos 2", ops::arccos(&f32s(&[2.0], &[1]))).item::<f32>().unwrap().is_nan());
    let cast = ok("NaN to int", ops::astype(&f32s(&[f32::NAN, f32::INFINITY], &[2]), Dtype::Int32));
    assert_eq!(cast.to_vec::<i32>().unwrap(), [i32::MIN, i32::MIN]);
    let shifted = ok("shift by 100", ops::left_shift(&i32s(&[1, 2], &[2]), &Array::scalar(100i32)));
    assert_eq!(shifted.shape(), [2]);
}

#[test]
fn reduction_family() {
    let a = m23();
    assert_err("count_nonzero axis", ops::count_nonzero(&a, 9, false), &["Invalid axis 9"]);
    assert_err("var repeated axes", ops::var(&a, [0, 0], false, 0), &["var"]);
    // 2^31 elements into one value: MLX 0.32.2 counts them in 32 bits and returns 0.0 for a sum
    // of ones (Python too); the crate refuses.
    let huge = ops::broadcast_to(&f32s(&[1.0], &[1]), [2, 1 << 30]).unwrap();
    for (case, result) in [
        ("sum", huge.sum(.., false)),
        ("mean", huge.mean(.., false)),
        ("max", huge.max([0, 1], false)),
        ("logsumexp", huge.logsumexp(.., false)),
        ("var", ops::var(&huge, .., false, 0)),
        ("std", ops::std(&huge, [-1, -2], false, 0)),
        ("count_nonzero", ops::count_nonzero(&huge, .., false)),
        ("softmax", huge.softmax(.., false)),
    ] {
        assert_err(case, result, &["32 bits", "2147483648 elements"]);
    }
    // Valid results, as Python's: ddof past the count divides by a non-positive number.
    assert_eq!(
        ok("var ddof 100", ops::var(&a, .., false, 100)).item::<f32>().unwrap(),
        f32::INFINITY
    );
}

#[test]
fn linalg_family() {
    let a = m23();
    let v = f32s(&[1.0, 2.0], &[2]);
    let singular = f32s(&[1.0, 2.0, 2.0, 4.0], &[2, 2]);
    assert_err("qr 1-D", pair(linalg::qr(&v)), &[">= 2 dimensions"]);
    assert_err("svd 1-D", linalg::svd(&v, true), &[">= 2 dimensions"]);
    assert_err("svd NaN", linalg::svd(&f32s(&[f32::NAN, 1.0, 2.0, 3.0], &[2, 2]), true), &["SVD"]);
    assert_err("inv singular", linalg::inv(&singular), &["factorization failed"]);
    assert_err("solve singular", linalg::solve(&singular, &v), &["failed"]);
    assert_err(
        "solve shapes",
        linalg::solve(&ops::eye(2, None, 0, Dtype::Float32).unwrap(), &f32s(&[1.0; 3], &[3])),
        &["solve"],
    );
    assert_err("tri_inv 2x3", linalg::tri_inv(&a, false), &["square"]);
    assert_err("pinv 1-D", linalg::pinv(&v), &[">= 2 dimensions"]);
    assert_err("det 2x3", linalg::det(&a), &["square"]);
    assert_err("eig 2x3", pair(linalg::eig(&a)), &["square"]);
    assert_err("eigh uplo", pair(linalg::eigh(&singular, "X")), &["UPLO"]);
    assert_err("eigvalsh uplo", linalg::eigvalsh(&singular, "UL"), &["UPLO"]);
    assert_err("norm axes", linalg::norm(&a, None, Some(&[0, 1, 2]), false), &["too many axes"]);
    assert_err(
        "norm repeated axes",
        linalg::norm(&a, None, Some(&[0, 0]), false),
        &["Duplicate axes"],
    );
    // NaN in, NaN out, as Python's.
    let inv = ok("inv NaN", linalg::inv(&f32s(&[f32::NAN, 2.0, 2.0, 4.0], &[2, 2])));
    assert!(inv.to_vec::<f32>().unwrap().iter().all(|x| x.is_nan()));
}

#[test]
fn fft_family() {
    let a = m23();
    assert_err(
        "fftn repeated axes",
        fft::fftn(&a, None, Some(&[0, 0]), FftNorm::Backward),
        &["Duplicated axis"],
    );
    assert_err(
        "irfft n -1",
        fft::irfft(&a, Some(-1), 1, FftNorm::Backward),
        &["Invalid FFT output size"],
    );
    assert_err(
        "fft of empty",
        fft::fft(&empty(&[0, 3]), None, 0, FftNorm::Backward),
        &["Invalid FFT output size"],
    );
    assert_err("fftfreq 0", fft::fftfreq(0, 1.0), &["greater than 0"]);
    assert_err("fftfreq -1", fft::fftfreq(-1, 1.0), &["greater than 0"]);
    assert_err("rfftfreq d 0", fft::rfftfreq(4, 0.0), &["non-zero"]);
    assert_err("fftshift axis", fft::fftshift(&a, Some(&[5])), &["Invalid axis 5"]);
    assert_err(
        "fft n MAX",
        fft::fft(&a, Some(i32::MAX), 1, FftNorm::Backward),
        &["cannot allocate"],
    );
    assert_err(
        "irfftn huge",
        fft::irfftn(&a, Some(&[1 << 20, 1 << 20]), Some(&[0, 1]), FftNorm::Backward),
        &["cannot allocate"],
    );
}

#[test]
fn random_family() {
    let key = random::key(0).unwrap();
    let (lo, hi) = (Array::scalar(0.0f32), Array::scalar(1.0f32));
    assert_err("split -1", random::split(&key, -1), &["Negative dimensions"]);
    assert_err(
        "float key",
        random::uniform(&lo, &hi, &[3], Dtype::Float32, Some(&m23())),
        &["key type uint32"],
    );
    assert_err(
        "uniform ints",
        random::uniform(&lo, &hi, &[3], Dtype::Int32, None),
        &["floating point"],
    );
    assert_err("gumbel ints", random::gumbel(&[3], Dtype::Int32, None), &["floating point"]);
    assert_err(
        "categorical of empty",
        random::categorical(&empty(&[0]), -1, None, None, None),
        &["zero size"],
    );
    assert_err("permutation -1", random::permutation_arange(-1, None), &["negative number"]);
    assert_err(
        "multivariate cov",
        random::multivariate_normal(&f32s(&[0.0, 0.0], &[2]), &m23(), &[3], Dtype::Float32, None),
        &["cov must be equal"],
    );
    assert_err(
        "laplace shape",
        random::laplace(&[-1], Dtype::Float32, 0.0, 1.0, None),
        &["Negative dimensions"],
    );
    assert_err("bits width 3", random::bits(&[3], 3, None), &["width must be 1, 2 or 4"]);
    assert_err(
        "randint past the limit",
        random::randint(
            &Array::scalar(0i32),
            &Array::scalar(5i32),
            &[1 << 16, 1 << 16, 1 << 10],
            Dtype::Int32,
            None,
        ),
        &["cannot allocate"],
    );
    // Valid results, as Python's: zero keys, NaN scale gives NaN, low > high stays at low.
    assert_eq!(ok("split 0", random::split(&key, 0)).shape(), [0, 2]);
    let nan = ok("normal NaN scale", random::normal(&[3], Dtype::Float32, 0.0, f32::NAN, None));
    assert!(nan.to_vec::<f32>().unwrap().iter().all(|v| v.is_nan()));
    let flat = ok(
        "randint low > high",
        random::randint(&Array::scalar(5i32), &Array::scalar(0i32), &[3], Dtype::Int32, None),
    );
    assert_eq!(flat.to_vec::<i32>().unwrap(), [5, 5, 5]);
    assert_eq!(ok("permutation of empty", random::permutation(&empty(&[0]), 0, None)).shape(), [0]);
}

#[test]
fn fast_family() {
    use mlx_rs::fast::{self, AttentionMask, RopeOptions};
    let a = m23();
    let v2 = f32s(&[1.0, 2.0], &[2]);
    assert_err(
        "rms_norm weight",
        fast::rms_norm(&a, Some(&v2), 1e-5),
        &["same size as the last dimension"],
    );
    assert_err(
        "layer_norm bias",
        fast::layer_norm(&a, None, Some(&v2), 1e-5),
        &["same size as the last dimension"],
    );
    assert_err("rope 2-D", fast::rope(&a, RopeOptions::new(2)), &["at least 3 dimensions"]);
    assert_err(
        "rope dims",
        fast::rope(&ones(&[1, 2, 4]), RopeOptions::new(8)),
        &["must not exceed"],
    );
    assert_err(
        "rope odd dims",
        fast::rope(&ones(&[1, 2, 4]), RopeOptions::new(3)),
        &["positive even"],
    );
    let q = ones(&[1, 2, 3, 4]);
    let sdpa =
        |q: &Array, k: &Array, mask| fast::scaled_dot_product_attention(q, k, k, 1.0, mask, None);
    assert_err(
        "sdpa last dims",
        sdpa(&q, &ones(&[1, 2, 3, 5]), AttentionMask::None),
        &["matching last dimension"],
    );
    assert_err("sdpa rank", sdpa(&a, &a, AttentionMask::None), &["rank 4"]);
    assert_err(
        "sdpa heads",
        sdpa(&ones(&[1, 3, 2, 4]), &ones(&[1, 2, 2, 4]), AttentionMask::None),
        &["multiple of n_kv_heads"],
    );
    assert_err("sdpa mask", sdpa(&q, &q, AttentionMask::Array(&a)), &["broadcast"]);
    assert_err(
        "cross_entropy shape",
        fast::cross_entropy(&a, &i32s(&[1, 2, 0], &[3])),
        &["does not match"],
    );
    // Out-of-range targets: MLX 0.32.2 reads outside the logits (valgrind: an invalid read in
    // gather_axis); the crate clamps them as `take` does, so 7 is the last class and -9 the
    // first: loss = logsumexp(row) - logit.
    let loss = ok("cross_entropy targets", fast::cross_entropy(&a, &i32s(&[7, -9], &[2])));
    let want = [3.407_606_f32 - 3.0, 6.407_606 - 4.0];
    let got = loss.to_vec::<f32>().unwrap();
    assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-4), "{got:?}");
    let float_targets = fast::cross_entropy(&a, &f32s(&[1.0, 2.0], &[2]));
    assert_err("cross_entropy float targets", float_targets, &["integer dtype"]);
}

#[test]
fn quantization_family() {
    use mlx_rs::quantization::{self, QuantizationMode, QuantizationParams, Quantized};
    let p = QuantizationParams::default();
    let w = ones(&[2, 64]);
    assert_err(
        "quantize 1-D",
        quantization::quantize(&ones(&[64]), p).map(|q| q.weights),
        &["at least 2 dimension"],
    );
    assert_err(
        "quantize 48",
        quantization::quantize(&ones(&[2, 48]), p).map(|q| q.weights),
        &["divisible by the quantization group size 64"],
    );
    assert_err(
        "quantize ints",
        quantization::quantize(&ops::ones(&[2, 64], Dtype::Int32).unwrap(), p).map(|q| q.weights),
        &["real floating"],
    );
    assert_err(
        "mxfp4 with 8 bits",
        quantization::quantize(
            &w,
            QuantizationParams { mode: QuantizationMode::Mxfp4, bits: Some(8), group_size: None },
        )
        .map(|q| q.weights),
        &["8 bits are not supported by mxfp4"],
    );
    let q = quantization::quantize(&w, p).unwrap();
    let bad =
        Quantized { weights: q.weights.clone(), scales: ones(&[5, 5]), biases: q.biases.clone() };
    assert_err("dequantize scales", quantization::dequantize(&bad, p, None), &["Shape of scales"]);
    assert_err(
        "quantized_matmul x",
        quantization::quantized_matmul(&ones(&[3, 5]), &q, true, p),
        &["does not match"],
    );
    assert_err(
        "quantized_matmul bits",
        quantization::quantized_matmul(
            &ones(&[3, 64]),
            &q,
            true,
            QuantizationParams { bits: Some(8), ..p },
        ),
        &["incompatible"],
    );
    assert_err("to_fp8 ints", quantization::to_fp8(&i32s(&[1, 2], &[2])), &["real floating"]);
    assert_err("from_fp8 f32", quantization::from_fp8(&m23(), Dtype::Float32), &["uint8"]);
    assert_err(
        "from_fp8 to int",
        quantization::from_fp8(&Array::from_slice(&[1u8, 2], &[2]).unwrap(), Dtype::Int32),
        &["real floating"],
    );
}

#[test]
fn io_family() {
    use mlx_rs::io;
    let dir = std::env::temp_dir();
    assert_err("load missing", io::load("/nonexistent/x.npy"), &["Failed to open"]);
    assert_err("load a directory", io::load(&dir), &["Is a directory"]);
    assert_err(
        "safetensors missing",
        io::load_safetensors("/nonexistent/x.safetensors")
            .map(|l| l.0.into_values().collect::<Vec<_>>()),
        &["Failed to open"],
    );
    assert_err(
        "safetensors directory",
        io::load_safetensors(&dir).map(|l| l.0.into_values().collect::<Vec<_>>()),
        &["[mlx_io_reader] unable to read 8 bytes (read 0 instead)"],
    );
    assert_err(
        "gguf directory",
        io::load_gguf(&dir).map(|l| l.0.into_values().collect::<Vec<_>>()),
        &["Is a directory"],
    );
    let empty_file = dir.join(format!("mlx-rs-bad-input-{}.gguf", std::process::id()));
    std::fs::write(&empty_file, b"").unwrap();
    assert_err(
        "gguf empty",
        io::load_gguf(&empty_file).map(|l| l.0.into_values().collect::<Vec<_>>()),
        &["not a valid GGUF file"],
    );
    std::fs::remove_file(&empty_file).ok();
    assert_err(
        "save into a missing directory",
        io::save("/nonexistent/dir/x.npy", &m23()).map(|()| m23()),
        &["Failed to open"],
    );
}

#[test]
fn nn_layer_family() {
    use mlx_rs::nn::{Dropout, Embedding, LayerNorm, Linear, QuantizedLinear, RmsNorm, RoPE};
    let a = m23();
    assert_err(
        "Linear forward",
        Linear::new(3, 2, true).unwrap().forward(&f32s(&[1.0, 2.0], &[1, 2])),
        &["addmm"],
    );
    assert_err(
        "Linear -3",
        Linear::new(-3, 2, true).map(|_| m23()),
        &["dimensions must be positive"],
    );
    assert_err(
        "Embedding float ids",
        Embedding::new(4, 2).unwrap().forward(&f32s(&[1.0], &[1])),
        &["integer dtype"],
    );
    assert_err("Embedding 0", Embedding::new(0, 2).map(|_| m23()), &["sizes must be positive"]);
    assert_err(
        "RmsNorm dims",
        RmsNorm::new(4, 1e-5).unwrap().forward(&a),
        &["same size as the last dimension"],
    );
    assert_err(
        "LayerNorm dims",
        LayerNorm::new(4, 1e-5, true, true).unwrap().forward(&a),
        &["same size as the last dimension"],
    );
    assert_err("Dropout 1.5", Dropout::new(1.5).map(|_| m23()), &["p must be in [0, 1)"]);
    assert_err("Dropout NaN", Dropout::new(f32::NAN).map(|_| m23()), &["got NaN"]);
    assert_err("RoPE odd", RoPE::new(3, false, 10000.0, 1.0).map(|_| m23()), &["positive even"]);
    assert_err(
        "RoPE 1-D",
        RoPE::new(2, false, 10000.0, 1.0).unwrap().forward(&f32s(&[1.0, 2.0], &[2])),
        &["at least 3 dimensions"],
    );
    assert_err(
        "QuantizedLinear 48",
        QuantizedLinear::from_linear(&Linear::new(48, 2, false).unwrap(), Default::default())
            .map(|_| m23()),
        &["divisible by the quantization group size"],
    );
    // Documented: out-of-range token ids are clamped to the table (rows 3 and 0).
    let table = Embedding::new(4, 2).unwrap();
    let rows = ok("Embedding clamps", table.forward(&i32s(&[9, -9], &[2])));
    let weight = table.weight.to_vec::<f32>().unwrap();
    assert_eq!(rows.to_vec::<f32>().unwrap(), [weight[6], weight[7], weight[0], weight[1]]);
}

/// The empty-array workarounds hold inside transforms too: the traced graph never reaches
/// MLX's crashing kernels (vjp, jvp, vmap with an empty mapped or batch axis, compile).
#[test]
fn empty_scans_and_sorts_inside_transforms() {
    use mlx_rs::transforms;
    let scan = |x: &[Array]| Ok(vec![ops::cumsum(&x[0], Some(0), false, true, None)?]);
    let sort = |x: &[Array]| Ok(vec![ops::sort(&x[0], Some(0))?]);
    let (e, e2) = (empty(&[0]), empty(&[0]));
    for f in [scan, sort] {
        let (_, vjps) = transforms::vjp(f, &[&e], &[&e2]).unwrap();
        assert_eq!(ok("vjp", Ok(vjps[0].clone())).shape(), [0]);
        let (_, jvps) = transforms::jvp(f, &[&e], &[&e2]).unwrap();
        assert_eq!(ok("jvp", Ok(jvps[0].clone())).shape(), [0]);
        for shape in [[2, 0], [0, 3]] {
            let mapped = transforms::vmap(f, &[&empty(&shape)], &[0], &[0]).unwrap();
            assert_eq!(ok("vmap", Ok(mapped[0].clone())).shape(), shape);
        }
        let compiled = transforms::compile(f).unwrap().apply(&[&e]).unwrap();
        assert_eq!(ok("compile", Ok(compiled[0].clone())).shape(), [0]);
    }
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
