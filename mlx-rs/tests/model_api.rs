//! The API for model code: parameter trees and their Python paths, gradients over a tree (against
//! Python MLX and against the positional form), borrowing closures, compiled tree state, the axes
//! argument, index arrays with a proven bound, cached scalar operands, and errors with context.

mod common;

use mlx_rs::ops::{self, Axes, BoundedIndices};
use mlx_rs::quantization::{self, GatherIndices, QuantizationMode, QuantizationParams};
use mlx_rs::transforms;
use mlx_rs::utils::{Tree, refuse_conflicts, tree_flatten, tree_merge, tree_unflatten};
use mlx_rs::{Array, Context, Dtype, Ellipsis, ErrorKind, Result};
use serde_json::Value;

fn golden() -> Value {
    common::load(include_str!("golden/model_api.json"))
}

/// The generator's input formula: `sin(i * 0.37 + phase)` in float32.
fn pattern(shape: &[i32], phase: f32) -> Array {
    let n: i32 = shape.iter().product();
    Array::from_slice(&(0..n).map(|i| (i as f32 * 0.37 + phase).sin()).collect::<Vec<_>>(), shape)
        .unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

/// The generator's model parameters, inserted in the same order.
fn params() -> Tree {
    let mut p = Tree::new();
    p.insert("embed.weight", pattern(&[5, 4], 0.1)).unwrap();
    let layers = (0..2)
        .map(|i| {
            let mut layer = Tree::new();
            layer.insert("attn.q_proj.weight", pattern(&[4, 4], 0.2 + i as f32)).unwrap();
            layer.insert("norm.weight", pattern(&[4], 0.3 + i as f32)).unwrap();
            layer
        })
        .collect();
    if let Tree::Map(map) = &mut p {
        map.insert("layers".to_owned(), Tree::List(layers));
    }
    p.insert("head.weight", pattern(&[3, 4], 0.4)).unwrap();
    p.insert("head.bias", pattern(&[3], 0.5)).unwrap();
    p
}

#[test]
fn flatten_gives_pythons_paths_in_order() {
    let g = golden();
    let tree = params();
    let paths: Vec<String> = tree_flatten(&tree).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, strings(&g["flatten"]["paths"]));
    // Round trip: unflatten(flatten(t)) == t, leaf for leaf.
    let back = tree_unflatten(tree_flatten(&tree)).unwrap();
    assert_eq!(back.paths(), tree.paths());
    for ((_, a), (_, b)) in tree_flatten(&back).iter().zip(tree_flatten(&tree).iter()) {
        assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    }
}

#[test]
fn unflatten_and_merge_follow_python() {
    let g = golden();
    let shuffled = vec![
        ("b.1.x".to_owned(), Array::scalar(1.0f32)),
        ("a".to_owned(), Array::scalar(2.0f32)),
        ("b.0.y".to_owned(), Array::scalar(3.0f32)),
        ("c.2".to_owned(), Array::scalar(4.0f32)),
    ];
    let tree = tree_unflatten(shuffled).unwrap();
    assert_eq!(tree.paths(), strings(&g["unflatten"]["paths"]));
    let Some(Tree::List(c)) = tree.get("c") else { panic!("c is a list") };
    assert_eq!(c.len() as u64, g["unflatten"]["c_len"].as_u64().unwrap());
    assert!(g["unflatten"]["c_gap_is_empty_dict"].as_bool().unwrap());
    assert!(c[0].is_empty() && matches!(&c[0], Tree::Map(m) if m.is_empty()));

    let a = tree_unflatten(vec![
        ("m.a".to_owned(), Array::scalar(1.0f32)),
        ("l.0".to_owned(), Array::scalar(1.0f32)),
    ])
    .unwrap();
    let mut b = tree_unflatten(vec![("m.b".to_owned(), Array::scalar(2.0f32))]).unwrap();
    if let Tree::Map(map) = &mut b {
        map.insert("l".to_owned(), Tree::List(vec![Tree::new(), Array::scalar(6.0f32).into()]));
    }
    let merged = tree_merge(a, b, refuse_conflicts).unwrap();
    let mut paths = merged.paths();
    paths.sort();
    assert_eq!(paths, strings(&g["merge"]["paths"]));
    assert_eq!(merged.leaf("l.1").unwrap().item::<f32>().unwrap(), 6.0);
}

