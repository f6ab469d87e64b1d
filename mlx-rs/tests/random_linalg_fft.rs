//! `mlx_rs::random`, `mlx_rs::linalg` and `mlx_rs::fft` against Python MLX 0.32.2 goldens
//! (`golden/gen_random_linalg_fft.py`), identities, and bad input.
//!
//! Linear algebra runs on an explicit CPU stream, which MLX 0.32.2 requires for its
//! factorizations, so these tests also pass where the default device is a GPU.

mod common;

use mlx_rs::fft::{self, FftNorm};
use mlx_rs::linalg::{self, NormOrd};
use mlx_rs::{Array, DeviceType, Dtype, Result, Stream, random};
use num_complex::Complex32;
use serde_json::Value;

const GOLDEN: &str = include_str!("golden/random_linalg_fft.json");

fn golden() -> Value {
    common::load(GOLDEN)
}

fn scalar_f32(x: f32) -> Array {
    Array::scalar(x)
}

fn cpu() -> Stream {
    Stream::cpu().expect("cpu stream")
}

/// Row-major `[m, k] @ [k, n]` in f64, the reference for the identities.
fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    out
}

fn transpose(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[j * m + i] = a[i * n + j];
        }
    }
    out
}

fn identity(n: usize) -> Vec<f64> {
    (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect()
}

fn values(a: &Array) -> Vec<f64> {
    common::values_f64(a)
}

// ------------------------------------------------------------------------------------ random

#[test]
fn key_and_split_match_python() -> Result<()> {
    let g = golden();
    common::assert_matches(&random::key(42)?, &common::case(&g, "key")["out"], 0.0, 0.0);
    let keys = random::split(&random::key(0)?, 3)?;
    common::assert_matches(&keys, &common::case(&g, "split")["out"], 0.0, 0.0);
    let (k1, k2) = random::split_pair(&random::key(7)?)?;
    let want = common::data_f64(&common::case(&g, "split_pair")["out"]);
    assert_eq!(k1.shape(), &[2]);
    assert_eq!(values(&k1), want[..2]);
    assert_eq!(values(&k2), want[2..]);
    Ok(())
}

#[test]
fn uniform_and_normal_match_python() -> Result<()> {
    let g = golden();
    let (zero, one) = (scalar_f32(0.0), scalar_f32(1.0));
    let u = random::uniform(&zero, &one, &[2, 3], Dtype::Float32, Some(&random::key(1)?))?;
    common::assert_matches(&u, &common::case(&g, "uniform")["out"], 1e-6, 1e-7);

    let c = common::case(&g, "uniform_broadcast");
    let (low, high) = (common::array(&c["low"]), common::array(&c["high"]));
    let u = random::uniform(&low, &high, &[3, 2], Dtype::Float32, Some(&random::key(11)?))?;
    common::assert_matches(&u, &c["out"], 1e-6, 1e-6);

    let n = random::normal(&[5], Dtype::Float32, 0.0, 1.0, Some(&random::key(2)?))?;
    common::assert_matches(&n, &common::case(&g, "normal")["out"], 1e-5, 1e-6);
    let n = random::normal(&[2, 2], Dtype::Float32, 1.0, 2.0, Some(&random::key(12)?))?;
    common::assert_matches(&n, &common::case(&g, "normal_loc_scale")["out"], 1e-5, 1e-5);

    let c = common::case(&g, "normal_broadcast");
    let loc = common::array(&c["loc"]);
    let n = random::normal_broadcast(
        &[2, 3],
        Dtype::Float32,
        Some(&loc),
        None,
        Some(&random::key(13)?),
    )?;
    common::assert_matches(&n, &c["out"], 1e-5, 1e-5);
    Ok(())
}

#[test]
fn integer_and_boolean_samplers_match_python() -> Result<()> {
    let g = golden();
    let (lo, hi) = (Array::scalar(0i32), Array::scalar(10i32));
    let r = random::randint(&lo, &hi, &[6], Dtype::Int32, Some(&random::key(3)?))?;
    common::assert_matches(&r, &common::case(&g, "randint")["out"], 0.0, 0.0);
    let (lo, hi) = (Array::scalar(-5i32), Array::scalar(5i32));
    let r = random::randint(&lo, &hi, &[2, 3], Dtype::Int16, Some(&random::key(14)?))?;
    common::assert_matches(&r, &common::case(&g, "randint_int16")["out"], 0.0, 0.0);

    let b = random::bernoulli(&scalar_f32(0.5), Some(&[16]), Some(&random::key(4)?))?;
    common::assert_matches(&b, &common::case(&g, "bernoulli")["out"], 0.0, 0.0);
    let c = common::case(&g, "bernoulli_array");
    let b = random::bernoulli(&common::array(&c["p"]), None, Some(&random::key(15)?))?;
    common::assert_matches(&b, &c["out"], 0.0, 0.0);
    Ok(())
}

#[test]
fn categorical_matches_python() -> Result<()> {
    let g = golden();
    let logits = common::array(&common::case(&g, "categorical")["logits"]);
    let c = random::categorical(&logits, -1, None, None, Some(&random::key(5)?))?;
    common::assert_matches(&c, &common::case(&g, "categorical")["out"], 0.0, 0.0);
    let c = random::categorical(&logits, -1, None, Some(3), Some(&random::key(16)?))?;
    common::assert_matches(&c, &common::case(&g, "categorical_num_samples")["out"], 0.0, 0.0);
    let c = random::categorical(&logits, -1, Some(&[3, 2]), None, Some(&random::key(17)?))?;
    common::assert_matches(&c, &common::case(&g, "categorical_shape")["out"], 0.0, 0.0);
    let c = random::categorical(&logits, 0, None, None, Some(&random::key(18)?))?;
    common::assert_matches(&c, &common::case(&g, "categorical_axis0")["out"], 0.0, 0.0);
    Ok(())
}

#[test]
fn permutation_matches_python() -> Result<()> {
    let g = golden();
    let p = random::permutation_arange(8, Some(&random::key(6)?))?;
    common::assert_matches(&p, &common::case(&g, "permutation_arange")["out"], 0.0, 0.0);
    let c = common::case(&g, "permutation_array");
    let x = common::array(&c["x"]);
    let p = random::permutation(&x, 0, Some(&random::key(19)?))?;
    common::assert_matches(&p, &c["out"], 0.0, 0.0);
    let p = random::permutation(&x, 1, Some(&random::key(20)?))?;
    common::assert_matches(&p, &c["out_axis1"], 0.0, 0.0);
    let p = random::permutation(&x, -1, Some(&random::key(20)?))?;
    common::assert_matches(&p, &c["out_axis1"], 0.0, 0.0);

    // Nothing to permute: MLX 0.32.2 would divide by zero; we return the trivial answer.
    let empty = random::permutation_arange(0, None)?;
    assert_eq!((empty.shape(), empty.dtype()), (&[0][..], Dtype::Uint32));
    let x0 = Array::from_slice::<f32>(&[], &[0, 3])?;
    assert_eq!(random::permutation(&x0, 0, None)?.shape(), &[0, 3]);
    Ok(())
}

#[test]
fn other_distributions_match_python() -> Result<()> {
    let g = golden();
    let (lo, hi) = (scalar_f32(-1.0), scalar_f32(1.0));
    let t = random::truncated_normal(&lo, &hi, &[5], Dtype::Float32, Some(&random::key(7)?))?;
    common::assert_matches(&t, &common::case(&g, "truncated_normal")["out"], 1e-5, 1e-6);
    let x = random::gumbel(&[4], Dtype::Float32, Some(&random::key(8)?))?;
    common::assert_matches(&x, &common::case(&g, "gumbel")["out"], 1e-5, 1e-6);
    let x = random::laplace(&[4], Dtype::Float32, 1.0, 0.5, Some(&random::key(9)?))?;
    common::assert_matches(&x, &common::case(&g, "laplace")["out"], 1e-5, 1e-6);

    let c = common::case(&g, "multivariate_normal");
    let (mean, cov) = (common::array(&c["mean"]), common::array(&c["cov"]));
    let key = random::key(10)?;
    let x =
        random::multivariate_normal_device(&mean, &cov, &[3], Dtype::Float32, Some(&key), &cpu())?;
    common::assert_matches(&x, &c["out"], 1e-4, 1e-4);
    Ok(())
}

#[test]
fn bits_have_the_requested_width() -> Result<()> {
    let key = random::key(0)?;
    for (width, dtype) in [(1, Dtype::Uint8), (2, Dtype::Uint16), (4, Dtype::Uint32)] {
        let b = random::bits(&[2, 5], width, Some(&key))?;
        assert_eq!((b.shape(), b.dtype()), (&[2, 5][..], dtype));
    }
    // The same key gives the same bits.
    let a = random::bits(&[8], 4, Some(&key))?.to_vec::<u32>()?;
    assert_eq!(a, random::bits(&[8], 4, Some(&key))?.to_vec::<u32>()?);
    Ok(())
}

#[test]
fn samples_have_the_right_statistics() -> Result<()> {
    let key = random::key(1234)?;
    let n = values(&random::normal(&[10_000], Dtype::Float32, 0.0, 1.0, Some(&key))?);
    let mean = n.iter().sum::<f64>() / n.len() as f64;
    let var = n.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n.len() as f64;
    assert!(mean.abs() < 0.05, "mean {mean}");
    assert!((var.sqrt() - 1.0).abs() < 0.05, "std {}", var.sqrt());

    let (zero, one) = (scalar_f32(0.0), scalar_f32(1.0));
    let u = values(&random::uniform(&zero, &one, &[10_000], Dtype::Float32, Some(&key))?);
    assert!(u.iter().all(|x| (0.0..1.0).contains(x)));
    let mean = u.iter().sum::<f64>() / u.len() as f64;
    assert!((mean - 0.5).abs() < 0.02, "uniform mean {mean}");

    let b = values(&random::bernoulli(&scalar_f32(0.25), Some(&[10_000]), Some(&key))?);
    let rate = b.iter().sum::<f64>() / b.len() as f64;
    assert!((rate - 0.25).abs() < 0.03, "bernoulli rate {rate}");

    let (lo, hi) = (Array::scalar(3i32), Array::scalar(7i32));
    let r = values(&random::randint(&lo, &hi, &[1000], Dtype::Int32, Some(&key))?);
    assert!(r.iter().all(|x| (3.0..7.0).contains(x)));
    for v in 3..7 {
        assert!(r.contains(&f64::from(v)), "randint never drew {v}");
    }
    Ok(())
}

#[test]
fn keys_determine_the_values() -> Result<()> {
    let (zero, one) = (scalar_f32(0.0), scalar_f32(1.0));
    let draw = |key: Option<&Array>| -> Result<Vec<f32>> {
        random::uniform(&zero, &one, &[4], Dtype::Float32, key)?.to_vec::<f32>()
    };
    let (k1, k2) = (random::key(1)?, random::key(2)?);
    assert_eq!(draw(Some(&k1))?, draw(Some(&k1))?);
    assert_ne!(draw(Some(&k1))?, draw(Some(&k2))?);

    // The global key advances with each draw, and seeding resets it.
    random::seed(99)?;
    let first = draw(None)?;
    let second = draw(None)?;
    assert_ne!(first, second);
    random::seed(99)?;
    assert_eq!(draw(None)?, first);
    Ok(())
}

#[test]
fn random_rejects_bad_input() -> Result<()> {
    let key = random::key(0)?;
    let (zero, one) = (scalar_f32(0.0), scalar_f32(1.0));
    let bad_key = Array::from_slice(&[1u32, 2, 3], &[3])?;
    common::assert_err(
        random::uniform(&zero, &one, &[2], Dtype::Float32, Some(&bad_key)),
        &["key shape"],
    );
    let float_key = Array::from_slice(&[1.0f32, 2.0], &[2])?;
    common::assert_err(
        random::normal(&[2], Dtype::Float32, 0.0, 1.0, Some(&float_key)),
        &["key type"],
    );
    common::assert_err(random::split(&bad_key, 2), &["key shape"]);
    common::assert_err(random::split(&key, -1), &["negative"]);
    common::assert_err(random::split_pair(&bad_key), &["split", "key shape"]);
    common::assert_err(
        random::uniform(&zero, &one, &[-2], Dtype::Float32, Some(&key)),
        &["negative dimensions"],
    );
    common::assert_err(
        random::normal(&[2, -3], Dtype::Float32, 0.0, 1.0, Some(&key)),
        &["negative dimensions"],
    );
    common::assert_err(
        random::uniform(&zero, &one, &[2], Dtype::Int32, Some(&key)),
        &["uniform", "floating point"],
    );
    let (lo, hi) = (Array::scalar(0i32), Array::scalar(5i32));
    common::assert_err(
        random::randint(&lo, &hi, &[2], Dtype::Float32, Some(&key)),
        &["randint", "integer"],
    );
    common::assert_err(random::gumbel(&[2], Dtype::Int32, Some(&key)), &["floating point"]);
    common::assert_err(
        random::laplace(&[2], Dtype::Int32, 0.0, 1.0, Some(&key)),
        &["laplace", "floating point"],
    );
    let p = Array::from_slice(&[0.1f32, 0.2, 0.3], &[3])?;
    common::assert_err(random::bernoulli(&p, Some(&[2]), Some(&key)), &["broadcast"]);

    let int_p = Array::from_slice(&[1i32, 0], &[2])?;
    common::assert_err(random::bernoulli(&int_p, None, Some(&key)), &["bernoulli", "float"]);
    common::assert_err(
        random::categorical(&Array::scalar(1.0f32), -1, None, None, Some(&key)),
        &["categorical", "0 dimensions"],
    );

    let logits = Array::from_slice(&[0.0f32; 6], &[2, 3])?;
    common::assert_err(
        random::categorical(&logits, -1, Some(&[2]), Some(3), Some(&key)),
        &["at most one of shape or num_samples"],
    );
    common::assert_err(
        random::categorical(&logits, 5, None, None, Some(&key)),
        &["invalid axis 5"],
    );
    common::assert_err(random::categorical(&logits, -1, None, Some(-1), Some(&key)), &["negative"]);

    let x = Array::from_slice(&[1i32, 2, 3, 4], &[4])?;
    common::assert_err(random::permutation(&x, 3, Some(&key)), &["axis 3", "out of bounds"]);
    common::assert_err(random::permutation(&Array::scalar(3.0f32), 0, None), &["out of bounds"]);
    common::assert_err(random::permutation_arange(-3, Some(&key)), &["negative"]);
    common::assert_err(random::bits(&[2], 3, Some(&key)), &["width"]);

    let mean = Array::from_slice(&[0.0f32, 0.0], &[2])?;
    let cov3 = Array::from_slice(&[1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], &[3, 3])?;
    common::assert_err(
        random::multivariate_normal_device(&mean, &cov3, &[], Dtype::Float32, Some(&key), &cpu()),
        &["mean and cov"],
    );
    let cov2 = Array::from_slice(&[1.0f32, 0.0, 0.0, 1.0], &[2, 2])?;
    common::assert_err(
        random::multivariate_normal_device(&mean, &cov2, &[], Dtype::Int32, Some(&key), &cpu()),
        &["float32"],
    );
    Ok(())
}

// ------------------------------------------------------------------------------------ linalg

struct Inputs {
    a: Array,
    s: Array,
    l: Array,
    r: Array,
    b: Array,
    bm: Array,
}

fn inputs(g: &Value) -> Inputs {
    let c = common::case(g, "linalg_inputs");
    Inputs {
        a: common::array(&c["A"]),
        s: common::array(&c["S"]),
        l: common::array(&c["L"]),
        r: common::array(&c["R"]),
        b: common::array(&c["b"]),
        bm: common::array(&c["B"]),
    }
}

#[test]
fn norms_match_python() -> Result<()> {
    let g = golden();
    let x = inputs(&g);
    let c = common::case(&g, "norm");
    let v = Array::from_slice(&[3.0f32, -4.0, 12.0], &[3])?;
    let s = cpu();
    let check = |got: Array, name: &str| common::assert_matches(&got, &c[name], 1e-5, 1e-5);
    check(linalg::norm_device(&x.a, None, None, false, &s)?, "default_matrix");
    check(linalg::norm(&v, None, None, false)?, "default_vector");
    check(linalg::norm(&v, Some(1.into()), None, false)?, "vec_1");
    check(linalg::norm(&v, Some(0.into()), None, false)?, "vec_0");
    check(linalg::norm(&v, Some(NormOrd::P(3.0)), None, false)?, "vec_3");
    check(linalg::norm(&v, Some("inf".parse()?), None, false)?, "vec_inf");
    check(linalg::norm(&v, Some(f64::NEG_INFINITY.into()), None, false)?, "vec_neg_inf");
    check(linalg::norm(&x.a, Some(1.into()), None, false)?, "mat_1");
    check(linalg::norm(&x.a, Some(f64::INFINITY.into()), None, false)?, "mat_inf");
    check(linalg::norm(&x.a, Some((-1).into()), None, false)?, "mat_neg_1");
    check(linalg::norm(&x.a, Some(NormOrd::Fro), None, false)?, "fro");
    check(linalg::norm(&x.a, Some(NormOrd::try_from("fro")?), None, false)?, "fro");
    check(linalg::norm_device(&x.a, Some(NormOrd::Nuc), None, false, &s)?, "nuc");
    check(linalg::norm_device(&x.a, Some(2.into()), None, false, &s)?, "mat_2");
    check(linalg::norm(&x.a, None, Some(&[1]), true)?, "axis1_keepdims");
    check(linalg::norm(&x.a, Some(1.into()), Some(&[0]), false)?, "axis0_ord1");
    Ok(())
}

#[test]
fn batched_frobenius_norm_matches_python() -> Result<()> {
    let g = golden();
    let c = common::case(&g, "norm");
    // Same input as the generator's pattern((2, 3, 3), 0.2).
    let data: Vec<f32> = (0..18).map(|i| (i as f32 * 0.37 + 0.2).sin()).collect();
    let batch = Array::from_slice(&data, &[2, 3, 3])?;
    let got = linalg::norm(&batch, Some(NormOrd::Fro), Some(&[1, 2]), false)?;
    common::assert_matches(&got, &c["batch_fro"], 1e-5, 1e-5);
    Ok(())
}

#[test]
fn norm_orders_parse_like_python() {
    assert_eq!("nuc".parse::<NormOrd>().unwrap(), NormOrd::Nuc);
    assert_eq!("2".parse::<NormOrd>().unwrap(), NormOrd::P(2.0));
    assert_eq!("-inf".parse::<NormOrd>().unwrap(), NormOrd::P(f64::NEG_INFINITY));
    assert_eq!(NormOrd::Fro.to_string(), "fro");
    common::assert_err("foo".parse::<NormOrd>(), &["invalid norm order", "foo"]);
    common::assert_err(NormOrd::try_from("nan"), &["invalid norm order"]);
    common::assert_err(NormOrd::try_from(""), &["invalid norm order"]);
}

#[test]
fn qr_and_svd_reconstruct_their_input() -> Result<()> {
    let g = golden();
    let x = inputs(&g);
    let s = cpu();
    let a = values(&x.a);

    let (q, r) = linalg::qr_device(&x.a, &s)?;
    let (qv, rv) = (values(&q), values(&r));
    common::assert_close(&matmul(&qv, &rv, 3, 3, 3), &a, 1e-5, 1e-5);
    common::assert_close(&matmul(&transpose(&qv, 3, 3), &qv, 3, 3, 3), &identity(3), 0.0, 1e-5);
    for i in 0..3 {
        for j in 0..i {
            assert!(rv[i * 3 + j].abs() < 1e-6, "R is not upper triangular: {rv:?}");
        }
    }
    // Signs may differ between LAPACK builds; magnitudes may not.
    let abs = |v: Vec<f64>| v.into_iter().map(f64::abs).collect::<Vec<_>>();
    let c = common::case(&g, "qr");
    common::assert_close(&abs(rv), &abs(common::data_f64(&c["r"])), 1e-4, 1e-5);

    // R is 4 x 3: U is 4 x 4, S has 3 values, Vt is 3 x 3.
    let c = common::case(&g, "svd");
    let parts = linalg::svd_device(&x.r, true, &s)?;
    assert_eq!(parts.len(), 3);
    let (u, sv, vt) = (&parts[0], &parts[1], &parts[2]);
    assert_eq!((u.shape(), sv.shape(), vt.shape()), (&[4, 4][..], &[3][..], &[3, 3][..]));
    common::assert_matches(sv, &c["s"], 1e-5, 1e-5);
    let (uv, svals, vtv) = (values(u), values(sv), values(vt));
    let mut us = vec![0.0; 4 * 3];
    for i in 0..4 {
        for j in 0..3 {
            us[i * 3 + j] = uv[i * 4 + j] * svals[j];
        }
    }
    common::assert_close(&matmul(&us, &vtv, 4, 3, 3), &values(&x.r), 1e-4, 1e-5);
    let only = linalg::svd_device(&x.r, false, &s)?;
    assert_eq!(only.len(), 1);
    common::assert_matches(&only[0], &c["s_only"], 1e-5, 1e-5);
    Ok(())
}

#[test]
fn inverses_match_python() -> Result<()> {
    let g = golden();
    let x = inputs(&g);
    let s = cpu();
    let inv = linalg::inv_device(&x.a, &s)?;
    common::assert_matches(&inv, &common::case(&g, "inv")["out"], 1e-5, 1e-6);
    common::assert_close(&matmul(&values(&x.a), &values(&inv), 3, 3, 3), &identity(3), 0.0, 1e-5);

    let c = common::case(&g, "inv_batch");
    common::assert_matches(
        &linalg::inv_device(&common::array(&c["x"]), &s)?,
        &c["out"],
        1e-4,
        1e-6,
    );

    let c = common::case(&g, "tri_inv");
    common::assert_matches(&linalg::tri_inv_device(&x.l, false, &s)?, &c["lower"], 1e-5, 1e-6);
    let lt = Array::from_slice(
        &transpose(&values(&x.l), 3, 3).iter().map(|&v| v as f32).collect::<Vec<_>>(),
        &[3, 3],
    )?;
    common::assert_matches(&linalg::tri_inv_device(&lt, true, &s)?, &c["upper"], 1e-5, 1e-6);

    let c = common::case(&g, "pinv");
    common::assert_matches(&linalg::pinv_device(&x.r, &s)?, &c["out"], 1e-4, 1e-5);
    Ok(())
}

#[test]
fn cholesky_matches_python() -> Result<()> {
    let g = golden();
    let x = inputs(&g);
    let s = cpu();
    let c = common::case(&g, "cholesky");
    let l = linalg::cholesky_device(&x.s, false, &s)?;
    common::assert_matches(&l, &c["lower"], 1e-5, 1e-5);
    let lv = values(&l);
    common::assert_close(&matmul(&lv, &transpose(&lv, 3, 3), 3, 3, 3), &values(&x.s), 1e-5, 1e-4);
    let u = linalg::cholesky_device(&x.s, true, &s)?;
    common::assert_matches(&u, &c["upper"], 1e-5, 1e-5);

    let inv = linalg::cholesky_inv_device(&l, false, &s)?;
    common::assert_matches(&inv, &common::case(&g, "cholesky_inv")["out"], 1e-4, 1e-7);
    common::assert_close(&matmul(&values(&x.s), &values(&inv), 3, 3, 3), &identity(3), 0.0, 1e-5);
    Ok(())
}

#[test]
fn determinants_match_python() -> Result<()> {
    let g = golden();
    let x = inputs(&g);
    let s = cpu();
    common::assert_matches(
        &linalg::det_device(&x.a, &s)?,
        &common::case(&g, "det")["out"],
        1e-5,
        1e-5,
    );
    let (sign, logabs) = linalg::slogdet_device(&x.a, &s)?;
    let c = common::case(&g, "slogdet");
    common::assert_matches(&sign, &c["sign"], 0.0, 0.0);
    common::assert_matches(&logabs, &c["logabsdet"], 1e-5, 1e-6);
    Ok(())
}

#[test]
fn eigen_decompositions_match_python() -> Result<()> {
    let g = golden();
    let x = inputs(&g);
    let s = cpu();
    let c = common::case(&g, "eigh");
    let (w, v) = linalg::eigh_device(&x.s, "L", &s)?;
    common::assert_matches(&w, &c["w"], 1e-5, 1e-4);
    // S v = v diag(w)
    let (wv, vv) = (values(&w), values(&v));
    let sv = matmul(&values(&x.s), &vv, 3, 3, 3);
    let vw: Vec<f64> = (0..9).map(|i| vv[i] * wv[i % 3]).collect();
    common::assert_close(&sv, &vw, 1e-4, 1e-4);
    common::assert_matches(&linalg::eigh_device(&x.s, "U", &s)?.0, &c["w_upper"], 1e-5, 1e-4);
    common::assert_matches(&linalg::eigvalsh_device(&x.s, "L", &s)?, &c["eigvalsh"], 1e-5, 1e-4);

    // A general matrix: eigenvalue order is LAPACK's, so compare sorted.
    let c = common::case(&g, "eig");
    let e = common::array(&c["x"]);
    let sorted = |a: &Array| -> Result<Vec<f32>> {
        let mut re: Vec<f32> = a.to_vec::<Complex32>()?.iter().map(|z| z.re).collect();
        re.sort_by(f32::total_cmp);
        Ok(re)
    };
    let want = {
        let mut re: Vec<f32> = common::complex_data(&c["values"]).iter().map(|z| z.re).collect();
        re.sort_by(f32::total_cmp);
        re
    };
    assert_eq!(sorted(&linalg::eigvals_device(&e, &s)?)?, want);
    let (vals, vecs) = linalg::eig_device(&e, &s)?;
    assert_eq!(sorted(&vals)?, want);
    assert_eq!((vals.dtype(), vecs.dtype()), (Dtype::Complex64, Dtype::Complex64));
    // E v_j = λ_j v_j for each column j.
    let (lam, vz) = (vals.to_vec::<Complex32>()?, vecs.to_vec::<Complex32>()?);
    let ez: Vec<Complex32> = values(&e).iter().map(|&r| Complex32::new(r as f32, 0.0)).collect();
    for j in 0..2 {
        for i in 0..2 {
            let lhs = ez[i * 2] * vz[j] + ez[i * 2 + 1] * vz[2 + j];
            let rhs = lam[j] * vz[i * 2 + j];
            assert!((lhs - rhs).norm() < 1e-5, "E v != λ v: {lhs} vs {rhs}");
        }
    }
    Ok(())
}

#[test]
fn lu_matches_python() -> Result<()> {
    let g = golden();
    let x = inputs(&g);
    let s = cpu();
    let c = common::case(&g, "lu");
    let (p, l, u) = linalg::lu_device(&x.a, &s)?;
    common::assert_matches(&p, &c["p"], 0.0, 0.0);
    common::assert_matches(&l, &c["l"], 1e-5, 1e-6);
    common::assert_matches(&u, &c["u"], 1e-5, 1e-5);
    // A[p] = L U
    let (a, pv) = (values(&x.a), values(&p));
    let permuted: Vec<f64> =
        pv.iter().flat_map(|&row| a[row as usize * 3..][..3].to_vec()).collect();
    common::assert_close(&matmul(&values(&l), &values(&u), 3, 3, 3), &permuted, 1e-5, 1e-5);

    let c = common::case(&g, "lu_factor");
    let (lu, pivots) = linalg::lu_factor_device(&x.a, &s)?;
    common::assert_matches(&lu, &c["lu"], 1e-5, 1e-6);
    common::assert_matches(&pivots, &c["pivots"], 0.0, 0.0);
    Ok(())
}

#[test]
fn solvers_match_python() -> Result<()> {
    let g = golden();
    let x = inputs(&g);
    let s = cpu();
    let c = common::case(&g, "solve");
    let sol = linalg::solve_device(&x.a, &x.b, &s)?;
    common::assert_matches(&sol, &c["vector"], 1e-5, 1e-6);
    common::assert_close(&matmul(&values(&x.a), &values(&sol), 3, 3, 1), &values(&x.b), 1e-5, 1e-5);
    let sol = linalg::solve_device(&x.a, &x.bm, &s)?;
    common::assert_matches(&sol, &c["matrix"], 1e-5, 1e-6);
    common::assert_close(
        &matmul(&values(&x.a), &values(&sol), 3, 3, 2),
        &values(&x.bm),
        1e-5,
        1e-5,
    );

    let c = common::case(&g, "solve_triangular");
    common::assert_matches(
        &linalg::solve_triangular_device(&x.l, &x.b, false, &s)?,
        &c["lower"],
        1e-5,
        1e-6,
    );
    let lt = Array::from_slice(
        &transpose(&values(&x.l), 3, 3).iter().map(|&v| v as f32).collect::<Vec<_>>(),
        &[3, 3],
    )?;
    common::assert_matches(
        &linalg::solve_triangular_device(&lt, &x.b, true, &s)?,
        &c["upper"],
        1e-5,
        1e-6,
    );
    Ok(())
}

#[test]
fn cross_matches_python() -> Result<()> {
    let g = golden();
    let c = common::case(&g, "cross");
    let (a, b) = (common::array(&c["a"]), common::array(&c["b"]));
    common::assert_matches(&linalg::cross(&a, &b, -1)?, &c["out"], 1e-6, 1e-6);
    let at = Array::from_slice(&[1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0], &[3, 2])?;
    let bt = Array::from_slice(&[7.0f32, -8.0, 9.0], &[3, 1])?;
    common::assert_matches(&linalg::cross(&at, &bt, 0)?, &c["axis0"], 1e-6, 1e-6);
    Ok(())
}

/// The default-device form runs where MLX supports it (the CPU); on a GPU default device MLX
/// 0.32.2 reports that the op needs a CPU stream. It never crashes.
#[test]
fn default_device_linalg_works_or_errs() -> Result<()> {
    let g = golden();
    let x = inputs(&g);
    let on_cpu = mlx_rs::Device::default_device()?.device_type() == DeviceType::Cpu;
    let expect_cpu_only = |err: mlx_rs::Error| {
        assert!(!on_cpu, "failed on the CPU: {err}");
        assert!(err.message().to_lowercase().contains("cpu stream"), "unclear error: {err}");
    };
    match linalg::inv(&x.a) {
        Ok(inv) => common::assert_matches(&inv, &common::case(&g, "inv")["out"], 1e-5, 1e-6),
        Err(err) => expect_cpu_only(err),
    }
    for result in [linalg::det(&x.a), linalg::cholesky(&x.s, false), linalg::solve(&x.a, &x.b)] {
        if let Err(err) = result.and_then(|r| r.eval().map(|()| r)) {
            expect_cpu_only(err);
        }
    }
    match linalg::qr(&x.a) {
        Ok((q, _)) => assert_eq!(q.shape(), &[3, 3]),
        Err(err) => expect_cpu_only(err),
    }
    if let Err(err) = linalg::norm(&x.a, Some(NormOrd::Nuc), None, false) {
        expect_cpu_only(err);
    }
    // Ops with GPU kernels work on every default device.
    common::assert_matches(
        &linalg::cross(&x.a, &x.b, -1)?,
        &common::case(&g, "cross_default")["out"],
        1e-6,
        1e-6,
    );
    assert_eq!(linalg::norm(&x.b, None, None, false)?.shape(), &[] as &[i32]);
    Ok(())
}

#[test]
fn linalg_rejects_bad_input() -> Result<()> {
    let s = cpu();
    let rect = Array::from_slice(&[1.0f32; 6], &[2, 3])?;
    common::assert_err(linalg::inv_device(&rect, &s), &["inv", "square"]);
    common::assert_err(linalg::cholesky_device(&rect, false, &s), &["cholesky", "square"]);
    common::assert_err(linalg::det_device(&rect, &s), &["det", "square"]);
    common::assert_err(linalg::eig_device(&rect, &s), &["eig", "square"]);
    common::assert_err(linalg::tri_inv_device(&rect, false, &s), &["square"]);
    let vector = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3])?;
    common::assert_err(linalg::inv_device(&vector, &s), &["dimensions"]);
    common::assert_err(linalg::svd_device(&vector, true, &s), &["svd", "dimensions"]);
    let ints = Array::from_slice(&[1i32, 0, 0, 1], &[2, 2])?;
    common::assert_err(linalg::inv_device(&ints, &s), &["float32"]);
    common::assert_err(linalg::cholesky_device(&ints, false, &s), &["float32"]);

    // Empty matrices would crash MLX 0.32.2 (division by zero); they are rejected first.
    let empty = Array::from_slice::<f32>(&[], &[0, 0])?;
    for (op, result) in [
        ("inv", linalg::inv_device(&empty, &s)),
        ("tri_inv", linalg::tri_inv_device(&empty, false, &s)),
        ("cholesky_inv", linalg::cholesky_inv_device(&empty, false, &s)),
        ("solve", linalg::solve_device(&empty, &Array::from_slice::<f32>(&[], &[0])?, &s)),
        ("solve_triangular", linalg::solve_triangular_device(&empty, &empty, true, &s)),
    ] {
        common::assert_err(result, &[op, "zero dimension"]);
    }
    common::assert_err(
        linalg::lu_device(&Array::from_slice::<f32>(&[], &[0, 3])?, &s),
        &["lu", "zero"],
    );
    common::assert_err(linalg::lu_factor_device(&empty, &s), &["lu_factor", "zero"]);
    // A batch of zero matrices is fine.
    let none = Array::from_slice::<f32>(&[], &[0, 2, 2])?;
    assert_eq!(linalg::inv_device(&none, &s)?.shape(), &[0, 2, 2]);

    // A singular matrix fails when evaluated.
    let singular = Array::from_slice(&[1.0f32, 2.0, 2.0, 4.0], &[2, 2])?;
    common::assert_err(
        linalg::inv_device(&singular, &s).and_then(|inv| inv.to_vec::<f32>()),
        &["failed"],
    );

    let sq = Array::from_slice(&[2.0f32, 1.0, 1.0, 2.0], &[2, 2])?;
    common::assert_err(linalg::solve_device(&sq, &vector, &s), &["solve", "dimension"]);
    common::assert_err(linalg::eigh_device(&sq, "X", &s), &["eigh", "UPLO"]);
    common::assert_err(linalg::eigvalsh_device(&sq, "lower", &s), &["eigvalsh", "UPLO"]);

    common::assert_err(linalg::norm(&sq, None, Some(&[5]), false), &["axis 5"]);
    common::assert_err(linalg::norm(&sq, None, Some(&[0, 1, 1]), false), &["too many axes"]);
    common::assert_err(linalg::norm(&sq, Some(3.into()), None, false), &["invalid ord 3"]);
    common::assert_err(
        linalg::norm(&vector, Some(NormOrd::Fro), None, false),
        &["fro", "matrices"],
    );
    common::assert_err(
        linalg::norm(&sq, Some(NormOrd::P(f64::NAN)), None, false),
        &["invalid ord"],
    );
    let cube = Array::from_slice(&[0.0f32; 8], &[2, 2, 2])?;
    common::assert_err(linalg::norm(&cube, Some(2.into()), None, false), &["too many axes"]);

    common::assert_err(linalg::eigvals_device(&ints, &s), &["eigvals", "float32"]);
    common::assert_err(linalg::lu_device(&vector, &s), &["lu", "dimensions"]);
    common::assert_err(linalg::qr_device(&vector, &s), &["qr", "dimensions"]);
    common::assert_err(linalg::slogdet_device(&rect, &s), &["slogdet"]);
    common::assert_err(linalg::eigh_device(&rect, "L", &s), &["eigh", "square"]);
    common::assert_err(linalg::cholesky_inv_device(&rect, false, &s), &["square"]);

    let four = Array::from_slice(&[1.0f32; 4], &[4])?;
    common::assert_err(linalg::cross(&four, &four, -1), &["size 2 or 3"]);
    common::assert_err(linalg::cross(&vector, &vector, 4), &["axis 4"]);
    Ok(())
}

