//! Transforms: closures that fail or panic, borrowed and owned closures, and derivatives against
//! Python MLX golden values and finite differences.

mod common;

use mlx_rs::transforms::{self, CustomRules};
use mlx_rs::{Array, Error, ErrorKind, ops};

fn scalar(v: f32) -> Array {
    Array::scalar(v)
}

fn double(x: &[Array]) -> mlx_rs::Result<Vec<Array>> {
    Ok(vec![ops::add(&x[0], &x[0])?])
}

#[test]
fn vjp_and_jvp_of_a_linear_function() {
    let (out, vjps) = transforms::vjp(double, &[scalar(3.0)], &[scalar(1.0)]).unwrap();
    assert_eq!(out[0].item::<f32>().unwrap(), 6.0);
    assert_eq!(vjps[0].item::<f32>().unwrap(), 2.0);
    let (out, jvps) = transforms::jvp(double, &[scalar(3.0)], &[scalar(0.5)]).unwrap();
    assert_eq!(out[0].item::<f32>().unwrap(), 6.0);
    assert_eq!(jvps[0].item::<f32>().unwrap(), 1.0);
}

#[test]
fn a_closure_error_wins_over_mlx_message() {
    let failing = |_: &[Array]| -> mlx_rs::Result<Vec<Array>> {
        Err(Error::invalid("my_layer", "weights are not loaded"))
    };
    let err = transforms::vjp(failing, &[scalar(1.0)], &[scalar(1.0)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(err.op(), "my_layer");
    assert!(err.to_string().contains("weights are not loaded"), "{err}");
    // An MLX error raised inside the closure comes back as that error too.
    let bad_shapes = |x: &[Array]| -> mlx_rs::Result<Vec<Array>> {
        let y = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3])?;
        Ok(vec![ops::add(&x[0], &y)?])
    };
    let two = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    common::assert_err(
        transforms::jvp(bad_shapes, std::slice::from_ref(&two), std::slice::from_ref(&two)),
        &["add", "broadcast"],
    );
}

#[test]
fn a_panicking_closure_is_an_error_not_an_abort() {
    let panicking = |_: &[Array]| -> mlx_rs::Result<Vec<Array>> { panic!("boom in the closure") };
    let err = common::assert_err(
        transforms::vjp(panicking, &[scalar(1.0)], &[scalar(1.0)]),
        &["boom in the closure"],
    );
    assert_eq!(err.kind(), ErrorKind::Closure);
    let f = transforms::compile(|_: &[Array]| -> mlx_rs::Result<Vec<Array>> {
        panic!("compiled boom")
    })
    .unwrap();
    common::assert_err(f.apply(&[scalar(1.0)]), &["compiled boom"]);
    let vg = transforms::value_and_grad(
        |_: &[Array]| -> mlx_rs::Result<Vec<Array>> { panic!("grad boom") },
        &[0],
    )
    .unwrap();
    common::assert_err(vg.apply(&[scalar(1.0)]), &["grad boom"]);
}

#[test]
fn borrowed_closures_can_capture_outer_arrays() {
    let offset = Array::from_slice(&[10.0f32, 20.0], &[2]).unwrap();
    let mut calls = 0;
    let f = |x: &[Array]| {
        calls += 1;
        Ok(vec![ops::add(&x[0], &offset)?])
    };
    let x = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    let ones = Array::from_slice(&[1.0f32, 1.0], &[2]).unwrap();
    let (out, vjps) = transforms::vjp(f, &[x], &[ones]).unwrap();
    assert!(calls >= 1);
    assert_eq!(out[0].to_vec::<f32>().unwrap(), [11.0, 22.0]);
    assert_eq!(vjps[0].to_vec::<f32>().unwrap(), [1.0, 1.0]);
}