/// The generator's loss, written with the method forms; reads the parameters by path.
fn loss(p: &Tree, x: &Array, y: &Array) -> Result<Array> {
    let embed = p.leaf("embed.weight")?;
    let mut h = x.matmul(embed.t()?)?.matmul(embed)?;
    let Some(Tree::List(layers)) = p.get("layers") else {
        return Err(mlx_rs::Error::invalid("loss", "no layers"));
    };
    for layer in layers {
        let q = layer.leaf("attn.q_proj.weight")?;
        h = (h.matmul(q.t()?)?.tanh()? * layer.leaf("norm.weight")?)?;
    }
    let out = (h.matmul(p.leaf("head.weight")?.t()?)? + p.leaf("head.bias")?)?;
    (out - y)?.square()?.mean(.., false)
}

#[test]
fn keyed_value_and_grad_matches_python_and_the_positional_form() {
    let g = golden();
    let case = &g["value_and_grad"];
    let params = params();
    let (x, y) = (pattern(&[6, 4], 0.6), pattern(&[6, 3], 0.7));
    // The closure borrows x and y (and the tree) for the duration of the call.
    let (values, grads) =
        transforms::value_and_grad_tree(&params, |p| Ok(vec![loss(p, &x, &y)?])).unwrap();
    // GPU matmuls use TF32.
    let (rtol, atol) = if common::on_gpu() { (5e-3, 1e-3) } else { (1e-4, 1e-6) };
    common::assert_matches(&values[0], &case["value"], rtol, atol);
    assert_eq!(grads.paths(), params.paths());
    for (path, grad) in tree_flatten(&grads) {
        common::assert_matches(&grad, &case[format!("grad.{path}")], rtol, atol);
    }

    // The positional form over the flattened leaves gives the same gradients.
    let leaves: Vec<Array> = params.leaves().into_iter().cloned().collect();
    let structure = params.clone();
    let (xs, ys) = (x.clone(), y.clone());
    let argnums: Vec<i32> = (0..leaves.len() as i32).collect();
    let positional = transforms::value_and_grad(
        move |arrays: &[Array]| {
            let p = structure.with_leaves(arrays.iter().cloned())?;
            Ok(vec![loss(&p, &xs, &ys)?])
        },
        &argnums,
    )
    .unwrap();
    let (pvalues, pgrads) = positional.apply(&leaves).unwrap();
    let close = |a: &Array, b: &Array| {
        common::assert_close(&common::values_f64(a), &common::values_f64(b), 1e-6, 1e-7);
    };
    close(&pvalues[0], &values[0]);
    for (a, b) in pgrads.iter().zip(grads.leaves()) {
        close(a, b);
    }
}

/// A model held by reference inside the differentiated closure.
struct Scaler {
    params: Tree,
    offset: f32,
}

impl Scaler {
    fn forward(&self, p: &Tree, x: &Array) -> Result<Array> {
        (x * p.leaf("scale")?)? + self.offset
    }
}

#[test]
fn borrowing_closures_compile_and_run() {
    let mut params = Tree::new();
    params.insert("scale", Array::scalar(3.0f32)).unwrap();
    let model = Scaler { params, offset: 1.0 };
    let x = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    let mut calls = 0;
    let grads = transforms::grad_tree(&model.params, |p| {
        calls += 1;
        Ok(vec![model.forward(p, &x)?.sum(.., false)?])
    })
    .unwrap();
    assert_eq!(calls, 1);
    // d/dscale sum(scale * x + 1) = sum(x) = 3.
    assert_eq!(grads.leaf("scale").unwrap().item::<f32>().unwrap(), 3.0);
}