// ------------------------------------------------------------------------------------ fft

struct Signals {
    x: Array,
    xc: Array,
    m: Array,
    m3: Array,
}

fn signals(g: &Value) -> Signals {
    let c = common::case(g, "fft_inputs");
    Signals {
        x: common::array(&c["x"]),
        xc: common::array(&c["xc"]),
        m: common::array(&c["X"]),
        m3: common::array(&c["X3"]),
    }
}

const B: FftNorm = FftNorm::Backward;

#[track_caller]
fn close(got: &Array, want: &Value) {
    common::assert_matches(got, want, 1e-4, 1e-4);
}

#[test]
fn one_dimensional_ffts_match_python() -> Result<()> {
    let g = golden();
    let x = signals(&g);
    let c = common::case(&g, "fft");
    close(&fft::fft(&x.x, None, -1, B)?, &c["out"]);
    close(&fft::fft(&x.x, Some(6), -1, B)?, &c["n6"]);
    close(&fft::fft(&x.x, Some(10), 0, B)?, &c["n10"]);
    close(&fft::fft(&x.xc, None, -1, B)?, &c["complex"]);
    close(&fft::fft(&x.m, None, 0, B)?, &c["axis0"]);
    close(&fft::fft(&x.x, None, -1, FftNorm::Ortho)?, &c["ortho"]);
    close(&fft::fft(&x.x, None, -1, FftNorm::Forward)?, &c["forward"]);
    assert_eq!(FftNorm::default(), FftNorm::Backward);

    let c = common::case(&g, "ifft");
    close(&fft::ifft(&x.xc, None, -1, B)?, &c["out"]);
    close(&fft::ifft(&x.xc, Some(5), -1, B)?, &c["n5"]);
    let c = common::case(&g, "rfft");
    close(&fft::rfft(&x.x, None, -1, B)?, &c["out"]);
    close(&fft::rfft(&x.x, Some(5), -1, B)?, &c["n5"]);
    close(&fft::rfft(&x.m, None, 0, B)?, &c["axis0"]);
    let c = common::case(&g, "irfft");
    let spectrum = fft::rfft(&x.x, None, -1, B)?;
    close(&fft::irfft(&spectrum, None, -1, B)?, &c["out"]);
    close(&fft::irfft(&spectrum, Some(7), -1, B)?, &c["n7"]);
    Ok(())
}

