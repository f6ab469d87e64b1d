//! Element-wise ops (arithmetic, math, comparison, logical, bitwise, conversion) and the Rust
//! operators on `Array`, checked against golden values from Python MLX
//! (`golden/gen_elementwise.py`), plus bad input.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use half::f16;
use mlx_rs::{Array, Dtype, Result, Stream, ops};
use num_complex::Complex32;
use serde_json::Value;

fn golden() -> &'static Value {
    static GOLDEN: OnceLock<Value> = OnceLock::new();
    GOLDEN.get_or_init(|| common::load(include_str!("golden/elementwise.json")))
}

/// Every case of the golden file, by name.
fn cases() -> impl Iterator<Item = (&'static String, &'static Value)> {
    golden().as_object().expect("golden file is an object").iter()
}

/// The tolerance for comparing a result of `dtype` (on CPU or GPU).
fn tolerance(dtype: Dtype) -> (f64, f64) {
    match dtype {
        Dtype::Float16 | Dtype::Bfloat16 => (1e-2, 1e-3),
        Dtype::Float32 | Dtype::Complex64 => (2e-5, 1e-6),
        Dtype::Float64 => (1e-12, 1e-12),
        _ => (0.0, 0.0),
    }
}

#[track_caller]
fn check(name: &str, actual: &Array, expected: &Value) {
    let (rtol, atol) = tolerance(common::dtype_of(expected));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::assert_matches(actual, expected, rtol, atol)
    }));
    if result.is_err() {
        panic!("golden case {name} does not match");
    }
}

fn dtype_named(name: &str) -> Dtype {
    Dtype::ALL.into_iter().find(|d| d.name() == name).expect("known dtype")
}

fn input(case: &Value, key: &str) -> Array {
    common::array(&case[key])
}

fn optional_input(case: &Value, key: &str) -> Option<Array> {
    case.get(key).map(common::array)
}

fn float(case: &Value, key: &str) -> f64 {
    case[key].as_f64().expect("number")
}

fn flag(case: &Value, key: &str) -> bool {
    case[key].as_bool().expect("bool")
}

type UnaryOp = fn(&Array) -> Result<Array>;
type BinaryOp = fn(&Array, &Array) -> Result<Array>;

