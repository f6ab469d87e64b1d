//! Creation, shape manipulation and indexing against golden values from Python MLX
//! (tests/golden/gen_shape_indexing.py), and their errors on bad input.

mod common;

use std::sync::OnceLock;

use mlx_rs::{Array, Dtype, Ellipsis, Index, NewAxis, Slice, ops};
use serde_json::Value;

fn golden() -> &'static Value {
    static GOLDEN: OnceLock<Value> = OnceLock::new();
    GOLDEN.get_or_init(|| common::load(include_str!("golden/shape_indexing.json")))
}

fn input(name: &str) -> Array {
    common::array(&golden()["inputs"][name])
}

fn case_input(case: &str, name: &str) -> Array {
    common::array(&common::case(golden(), case)[name])
}

#[track_caller]
fn check(name: &str, actual: &Array) {
    common::assert_matches(actual, &common::case(golden(), name)["out"], 1e-5, 1e-6);
}

#[track_caller]
fn check_all(name: &str, actual: &[Array]) {
    let expected = common::case(golden(), name)["out"].as_array().expect("a list of arrays");
    assert_eq!(actual.len(), expected.len(), "number of outputs of {name}");
    for (a, e) in actual.iter().zip(expected) {
        common::assert_matches(a, e, 1e-5, 1e-6);
    }
}

fn i32s(values: &[i32]) -> Array {
    Array::from_slice(values, &[values.len() as i32]).unwrap()
}

#[test]
fn creation() {
    check("zeros", &ops::zeros(&[2, 3], Dtype::Float32).unwrap());
    check("ones_int", &ops::ones(&[3], Dtype::Int32).unwrap());
    let row = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    check("full_row", &ops::full(&[2, 3], &row, None).unwrap());
    check("full_dtype", &ops::full(&[2], &Array::scalar(2.7f32), Some(Dtype::Int32)).unwrap());
    let m = input("m");
    let v = input("v");
    check("zeros_like", &ops::zeros_like(&m, None).unwrap());
    check("ones_like", &ops::ones_like(&v, None).unwrap());
    check("full_like", &ops::full_like(&m, &Array::scalar(2.7f32), None).unwrap());
    let half = ops::full_like(&m, &Array::scalar(2.7f32), Some(Dtype::Float16)).unwrap();
    common::assert_matches(&half, &common::case(golden(), "full_like_dtype")["out"], 1e-3, 0.0);
    assert_eq!(ops::zeros_like(&m, Some(Dtype::Float16)).unwrap().dtype(), Dtype::Float16);
    assert_eq!(ops::ones_like(&m, Some(Dtype::Bool)).unwrap().to_vec::<bool>().unwrap(), [true; 9]);
    check("arange_f", &ops::arange(0.5, 3.0, 0.5, Dtype::Float32).unwrap());
    check("arange_neg_step", &ops::arange(5.0, 0.0, -2.0, Dtype::Int32).unwrap());
    check("arange_i", &ops::arange(1.0, 10.0, 3.0, Dtype::Int32).unwrap());
    check("linspace", &ops::linspace(-1.0, 1.0, 5, true, Dtype::Float32).unwrap());
    check("linspace_noend", &ops::linspace(0.0, 1.0, 4, false, Dtype::Float32).unwrap());
    check("eye", &ops::eye(3, Some(4), 1, Dtype::Float32).unwrap());
    check("eye_neg_k", &ops::eye(3, None, -1, Dtype::Int32).unwrap());
    check("identity", &ops::identity(3, Dtype::Float32).unwrap());
    check("tri", &ops::tri(3, Some(4), 1, Dtype::Float32).unwrap());
    check("tril", &ops::tril(&m, -1).unwrap());
    check("triu", &ops::triu(&m, 1).unwrap());
    let x = i32s(&[1, 2, 3]);
    let y = i32s(&[4, 5]);
    check_all("meshgrid_xy", &ops::meshgrid(&[&x, &y], false, ops::MeshIndexing::Xy).unwrap());
    check_all("meshgrid_ij", &ops::meshgrid(&[&x, &y], false, ops::MeshIndexing::Ij).unwrap());
    check_all("meshgrid_sparse", &ops::meshgrid(&[&x, &y], true, Default::default()).unwrap());
    check("bartlett", &ops::bartlett(6).unwrap());
    check("blackman", &ops::blackman(6).unwrap());
    check("hamming", &ops::hamming(6).unwrap());
    check("hanning", &ops::hanning(6).unwrap());
    assert_eq!(ops::hanning(0).unwrap().shape(), &[0]);
    assert_eq!(Array::full(&[2], -3i64).unwrap().to_vec::<i64>().unwrap(), [-3, -3]);
    assert_eq!(Array::zeros::<u8>(&[0, 2]).unwrap().shape(), &[0, 2]);
    assert_eq!(Array::ones::<i16>(&[]).unwrap().item::<i16>().unwrap(), 1);
}