/// Applies `f` to every element of a complex array, on the Rust side.
fn map_complex(a: &Array, f: impl Fn(Complex32) -> Complex32) -> Result<Array> {
    let data: Vec<Complex32> = a.to_vec::<Complex32>()?.into_iter().map(f).collect();
    Array::from_slice(&data, a.shape())
}

#[test]
fn multi_dimensional_ffts_match_python() -> Result<()> {
    let g = golden();
    let x = signals(&g);
    let c = common::case(&g, "fft2");
    close(&fft::fft2(&x.m, None, None, B)?, &c["out"]);
    close(&fft::fft2(&x.m, Some(&[3, 8]), None, B)?, &c["s"]);
    close(&fft::fft2(&x.m3, None, Some(&[0, 2]), B)?, &c["axes"]);

    let doubled = map_complex(&fft::fft2(&x.m, None, None, B)?, |z| z * 2.0)?;
    close(&fft::ifft2(&doubled, None, None, B)?, &common::case(&g, "ifft2")["out"]);

    let c = common::case(&g, "fftn");
    close(&fft::fftn(&x.m3, None, None, B)?, &c["out"]);
    close(&fft::fftn(&x.m3, None, Some(&[1, 2]), B)?, &c["axes"]);
    close(&fft::fftn(&x.m3, Some(&[3, 5]), Some(&[0, 1]), B)?, &c["s_axes"]);
    // Sizes without axes transform the last len(s) axes, as MLX documents.
    close(&fft::fftn(&x.m3, Some(&[3, 5]), None, B)?, &c["s_last"]);

    let shifted = map_complex(&fft::fftn(&x.m3, None, None, B)?, |z| z + 1.0)?;
    close(&fft::ifftn(&shifted, None, None, B)?, &common::case(&g, "ifftn")["out"]);

    let c = common::case(&g, "rfft2");
    let r2 = fft::rfft2(&x.m, None, None, B)?;
    close(&r2, &c["out"]);
    close(&fft::rfft2(&x.m, Some(&[4, 5]), None, B)?, &c["s"]);
    let c = common::case(&g, "irfft2");
    close(&fft::irfft2(&r2, None, None, B)?, &c["out"]);
    close(&fft::irfft2(&r2, Some(&[4, 5]), None, B)?, &c["s"]);

    let c = common::case(&g, "rfftn");
    let rn = fft::rfftn(&x.m3, None, None, B)?;
    close(&rn, &c["out"]);
    close(&fft::rfftn(&x.m3, None, Some(&[0, 1]), B)?, &c["axes"]);
    let c = common::case(&g, "irfftn");
    close(&fft::irfftn(&rn, None, None, B)?, &c["out"]);
    close(&fft::irfftn(&rn, Some(&[2, 4, 7]), Some(&[0, 1, 2]), B)?, &c["s"]);
    Ok(())
}