/// Runs the op a golden case names on its inputs, through the functions of `ops`.
fn run_op(case: &Value) -> Result<Array> {
    let op = case["op"].as_str().expect("op");
    let a = input(case, "a");
    let b = || input(case, "b");
    let unary: Option<UnaryOp> = match op {
        "abs" => Some(ops::abs),
        "negative" => Some(ops::negative),
        "positive" => Some(ops::positive),
        "sign" => Some(ops::sign),
        "sqrt" => Some(ops::sqrt),
        "rsqrt" => Some(ops::rsqrt),
        "square" => Some(ops::square),
        "reciprocal" => Some(ops::reciprocal),
        "exp" => Some(ops::exp),
        "expm1" => Some(ops::expm1),
        "log" => Some(ops::log),
        "log2" => Some(ops::log2),
        "log10" => Some(ops::log10),
        "log1p" => Some(ops::log1p),
        "sin" => Some(ops::sin),
        "cos" => Some(ops::cos),
        "tan" => Some(ops::tan),
        "arcsin" => Some(ops::arcsin),
        "arccos" => Some(ops::arccos),
        "arctan" => Some(ops::arctan),
        "sinh" => Some(ops::sinh),
        "cosh" => Some(ops::cosh),
        "tanh" => Some(ops::tanh),
        "arcsinh" => Some(ops::arcsinh),
        "arccosh" => Some(ops::arccosh),
        "arctanh" => Some(ops::arctanh),
        "erf" => Some(ops::erf),
        "erfinv" => Some(ops::erfinv),
        "floor" => Some(ops::floor),
        "ceil" => Some(ops::ceil),
        "trunc" => Some(ops::trunc),
        "degrees" => Some(ops::degrees),
        "radians" => Some(ops::radians),
        "sigmoid" => Some(ops::sigmoid),
        "isnan" => Some(ops::isnan),
        "isinf" => Some(ops::isinf),
        "isfinite" => Some(ops::isfinite),
        "isposinf" => Some(ops::isposinf),
        "isneginf" => Some(ops::isneginf),
        "logical_not" => Some(ops::logical_not),
        "bitwise_invert" => Some(ops::bitwise_invert),
        "real" => Some(ops::real),
        "imag" => Some(ops::imag),
        "conjugate" => Some(ops::conjugate),
        "copy" => Some(ops::copy),
        _ => None,
    };
    if let Some(f) = unary {
        return f(&a);
    }
    let binary: Option<BinaryOp> = match op {
        "add" => Some(ops::add),
        "subtract" => Some(ops::subtract),
        "multiply" => Some(ops::multiply),
        "divide" => Some(ops::divide),
        "floor_divide" => Some(ops::floor_divide),
        "remainder" => Some(ops::remainder),
        "power" => Some(ops::power),
        "maximum" => Some(ops::maximum),
        "minimum" => Some(ops::minimum),
        "logaddexp" => Some(ops::logaddexp),
        "arctan2" => Some(ops::arctan2),
        "equal" => Some(ops::equal),
        "not_equal" => Some(ops::not_equal),
        "less" => Some(ops::less),
        "less_equal" => Some(ops::less_equal),
        "greater" => Some(ops::greater),
        "greater_equal" => Some(ops::greater_equal),
        "logical_and" => Some(ops::logical_and),
        "logical_or" => Some(ops::logical_or),
        "logical_xor" => Some(ops::logical_xor),
        "bitwise_and" => Some(ops::bitwise_and),
        "bitwise_or" => Some(ops::bitwise_or),
        "bitwise_xor" => Some(ops::bitwise_xor),
        "left_shift" => Some(ops::left_shift),
        "right_shift" => Some(ops::right_shift),
        _ => None,
    };
    if let Some(f) = binary {
        return f(&a, &b());
    }
    match op {
        "clip" => {
            let (low, high) = (optional_input(case, "a_min"), optional_input(case, "a_max"));
            ops::clip(&a, low.as_ref(), high.as_ref())
        }
        "nan_to_num" => {
            let opt = |key| case.get(key).and_then(Value::as_f64).map(|v| v as f32);
            ops::nan_to_num(&a, float(case, "nan") as f32, opt("posinf"), opt("neginf"))
        }
        "round" => ops::round(&a, case["decimals"].as_i64().expect("decimals") as i32),
        "isclose" | "allclose" => {
            let f = if op == "isclose" { ops::isclose } else { ops::allclose };
            f(&a, &b(), float(case, "rtol"), float(case, "atol"), flag(case, "equal_nan"))
        }
        "array_equal" => ops::array_equal(&a, &b(), flag(case, "equal_nan")),
        "astype" => ops::astype(&a, dtype_named(case["dtype"].as_str().expect("dtype"))),
        "view" => ops::view(&a, dtype_named(case["dtype"].as_str().expect("dtype"))),
        "contiguous" => ops::contiguous(&a, flag(case, "allow_col_major")),
        other => panic!("no Rust op for golden op {other}"),
    }
}

/// Every op of this family, to make sure the golden file exercises each one.
const ALL_OPS: &[&str] = &[
    "abs",
    "add",
    "allclose",
    "arccos",
    "arccosh",
    "arcsin",
    "arcsinh",
    "arctan",
    "arctan2",
    "arctanh",
    "array_equal",
    "astype",
    "bitwise_and",
    "bitwise_invert",
    "bitwise_or",
    "bitwise_xor",
    "ceil",
    "clip",
    "conjugate",
    "contiguous",
    "copy",
    "cos",
    "cosh",
    "degrees",
    "divide",
    "divmod",
    "equal",
    "erf",
    "erfinv",
    "exp",
    "expm1",
    "floor",
    "floor_divide",
    "greater",
    "greater_equal",
    "imag",
    "isclose",
    "isfinite",
    "isinf",
    "isnan",
    "isneginf",
    "isposinf",
    "left_shift",
    "less",
    "less_equal",
    "log",
    "log10",
    "log1p",
    "log2",
    "logaddexp",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "maximum",
    "minimum",
    "multiply",
    "nan_to_num",
    "negative",
    "not_equal",
    "positive",
    "power",
    "radians",
    "real",
    "reciprocal",
    "remainder",
    "right_shift",
    "round",
    "rsqrt",
    "sigmoid",
    "sign",
    "sin",
    "sinh",
    "sqrt",
    "square",
    "subtract",
    "tan",
    "tanh",
    "trunc",
    "view",
];

