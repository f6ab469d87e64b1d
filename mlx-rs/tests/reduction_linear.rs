//! Reductions, sorting, scans, products and convolutions against golden values from Python MLX
//! (`golden/gen_reduction_linear.py`), and their errors on bad input.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use mlx_rs::ops::{self, ConvGeneralOptions, ConvOptions, SearchSide, TensordotAxes};
use mlx_rs::{Array, Dtype, Result};
use serde_json::Value;

fn golden() -> &'static Value {
    static GOLDEN: OnceLock<Value> = OnceLock::new();
    GOLDEN.get_or_init(|| common::load(include_str!("golden/reduction_linear.json")))
}

/// An input of a case: an encoded array, or the name of a shared one under `_inputs`.
fn input(case: &Value, key: &str) -> Array {
    match &case[key] {
        Value::String(name) => common::array(&golden()["_inputs"][name.as_str()]),
        Value::Null => panic!("case has no input {key}"),
        encoded => common::array(encoded),
    }
}

fn int(v: &Value) -> i32 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}")) as i32
}

fn opt_int(v: &Value) -> Option<i32> {
    if v.is_null() { None } else { Some(int(v)) }
}

fn ints(v: &Value) -> Vec<i32> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(int).collect()
}

fn opt_ints(v: &Value) -> Option<Vec<i32>> {
    if v.is_null() { None } else { Some(ints(v)) }
}

fn flag(v: &Value) -> bool {
    v.as_bool().unwrap_or_else(|| panic!("not a bool: {v}"))
}

fn opt_dtype(v: &Value) -> Option<Dtype> {
    let name = v.as_str()?;
    Some(
        Dtype::ALL.into_iter().find(|d| d.name() == name).unwrap_or_else(|| panic!("dtype {name}")),
    )
}

fn conv_opts<const N: usize>(args: &Value) -> ConvOptions<N> {
    let fill = |key: &str| -> [i32; N] {
        let v = ints(&args[key]);
        if v.len() == 1 { [v[0]; N] } else { v.try_into().expect("one value per spatial axis") }
    };
    ConvOptions {
        stride: fill("stride"),
        padding: fill("padding"),
        dilation: fill("dilation"),
        output_padding: fill("output_padding"),
        groups: int(&args["groups"]),
    }
}