#[test]
fn shifts_and_frequencies_match_python() -> Result<()> {
    let g = golden();
    let c = common::case(&g, "fftshift");
    let x = common::array(&c["x"]);
    common::assert_matches(&fft::fftshift(&x, None)?, &c["out"], 0.0, 0.0);
    common::assert_matches(&fft::fftshift(&x, Some(&[1]))?, &c["axes"], 0.0, 0.0);
    common::assert_matches(&fft::ifftshift(&x, None)?, &c["inverse"], 0.0, 0.0);
    common::assert_matches(&fft::ifftshift(&x, Some(&[0]))?, &c["inverse_axes"], 0.0, 0.0);
    common::assert_matches(&fft::ifftshift(&fft::fftshift(&x, None)?, None)?, &c["x"], 0.0, 0.0);

    let c = common::case(&g, "fftfreq");
    common::assert_matches(&fft::fftfreq(8, 0.5)?, &c["out"], 1e-6, 1e-7);
    common::assert_matches(&fft::fftfreq(7, 1.0)?, &c["odd"], 1e-6, 1e-7);
    let c = common::case(&g, "rfftfreq");
    common::assert_matches(&fft::rfftfreq(9, 0.1)?, &c["out"], 1e-6, 1e-6);
    common::assert_matches(&fft::rfftfreq(8, 1.0)?, &c["even"], 1e-6, 1e-7);
    Ok(())
}

