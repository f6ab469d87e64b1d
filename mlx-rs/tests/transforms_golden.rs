//! Derivatives and vmap against Python MLX golden values, and gradients against central finite
//! differences.

mod common;

use mlx_rs::transforms;
use mlx_rs::{Array, Result, ops};
use serde_json::Value;

fn golden() -> Value {
    common::load(include_str!("golden/transforms.json"))
}

/// The generator's input formula: `sin(i * 0.37 + phase)` in float32.
fn pattern(shape: &[i32], phase: f32) -> Array {
    let n: i32 = shape.iter().product();
    Array::from_slice(&(0..n).map(|i| (i as f32 * 0.37 + phase).sin()).collect::<Vec<_>>(), shape)
        .unwrap()
}

#[track_caller]
fn check(actual: &Array, expected: &Value) {
    // GPU matmuls use TF32.
    let (rtol, atol) = if common::on_gpu() { (5e-3, 1e-3) } else { (1e-5, 1e-6) };
    common::assert_matches(actual, expected, rtol, atol);
}

/// sum(tanh(x @ w)) + 0.1 * sum(w * w)
fn loss(args: &[Array]) -> Result<Vec<Array>> {
    let (w, x) = (&args[0], &args[1]);
    let data = ops::sum(&ops::tanh(&ops::matmul(x, w)?)?, .., false)?;
    let decay = ops::multiply(&ops::sum(&ops::square(w)?, .., false)?, &Array::scalar(0.1f32))?;
    Ok(vec![ops::add(&data, &decay)?])
}

#[test]
fn value_and_grad_matches_python_and_finite_differences() {
    let g = golden();
    let case = common::case(&g, "value_and_grad");
    let (w, x) = (pattern(&[3, 2], 0.2), pattern(&[4, 3], 1.0));
    let step = transforms::value_and_grad(loss, &[0, 1]).unwrap();
    let (value, grads) = step.apply(&[w.clone(), x.clone()]).unwrap();
    check(&value[0], &case["value"]);
    check(&grads[0], &case["grad_w"]);
    check(&grads[1], &case["grad_x"]);

    // Central differences in float64 on the host, through the same loss evaluated by MLX.
    let f = |w: &[f32]| -> f64 {
        let w = Array::from_slice(w, &[3, 2]).unwrap();
        f64::from(loss(&[w, x.clone()]).unwrap()[0].item::<f32>().unwrap())
    };
    let w0 = w.to_vec::<f32>().unwrap();
    let analytic = grads[0].to_vec::<f32>().unwrap();
    for i in 0..w0.len() {
        let h = 1e-2f32;
        let (mut up, mut down) = (w0.clone(), w0.clone());
        up[i] += h;
        down[i] -= h;
        let numeric = (f(&up) - f(&down)) / (2.0 * f64::from(h));
        let tolerance = if common::on_gpu() { 2e-2 } else { 2e-3 };
        assert!(
            (f64::from(analytic[i]) - numeric).abs() < tolerance,
            "dL/dw[{i}]: analytic {} vs numeric {numeric}",
            analytic[i]
        );
    }
}

fn g(v: &[Array]) -> Result<Vec<Array>> {
    Ok(vec![ops::multiply(&ops::sin(&v[0])?, &v[0])?, ops::exp(&v[0])?])
}

#[test]
fn vjp_and_jvp_match_python() {
    let gold = golden();
    let v = pattern(&[5], 0.3);
    let cotangents = [pattern(&[5], 2.0), pattern(&[5], 2.5)];
    let (outs, vjps) = transforms::vjp(g, std::slice::from_ref(&v), &cotangents).unwrap();
    let case = common::case(&gold, "vjp");
    check(&outs[0], &case["out0"]);
    check(&outs[1], &case["out1"]);
    check(&vjps[0], &case["vjp"]);
    let (_, jvps) = transforms::jvp(g, &[v], &[pattern(&[5], 0.9)]).unwrap();
    let case = common::case(&gold, "jvp");
    check(&jvps[0], &case["jvp0"]);
    check(&jvps[1], &case["jvp1"]);
}

#[test]
fn vmap_and_grad_match_python() {
    let gold = golden();
    let m = pattern(&[4, 3], 0.4);
    let rows = transforms::vmap(
        |r| Ok(vec![ops::sum(&ops::square(&r[0])?, .., false)?]),
        std::slice::from_ref(&m),
        &[0],
        &[0],
    )
    .unwrap();
    check(&rows[0], &common::case(&gold, "vmap")["out"]);
    let columns = transforms::vmap(
        |c| Ok(vec![ops::multiply(&ops::exp(&c[0])?, &Array::scalar(2.0f32))?]),
        &[m],
        &[1],
        &[1],
    )
    .unwrap();
    check(&columns[0], &common::case(&gold, "vmap_axis1")["out"]);
    let z = ops::multiply(&pattern(&[6], 0.7), &Array::scalar(3.0f32)).unwrap();
    let grad = transforms::grad(|t| Ok(vec![ops::logsumexp(&t[0], .., false)?]), &[0]).unwrap();
    check(&grad.apply(&[z]).unwrap()[0], &common::case(&gold, "grad_logsumexp")["out"]);
}