#[test]
fn gradient_closures_that_fail_or_return_nothing_are_errors() {
    let mut params = Tree::new();
    params.insert("w", Array::scalar(1.0f32)).unwrap();
    let err = transforms::value_and_grad_tree(&params, |_| Ok(vec![])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closure);
    assert!(err.message().contains("no outputs"), "{err}");
    let err = transforms::grad_tree(&params, |p| Ok(vec![p.leaf("missing")?.clone()])).unwrap_err();
    assert!(err.message().contains("`missing`"), "{err}");
    let positional = transforms::grad(|_| Ok(vec![]), &[0]).unwrap();
    assert!(positional.apply(&[Array::scalar(1.0f32)]).is_err());
    assert!(transforms::value_and_grad_tree(&Tree::new(), |_| Ok(vec![])).is_err());
}

#[test]
fn compiled_tree_state_matches_uncompiled_steps() {
    // Gradient descent on loss = mean((w x - y)^2), state = {"model": {"w"}, "step"}.
    let (x, y) = (pattern(&[4, 3], 0.1), pattern(&[4, 2], 0.9));
    let step = move |inputs: &[Array], state: &Tree| -> Result<(Vec<Array>, Tree)> {
        let lr = &inputs[0];
        let (loss, grads) = transforms::value_and_grad_tree(state, |s| {
            let w = s.leaf("model.w")?;
            Ok(vec![(x.matmul(w)? - &y)?.square()?.mean(.., false)?])
        })?;
        let mut next = state.map_with_path(|path, v| {
            if path == "step" { v + 1.0f32 } else { v - &(grads.leaf(path)? * lr)? }
        })?;
        next.insert("step", (state.leaf("step")? + 1.0f32)?)?;
        Ok((loss, next))
    };
    let mut state = Tree::new();
    state.insert("model.w", Array::zeros::<f32>(&[3, 2]).unwrap()).unwrap();
    state.insert("step", Array::scalar(0.0f32)).unwrap();
    let lr = Array::scalar(0.1f32);

    let mut plain = state.clone();
    let mut plain_losses = Vec::new();
    let uncompiled = step.clone();
    for _ in 0..5 {
        let (loss, next) = uncompiled(std::slice::from_ref(&lr), &plain).unwrap();
        plain_losses.push(loss[0].item::<f32>().unwrap());
        plain = next;
    }
    let mut compiled = transforms::compile_with_tree_state(step, state).unwrap();
    for want in &plain_losses {
        let got = compiled.apply(&[&lr]).unwrap()[0].item::<f32>().unwrap();
        assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "{got} vs {want}");
    }
    let state = compiled.state().unwrap();
    assert_eq!(state.leaf("step").unwrap().item::<f32>().unwrap(), 5.0);
    let (w, w_plain) = (state.leaf("model.w").unwrap(), plain.leaf("model.w").unwrap());
    common::assert_close(&common::values_f64(w), &common::values_f64(w_plain), 1e-4, 1e-6);
    // A state of other paths is refused.
    let mut other = Tree::new();
    other.insert("model.v", Array::zeros::<f32>(&[3, 2]).unwrap()).unwrap();
    assert!(compiled.set_state(&other).is_err());
}

#[test]
fn compiled_tree_state_refuses_a_new_structure() {
    let mut state = Tree::new();
    state.insert("a", Array::scalar(1.0f32)).unwrap();
    let mut f = transforms::compile_with_tree_state(
        |_inputs: &[Array], state: &Tree| {
            let mut next = Tree::new();
            next.insert("b", state.leaf("a")?.clone())?;
            Ok((vec![], next))
        },
        state,
    )
    .unwrap();
    let err = f.apply(&[Array::scalar(0.0f32)]).unwrap_err();
    assert!(err.message().contains("paths"), "{err}");
}

#[test]
fn axes_read_every_way() {
    let a = pattern(&[2, 3, 4], 0.0);
    let all = a.sum(.., false).unwrap().item::<f32>().unwrap();
    let by_list = a.sum([0, 1, 2], false).unwrap().item::<f32>().unwrap();
    assert!((all - by_list).abs() < 1e-5);
    let last = a.sum(-1, false).unwrap();
    assert_eq!(last.shape(), [2, 3]);
    let slice: &[i32] = &[-1];
    for same in [a.sum(slice, false), a.sum(vec![2], false), a.sum([2], false)] {
        assert_eq!(same.unwrap().to_vec::<f32>().unwrap(), last.to_vec::<f32>().unwrap());
    }
    assert_eq!(a.sum(Some(vec![0]), true).unwrap().shape(), [1, 3, 4]);
    assert_eq!(a.sum(None::<Vec<i32>>, false).unwrap().item::<f32>().unwrap(), all);
    assert_eq!(Axes::from(..), Axes::All);
    assert_eq!(a.argmax(-1, false).unwrap().shape(), [2, 3]);
    assert!(a.argmax([0, 1], false).is_err());
    assert!(a.expand_dims(..).is_err());
    assert_eq!(a.expand_dims(0).unwrap().shape(), [1, 2, 3, 4]);
    assert_eq!(a.transpose(..).unwrap().shape(), [4, 3, 2]);
    assert_eq!(a.sum(7, false).unwrap_err().kind(), ErrorKind::Mlx);
}