#[test]
fn ffts_round_trip() -> Result<()> {
    let g = golden();
    let x = signals(&g);
    let want = values(&x.x);
    let back = fft::ifft(&fft::fft(&x.x, None, -1, B)?, None, -1, B)?;
    let re: Vec<f64> = back.to_vec::<Complex32>()?.iter().map(|z| f64::from(z.re)).collect();
    common::assert_close(&re, &want, 1e-5, 1e-5);

    for norm in [FftNorm::Backward, FftNorm::Ortho, FftNorm::Forward] {
        let back = fft::irfft(&fft::rfft(&x.x, None, -1, norm)?, Some(8), -1, norm)?;
        common::assert_close(&values(&back), &want, 1e-5, 1e-5);
    }
    // Odd lengths need n on the way back.
    let odd = Array::from_slice(&[1.0f32, -2.0, 3.0, 0.5, 4.0], &[5])?;
    let back = fft::irfft(&fft::rfft(&odd, None, -1, B)?, Some(5), -1, B)?;
    common::assert_close(&values(&back), &values(&odd), 1e-5, 1e-5);

    let back = fft::irfftn(&fft::rfftn(&x.m3, None, None, B)?, Some(&[2, 4, 6]), None, B)?;
    common::assert_close(&values(&back), &values(&x.m3), 1e-5, 1e-5);
    let back = fft::irfft2(&fft::rfft2(&x.m, None, None, B)?, None, None, B)?;
    common::assert_close(&values(&back), &values(&x.m), 1e-5, 1e-5);
    Ok(())
}