/// Runs the op a golden case describes.
fn run(case: &Value) -> Result<Array> {
    let op = case["op"].as_str().expect("op");
    let args = &case["args"];
    let axes = || opt_ints(&args["axes"]);
    let keepdims = || flag(&args["keepdims"]);
    let a = || input(case, "a");
    match op {
        "sum" => ops::sum(&a(), axes().as_deref(), keepdims()),
        "prod" => ops::prod(&a(), axes().as_deref(), keepdims()),
        "mean" => ops::mean(&a(), axes().as_deref(), keepdims()),
        "max" => ops::max(&a(), axes().as_deref(), keepdims()),
        "min" => ops::min(&a(), axes().as_deref(), keepdims()),
        "median" => ops::median(&a(), axes().as_deref(), keepdims()),
        "logsumexp" => ops::logsumexp(&a(), axes().as_deref(), keepdims()),
        "all" => ops::all(&a(), axes().as_deref(), keepdims()),
        "any" => ops::any(&a(), axes().as_deref(), keepdims()),
        "count_nonzero" => ops::count_nonzero(&a(), axes().as_deref(), keepdims()),
        "var" => ops::var(&a(), axes().as_deref(), keepdims(), int(&args["ddof"])),
        "std" => ops::std(&a(), axes().as_deref(), keepdims(), int(&args["ddof"])),
        "argmax" => ops::argmax(&a(), opt_int(&args["axis"]), keepdims()),
        "argmin" => ops::argmin(&a(), opt_int(&args["axis"]), keepdims()),
        "softmax" => ops::softmax(&a(), axes().as_deref(), flag(&args["precise"])),
        "sort" => ops::sort(&a(), opt_int(&args["axis"])),
        "argsort" => ops::argsort(&a(), opt_int(&args["axis"])),
        "partition" => ops::partition(&a(), int(&args["kth"]), opt_int(&args["axis"])),
        "argpartition" => ops::argpartition(&a(), int(&args["kth"]), opt_int(&args["axis"])),
        "topk" => ops::topk(&a(), int(&args["k"]), opt_int(&args["axis"])),
        "searchsorted" => {
            let side = match args["side"].as_str() {
                Some("left") => SearchSide::Left,
                Some("right") => SearchSide::Right,
                other => panic!("side {other:?}"),
            };
            ops::searchsorted(&a(), &input(case, "v"), side)
        }
        "cumsum" | "cumprod" | "cummax" | "cummin" | "logcumsumexp" => {
            let axis = opt_int(&args["axis"]);
            let (reverse, inclusive) = (flag(&args["reverse"]), flag(&args["inclusive"]));
            match op {
                "cumsum" => ops::cumsum(&a(), axis, reverse, inclusive, opt_dtype(&args["dtype"])),
                "cumprod" => {
                    ops::cumprod(&a(), axis, reverse, inclusive, opt_dtype(&args["dtype"]))
                }
                "cummax" => ops::cummax(&a(), axis, reverse, inclusive),
                "cummin" => ops::cummin(&a(), axis, reverse, inclusive),
                _ => ops::logcumsumexp(&a(), axis, reverse, inclusive),
            }
        }
        "diff" => ops::diff(&a(), int(&args["n"]), int(&args["axis"])),
        "matmul" => ops::matmul(&a(), &input(case, "b")),
        "addmm" => {
            let (alpha, beta) = (args["alpha"].as_f64().unwrap(), args["beta"].as_f64().unwrap());
            ops::addmm(&input(case, "c"), &a(), &input(case, "b"), alpha as f32, beta as f32)
        }
        "inner" => ops::inner(&a(), &input(case, "b")),
        "outer" => ops::outer(&a(), &input(case, "b")),
        "kron" => ops::kron(&a(), &input(case, "b")),
        "vecdot" => ops::vecdot(&a(), &input(case, "b"), int(&args["axis"])),
        "tensordot" => {
            let b = input(case, "b");
            if args["count"].is_null() {
                let (axes_a, axes_b) = (ints(&args["axes_a"]), ints(&args["axes_b"]));
                ops::tensordot(&a(), &b, (axes_a.as_slice(), axes_b.as_slice()))
            } else {
                ops::tensordot(&a(), &b, int(&args["count"]))
            }
        }
        "einsum" => {
            let operands: Vec<Array> =
                (0..int(&args["count"])).map(|i| input(case, &format!("op{i}"))).collect();
            ops::einsum(args["subscripts"].as_str().unwrap(), &operands)
        }
        "trace" => ops::trace(
            &a(),
            int(&args["offset"]),
            int(&args["axis1"]),
            int(&args["axis2"]),
            opt_dtype(&args["dtype"]),
        ),
        "conv1d" => ops::conv1d(&input(case, "x"), &input(case, "w"), conv_opts(args)),
        "conv2d" => ops::conv2d(&input(case, "x"), &input(case, "w"), conv_opts(args)),
        "conv3d" => ops::conv3d(&input(case, "x"), &input(case, "w"), conv_opts(args)),
        "conv_transpose1d" => {
            ops::conv_transpose1d(&input(case, "x"), &input(case, "w"), conv_opts(args))
        }
        "conv_transpose2d" => {
            ops::conv_transpose2d(&input(case, "x"), &input(case, "w"), conv_opts(args))
        }
        "conv_transpose3d" => {
            ops::conv_transpose3d(&input(case, "x"), &input(case, "w"), conv_opts(args))
        }
        "conv_general" => {
            let options = ConvGeneralOptions {
                stride: ints(&args["stride"]),
                padding_lo: ints(&args["padding_lo"]),
                padding_hi: ints(&args["padding_hi"]),
                kernel_dilation: ints(&args["kernel_dilation"]),
                input_dilation: ints(&args["input_dilation"]),
                groups: int(&args["groups"]),
                flip: flag(&args["flip"]),
            };
            ops::conv_general(&input(case, "x"), &input(case, "w"), &options)
        }
        other => panic!("no runner for op {other}"),
    }
}

/// The axis a partition or top-k case sorts its output along to compare it.
fn sort_axis(case: &Value) -> i32 {
    opt_int(&case["args"]["axis"]).unwrap_or(-1)
}

/// Checks the values of `got` whose index along `axis` is `kth` against `want` (same shape).
fn check_kth(got: &[f64], want: &[f64], shape: &[i32], axis: i32, kth: i32, name: &str) {
    let ndim = shape.len() as i32;
    let axis = if axis < 0 { axis + ndim } else { axis } as usize;
    let len = shape[axis];
    let kth = if kth < 0 { kth + len } else { kth };
    let inner: i32 = shape[axis + 1..].iter().product();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if (i as i32 / inner) % len == kth {
            assert_eq!(g, w, "{name}: element {i} at kth");
        }
    }
}