#[test]
fn method_chains_equal_the_free_functions() {
    let x = pattern(&[2, 6], 0.3);
    let w = pattern(&[4, 6], 0.8);
    let chained = x.matmul(w.t().unwrap()).unwrap().reshape([2, 2, 2]).unwrap().softmax(-1, true);
    let free = ops::softmax(
        &ops::reshape(&ops::matmul(&x, &ops::transpose(&w, ..).unwrap()).unwrap(), [2, 2, 2])
            .unwrap(),
        -1,
        true,
    );
    assert_eq!(chained.unwrap().to_vec::<f32>().unwrap(), free.unwrap().to_vec::<f32>().unwrap());
    let cmp = x.greater(Array::scalar(0.0f32)).unwrap();
    assert_eq!(cmp.dtype(), Dtype::Bool);
    let list = vec![x.clone(), x.clone()];
    transforms::eval(&list).unwrap();
    transforms::eval(&[&x, &w]).unwrap();
}

#[test]
fn bounded_indices_skip_the_clamp_and_give_the_same_values() {
    let table = pattern(&[8, 3], 0.2);
    let scores = pattern(&[5, 8], 1.1);
    let top = BoundedIndices::argpartition(&scores.negative().unwrap(), 1, -1)
        .unwrap()
        .index((Ellipsis, ..2))
        .unwrap();
    assert_eq!(top.bound(), 8);
    let fast = ops::take(&table, &top, 0).unwrap();
    let plain = ops::take(&table, top.array(), 0).unwrap();
    assert_eq!(fast.to_vec::<f32>().unwrap(), plain.to_vec::<f32>().unwrap());
    assert_eq!(fast.shape(), [5, 2, 3]);

    // The bound survives value-preserving transformations only.
    let flat = top.flatten(0, -1).unwrap().stop_gradient().unwrap();
    assert_eq!((flat.bound(), flat.array().shape().to_vec()), (8, vec![10]));
    let order = BoundedIndices::argsort(flat.array(), 0).unwrap();
    let sorted = flat.take(&order, 0).unwrap();
    let values = sorted.array().to_vec::<u32>().unwrap();
    assert!(values.windows(2).all(|w| w[0] <= w[1]) && values.iter().all(|&v| v < 8));
    let tokens = order.floor_divide(2).unwrap();
    assert_eq!(tokens.bound(), 5);
    let want: Vec<u32> = order.array().to_vec::<u32>().unwrap().iter().map(|v| v / 2).collect();
    assert_eq!(tokens.array().to_vec::<u32>().unwrap(), want);
    assert!(order.floor_divide(0).is_err());
    assert!(
        BoundedIndices::clamped(&Array::scalar(1i32), 300).unwrap().astype(Dtype::Uint8).is_err()
    );
    assert_eq!(
        BoundedIndices::clamped(&Array::scalar(1i32), 200)
            .unwrap()
            .astype(Dtype::Uint8)
            .unwrap()
            .array()
            .dtype(),
        Dtype::Uint8
    );

    // A bound larger than the axis is not trusted: the op clamps as for a plain array.
    let small = pattern(&[3, 3], 0.0);
    let wide = BoundedIndices::clamped(&Array::from_slice(&[7i32], &[1]).unwrap(), 8).unwrap();
    let got = ops::take(&small, &wide, 0).unwrap();
    assert_eq!(got.to_vec::<f32>().unwrap(), small.index(2).unwrap().to_vec::<f32>().unwrap());
    assert!(BoundedIndices::clamped(&Array::scalar(1.0f32), 4).is_err());
    assert!(BoundedIndices::clamped(&Array::scalar(1i32), 0).is_err());
}