#[test]
fn creation_errors() {
    common::assert_err(ops::zeros(&[2, -1], Dtype::Float32), &["negative"]);
    common::assert_err(ops::ones(&[-3], Dtype::Int32), &["negative"]);
    common::assert_err(ops::full(&[2, 2], &i32s(&[1, 2, 3]), None), &["broadcast"]);
    common::assert_err(ops::full_like(&i32s(&[1, 2]), &i32s(&[1, 2, 3]), None), &["broadcast"]);
    common::assert_err(ops::arange(0.0, 5.0, 0.0, Dtype::Float32), &["arange", "step"]);
    common::assert_err(ops::arange(0.0, 1.0, f64::NAN, Dtype::Float32), &["step"]);
    common::assert_err(ops::arange(0.0, f64::INFINITY, 1.0, Dtype::Float32), &["arange"]);
    common::assert_err(ops::arange(0.0, 3.0, 1.0, Dtype::Bool), &["arange"]);
    common::assert_err(ops::linspace(0.0, 1.0, -1, true, Dtype::Float32), &["non-negative"]);
    common::assert_err(ops::eye(-1, None, 0, Dtype::Float32), &["eye", "positive"]);
    common::assert_err(ops::tril(&i32s(&[1, 2]), 0), &["tril", "2-d"]);
    common::assert_err(ops::triu(&Array::scalar(1i32), 0), &["triu", "2-d"]);
    let two_d = ops::zeros(&[2, 2], Dtype::Int32).unwrap();
    let flat = ops::meshgrid(&[&two_d, &i32s(&[1])], false, ops::MeshIndexing::Ij).unwrap();
    assert_eq!(flat[0].shape(), &[4, 1]);
}

