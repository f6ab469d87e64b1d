//! Shared test helpers: golden values produced by Python MLX, and comparisons.
//!
//! Golden files live in `tests/golden/<family>.json` and are written by the committed generator
//! `tests/golden/gen_<family>.py` (run `python3 tests/golden/gen_<family>.py` with
//! `mlx[cpu]==0.32.2` installed). Each file maps a case name to an object whose array-valued
//! entries look like `{"dtype": "float32", "shape": [2, 3], "data": [...]}` with data in row-major
//! order; non-finite floats are the strings "nan", "inf", "-inf"; complex numbers are `[re, im]`.
#![allow(dead_code)]

use half::{bf16, f16};
use mlx_rs::{Array, Dtype};
use num_complex::Complex32;
use serde_json::Value;

/// Parses a golden file's text (use `include_str!` so the tests also run away from the source
/// tree, e.g. on the GPU machine).
pub fn load(text: &str) -> Value {
    serde_json::from_str(text).expect("golden file is valid JSON")
}

/// One case of a golden file.
pub fn case<'a>(file: &'a Value, name: &str) -> &'a Value {
    file.get(name).unwrap_or_else(|| panic!("golden case {name} is missing; rerun the generator"))
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("number"),
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => match s.as_str() {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            other => panic!("bad number {other}"),
        },
        other => panic!("bad number {other}"),
    }
}

/// The dtype named in a golden array.
pub fn dtype_of(v: &Value) -> Dtype {
    let name = v["dtype"].as_str().expect("dtype");
    Dtype::ALL.into_iter().find(|d| d.name() == name).unwrap_or_else(|| panic!("dtype {name}"))
}

/// The shape of a golden array.
pub fn shape_of(v: &Value) -> Vec<i32> {
    v["shape"].as_array().expect("shape").iter().map(|d| d.as_i64().unwrap() as i32).collect()
}

/// The data of a golden array as f64 (complex arrays: real parts only; see [`complex_data`]).
pub fn data_f64(v: &Value) -> Vec<f64> {
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|x| match x {
            Value::Array(pair) => number(&pair[0]),
            other => number(other),
        })
        .collect()
}

/// The data of a complex golden array.
pub fn complex_data(v: &Value) -> Vec<Complex32> {
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|x| {
            let pair = x.as_array().expect("complex values are [re, im]");
            Complex32::new(number(&pair[0]) as f32, number(&pair[1]) as f32)
        })
        .collect()
}

/// Builds the array a golden entry describes.
pub fn array(v: &Value) -> Array {
    let shape = shape_of(v);
    let d = data_f64(v);
    let made = match dtype_of(v) {
        Dtype::Bool => Array::from_slice(&d.iter().map(|&x| x != 0.0).collect::<Vec<_>>(), &shape),
        Dtype::Uint8 => Array::from_slice(&d.iter().map(|&x| x as u8).collect::<Vec<_>>(), &shape),
        Dtype::Uint16 => {
            Array::from_slice(&d.iter().map(|&x| x as u16).collect::<Vec<_>>(), &shape)
        }
        Dtype::Uint32 => {
            Array::from_slice(&d.iter().map(|&x| x as u32).collect::<Vec<_>>(), &shape)
        }
        Dtype::Uint64 => {
            Array::from_slice(&d.iter().map(|&x| x as u64).collect::<Vec<_>>(), &shape)
        }
        Dtype::Int8 => Array::from_slice(&d.iter().map(|&x| x as i8).collect::<Vec<_>>(), &shape),
        Dtype::Int16 => Array::from_slice(&d.iter().map(|&x| x as i16).collect::<Vec<_>>(), &shape),
        Dtype::Int32 => Array::from_slice(&d.iter().map(|&x| x as i32).collect::<Vec<_>>(), &shape),
        Dtype::Int64 => Array::from_slice(&d.iter().map(|&x| x as i64).collect::<Vec<_>>(), &shape),
        Dtype::Float16 => {
            Array::from_slice(&d.iter().map(|&x| f16::from_f64(x)).collect::<Vec<_>>(), &shape)
        }
        Dtype::Bfloat16 => {
            Array::from_slice(&d.iter().map(|&x| bf16::from_f64(x)).collect::<Vec<_>>(), &shape)
        }
        Dtype::Float32 => {
            Array::from_slice(&d.iter().map(|&x| x as f32).collect::<Vec<_>>(), &shape)
        }
        Dtype::Float64 => Array::from_slice(&d, &shape),
        Dtype::Complex64 => Array::from_slice(&complex_data(v), &shape),
    };
    made.expect("golden array")
}