#[test]
fn fft_rejects_bad_input() -> Result<()> {
    let g = golden();
    let x = signals(&g);
    common::assert_err(fft::fft(&x.x, Some(0), -1, B), &["fft", "invalid fft output size"]);
    common::assert_err(fft::fft(&x.x, Some(-1), -1, B), &["invalid fft output size"]);
    common::assert_err(fft::rfft(&x.x, Some(0), -1, B), &["invalid fft output size"]);
    common::assert_err(fft::fft(&x.x, None, 3, B), &["fft", "axis 3", "out of bounds"]);
    common::assert_err(fft::ifft(&x.x, None, -2, B), &["axis -2"]);
    common::assert_err(
        fft::fft(&Array::scalar(1.0f32), None, -1, B),
        &["out of bounds", "no axes"],
    );
    let empty = Array::from_slice::<f32>(&[], &[0])?;
    common::assert_err(fft::fft(&empty, None, -1, B), &["invalid fft output size"]);
    common::assert_err(fft::irfft(&empty, None, -1, B), &["invalid fft output size"]);
    common::assert_err(fft::fft2(&x.x, None, None, B), &["fft2", "out of bounds"]);
    common::assert_err(fft::fftn(&x.m, None, Some(&[0, 0]), B), &["duplicated axis"]);
    common::assert_err(fft::fftn(&x.m, Some(&[3]), Some(&[0, 1]), B), &["different sizes"]);
    common::assert_err(fft::fftn(&x.m, Some(&[2, 2, 2]), None, B), &["3 sizes", "2 dimensions"]);
    common::assert_err(
        fft::fftn(&x.m, Some(&[0, 3]), Some(&[0, 1]), B),
        &["invalid fft output size"],
    );
    common::assert_err(fft::rfftn(&x.m, None, Some(&[0, 7]), B), &["axis 7"]);
    common::assert_err(fft::fftshift(&x.x, Some(&[4])), &["fftshift", "axis 4"]);
    common::assert_err(fft::ifftshift(&x.x, Some(&[-3])), &["ifftshift"]);
    common::assert_err(fft::fftfreq(0, 1.0), &["fftfreq", "greater than 0"]);
    common::assert_err(fft::fftfreq(-4, 1.0), &["greater than 0"]);
    common::assert_err(fft::fftfreq(4, 0.0), &["non-zero"]);
    common::assert_err(fft::rfftfreq(0, 1.0), &["rfftfreq", "greater than 0"]);
    Ok(())
}