#[test]
fn shape_ops() {
    let a = input("a");
    let m = input("m");
    let v = input("v");
    check("reshape", &ops::reshape(&a, [4, -1]).unwrap());
    check("flatten", &ops::flatten(&a, 1, -1).unwrap());
    check("flatten_all", &ops::flatten(&a, 0, -1).unwrap());
    check("unflatten", &ops::unflatten(&a, -1, [2, -1]).unwrap());
    check(
        "squeeze_all",
        &ops::squeeze(&ops::zeros(&[1, 3, 1], Dtype::Float32).unwrap(), ..).unwrap(),
    );
    let r = ops::reshape(&a, [2, 1, 12, 1]).unwrap();
    check("squeeze_neg", &ops::squeeze(&r, [-1]).unwrap());
    let r = ops::reshape(&a, [1, 2, 1, 12]).unwrap();
    check("squeeze_axes", &ops::squeeze(&r, [0, 2]).unwrap());
    check("expand_dims", &ops::expand_dims(&m, [0, -1]).unwrap());
    check("expand_dims_one", &ops::expand_dims(&m, [1]).unwrap());
    check("transpose", &ops::transpose(&a, ..).unwrap());
    check("transpose_axes", &ops::transpose(&a, [1, -1, 0]).unwrap());
    check("swapaxes", &ops::swapaxes(&a, 0, -1).unwrap());
    check("moveaxis", &ops::moveaxis(&a, -1, 0).unwrap());
    check("broadcast_to", &ops::broadcast_to(&v, [2, 4]).unwrap());
    let col = Array::from_slice(&[10i32, 20], &[2, 1]).unwrap();
    check_all("broadcast_arrays", &ops::broadcast_arrays(&[i32s(&[1, 2, 3]), col]).unwrap());
    let m0 = m.index(..1).unwrap();
    check("concatenate", &ops::concatenate(&[&m, &m0], Some(0)).unwrap());
    check("concatenate_neg", &ops::concatenate(&[&m, &m], Some(-1)).unwrap());
    check("concatenate_promote", &ops::concatenate(&[&m.index(0).unwrap(), &v], Some(0)).unwrap());
    check("concatenate_none", &ops::concatenate(&[&m, &v], None).unwrap());
    let v2 = ops::add(&v, &v).unwrap();
    check("stack", &ops::stack(&[&v, &v2], 0).unwrap());
    check("stack_neg", &ops::stack(&[&v, &v2], -1).unwrap());
    check_all("unstack", &ops::unstack(&m, -1).unwrap());
    assert_eq!(ops::unstack(&m, 0).unwrap().len(), 3);
    check_all("split", &ops::split(&a, 2, -1).unwrap());
    check_all("split_sections", &ops::split_sections(&a, &[1, 3], 2).unwrap());
    check("tile", &ops::tile(&m, &[2, 1]).unwrap());
    check("tile_more", &ops::tile(&v, &[2, 2]).unwrap());
    check("repeat", &ops::repeat(&m, 2, Some(-1)).unwrap());
    check("repeat_flat", &ops::repeat(&m, 2, None).unwrap());
    let minus_one = Array::scalar(-1i32);
    check(
        "pad_const",
        &ops::pad(&m, &[(1, 0), (0, 2)], ops::PadMode::Constant, Some(&minus_one)).unwrap(),
    );
    check("pad_all", &ops::pad(&v, &[(2, 2)], ops::PadMode::Constant, None).unwrap());
    check("pad_pair", &ops::pad(&m, &[(1, 2)], ops::PadMode::Constant, None).unwrap());
    check("pad_edge", &ops::pad(&m, &[(1, 1), (2, 0)], ops::PadMode::Edge, None).unwrap());
    check("pad_reflect", &ops::pad(&v, &[(2, 1)], ops::PadMode::Reflect, None).unwrap());
    check("pad_symmetric", &ops::pad(&v, &[(2, 2)], ops::PadMode::Symmetric, None).unwrap());
    check("roll_flat", &ops::roll(&m, &[2], ..).unwrap());
    check("roll_axis", &ops::roll(&m, &[-1], [-1]).unwrap());
    check("roll_axes", &ops::roll(&a, &[1, -2], [0, 2]).unwrap());
    check("roll_one_shift_axes", &ops::roll(&m, &[1], [0, 1]).unwrap());
    // Shifts are taken modulo the axis size, including extreme ones.
    check("roll_flat", &ops::roll(&m, &[2 - 9 * 1000], ..).unwrap());
    let extreme = ops::roll(&i32s(&[0, 1, 2]), &[i32::MIN], ..).unwrap();
    assert_eq!(extreme.to_vec::<i32>().unwrap(), [2, 0, 1]);
    check("flip", &ops::flip(&m, ..).unwrap());
    check("flip_axis", &ops::flip(&a, [-1]).unwrap());
    check("flip_axes", &ops::flip(&a, [0, 2]).unwrap());
    check("atleast_1d", &ops::atleast_1d(&Array::scalar(5.0f32)).unwrap());
    check("atleast_2d", &ops::atleast_2d(&v).unwrap());
    check("atleast_3d", &ops::atleast_3d(&m).unwrap());
    let ten = ops::arange(0.0, 10.0, 1.0, Dtype::Int32).unwrap();
    check("as_strided", &ops::as_strided(&ten, &[4, 3], &[2, 1], 1).unwrap());
    let backwards = ops::as_strided(&ten, &[3], &[-2], 9).unwrap();
    assert_eq!(backwards.to_vec::<i32>().unwrap(), [9, 7, 5]);
    check("diag_vec", &ops::diag(&i32s(&[1, 2, 3]), -1).unwrap());
    check("diag_mat", &ops::diag(&m, 1).unwrap());
    check("diagonal", &ops::diagonal(&a, 1, 1, 2).unwrap());
    check("diagonal_neg", &ops::diagonal(&a, -1, -1, 0).unwrap());
    let n = ops::number_of_elements(&a, &[0, -1], false, Dtype::Int32).unwrap();
    assert_eq!(n.item::<i32>().unwrap(), 8);
    let inv = ops::number_of_elements(&a, &[1], true, Dtype::Float32).unwrap();
    assert!((inv.item::<f32>().unwrap() - 1.0 / 3.0).abs() < 1e-7);
}