/// Reads any real array as f64 values (converting on the Rust side, not through MLX).
pub fn values_f64(a: &Array) -> Vec<f64> {
    match a.dtype() {
        Dtype::Bool => {
            a.to_vec::<bool>().unwrap().into_iter().map(|x| f64::from(u8::from(x))).collect()
        }
        Dtype::Uint8 => a.to_vec::<u8>().unwrap().into_iter().map(f64::from).collect(),
        Dtype::Uint16 => a.to_vec::<u16>().unwrap().into_iter().map(f64::from).collect(),
        Dtype::Uint32 => a.to_vec::<u32>().unwrap().into_iter().map(f64::from).collect(),
        Dtype::Uint64 => a.to_vec::<u64>().unwrap().into_iter().map(|x| x as f64).collect(),
        Dtype::Int8 => a.to_vec::<i8>().unwrap().into_iter().map(f64::from).collect(),
        Dtype::Int16 => a.to_vec::<i16>().unwrap().into_iter().map(f64::from).collect(),
        Dtype::Int32 => a.to_vec::<i32>().unwrap().into_iter().map(f64::from).collect(),
        Dtype::Int64 => a.to_vec::<i64>().unwrap().into_iter().map(|x| x as f64).collect(),
        Dtype::Float16 => a.to_vec::<f16>().unwrap().into_iter().map(f64::from).collect(),
        Dtype::Bfloat16 => a.to_vec::<bf16>().unwrap().into_iter().map(f64::from).collect(),
        Dtype::Float32 => a.to_vec::<f32>().unwrap().into_iter().map(f64::from).collect(),
        Dtype::Float64 => a.to_vec::<f64>().unwrap(),
        Dtype::Complex64 => {
            a.to_vec::<Complex32>().unwrap().into_iter().map(|c| f64::from(c.re)).collect()
        }
    }
}

/// The least relative tolerance of a comparison on the GPU (see [`assert_close`]): chains of
/// TF32 matmuls (a layer, then a gather, then another) drift by up to about 1%.
pub const GPU_RTOL: f64 = 1e-2;
/// The least absolute tolerance of a comparison on the GPU (see [`assert_close`]).
pub const GPU_ATOL: f64 = 5e-3;

/// True where MLX's quantized matmul cannot be trusted with these tests' shapes: MLX 0.32.2's
/// CUDA `quantized_matmul` / `gather_qmm` give wrong values for affine weights at K = 64 (Python
/// MLX on the same GPU gives the same wrong values) and have no kernel for some small float32
/// shapes. Values that go through them are checked on the CPU only; shapes, paths and errors are
/// checked everywhere.
pub fn cuda_qmm_unreliable() -> bool {
    on_gpu()
}

/// Asserts that `actual` has the golden entry's dtype and shape, and values within
/// `atol + rtol * |expected|` (NaNs must match NaNs; infinities must match exactly).
#[track_caller]
pub fn assert_matches(actual: &Array, expected: &Value, rtol: f64, atol: f64) {
    assert_eq!(actual.dtype(), dtype_of(expected), "dtype");
    assert_eq!(actual.shape(), shape_of(expected).as_slice(), "shape");
    if actual.dtype() == Dtype::Complex64 {
        let got = actual.to_vec::<Complex32>().unwrap();
        let want = complex_data(expected);
        let (rtol, atol) =
            if on_gpu() { (rtol.max(GPU_RTOL), atol.max(GPU_ATOL)) } else { (rtol, atol) };
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let tol = atol as f32 + rtol as f32 * w.norm();
            assert!((g - w).norm() <= tol, "element {i}: got {g}, want {w}");
        }
        return;
    }
    assert_close(&values_f64(actual), &data_f64(expected), rtol, atol);
}

/// Asserts element-wise closeness of two f64 slices. On the GPU the tolerance is at least
/// [`GPU_RTOL`] / [`GPU_ATOL`]: MLX's CUDA matmuls use TF32, and its kernels round differently
/// from the CPU's.
#[track_caller]
pub fn assert_close(got: &[f64], want: &[f64], rtol: f64, atol: f64) {
    let (rtol, atol) =
        if on_gpu() { (rtol.max(GPU_RTOL), atol.max(GPU_ATOL)) } else { (rtol, atol) };
    assert_eq!(got.len(), want.len(), "length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= atol + rtol * w.abs()
        };
        assert!(ok, "element {i}: got {g}, want {w} (rtol {rtol}, atol {atol})");
    }
}

/// Asserts that `result` is an error whose message contains every one of `needles`
/// (case-insensitive), and that MLX still works afterwards.
#[track_caller]
pub fn assert_err<T: std::fmt::Debug>(
    result: mlx_rs::Result<T>,
    needles: &[&str],
) -> mlx_rs::Error {
    let err = result.expect_err("expected an error");
    let text = err.to_string().to_lowercase();
    for needle in needles {
        assert!(text.contains(&needle.to_lowercase()), "error {err:?} does not mention {needle:?}");
    }
    let one = Array::scalar(1.0f32);
    let two = mlx_rs::ops::add(&one, &one).expect("MLX works after an error");
    assert_eq!(two.item::<f32>().unwrap(), 2.0);
    err
}

/// True when the default device is a GPU (tests then allow for what MLX's GPU backends lack:
/// float64, and TF32 / fused-kernel rounding in products and attention).
pub fn on_gpu() -> bool {
    mlx_rs::Device::default_device().is_ok_and(|d| d.device_type() == mlx_rs::DeviceType::Gpu)
}