#[test]
fn value_and_grad_of_a_scalar_function() {
    // f(x, y) = x + 2y.
    let f = |v: &[Array]| -> mlx_rs::Result<Vec<Array>> {
        Ok(vec![ops::add(&ops::add(&v[0], &v[1])?, &v[1])?])
    };
    let vg = transforms::value_and_grad(f, &[0, 1]).unwrap();
    let (value, grads) = vg.apply(&[scalar(1.5), scalar(-2.0)]).unwrap();
    assert_eq!(value[0].item::<f32>().unwrap(), -2.5);
    assert_eq!(grads.len(), 2);
    assert_eq!(grads[0].item::<f32>().unwrap(), 1.0);
    assert_eq!(grads[1].item::<f32>().unwrap(), 2.0);
    let g = transforms::grad(f, &[1]).unwrap();
    assert_eq!(g.apply(&[scalar(0.0), scalar(0.0)]).unwrap()[0].item::<f32>().unwrap(), 2.0);
    // A non-scalar first output is MLX's error, returned as Err.
    let vector_out = transforms::value_and_grad(double, &[0]).unwrap();
    let v = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    common::assert_err(vector_out.apply(&[v]), &["value_and_grad"]);
    common::assert_err(vg.apply(&[scalar(1.0)]), &["value_and_grad"]);
}

#[test]
fn custom_vjp_replaces_the_gradient() {
    let f = transforms::custom_vjp(
        |x: &[Array]| Ok(vec![x[0].clone()]),
        |_primals: &[Array], cotangents: &[Array], _outputs: &[Array]| {
            Ok(vec![ops::add(&cotangents[0], &Array::scalar(100.0f32))?])
        },
    )
    .unwrap();
    let (_, vjps) = transforms::vjp(|x| f.apply(x), &[scalar(1.0)], &[scalar(1.0)]).unwrap();
    assert_eq!(vjps[0].item::<f32>().unwrap(), 101.0);
    let failing_rule = CustomRules {
        vjp: Some(Box::new(|_: &[Array], _: &[Array], _: &[Array]| {
            Err(Error::invalid("rule", "no gradient here"))
        })),
        ..CustomRules::default()
    };
    let g =
        transforms::custom_function(|x: &[Array]| Ok(vec![x[0].clone()]), failing_rule).unwrap();
    common::assert_err(
        transforms::vjp(|x| g.apply(x), &[scalar(1.0)], &[scalar(1.0)]),
        &["no gradient here"],
    );
}

#[test]
fn vmap_maps_over_an_axis() {
    let x = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let bias = Array::from_slice(&[10.0f32, 20.0], &[2]).unwrap();
    // Map over the columns of x (axis 1), adding the same bias to each column.
    let out = transforms::vmap(|v| Ok(vec![ops::add(&v[0], &bias)?]), &[x], &[1], &[1]).unwrap();
    assert_eq!(out[0].shape(), &[2, 3]);
    assert_eq!(out[0].to_vec::<f32>().unwrap(), [11.0, 12.0, 13.0, 24.0, 25.0, 26.0]);
    let y = Array::from_slice(&[1.0f32], &[1]).unwrap();
    common::assert_err(
        transforms::vmap(double, std::slice::from_ref(&y), &[], &[0]),
        &["1 inputs", "0 input axes"],
    );
    common::assert_err(
        transforms::vmap(double, &[y], &[0], &[0, 1]),
        &["1 outputs", "2 output axes"],
    );
}