#[test]
fn shape_errors() {
    let a = input("a");
    let m = input("m");
    common::assert_err(ops::reshape(&a, [5, 5]), &["reshape"]);
    common::assert_err(ops::reshape(&a, [-1, -1]), &["reshape"]);
    common::assert_err(ops::reshape(&a, [-2, -12]), &["invalid shape"]);
    common::assert_err(ops::flatten(&a, 2, 1), &["flatten"]);
    common::assert_err(ops::unflatten(&a, 5, [2, 2]), &["unflatten"]);
    common::assert_err(ops::unflatten(&a, 0, [3, -1]), &["unflatten"]);
    let empty = ops::zeros(&[0], Dtype::Float32).unwrap();
    common::assert_err(ops::unflatten(&empty, 0, [0, -1]), &["unflatten", "zero"]);
    common::assert_err(ops::squeeze(&a, [0]), &["squeeze"]);
    common::assert_err(ops::squeeze(&a, [3]), &["squeeze"]);
    common::assert_err(ops::expand_dims(&a, [5]), &["expand_dims"]);
    common::assert_err(ops::expand_dims(&a, [0, 0]), &["expand_dims", "duplicate"]);
    common::assert_err(ops::transpose(&a, [0, 1]), &["transpose"]);
    common::assert_err(ops::transpose(&a, [0, 0, 1]), &["transpose"]);
    common::assert_err(ops::transpose(&a, [0, 1, 3]), &["transpose"]);
    common::assert_err(ops::swapaxes(&a, 0, 3), &["swapaxes"]);
    common::assert_err(ops::moveaxis(&a, -4, 0), &["moveaxis"]);
    common::assert_err(ops::broadcast_to(&a, [3, 3, 4]), &["broadcast"]);
    common::assert_err(ops::broadcast_arrays(&[&a, &m]), &["broadcast"]);
    common::assert_err(ops::concatenate(&[&a, &m], Some(0)), &["concatenate"]);
    let m2 = ops::zeros(&[3, 2], Dtype::Int32).unwrap();
    common::assert_err(ops::concatenate(&[&m, &m2], Some(0)), &["concatenate", "match"]);
    common::assert_err(ops::concatenate(&[&m, &m], Some(2)), &["concatenate"]);
    common::assert_err(ops::concatenate::<Array>(&[], Some(0)), &["concatenate"]);
    common::assert_err(ops::stack(&[&m, &m2], 0), &["stack", "shape"]);
    common::assert_err(ops::stack::<Array>(&[], 0), &["stack"]);
    common::assert_err(ops::stack(&[&m, &m], 3), &["stack"]);
    common::assert_err(ops::unstack(&Array::scalar(1.0f32), 0), &["unstack"]);
    common::assert_err(ops::split(&a, 3, -1), &["split", "equal"]);
    common::assert_err(ops::split(&a, 0, 0), &["split", "positive"]);
    common::assert_err(ops::split(&a, -2, 0), &["split", "positive"]);
    common::assert_err(ops::split(&a, 2, 3), &["split"]);
    common::assert_err(ops::split_sections(&a, &[1], 3), &["split"]);
    common::assert_err(ops::tile(&m, &[-1]), &["tile", "negative"]);
    common::assert_err(ops::repeat(&m, -1, None), &["repeat", "negative"]);
    common::assert_err(ops::repeat(&m, 2, Some(2)), &["repeat"]);
    common::assert_err(
        ops::pad(&m, &[(1, 1), (1, 1), (1, 1)], ops::PadMode::Constant, None),
        &["pad", "pairs"],
    );
    common::assert_err(ops::pad(&m, &[(-1, 0)], ops::PadMode::Edge, None), &["non-negative"]);
    common::assert_err(ops::roll(&m, &[1, 2, 3], [0, 1]), &["roll", "shifts"]);
    common::assert_err(ops::roll(&m, &[1], [2]), &["roll", "out of bounds"]);
    common::assert_err(ops::roll(&m, &[], ..), &["roll"]);
    common::assert_err(ops::flip(&m, [2]), &["flip"]);
    let ten = ops::arange(0.0, 10.0, 1.0, Dtype::Int32).unwrap();
    common::assert_err(ops::as_strided(&ten, &[10], &[1000], 0), &["as_strided", "outside"]);
    common::assert_err(ops::as_strided(&ten, &[4, 3], &[3, 1], 1), &["as_strided", "outside"]);
    common::assert_err(ops::as_strided(&ten, &[2], &[-1], 0), &["as_strided", "outside"]);
    common::assert_err(ops::as_strided(&ten, &[1], &[1], 10), &["as_strided", "outside"]);
    common::assert_err(ops::as_strided(&ten, &[2, 2], &[1], 0), &["as_strided", "strides"]);
    common::assert_err(ops::as_strided(&ten, &[-1], &[1], 0), &["as_strided", "negative"]);
    assert_eq!(ops::as_strided(&ten, &[0, 5], &[100, 100], 50).unwrap().shape(), &[0, 5]);
    common::assert_err(ops::diag(&a, 0), &["diag"]);
    common::assert_err(ops::diagonal(&m, 0, 0, 0), &["diagonal"]);
    common::assert_err(ops::diagonal(&m, 0, 0, 2), &["diagonal"]);
    common::assert_err(ops::diagonal(&i32s(&[1]), 0, 0, 1), &["diagonal"]);
    common::assert_err(
        ops::number_of_elements(&a, &[3], false, Dtype::Int32),
        &["number_of_elements", "out of bounds"],
    );
    common::assert_err(
        ops::number_of_elements(&Array::scalar(1.0f32), &[0], false, Dtype::Int32),
        &["number_of_elements"],
    );
}