#[test]
fn every_op_matches_python() {
    let mut seen = BTreeSet::new();
    let mut checked = 0;
    for (name, case) in cases() {
        if case.get("value").is_some() {
            continue; // scalar operands: see `scalar_operands_follow_python`
        }
        let op = case["op"].as_str().expect("op");
        seen.insert(op.to_owned());
        if common::on_gpu() && case.to_string().contains("\"float64\"") {
            continue; // MLX's GPU backends have no float64
        }
        if op == "divmod" {
            let (q, r) = ops::divmod(&input(case, "a"), &input(case, "b"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            check(name, &q, &case["out"]);
            check(name, &r, &case["out2"]);
        } else {
            let out = run_op(case).unwrap_or_else(|e| panic!("{name}: {e}"));
            check(name, &out, &case["out"]);
        }
        checked += 1;
    }
    let missing: Vec<_> = ALL_OPS.iter().filter(|op| !seen.contains(**op)).collect();
    assert!(missing.is_empty(), "ops without golden cases: {missing:?}");
    assert!(checked > 250, "only {checked} cases ran");
}

/// Applies the Rust operator named by `op` to `lhs` and `rhs`, whatever their types.
macro_rules! apply {
    ($op:expr, $lhs:expr, $rhs:expr) => {
        match $op {
            "add" => $lhs + $rhs,
            "subtract" => $lhs - $rhs,
            "multiply" => $lhs * $rhs,
            "divide" => $lhs / $rhs,
            "remainder" => $lhs % $rhs,
            "bitwise_and" => $lhs & $rhs,
            "bitwise_or" => $lhs | $rhs,
            "bitwise_xor" => $lhs ^ $rhs,
            "left_shift" => $lhs << $rhs,
            "right_shift" => $lhs >> $rhs,
            other => panic!("no operator for {other}"),
        }
    };
}

const OPERATOR_OPS: &[&str] = &[
    "add",
    "subtract",
    "multiply",
    "divide",
    "remainder",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "left_shift",
    "right_shift",
];

#[test]
fn operators_match_the_ops() {
    let mut checked = 0;
    for (name, case) in cases() {
        let op = case["op"].as_str().expect("op");
        if case.get("value").is_some() {
            continue;
        }
        if OPERATOR_OPS.contains(&op) {
            let (a, b) = (input(case, "a"), input(case, "b"));
            let expected = &case["out"];
            check(name, &apply!(op, &a, &b).unwrap(), expected);
            check(name, &apply!(op, a.clone(), &b).unwrap(), expected);
            check(name, &apply!(op, &a, b.clone()).unwrap(), expected);
            check(name, &apply!(op, a, b).unwrap(), expected);
            checked += 1;
        } else if op == "negative" || op == "bitwise_invert" {
            let a = input(case, "a");
            let (by_ref, owned) = if op == "negative" { (-&a, -a) } else { (!&a, !a) };
            check(name, &by_ref.unwrap(), &case["out"]);
            check(name, &owned.unwrap(), &case["out"]);
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} operator cases ran");
}

#[test]
fn scalar_operands_follow_python() {
    let mut checked = 0;
    for (name, case) in cases() {
        let Some(value) = case.get("value") else { continue };
        let op = case["op"].as_str().expect("op");
        let expected = &case["out"];
        let result = match (case.get("a"), value) {
            (Some(_), Value::Bool(v)) => {
                let a = input(case, "a");
                apply!(op, &a, *v)
            }
            (Some(_), v) if v.is_i64() => {
                let a = input(case, "a");
                // Once as i32 and once as i64: the Rust type of an integer does not matter.
                let wide = apply!(op, a.clone(), v.as_i64().unwrap());
                check(name, &wide.unwrap(), expected);
                apply!(op, &a, v.as_i64().unwrap() as i32)
            }
            (Some(_), v) => {
                let a = input(case, "a");
                let single = apply!(op, &a, v.as_f64().unwrap() as f32);
                check(name, &single.unwrap(), expected);
                apply!(op, a, v.as_f64().unwrap())
            }
            (None, v) if v.is_i64() => {
                let b = input(case, "b");
                apply!(op, v.as_i64().unwrap() as i32, &b)
            }
            (None, v) => {
                let b = input(case, "b");
                apply!(op, v.as_f64().unwrap() as f32, b)
            }
        };
        check(name, &result.unwrap_or_else(|e| panic!("{name}: {e}")), expected);
        checked += 1;
    }
    assert!(checked >= 17, "only {checked} scalar cases ran");
}

#[test]
fn scalar_operators_on_both_sides() {
    let a = Array::from_slice(&[1.0f32, 2.0, 4.0], &[3]).unwrap();
    assert_eq!((&a + 1.0).unwrap().to_vec::<f32>().unwrap(), [2.0, 3.0, 5.0]);
    assert_eq!((2.0 * &a).unwrap().to_vec::<f32>().unwrap(), [2.0, 4.0, 8.0]);
    assert_eq!((8.0f32 / &a).unwrap().to_vec::<f32>().unwrap(), [8.0, 4.0, 2.0]);
    assert_eq!((&a - 1u8).unwrap().to_vec::<f32>().unwrap(), [0.0, 1.0, 3.0]);
    assert_eq!((10 - a.clone()).unwrap().to_vec::<f32>().unwrap(), [9.0, 8.0, 6.0]);
    assert_eq!((a.clone() % 3).unwrap().to_vec::<f32>().unwrap(), [1.0, 2.0, 1.0]);
    let i = Array::from_slice(&[1i32, 2, 3], &[3]).unwrap();
    assert_eq!((1i32 << &i).unwrap().to_vec::<i32>().unwrap(), [2, 4, 8]);
    assert_eq!((&i >> 1).unwrap().to_vec::<i32>().unwrap(), [0, 1, 1]);
    assert_eq!((&i ^ 3u16).unwrap().to_vec::<i32>().unwrap(), [2, 1, 0]);
    assert_eq!((6 & &i).unwrap().to_vec::<i32>().unwrap(), [0, 2, 2]);
    assert_eq!((&i | true).unwrap().to_vec::<i32>().unwrap(), [1, 3, 3]);
    // chaining
    let chained = ((((&a * 2.0).unwrap() + 1.0).unwrap() - &a).unwrap() / 2.0).unwrap();
    assert_eq!(chained.to_vec::<f32>().unwrap(), [1.0, 1.5, 2.5]);
    // weak scalars keep half precision and int dtypes
    let h = a.astype(Dtype::Float16).unwrap();
    let scaled = (&h * 0.1f64).unwrap();
    assert_eq!(scaled.dtype(), Dtype::Float16);
    let u = Array::from_slice(&[250u8], &[1]).unwrap();
    assert_eq!((&u + 10).unwrap().to_vec::<u8>().unwrap(), [4]);
    let w = Array::from_slice(&[1u64], &[1]).unwrap();
    assert_eq!((&w + (u64::MAX - 1)).unwrap().to_vec::<u64>().unwrap(), [u64::MAX]);
}

#[test]
fn methods_match_the_ops() {
    let x = Array::from_slice(&[0.25f32, 1.0, 4.0, 9.0], &[2, 2]).unwrap();
    let pairs: [(Array, UnaryOp); 12] = [
        (x.abs().unwrap(), ops::abs),
        (x.sqrt().unwrap(), ops::sqrt),
        (x.rsqrt().unwrap(), ops::rsqrt),
        (x.square().unwrap(), ops::square),
        (x.reciprocal().unwrap(), ops::reciprocal),
        (x.exp().unwrap(), ops::exp),
        (x.log().unwrap(), ops::log),
        (x.log2().unwrap(), ops::log2),
        (x.log10().unwrap(), ops::log10),
        (x.log1p().unwrap(), ops::log1p),
        (x.sin().unwrap(), ops::sin),
        (x.cos().unwrap(), ops::cos),
    ];
    for (method, op) in pairs {
        let want = op(&x).unwrap();
        assert!(ops::array_equal(&method, &want, false).unwrap().item::<bool>().unwrap());
    }
    assert_eq!(x.round(0).unwrap().to_vec::<f32>().unwrap(), [0.0, 1.0, 4.0, 9.0]);
    assert_eq!(x.astype(Dtype::Int32).unwrap().to_vec::<i32>().unwrap(), [0, 1, 4, 9]);
    assert_eq!(x.view(Dtype::Uint32).unwrap().shape(), &[2, 2]);
    let z = Array::from_slice(&[Complex32::new(1.0, 2.0)], &[1]).unwrap();
    assert_eq!(z.conj().unwrap().to_vec::<Complex32>().unwrap(), [Complex32::new(1.0, -2.0)]);
    let cpu = Stream::cpu().unwrap();
    assert_eq!(x.sqrt_device(&cpu).unwrap().to_vec::<f32>().unwrap(), [0.5, 1.0, 2.0, 3.0]);
    assert_eq!(x.astype_device(Dtype::Uint8, &cpu).unwrap().dtype(), Dtype::Uint8);
}

#[test]
fn explicit_streams() {
    let cpu = Stream::cpu().unwrap();
    let a = Array::from_slice(&[1.0f32, -2.0], &[2]).unwrap();
    let b = Array::from_slice(&[3.0f32, 4.0], &[2]).unwrap();
    assert_eq!(ops::add_device(&a, &b, &cpu).unwrap().to_vec::<f32>().unwrap(), [4.0, 2.0]);
    assert_eq!(ops::abs_device(&a, &cpu).unwrap().to_vec::<f32>().unwrap(), [1.0, 2.0]);
    let less = ops::less_device(&a, &b, &cpu).unwrap();
    assert_eq!(less.to_vec::<bool>().unwrap(), [true, true]);
    let (q, r) = ops::divmod_device(&b, &a, &cpu).unwrap();
    assert_eq!(q.to_vec::<f32>().unwrap(), [3.0, -2.0]);
    assert_eq!(r.to_vec::<f32>().unwrap(), [0.0, 0.0]);
    let clipped = ops::clip_device(&a, None, Some(&Array::scalar(0.0f32)), &cpu).unwrap();
    assert_eq!(clipped.to_vec::<f32>().unwrap(), [0.0, -2.0]);
}

#[test]
fn integer_division_by_zero_is_defined() {
    // MLX's CPU backend would die of SIGFPE here; the safe API defines the results as NumPy does.
    let a = Array::from_slice(&[5i32, -5, 0, i32::MIN, i32::MIN, 7], &[6]).unwrap();
    let b = Array::from_slice(&[0i32, 0, 0, -1, 0, -1], &[6]).unwrap();
    let q = ops::floor_divide(&a, &b).unwrap();
    assert_eq!(q.to_vec::<i32>().unwrap(), [0, 0, 0, i32::MIN, 0, -7]);
    let r = ops::remainder(&a, &b).unwrap();
    assert_eq!(r.to_vec::<i32>().unwrap(), [0, 0, 0, 0, 0, 0]);
    let (dq, dr) = ops::divmod(&a, &b).unwrap();
    assert_eq!(dq.to_vec::<i32>().unwrap(), q.to_vec::<i32>().unwrap());
    assert_eq!(dr.to_vec::<i32>().unwrap(), r.to_vec::<i32>().unwrap());
    assert_eq!((&a % 0).unwrap().to_vec::<i32>().unwrap(), [0; 6]);
    // divmod floors (MLX's floor_divide truncates for integers), also next to a zero divisor
    let (fq, fr) = ops::divmod(
        &Array::from_slice(&[-7i32, 7, -7], &[3]).unwrap(),
        &Array::from_slice(&[2i32, 0, -1], &[3]).unwrap(),
    )
    .unwrap();
    assert_eq!(fq.to_vec::<i32>().unwrap(), [-4, 0, 7]);
    assert_eq!(fr.to_vec::<i32>().unwrap(), [1, 0, 0]);

    let wide = Array::from_slice(&[i64::MIN, 9, -9], &[3]).unwrap();
    let wide_b = Array::from_slice(&[-1i64, 0, 4], &[3]).unwrap();
    assert_eq!(
        ops::floor_divide(&wide, &wide_b).unwrap().to_vec::<i64>().unwrap(),
        [i64::MIN, 0, -2] // MLX truncates integer floor_divide
    );
    assert_eq!(ops::remainder(&wide, &wide_b).unwrap().to_vec::<i64>().unwrap(), [0, 0, 3]);

    let u = Array::from_slice(&[200u8, 9, 255], &[3]).unwrap();
    let ub = Array::from_slice(&[0u8, 2, 255], &[3]).unwrap();
    assert_eq!(ops::floor_divide(&u, &ub).unwrap().to_vec::<u8>().unwrap(), [0, 4, 1]);
    assert_eq!(ops::remainder(&u, &ub).unwrap().to_vec::<u8>().unwrap(), [0, 1, 0]);
    // broadcast scalar zero divisor, and a zero scalar dividend
    assert_eq!(ops::floor_divide(&u, &Array::scalar(0u8)).unwrap().to_vec::<u8>().unwrap(), [0; 3]);
    let zq = ops::floor_divide(&Array::scalar(0u8), &ub).unwrap();
    assert_eq!(zq.to_vec::<u8>().unwrap(), [0, 0, 0]);

    // mixed dtypes promote first: uint8 // int8 is int16, and a bool divisor is 0 or 1
    let i8s = Array::from_slice(&[0i8, -1, 3], &[3]).unwrap();
    let mixed = ops::floor_divide(&u, &i8s).unwrap();
    assert_eq!(mixed.dtype(), Dtype::Int16);
    assert_eq!(mixed.to_vec::<i16>().unwrap(), [0, -9, 85]);
    let flags = Array::from_slice(&[false, true, false], &[3]).unwrap();
    let by_bool = ops::floor_divide(&a.clone(), &Array::from_slice(&[true; 6], &[6]).unwrap());
    assert_eq!(by_bool.unwrap().to_vec::<i32>().unwrap(), [5, -5, 0, i32::MIN, i32::MIN, 7]);
    let u_by_flags = ops::remainder(&u, &flags).unwrap();
    assert_eq!(u_by_flags.dtype(), Dtype::Uint8);
    assert_eq!(u_by_flags.to_vec::<u8>().unwrap(), [0, 0, 0]);
    assert_eq!(ops::floor_divide(&u, &flags).unwrap().to_vec::<u8>().unwrap(), [0, 9, 0]);

    // floating-point division by zero is IEEE, unchanged
    let f = Array::from_slice(&[5.0f32, -5.0], &[2]).unwrap();
    let fq = ops::floor_divide(&f, &Array::scalar(0.0f32)).unwrap();
    assert_eq!(fq.to_vec::<f32>().unwrap(), [f32::INFINITY, f32::NEG_INFINITY]);
    // an integer divided by a float zero is a float division
    let iq = ops::floor_divide(&a, &Array::scalar(0.0f32)).unwrap();
    assert_eq!(iq.dtype(), Dtype::Float32);
}

#[test]
fn bool_xor_of_temporaries() {
    // MLX 0.32.2's CPU bitwise_xor of two bool arrays goes wrong when it reuses an input buffer.
    let xor = |a: &[bool], b: &[bool]| {
        let n = a.len() as i32;
        ops::bitwise_xor(&Array::from_slice(a, &[n]).unwrap(), &Array::from_slice(b, &[n]).unwrap())
            .unwrap()
            .to_vec::<bool>()
            .unwrap()
    };
    assert_eq!(
        xor(&[true, true, false, false], &[false, true, false, true]),
        [true, false, false, true]
    );
    let flags = || Array::from_slice(&[true, false], &[2]).unwrap();
    assert_eq!((flags() ^ true).unwrap().to_vec::<bool>().unwrap(), [false, true]);
    assert_eq!((flags() ^ flags()).unwrap().to_vec::<bool>().unwrap(), [false, false]);
}

#[test]
fn astype_round_trips() {
    let exact = [-2.5f32, -1.0, 0.0, 0.5, 1024.0, 3.0];
    let a = Array::from_slice(&exact, &[2, 3]).unwrap();
    let wide: &[Dtype] = if common::on_gpu() { &[] } else { &[Dtype::Float64] };
    for dtype in [Dtype::Float16, Dtype::Bfloat16, Dtype::Complex64].iter().chain(wide).copied() {
        let back = a.astype(dtype).unwrap().astype(Dtype::Float32).unwrap();
        assert_eq!(back.shape(), &[2, 3]);
        assert_eq!(back.to_vec::<f32>().unwrap(), exact, "through {dtype}");
    }
    let ints = Array::from_slice(&[i32::MIN, -1, 0, 1, 1 << 24, i32::MAX], &[6]).unwrap();
    for dtype in [Dtype::Int64].iter().chain(wide).copied() {
        let back = ints.astype(dtype).unwrap().astype(Dtype::Int32).unwrap();
        assert_eq!(back.to_vec::<i32>().unwrap(), ints.to_vec::<i32>().unwrap(), "{dtype}");
    }
    let small = Array::from_slice(&[0u8, 1, 127, 255], &[4]).unwrap();
    for dtype in [Dtype::Int16, Dtype::Uint32, Dtype::Float16, Dtype::Float32] {
        let back = small.astype(dtype).unwrap().astype(Dtype::Uint8).unwrap();
        assert_eq!(back.to_vec::<u8>().unwrap(), [0, 1, 127, 255], "{dtype}");
    }
    let flags = Array::from_slice(&[true, false, true], &[3]).unwrap();
    let back = flags.astype(Dtype::Uint8).unwrap().astype(Dtype::Bool).unwrap();
    assert_eq!(back.to_vec::<bool>().unwrap(), [true, false, true]);
    // every dtype converts to every other dtype without error (no float64 on GPUs)
    let dtypes: Vec<Dtype> =
        Dtype::ALL.into_iter().filter(|d| wide.contains(d) || *d != Dtype::Float64).collect();
    for &from in &dtypes {
        let x = small.astype(from).unwrap();
        for &to in &dtypes {
            let y = x.astype(to).unwrap();
            assert_eq!(y.dtype(), to);
            y.eval().unwrap();
        }
    }
    // view round trip is bit-exact, NaN payloads included
    let bits = Array::from_slice(&[f32::NAN, -0.0, 1.5, f32::MIN_POSITIVE], &[4]).unwrap();
    let raw = ops::view(&bits, Dtype::Uint32).unwrap();
    assert_eq!(raw.to_vec::<u32>().unwrap()[1], 0x8000_0000);
    let back = ops::view(&raw, Dtype::Float32).unwrap().to_vec::<f32>().unwrap();
    let originals = bits.to_vec::<f32>().unwrap();
    for (x, y) in back.iter().zip(&originals) {
        assert_eq!(x.to_bits(), y.to_bits());
    }
    let halves = ops::view(&bits, Dtype::Float16).unwrap();
    assert_eq!(halves.shape(), &[8]);
    assert_eq!(halves.dtype(), Dtype::Float16);
    let f16s = Array::from_slice(&[f16::from_f32(1.0), f16::from_f32(-2.0)], &[2]).unwrap();
    assert_eq!(ops::view(&f16s, Dtype::Uint16).unwrap().to_vec::<u16>().unwrap(), [0x3c00, 0xc000]);
}

#[test]
fn empty_arrays() {
    let empty = Array::from_slice::<f32>(&[], &[0, 3]).unwrap();
    let row = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    let sum = ops::add(&empty, &row).unwrap();
    assert_eq!(sum.shape(), &[0, 3]);
    assert!(sum.to_vec::<f32>().unwrap().is_empty());
    assert_eq!(ops::sqrt(&empty).unwrap().shape(), &[0, 3]);
    assert_eq!(ops::less(&empty, &row).unwrap().dtype(), Dtype::Bool);
    assert_eq!((&empty * 2.0).unwrap().shape(), &[0, 3]);
    assert!(ops::allclose(&empty, &empty, 1e-5, 1e-8, false).unwrap().item::<bool>().unwrap());
    let ints = Array::from_slice::<i32>(&[], &[0]).unwrap();
    assert_eq!(ops::floor_divide(&ints, &ints).unwrap().shape(), &[0]);
    assert_eq!(ops::astype(&ints, Dtype::Float16).unwrap().dtype(), Dtype::Float16);
    let (q, r) = ops::divmod(&ints, &Array::scalar(0i32)).unwrap();
    assert_eq!((q.size(), r.size()), (0, 0));
    assert!(ops::clip(&empty, Some(&row), None).unwrap().to_vec::<f32>().unwrap().is_empty());
}

#[test]
fn incompatible_shapes_are_errors() {
    let a = Array::from_slice(&[1.0f32; 6], &[2, 3]).unwrap();
    let b = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    common::assert_err(ops::add(&a, &b), &["add", "cannot be broadcast"]);
    common::assert_err(ops::subtract(&a, &b), &["subtract", "broadcast"]);
    common::assert_err(ops::equal(&a, &b), &["equal", "broadcast"]);
    common::assert_err(ops::logical_and(&a, &b), &["logical_and", "broadcast"]);
    common::assert_err(ops::isclose(&a, &b, 1e-5, 1e-8, false), &["isclose", "broadcast"]);
    common::assert_err(ops::allclose(&a, &b, 1e-5, 1e-8, false), &["allclose", "broadcast"]);
    common::assert_err(ops::divmod(&a, &b), &["divmod", "broadcast"]);
    common::assert_err(ops::clip(&a, Some(&b), None), &["clip", "broadcast"]);
    let ints = a.astype(Dtype::Int32).unwrap();
    common::assert_err(
        ops::floor_divide(&ints, &b.astype(Dtype::Int32).unwrap()),
        &["floor_divide", "broadcast"],
    );
    common::assert_err(ops::remainder(&ints, &b.astype(Dtype::Uint8).unwrap()), &["broadcast"]);
    common::assert_err(&a + &b, &["add", "broadcast"]);
    common::assert_err(a.clone() * b.clone(), &["multiply", "broadcast"]);
    common::assert_err(&a % &b, &["remainder", "broadcast"]);
    // different shapes are simply not equal for array_equal
    assert!(!ops::array_equal(&a, &b, false).unwrap().item::<bool>().unwrap());
}

#[test]
fn bitwise_ops_reject_floats() {
    let f = Array::from_slice(&[1.5f32, 2.0], &[2]).unwrap();
    let i = Array::from_slice(&[1i32, 2], &[2]).unwrap();
    common::assert_err(ops::bitwise_and(&f, &i), &["bitwise_and", "integer or boolean"]);
    common::assert_err(ops::bitwise_or(&f, &f), &["bitwise_or", "integer or boolean"]);
    common::assert_err(ops::bitwise_xor(&i, &f), &["bitwise_xor", "integer or boolean"]);
    common::assert_err(ops::left_shift(&f, &i), &["left_shift", "integer or boolean"]);
    common::assert_err(ops::right_shift(&i, &f), &["right_shift", "integer or boolean"]);
    common::assert_err(ops::bitwise_invert(&f), &["bitwise_invert", "integer"]);
    common::assert_err(!&f, &["bitwise_invert"]);
    common::assert_err(&f & &i, &["bitwise_and"]);
    common::assert_err(&f | 1, &["bitwise_or"]);
    common::assert_err(&f ^ true, &["bitwise_xor"]);
    common::assert_err(&f << 1, &["left_shift"]);
    common::assert_err(2.0 >> &i, &["right_shift"]);
    let z = f.astype(Dtype::Complex64).unwrap();
    common::assert_err(ops::bitwise_invert(&z), &["bitwise_invert"]);
}

#[test]
fn unsupported_dtypes_are_errors() {
    let z =
        Array::from_slice(&[Complex32::new(1.0, 2.0), Complex32::new(3.0, -4.0)], &[2]).unwrap();
    common::assert_err(ops::divmod(&z, &z), &["divmod", "complex"]);
    common::assert_err(ops::remainder(&z, &z), &["remainder", "complex"]);
    common::assert_err(ops::floor_divide(&z, &z), &["complex"]);
    common::assert_err(ops::arctan2(&z, &z), &["arctan2", "complex"]);
    common::assert_err(ops::floor(&z), &["floor", "complex"]);
    common::assert_err(ops::ceil(&z), &["ceil", "complex"]);
    common::assert_err(ops::erf(&z), &["erf", "complex"]);
    common::assert_err(ops::erfinv(&z), &["erfinv", "complex"]);
    common::assert_err(&z % 2.0, &["remainder", "complex"]);
    let flags = Array::from_slice(&[true, false], &[2]).unwrap();
    common::assert_err(ops::negative(&flags), &["negative", "bool"]);
    common::assert_err(-&flags, &["negative", "bool"]);
}

#[test]
fn invalid_arguments_are_errors() {
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    common::assert_err(ops::clip(&a, None, None), &["clip", "at most one of a_min and a_max"]);
    let bytes = Array::from_slice(&[1i8, 2, 3], &[3]).unwrap();
    common::assert_err(ops::view(&bytes, Dtype::Int32), &["view", "multiple"]);
    common::assert_err(bytes.view(Dtype::Float32), &["view"]);
}

#[test]
fn scalars_that_do_not_fit_are_errors() {
    let u = Array::from_slice(&[1u8, 2], &[2]).unwrap();
    common::assert_err(&u + 300, &["add", "300", "uint8", "overflow"]);
    common::assert_err(&u - (-1), &["subtract", "overflow"]);
    common::assert_err(-1 * &u, &["multiply", "overflow"]);
    let i = Array::from_slice(&[1i32, 2], &[2]).unwrap();
    common::assert_err(&i + (1i64 << 40), &["add", "int32", "overflow"]);
    common::assert_err(&i & u64::MAX, &["bitwise_and", "overflow"]);
    common::assert_err(300 + &u, &["add", "overflow"]);
    let flags = Array::from_slice(&[true, false], &[2]).unwrap();
    common::assert_err(&flags + i64::MAX, &["add", "int32", "overflow"]);
    // in range is fine, and keeps the array's dtype
    assert_eq!((&u + 253u64).unwrap().to_vec::<u8>().unwrap(), [254, 255]);
    assert_eq!((&i * -3i8).unwrap().to_vec::<i32>().unwrap(), [-3, -6]);
}