#[test]
fn bounded_indices_in_gathered_matmuls() {
    // Four experts; each of 6 tokens picks 2 (MoE top-k), weights quantized 4-bit.
    let (experts, d, f) = (4, 64, 32);
    let w = pattern(&[experts, f, d], 0.5);
    let params =
        QuantizationParams { group_size: Some(64), bits: Some(4), mode: QuantizationMode::Affine };
    let q = quantization::quantize(&w, params).unwrap();
    let x = pattern(&[6, 1, 1, d], 0.9);
    let gates = pattern(&[6, experts], 0.4);
    let top = BoundedIndices::argpartition(&gates.negative().unwrap(), 1, -1)
        .unwrap()
        .index((Ellipsis, ..2))
        .unwrap();
    let bounded = quantization::gather_qmm(
        &x,
        &q,
        GatherIndices { rhs: Some(&top), ..Default::default() },
        true,
        params,
    )
    .unwrap();
    let plain = quantization::gather_qmm(
        &x,
        &q,
        GatherIndices { rhs: Some(top.array()), ..Default::default() },
        true,
        params,
    )
    .unwrap();
    assert_eq!(bounded.shape(), [6, 2, 1, f]);
    assert_eq!(bounded.to_vec::<f32>().unwrap(), plain.to_vec::<f32>().unwrap());
    let dense = quantization::gather_mm(
        &x,
        &w.swapaxes(-1, -2).unwrap(),
        GatherIndices { rhs: Some(&top), ..Default::default() },
    )
    .unwrap();
    assert_eq!(dense.shape(), [6, 2, 1, f]);
}

#[test]
fn cached_scalar_operands_keep_their_dtype_and_value() {
    let f32s = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    let f16s = f32s.astype(Dtype::Float16).unwrap();
    let ints = Array::from_slice(&[1i32, 2], &[2]).unwrap();
    for _ in 0..3 {
        assert_eq!((&f32s + 0.5).unwrap().to_vec::<f32>().unwrap(), [1.5, 2.5]);
        let h = (&f16s + 0.5).unwrap();
        assert_eq!(h.dtype(), Dtype::Float16);
        assert_eq!(h.astype(Dtype::Float32).unwrap().to_vec::<f32>().unwrap(), [1.5, 2.5]);
        assert_eq!((&ints + 1).unwrap().to_vec::<i32>().unwrap(), [2, 3]);
        assert_eq!((&f32s + 1).unwrap().to_vec::<f32>().unwrap(), [2.0, 3.0]);
        assert_eq!((&ints + true).unwrap().to_vec::<i32>().unwrap(), [2, 3]);
    }
    // More distinct constants than the cache holds.
    let mut y = Array::scalar(0.0f32);
    for i in 0..100 {
        y = (&y + i as f32).unwrap();
    }
    assert_eq!(y.item::<f32>().unwrap(), 4950.0);
    // A scalar in a graph is unchanged by evaluating that graph.
    let z = (&f32s * 3.0).unwrap();
    z.eval().unwrap();
    assert_eq!((&ints * 3.0).unwrap().to_vec::<f32>().unwrap(), [3.0, 6.0]);
}

#[test]
fn errors_carry_context_and_source() {
    let a = pattern(&[2, 3], 0.0);
    let err = a
        .reshape([4, 4])
        .context("at `layers.3.q_proj.weight`")
        .with_context(|| "loading model.safetensors")
        .unwrap_err();
    assert_eq!(err.op(), "reshape");
    assert_eq!(
        err.context_chain().collect::<Vec<_>>(),
        ["loading model.safetensors", "at `layers.3.q_proj.weight`"]
    );
    let shown = err.to_string();
    assert!(
        shown.starts_with("loading model.safetensors: at `layers.3.q_proj.weight`: reshape: "),
        "{shown}"
    );
    let missing = mlx_rs::io::load_gguf("/nonexistent/weights.gguf").unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Io);
    let source = std::error::Error::source(&missing);
    assert!(source.is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some()), "{missing:?}");
}