#[test]
fn indexing_ops() {
    let a = input("a");
    let m = input("m");
    let idx = input("idx");
    check("take_axis", &ops::take(&a, &idx, 1).unwrap());
    check("take_neg_axis", &ops::take(&a, &idx, -1).unwrap());
    let flat_idx = Array::from_slice(&[0i32, 5, 23, -2], &[2, 2]).unwrap();
    check("take_flat", &ops::take(&a, &flat_idx, ..).unwrap());
    let tai = input("tai");
    check("take_along_axis", &ops::take_along_axis(&a, &tai, -1).unwrap());
    check("take_along_none", &ops::take_along_axis(&a, &i32s(&[4, 0, 23]), ..).unwrap());
    let minus5 = Array::scalar(-5.0f32);
    check("put_along_axis", &ops::put_along_axis(&a, &tai, &minus5, Some(2)).unwrap());
    let put = ops::put_along_axis(&m, &i32s(&[0, 8]), &i32s(&[-1, -2]), None).unwrap();
    check("put_along_none", &put);
    let zeros = ops::zeros(&[2, 4], Dtype::Float32).unwrap();
    let sums = ops::scatter_add_axis(&zeros, &input("sai"), &Array::scalar(1.0f32), Some(1));
    check("scatter_add_axis", &sums.unwrap());
    check("slice", &ops::slice(&a, &[1, 0, 3], &[2, 3, 0], Some(&[1, 2, -2])).unwrap());
    let start = i32s(&[1, 2]);
    check("slice_dynamic", &ops::slice_dynamic(&a, &start, &[1, 2], &[2, 1, 2]).unwrap());
    let upd = Array::from_slice(&[10i32, 20], &[1, 2]).unwrap();
    let dynamic = ops::slice_update_dynamic(&m, &upd, &i32s(&[2, 1]), &[0, 1]).unwrap();
    check("slice_update_dynamic", &dynamic);
    // u[:, 1:3, ::-2] = [100, 200]
    let vals = Array::from_slice(&[100.0f32, 200.0], &[2]).unwrap();
    let updated =
        ops::slice_update(&a, &vals, &[0, 1, -1], &[2, 3, -5], Some(&[1, 1, -2])).unwrap();
    check("slice_update_static", &updated);
    let ones = ops::ones(&[3], Dtype::Int32).unwrap();
    let five = Array::scalar(5i32);
    let add = ops::slice_update_add(&ones, &five, &[1], &[3], None).unwrap();
    assert_eq!(add.to_vec::<i32>().unwrap(), [1, 6, 6]);
    let mixed = i32s(&[1, 7, 3]);
    let max = ops::slice_update_max(&mixed, &five, &[0], &[3], None).unwrap();
    assert_eq!(max.to_vec::<i32>().unwrap(), [5, 7, 5]);
    let min = ops::slice_update_min(&mixed, &five, &[0], &[3], Some(&[2])).unwrap();
    assert_eq!(min.to_vec::<i32>().unwrap(), [1, 7, 3]);
    let prod = ops::slice_update_prod(&mixed, &five, &[2], &[-4], Some(&[-1])).unwrap();
    assert_eq!(prod.to_vec::<i32>().unwrap(), [5, 35, 15]);
    check("gather", &ops::gather(&m, &[i32s(&[2, 0])], &[0], &[1, 2]).unwrap());
    let two = ops::gather(&m, &[i32s(&[2, 0]), i32s(&[1, 0])], &[0, 1], &[1, 1]).unwrap();
    check("gather_two", &two);
    let z33 = ops::zeros(&[3, 3], Dtype::Int32).unwrap();
    let upd = Array::from_slice(&[5i32, 6], &[2, 1, 1]).unwrap();
    let s = ops::scatter(&z33, &[i32s(&[1, 0]), i32s(&[2, 2])], &upd, &[0, 1]).unwrap();
    check("scatter_two", &s);
    let rows = i32s(&[0, 0, 3]);
    let z4 = ops::zeros(&[4], Dtype::Float32).unwrap();
    let twos = ops::full(&[4], &Array::scalar(2.0f32), None).unwrap();
    let upd = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3, 1]).unwrap();
    check("scatter_add", &ops::scatter_add(&z4, &[&rows], &upd, &[0]).unwrap());
    let upd = Array::from_slice(&[1.0f32, 5.0, 3.0], &[3, 1]).unwrap();
    check("scatter_max", &ops::scatter_max(&twos, &[&rows], &upd, &[0]).unwrap());
    check("scatter_min", &ops::scatter_min(&twos, &[&rows], &upd, &[0]).unwrap());
    let upd = Array::from_slice(&[1.5f32, 5.0, 3.0], &[3, 1]).unwrap();
    check("scatter_prod", &ops::scatter_prod(&twos, &[&rows], &upd, &[0]).unwrap());
    let mask = input("mask");
    let src = i32s(&[10, 20, 30, 40, 50]);
    check("masked_scatter", &ops::masked_scatter(&m, &mask, &src).unwrap());
    check("where", &ops::r#where(&mask, &m, &Array::scalar(-1.5f32)).unwrap());
}