/// Checks every golden case of the given ops; returns how many were checked.
fn check_ops(ops_checked: &[&str], rtol: f64, atol: f64) -> usize {
    let mut seen = BTreeSet::new();
    let mut count = 0;
    for (name, case) in golden().as_object().expect("object") {
        let Some(op) = case["op"].as_str() else { continue };
        if !ops_checked.contains(&op) {
            continue;
        }
        seen.insert(op);
        count += 1;
        let out = run(case).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = &case["out"];
        match op {
            "partition" | "argpartition" | "topk" => {
                assert_eq!(out.dtype(), common::dtype_of(want), "{name}: dtype");
                assert_eq!(out.shape(), common::shape_of(want).as_slice(), "{name}: shape");
                let sorted = ops::sort(&out, Some(sort_axis(case))).unwrap();
                common::assert_matches(&sorted, &case["sorted"], 0.0, 0.0);
                if op != "topk" {
                    let kth = int(&case["args"]["kth"]);
                    let flat = common::values_f64(&out);
                    let full = common::data_f64(&case["full"]);
                    check_kth(&flat, &full, out.shape(), sort_axis(case), kth, name);
                }
            }
            _ => {
                let loose = matches!(common::dtype_of(want), Dtype::Float16 | Dtype::Bfloat16);
                let (r, a) = if loose { (1e-2, 1e-2) } else { (rtol, atol) };
                let check = || common::assert_matches(&out, want, r, a);
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
                if let Err(panic) = result {
                    eprintln!("case {name} failed");
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }
    for op in ops_checked {
        assert!(seen.contains(op), "no golden cases for {op}");
    }
    count
}

const REDUCTIONS: &[&str] = &[
    "sum",
    "prod",
    "mean",
    "max",
    "min",
    "median",
    "logsumexp",
    "all",
    "any",
    "count_nonzero",
    "var",
    "std",
    "argmax",
    "argmin",
    "softmax",
];
const SORTING: &[&str] = &["sort", "argsort", "partition", "argpartition", "topk", "searchsorted"];
const SCANS: &[&str] = &["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "diff"];
const PRODUCTS: &[&str] =
    &["matmul", "addmm", "inner", "outer", "tensordot", "einsum", "kron", "vecdot", "trace"];
const CONVS: &[&str] = &[
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv_general",
];

#[test]
fn every_golden_op_is_checked() {
    let known: BTreeSet<&str> =
        [REDUCTIONS, SORTING, SCANS, PRODUCTS, CONVS].into_iter().flatten().copied().collect();
    for (name, case) in golden().as_object().unwrap() {
        if name == "_inputs" {
            continue;
        }
        let op = case["op"].as_str().expect("op");
        assert!(known.contains(op), "case {name}: op {op} is not checked by any test");
    }
}

#[test]
fn reductions_match_python() {
    let n = check_ops(REDUCTIONS, 1e-5, 1e-5);
    assert!(n > 400, "{n} cases");
}

#[test]
fn sorting_matches_python() {
    let n = check_ops(SORTING, 0.0, 0.0);
    assert!(n > 30, "{n} cases");
}

#[test]
fn scans_match_python() {
    let n = check_ops(SCANS, 1e-5, 1e-5);
    assert!(n > 150, "{n} cases");
}

/// Tolerance for matrix products and convolutions: tight on the CPU; on a GPU, MLX's CUDA
/// backend multiplies float32 with TF32 tensor cores (about 3 decimal digits per product).
fn product_tolerance() -> f64 {
    let on_gpu =
        mlx_rs::Device::default_device().is_ok_and(|d| d.device_type() == mlx_rs::DeviceType::Gpu);
    if on_gpu { 5e-3 } else { 1e-5 }
}

#[test]
fn products_match_python() {
    let tol = product_tolerance();
    let n = check_ops(PRODUCTS, tol, tol);
    assert!(n > 30, "{n} cases");
}

#[test]
fn convolutions_match_python() {
    let tol = product_tolerance().max(1e-4);
    let n = check_ops(CONVS, tol, tol);
    assert!(n > 20, "{n} cases");
}

// ---- hand-written properties ----

fn f32s(data: &[f32], shape: &[i32]) -> Array {
    Array::from_slice(data, shape).unwrap()
}

#[test]
fn reductions_keep_dims_and_negative_axes() {
    let a = f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let kept = ops::sum(&a, [-1], true).unwrap();
    assert_eq!(kept.shape(), [2, 1]);
    assert_eq!(kept.to_vec::<f32>().unwrap(), [6.0, 15.0]);
    let same = ops::sum(&a, [1], true).unwrap();
    assert_eq!(same.to_vec::<f32>().unwrap(), kept.to_vec::<f32>().unwrap());
    let all = ops::sum(&a, .., true).unwrap();
    assert_eq!(all.shape(), [1, 1]);
    let nothing = ops::sum(&a, [], false).unwrap();
    assert_eq!(nothing.shape(), [2, 3]);
    let i = Array::from_slice(&[1i32, 5, 2], &[3]).unwrap();
    assert_eq!(ops::argmax(&i, .., false).unwrap().item::<u32>().unwrap(), 1);
    assert_eq!(ops::argmax(&i, 0, true).unwrap().shape(), [1]);
}

#[test]
fn default_device_forms_match_explicit_streams() {
    let stream = mlx_rs::Stream::thread_default().unwrap();
    let a = f32s(&[3.0, 1.0, 2.0], &[3]);
    let x = ops::sort_device(&a, Some(0), &stream).unwrap();
    assert_eq!(x.to_vec::<f32>().unwrap(), [1.0, 2.0, 3.0]);
    let s = ops::sum_device(&a, .., false, &stream).unwrap();
    assert_eq!(s.item::<f32>().unwrap(), 6.0);
    let c = ops::cumsum_device(&a, None, false, true, None, &stream).unwrap();
    assert_eq!(c.to_vec::<f32>().unwrap(), [3.0, 4.0, 6.0]);
}

#[test]
fn matmul_agrees_with_einsum_and_tensordot() {
    let a = f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = f32s(&[1.0, -1.0, 0.5, 2.0, 0.0, 1.0], &[3, 2]);
    let m = ops::matmul(&a, &b).unwrap().to_vec::<f32>().unwrap();
    let e = ops::einsum("ij,jk->ik", &[&a, &b]).unwrap().to_vec::<f32>().unwrap();
    let t = ops::tensordot(&a, &b, 1).unwrap().to_vec::<f32>().unwrap();
    let p = ops::tensordot(&a, &b, TensordotAxes::Pairs(&[1], &[0])).unwrap();
    assert_eq!(m, e);
    assert_eq!(m, t);
    assert_eq!(m, p.to_vec::<f32>().unwrap());
    assert_eq!(m, [2.0, 6.0, 6.5, 12.0]);
}

#[test]
fn conv_general_matches_conv2d() {
    let x = Array::from_slice(&(0..50).map(|v| v as f32 / 7.0).collect::<Vec<_>>(), &[1, 5, 5, 2])
        .unwrap();
    let w = Array::from_slice(
        &(0..36).map(|v| (v % 5) as f32 - 2.0).collect::<Vec<_>>(),
        &[2, 3, 3, 2],
    )
    .unwrap();
    let c2 = ops::conv2d(&x, &w, ConvOptions::new().stride(2).padding(1)).unwrap();
    let cg = ops::conv_general(&x, &w, &ConvGeneralOptions::new().stride(2).padding(1)).unwrap();
    assert_eq!(c2.shape(), cg.shape());
    common::assert_close(&common::values_f64(&c2), &common::values_f64(&cg), 1e-5, 1e-5);
    let explicit = ConvGeneralOptions {
        stride: vec![2, 2],
        padding_lo: vec![1, 1],
        padding_hi: vec![1, 1],
        kernel_dilation: vec![1, 1],
        input_dilation: vec![1, 1],
        ..ConvGeneralOptions::new()
    };
    let ce = ops::conv_general(&x, &w, &explicit).unwrap();
    common::assert_close(&common::values_f64(&ce), &common::values_f64(&cg), 0.0, 0.0);
}

// ---- bad input ----

#[test]
fn reductions_reject_bad_axes_and_empty_input() {
    let a = f32s(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    common::assert_err(ops::sum(&a, [2], false), &["sum", "invalid axis 2"]);
    common::assert_err(ops::sum(&a, [-3], false), &["sum", "axis"]);
    common::assert_err(ops::mean(&a, [0, 0], false), &["mean", "duplicate"]);
    common::assert_err(ops::max(&a, [5], true), &["max", "axis"]);
    common::assert_err(ops::all(&a, [7], false), &["all", "axis"]);
    common::assert_err(ops::count_nonzero(&a, [0, 3], false), &["count_nonzero", "axis"]);
    common::assert_err(ops::var(&a, [4], false, 0), &["var", "axis"]);
    common::assert_err(ops::std(&a, [-3], false, 1), &["std", "out of bounds"]);
    common::assert_err(ops::logsumexp(&a, [2], false), &["logsumexp", "axis"]);
    common::assert_err(ops::median(&a, [2], false), &["median", "axis"]);
    common::assert_err(ops::argmax(&a, 2, false), &["argmax", "axis"]);
    common::assert_err(ops::argmin(&a, -3, false), &["argmin", "axis"]);
    common::assert_err(ops::softmax(&a, [3], false), &["softmax", "axis"]);

    let empty = Array::from_slice::<f32>(&[], &[0]).unwrap();
    common::assert_err(ops::argmax(&empty, .., false), &["argmax", "zero size"]);
    common::assert_err(ops::max(&empty, .., false), &["max", "size 0"]);
    common::assert_err(ops::median(&empty, .., false), &["median", "empty"]);
    // Reductions with an identity are fine on empty input.
    assert_eq!(ops::sum(&empty, .., false).unwrap().item::<f32>().unwrap(), 0.0);
    assert_eq!(ops::prod(&empty, .., false).unwrap().item::<f32>().unwrap(), 1.0);
}

#[test]
fn sorting_rejects_bad_arguments() {
    let a = f32s(&[3.0, 1.0, 2.0, 0.0, 5.0, 4.0], &[2, 3]);
    common::assert_err(ops::topk(&a, 4, Some(-1)), &["topk", "invalid k=4"]);
    common::assert_err(ops::topk(&a, -1, Some(-1)), &["topk", "invalid k"]);
    common::assert_err(ops::topk(&a, 7, None), &["topk", "invalid k"]);
    common::assert_err(ops::topk(&a, 1, Some(2)), &["topk", "axis"]);
    common::assert_err(ops::sort(&a, Some(2)), &["sort", "out of bounds"]);
    common::assert_err(ops::argsort(&a, Some(-3)), &["argsort", "out of bounds"]);
    common::assert_err(ops::partition(&a, 3, Some(1)), &["partition", "invalid kth"]);
    common::assert_err(ops::argpartition(&a, -4, Some(1)), &["argpartition", "invalid kth"]);
    let v = f32s(&[1.0], &[1]);
    common::assert_err(ops::searchsorted(&a, &v, SearchSide::Left), &["searchsorted", "1-d"]);
}

#[test]
fn scans_reject_bad_arguments() {
    let a = f32s(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    common::assert_err(ops::cumsum(&a, Some(2), false, true, None), &["cumsum", "out of bounds"]);
    common::assert_err(
        ops::cumprod(&a, Some(-3), false, true, None),
        &["cumprod", "out of bounds"],
    );
    common::assert_err(ops::cummax(&a, Some(5), true, true), &["cummax", "out of bounds"]);
    common::assert_err(ops::cummin(&a, Some(5), true, false), &["cummin", "out of bounds"]);
    common::assert_err(
        ops::logcumsumexp(&a, Some(2), false, true),
        &["logcumsumexp", "out of bounds"],
    );
    common::assert_err(ops::diff(&a, -1, -1), &["diff", "non-negative"]);
    common::assert_err(ops::diff(&a, 1, 2), &["diff", "axis"]);
}

#[test]
fn products_reject_bad_shapes_and_dtypes() {
    let a = f32s(&[1.0; 6], &[2, 3]);
    common::assert_err(ops::matmul(&a, &a), &["matmul", "must match"]);
    common::assert_err(ops::matmul(&a, &Array::scalar(1.0f32)), &["matmul", "0 dimension"]);
    let i = Array::from_slice(&[1i32, 2, 3, 4], &[2, 2]).unwrap();
    common::assert_err(ops::matmul(&i, &i), &["matmul", "inexact"]);
    let c = f32s(&[1.0; 25], &[5, 5]);
    let b = f32s(&[1.0; 6], &[3, 2]);
    common::assert_err(ops::addmm(&c, &a, &b, 1.0, 1.0), &["broadcast"]);
    common::assert_err(ops::inner(&a, &f32s(&[1.0; 2], &[2])), &["inner", "last dimension"]);
    common::assert_err(ops::vecdot(&a, &a, 2), &["vecdot", "out of bounds"]);
    common::assert_err(ops::trace(&a, 0, 1, 1, None), &["trace", "same axis"]);
    common::assert_err(ops::trace(&a, 0, 0, 2, None), &["trace"]);

    common::assert_err(ops::tensordot(&a, &a, -1), &["tensordot", "greater or equal"]);
    common::assert_err(ops::tensordot(&a, &a, 1), &["tensordot", "same shape"]);
    common::assert_err(
        ops::tensordot(&a, &a, (&[0, 1][..], &[0][..])),
        &["tensordot", "same size"],
    );
    common::assert_err(ops::tensordot(&a, &a, (&[0], &[1])), &["tensordot", "same shape"]);

    common::assert_err(ops::einsum("ij,jk->ik", &[&a]), &["einsum", "number of operands"]);
    common::assert_err(ops::einsum("ij", &[&a, &a]), &["einsum", "number of operands"]);
    common::assert_err(ops::einsum("ij,jk->ik", &[&a, &a]), &["einsum", "broadcast"]);
    common::assert_err(ops::einsum("i$j->", &[&a]), &["einsum", "letters"]);
    common::assert_err(ops::einsum("ijk->i", &[&a]), &["einsum", "subscripts"]);
    common::assert_err(ops::einsum("ij->ii", &[&a]), &["einsum", "repeat"]);
    common::assert_err(ops::einsum::<Array>("ij", &[]), &["einsum", "at least one operand"]);
    let err = common::assert_err(ops::einsum("ij\0->", &[&a]), &["einsum", "nul"]);
    assert_eq!(err.kind(), mlx_rs::ErrorKind::InvalidArgument);
}

#[test]
fn convolutions_reject_bad_channels_and_options() {
    let x = f32s(&[1.0; 15], &[1, 5, 3]);
    let w = f32s(&[1.0; 24], &[2, 3, 4]);
    common::assert_err(ops::conv1d(&x, &w, ConvOptions::new()), &["conv", "input channels"]);
    let x4 = f32s(&[1.0; 20], &[1, 5, 4]);
    let w2 = f32s(&[1.0; 12], &[2, 3, 2]);
    common::assert_err(
        ops::conv1d(&x4, &w2, ConvOptions::new().groups(3)),
        &["divisible", "groups"],
    );
    common::assert_err(
        ops::conv1d(&x4, &w2, ConvOptions::new().output_padding(1)),
        &["conv1d", "output_padding"],
    );
    let w4 = f32s(&[1.0; 12], &[1, 3, 4]);
    common::assert_err(
        ops::conv1d(&x4, &w4, ConvOptions::new().stride(0)),
        &["stride", "positive"],
    );
    let too_long = f32s(&[1.0; 24], &[1, 6, 4]);
    common::assert_err(
        ops::conv1d(&x4, &too_long, ConvOptions::new()),
        &["conv", "smaller than weight"],
    );
    common::assert_err(
        ops::conv_transpose1d(&x4, &w2, ConvOptions::new()),
        &["conv", "input channels"],
    );
    let x2 = f32s(&[1.0; 32], &[1, 4, 4, 2]);
    let w3 = f32s(&[1.0; 27], &[1, 3, 3, 3]);
    common::assert_err(ops::conv2d(&x2, &w3, ConvOptions::new()), &["conv", "input channels"]);
    common::assert_err(
        ops::conv_transpose2d(&x2, &w3, ConvOptions::new()),
        &["conv", "input channels"],
    );
    common::assert_err(ops::conv2d(&x4, &w3, ConvOptions::new()), &["conv"]);
    let x3 = f32s(&[1.0; 27], &[1, 3, 3, 3, 1]);
    let w5 = f32s(&[1.0; 8], &[1, 2, 2, 2, 1]);
    common::assert_err(
        ops::conv3d(&x3, &w5, ConvOptions::new().output_padding(1)),
        &["conv3d", "output_padding"],
    );
    let bad_stride = ConvGeneralOptions { stride: vec![1, 1, 1], ..ConvGeneralOptions::new() };
    let w_ok = f32s(&[1.0; 18], &[1, 3, 3, 2]);
    common::assert_err(ops::conv_general(&x2, &w_ok, &bad_stride), &["conv", "invalid strides"]);
}