#[test]
fn compile_and_checkpoint() {
    let f = transforms::compile(double).unwrap();
    assert_eq!(f.apply(&[scalar(4.0)]).unwrap()[0].item::<f32>().unwrap(), 8.0);
    // SAFETY: an element-wise function: no index bounds depend on the traced shape.
    let shapeless = unsafe { transforms::compile_shapeless(double) }.unwrap();
    let v = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    assert_eq!(shapeless.apply(&[v]).unwrap()[0].to_vec::<f32>().unwrap(), [2.0, 4.0, 6.0]);
    assert_eq!(shapeless.apply(&[scalar(1.5)]).unwrap()[0].item::<f32>().unwrap(), 3.0);
    let c = transforms::checkpoint(double).unwrap();
    let (_, vjps) = transforms::vjp(|x| c.apply(x), &[scalar(2.0)], &[scalar(1.0)]).unwrap();
    assert_eq!(vjps[0].item::<f32>().unwrap(), 2.0);
    transforms::disable_compile().unwrap();
    assert_eq!(f.apply(&[scalar(1.0)]).unwrap()[0].item::<f32>().unwrap(), 2.0);
    transforms::enable_compile().unwrap();
}

#[test]
fn eval_async_eval_stop_gradient_and_depends() {
    let a = ops::add(&scalar(1.0), &scalar(2.0)).unwrap();
    let b = ops::add(&a, &a).unwrap();
    transforms::async_eval(&[&b]).unwrap();
    transforms::eval(&[&a, &b]).unwrap();
    assert_eq!(b.item::<f32>().unwrap(), 6.0);
    let (_, vjps) = transforms::vjp(
        |x| Ok(vec![ops::add(&transforms::stop_gradient(&x[0])?, &x[0])?]),
        &[scalar(1.0)],
        &[scalar(1.0)],
    )
    .unwrap();
    assert_eq!(vjps[0].item::<f32>().unwrap(), 1.0);
    let out = transforms::depends(std::slice::from_ref(&a), std::slice::from_ref(&b)).unwrap();
    assert_eq!(out[0].item::<f32>().unwrap(), 3.0);
    common::assert_err(transforms::value_and_grad(double, &[]), &["argnums"]);
}

#[test]
fn a_closure_calling_itself_is_an_error() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let slot: Rc<RefCell<Option<transforms::Function>>> = Rc::new(RefCell::new(None));
    let inner = slot.clone();
    let f = transforms::checkpoint(move |x: &[Array]| match inner.borrow().as_ref() {
        Some(me) => me.apply(x),
        None => Ok(x.to_vec()),
    })
    .unwrap();
    *slot.borrow_mut() = Some(f);
    let result = slot.borrow().as_ref().unwrap().apply(&[scalar(1.0)]);
    common::assert_err(result, &["cannot call itself"]);
    // Break the cycle between the function and the closure that refers to it.
    slot.borrow_mut().take();
}

#[test]
fn compiled_functions_with_state() {
    // An exponential moving average kept as state: s' = 0.5 * s + 0.5 * x, output s'.
    let mut ema = transforms::compile_with_state(
        |x: &[Array], s: &[Array]| {
            let half = Array::scalar(0.5f32);
            let next = ops::add(&ops::multiply(&s[0], &half)?, &ops::multiply(&x[0], &half)?)?;
            Ok((vec![next.clone()], vec![next]))
        },
        vec![scalar(0.0)],
    )
    .unwrap();
    let outputs: Vec<f32> = [4.0, 4.0, 8.0]
        .iter()
        .map(|&x| ema.apply(&[scalar(x)]).unwrap()[0].item::<f32>().unwrap())
        .collect();
    assert_eq!(outputs, [2.0, 3.0, 5.5]);
    assert_eq!(ema.state()[0].item::<f32>().unwrap(), 5.5);
    ema.set_state(vec![scalar(100.0)]).unwrap();
    assert_eq!(ema.apply(&[scalar(0.0)]).unwrap()[0].item::<f32>().unwrap(), 50.0);
    common::assert_err(ema.set_state(vec![]), &["0 state arrays", "expected 1"]);
    let mut wrong = transforms::compile_with_state(
        |x: &[Array], _s: &[Array]| Ok((x.to_vec(), vec![])),
        vec![scalar(0.0)],
    )
    .unwrap();
    common::assert_err(wrong.apply(&[scalar(1.0)]), &["returned 0 state arrays"]);
}