#[test]
fn indexing_op_errors() {
    let a = input("a");
    let m = input("m");
    let idx = input("idx");
    let float_idx = Array::from_slice(&[0.0f32], &[1]).unwrap();
    let bool_idx = Array::from_slice(&[true], &[1]).unwrap();
    common::assert_err(ops::take(&a, &idx, 3), &["take"]);
    common::assert_err(ops::take(&a, &float_idx, ..), &["take", "integer"]);
    let empty = ops::zeros(&[0], Dtype::Float32).unwrap();
    common::assert_err(ops::take(&empty, &idx, 0), &["take", "empty"]);
    common::assert_err(ops::take_along_axis(&a, &idx, 0), &["take_along_axis"]);
    common::assert_err(ops::take_along_axis(&a, &input("tai"), -4), &["out of bounds"]);
    common::assert_err(ops::take_along_axis(&a, &float_idx, ..), &["integer"]);
    let one = Array::scalar(1.0f32);
    common::assert_err(ops::put_along_axis(&a, &input("tai"), &one, Some(5)), &["out of bounds"]);
    common::assert_err(ops::put_along_axis(&a, &float_idx, &one, None), &["integer"]);
    common::assert_err(ops::scatter_add_axis(&m, &idx, &one, Some(0)), &["scatter_add_axis"]);
    common::assert_err(ops::slice(&a, &[0, 0], &[1, 1], None), &["slice"]);
    common::assert_err(ops::slice(&a, &[0, 0, 0], &[1, 1, 1], Some(&[1, 0, 1])), &["step", "zero"]);
    common::assert_err(ops::slice_update(&a, &one, &[0], &[1], None), &["slice_update"]);
    common::assert_err(ops::slice_update_add(&m, &one, &[0, 0], &[2, 2], Some(&[0, 1])), &["zero"]);
    let big = ops::ones(&[3, 3], Dtype::Float32).unwrap();
    common::assert_err(ops::slice_update(&m, &big, &[0, 0], &[2, 2], None), &["broadcast"]);
    common::assert_err(ops::slice_dynamic(&a, &i32s(&[0]), &[0], &[3, 3, 4]), &["slice"]);
    common::assert_err(ops::slice_dynamic(&a, &i32s(&[0]), &[0], &[1, -1, 4]), &["negative"]);
    common::assert_err(ops::slice_dynamic(&a, &float_idx, &[0], &[1, 1, 1]), &["slice"]);
    common::assert_err(
        ops::slice_update_dynamic(&m, &one, &i32s(&[0, 0]), &[0]),
        &["slice_update"],
    );
    common::assert_err(ops::gather(&m, &[&idx], &[0, 1], &[1, 3]), &["gather"]);
    common::assert_err(ops::gather(&m, &[&idx], &[0], &[1, 4]), &["gather"]);
    common::assert_err(ops::gather(&m, &[&idx], &[2], &[1, 3]), &["gather"]);
    common::assert_err(ops::gather(&m, &[&bool_idx], &[0], &[1, 3]), &["gather", "integer"]);
    common::assert_err(ops::gather(&m, &[&float_idx], &[0], &[1, 3]), &["gather", "integer"]);
    let upd = ops::ones(&[1, 1, 3], Dtype::Int32).unwrap();
    common::assert_err(ops::scatter(&m, &[&bool_idx], &upd, &[0]), &["scatter", "integer"]);
    common::assert_err(ops::scatter_add(&m, &[&float_idx], &upd, &[0]), &["integer"]);
    common::assert_err(ops::scatter_max(&m, &[&idx], &upd, &[0]), &["scatter"]);
    common::assert_err(ops::scatter_min(&m, &[&idx, &idx], &upd, &[0]), &["scatter"]);
    let wide = ops::ones(&[1, 1, 4], Dtype::Int32).unwrap();
    common::assert_err(ops::scatter_prod(&m, &[i32s(&[0])], &wide, &[0]), &["scatter"]);
    common::assert_err(ops::masked_scatter(&m, &m, &m), &["masked_scatter", "boolean"]);
    let short_mask = Array::from_slice(&[true, false], &[2]).unwrap();
    common::assert_err(ops::masked_scatter(&m, &short_mask, &m), &["masked_scatter"]);
    let mask = input("mask");
    // Too few source elements: the last one fills the extra positions (MLX's GPU kernels would
    // read past the end of `src`, so the wrapper extends it).
    let small = ops::masked_scatter(&m, &mask, &i32s(&[1])).unwrap();
    let keep = mask.to_vec::<bool>().unwrap();
    assert!(keep.iter().any(|&k| k));
    assert_eq!(small.shape(), m.shape());
    common::assert_err(
        ops::masked_scatter(&m, &mask, &Array::from_slice::<i32>(&[], &[0]).unwrap()),
        &["src is empty"],
    );
    common::assert_err(ops::r#where(&mask, &m, &i32s(&[1, 2])), &["broadcast"]);
}

#[test]
fn index_expressions() {
    let a = input("a");
    let a0 = input("a0");
    let ai = input("ai");
    let aj = input("aj");
    check("ix_int", &a.index(1).unwrap());
    check("ix_neg_int", &a.index((-1, -2)).unwrap());
    check("ix_scalar", &a.index((1, 2, 3)).unwrap());
    check("ix_range", &a.index((.., 1..3)).unwrap());
    check("ix_from", &a.index((.., 1..)).unwrap());
    check("ix_to_neg", &a.index((Ellipsis, ..-1)).unwrap());
    check("ix_incl", &a.index((.., 0..=1, -2..=-1)).unwrap());
    check("ix_step", &a.index((1.., Slice::stepped(.., 2), NewAxis, Ellipsis)).unwrap());
    check(
        "ix_neg_step",
        &a.index((Slice::stepped(.., -1), Slice::stepped(2.., -2), Slice::stepped(-1..0, -3)))
            .unwrap(),
    );
    check("ix_clamped", &a.index((-10..10, 5.., Slice::stepped(.., -5))).unwrap());
    check("ix_newaxis", &a.index((NewAxis, .., NewAxis, 1)).unwrap());
    check("ix_ellipsis_mid", &a.index((0, Ellipsis, 1)).unwrap());
    check("ix_ellipsis_only", &a.index(Ellipsis).unwrap());
    check("ix_empty", &a.index((.., Slice::new(Some(2), Some(1), 1))).unwrap());
    check("ix_arr", &a.index(&a0).unwrap());
    check("ix_arr_last", &a.index((Ellipsis, &ai)).unwrap());
    check("ix_arr_mid_slice", &a.index((1.., &ai, Slice::stepped(.., 2))).unwrap());
    check("ix_arr_int", &a.index((0, .., &ai)).unwrap());
    check("ix_arr_adjacent", &a.index((.., &ai, &aj)).unwrap());
    let first = a0.index(..1).unwrap();
    check("ix_arr_separated", &a.index((&first, .., &aj)).unwrap());
    check("ix_arr_newaxis", &a.index((NewAxis, &a0, 1..3)).unwrap());
    check("ix_arr_neg", &a.index((.., i32s(&[-1, 0]))).unwrap());
    // Other spellings of the same expressions.
    check("ix_int", &a.index(vec![Index::Int(1)]).unwrap());
    check(
        "ix_step",
        &a.index(&[Index::from(1..), Slice::stepped(.., 2).into(), Index::NewAxis][..]).unwrap(),
    );
    check("ix_ellipsis_only", &a.index(()).unwrap());
    check("ix_range", &a.index((Slice::FULL, Slice::new(Some(1), Some(3), 1))).unwrap());
    assert_eq!(Array::scalar(3i32).index(Ellipsis).unwrap().item::<i32>().unwrap(), 3);
    assert_eq!(Array::scalar(3i32).index(NewAxis).unwrap().shape(), &[1]);
    check("ix_neg_int", &a.index([Index::Int(-1), Index::Int(-2)]).unwrap());
    let empty = ops::zeros(&[0, 3], Dtype::Float32).unwrap();
    assert_eq!(empty.index((.., 1)).unwrap().shape(), &[0]);
    assert_eq!(empty.index((Slice::stepped(.., -1), 1..)).unwrap().shape(), &[0, 2]);
}

#[test]
fn index_put_expressions() {
    let a = input("a");
    let a0 = input("a0");
    let ai = input("ai");
    let aj = input("aj");
    let put = |name: &str, idx: Vec<Index>| {
        let mut x = a.clone();
        x.index_put(idx, &case_input(name, "value")).unwrap();
        check(name, &x);
    };
    put("put_int", vec![1.into()]);
    put("put_row", vec![0.into(), 1.into()]);
    put("put_step", vec![(..).into(), Slice::stepped(.., 2).into(), (1..).into()]);
    put("put_neg_step", vec![(..).into(), Slice::stepped(.., -1).into(), 0.into()]);
    put("put_newaxis", vec![NewAxis.into(), 1.into(), Ellipsis.into(), 2.into()]);
    put("put_leading_ones", vec![0.into()]);
    put("put_arr", vec![(&a0).into()]);
    put("put_arr_adjacent", vec![1.into(), (&ai).into(), (&aj).into()]);
    put("put_arr_slices", vec![(..).into(), (&ai).into(), (1..3).into()]);
    put("put_arr_separated", vec![a0.index(..2).unwrap().into(), (..).into(), (&aj).into()]);
    // The old array is untouched: the update is functional.
    let mut x = a.clone();
    x.index_put(0, &Array::scalar(-7.0f32)).unwrap();
    assert_eq!(a.index((0, 0, 0)).unwrap().item::<f32>().unwrap(), 0.0);
    assert_eq!(x.index((0, 0, 0)).unwrap().item::<f32>().unwrap(), -7.0);
    // A 0-D array, and an empty selection.
    let mut scalar = Array::scalar(1.5f32);
    scalar.index_put(Ellipsis, &Array::scalar(4i32)).unwrap();
    assert_eq!(scalar.item::<f32>().unwrap(), 4.0);
    let mut y = a.clone();
    y.index_put((.., 2..2), &Array::scalar(9.0f32)).unwrap();
    check("ix_ellipsis_only", &y);
    // The value is cast to the array's dtype.
    let mut ints = Array::zeros::<i32>(&[2]).unwrap();
    ints.index_put(1, &Array::scalar(2.9f32)).unwrap();
    assert_eq!(ints.to_vec::<i32>().unwrap(), [0, 2]);
}

#[test]
fn index_errors() {
    let a = input("a");
    let ai = input("ai");
    common::assert_err(a.index(2), &["index 2 is out of bounds", "axis 0", "size 2"]);
    common::assert_err(a.index(-3), &["out of bounds"]);
    common::assert_err(a.index((0, 3)), &["index 3", "axis 1"]);
    common::assert_err(a.index((NewAxis, 0, 0, 4)), &["index 4", "axis 2"]);
    common::assert_err(a.index((Ellipsis, 4)), &["out of bounds"]);
    common::assert_err(a.index(Slice::stepped(.., 0)), &["step", "zero"]);
    common::assert_err(a.index((0, 0, 0, 0)), &["too many indices"]);
    common::assert_err(a.index((.., .., .., ..)), &["too many indices"]);
    common::assert_err(a.index((Ellipsis, 0, Ellipsis)), &["single ellipsis"]);
    common::assert_err(Array::scalar(1.0f32).index(0), &["too many indices"]);
    let floats = Array::from_slice(&[0.0f32], &[1]).unwrap();
    common::assert_err(a.index(&floats), &["integer"]);
    let mask = Array::from_slice(&[true, false], &[2]).unwrap();
    common::assert_err(a.index(&mask), &["boolean"]);
    let aj = Array::from_slice(&[0i32, 1, 2], &[3]).unwrap();
    common::assert_err(a.index((.., &ai, &aj)), &["broadcast"]);
    let mut x = a.clone();
    let one = Array::scalar(1.0f32);
    common::assert_err(x.index_put(2, &one), &["index_put", "out of bounds"]);
    common::assert_err(x.index_put((0, 0, 0, 0), &one), &["too many indices"]);
    common::assert_err(x.index_put(Slice::stepped(1.., 0), &one), &["step", "zero"]);
    let wrong = ops::ones(&[5], Dtype::Float32).unwrap();
    common::assert_err(x.index_put(0, &wrong), &["broadcast"]);
    common::assert_err(x.index_put((.., &ai), &wrong), &["broadcast"]);
    common::assert_err(x.index_put(&mask, &one), &["boolean"]);
    let empty = ops::zeros(&[0, 3], Dtype::Float32).unwrap();
    common::assert_err(empty.index(0), &["index 0 is out of bounds", "size 0"]);
    common::assert_err(empty.clone().index_put((.., 3), &one), &["index 3", "axis 1"]);
    // A failed update leaves the array as it was.
    check("ix_ellipsis_only", &x);
}
