//! LoRA on mixture-of-experts layers and DoRA against mlx-lm 0.32.0 itself (goldens from
//! `golden/gen_nn_lora.py`): LoRASwitchLinear (dense and quantized experts, unsorted and sorted
//! indices), DoRALinear (dense and quantized base) and DoRAEmbedding; forward, parameter paths,
//! and `fuse` (equal to the unfused forward and to mlx-lm's fused weights).

mod common;

use mlx_rs::nn::{
    DoRAEmbedding, DoRALinear, Embedding, Linear, LoRASwitchLinear, MaybeQuantized, Module,
    QuantizedLinear, QuantizedSwitchLinear, SwitchLinear,
};
use mlx_rs::quantization::{self, QuantizationMode, QuantizationParams, Quantized};
use mlx_rs::{Array, Dtype};
use serde_json::Value;

fn golden() -> Value {
    common::load(include_str!("golden/nn_lora.json"))
}

fn pattern(shape: &[i32], phase: f32, scale: f32) -> Array {
    let n: i32 = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + phase).sin() * scale).collect();
    Array::from_slice(&data, shape).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

/// `eps` for two computations that differ only in rounding; on the GPU, TF32 matmuls round
/// more (see `common::GPU_ATOL`).
fn rounding(eps: f32) -> f32 {
    if common::on_gpu() { eps.max(common::GPU_ATOL as f32) } else { eps }
}

fn max_abs_diff(a: &Array, b: &Array) -> f32 {
    (a - b).unwrap().abs().unwrap().max(.., false).unwrap().item::<f32>().unwrap()
}

fn q32() -> QuantizationParams {
    QuantizationParams { group_size: Some(32), bits: Some(4), mode: QuantizationMode::Affine }
}

const E: i32 = 4;
const D: i32 = 32;
const H: i32 = 64;
const R: i32 = 4;

fn dense_weight<L>(layer: &MaybeQuantized<L>) -> Array
where
    L: mlx_rs::nn::ToQuantized,
{
    // The layer's weight (dequantized with the tests' 32/4 affine settings if quantized).
    let params = layer.parameters();
    let w = params.leaf("weight").unwrap().clone();
    match params.get("scales") {
        None => w,
        Some(_) => {
            let q = Quantized {
                weights: w,
                scales: params.leaf("scales").unwrap().clone(),
                biases: params.get("biases").map(|_| params.leaf("biases").unwrap().clone()),
            };
            quantization::dequantize(&q, q32(), None).unwrap()
        }
    }
}

#[test]
fn lora_switch_linear_matches_mlx_lm() {
    let g = golden();
    let sl =
        SwitchLinear::from_weights(pattern(&[E, H, D], 0.2, 0.3), Some(pattern(&[E, H], 0.3, 0.3)))
            .unwrap();
    let x = pattern(&[2, 3, 1, 1, D], 0.5, 1.0);
    let idx = Array::from_slice(&[0i32, 2, 1, 3, 3, 3, 2, 1, 0, 0, 1, 2], &[2, 3, 2]).unwrap();
    let sorted_x = pattern(&[6, 1, 1, D], 0.6, 1.0);
    let sorted_idx = Array::from_slice(&[0i32, 0, 1, 2, 3, 3], &[6, 1]).unwrap();
    let adapters = || {
        vec![
            ("lora_a".to_owned(), pattern(&[E, R, D], 1.3, 0.3)),
            ("lora_b".to_owned(), pattern(&[E, H, R], 1.4, 0.3)),
        ]
    };
    let quantized = QuantizedSwitchLinear::from_switch_linear(&sl, q32()).unwrap();
    let bases: [(&str, MaybeQuantized<SwitchLinear>, f64); 2] = [
        ("switch", sl.clone().into(), 1e-5),
        ("switch_q", MaybeQuantized::Quantized(quantized), 1e-4),
    ];
    for (key, base, tol) in bases {
        let c = common::case(&g, key);
        let mut lora = LoRASwitchLinear::from_base(base.clone(), R, 0.0, 2.0).unwrap();
        assert_eq!(lora.num_experts(), E);
        assert_eq!(lora.lora_a.shape(), [E, R, D]);
        assert_eq!(lora.lora_b.shape(), [E, H, R]);
        // A fresh adapter is the identity update (lora_b is zero).
        assert_eq!(
            lora.forward(&x, &idx, false).unwrap().to_vec::<f32>().unwrap(),
            base.forward_gather(&x, &idx, false).unwrap().to_vec::<f32>().unwrap()
        );
        let report = lora.load_weights_lenient(adapters()).unwrap();
        assert!(report.unexpected.is_empty() && report.mismatched.is_empty());
        assert_eq!(lora.parameters().paths(), strings(&c["paths"]));
        if key == "switch_q" {
            // The quantized experts are frozen; the dense ones keep their (trainable) state,
            // as mlx-lm's do.
            assert_eq!(lora.trainable_parameters().paths(), strings(&c["trainable"]));
        }
        let y = lora.forward(&x, &idx, false).unwrap();
        assert_eq!(y.shape(), [2, 3, 2, 1, H]);
        common::assert_matches(&y, &c["out"], tol, tol);
        common::assert_matches(
            &lora.forward(&sorted_x, &sorted_idx, true).unwrap(),
            &c["sorted_out"],
            tol,
            tol,
        );

        let fused = lora.fuse(false).unwrap();
        assert_eq!(matches!(fused, MaybeQuantized::Quantized(_)), key == "switch_q");
        assert_eq!(fused.parameters().paths(), strings(&c["fused_paths"]));
        let fy = fused.forward_gather(&x, &idx, false).unwrap();
        common::assert_matches(&fy, &c["fused_out"], tol, tol);
        common::assert_matches(&dense_weight(&fused), &c["fused_weight"], 1e-5, 1e-5);
        if key == "switch" {
            // Fusing is exact up to rounding: the fused forward equals the unfused one.
            assert!(max_abs_diff(&fy, &y) < rounding(1e-5));
        }
        let dense = lora.fuse(true).unwrap();
        assert!(matches!(dense, MaybeQuantized::Dense(_)));
        assert!(max_abs_diff(&dense.forward_gather(&x, &idx, false).unwrap(), &y) < rounding(1e-4));
    }
    assert!(LoRASwitchLinear::from_base(sl.clone().into(), 0, 0.0, 1.0).is_err());
    // Bad inputs and a hand-broken base are errors, not panics.
    let lora = LoRASwitchLinear::from_base(sl.clone().into(), R, 0.0, 1.0).unwrap();
    assert!(lora.forward(&pattern(&[2, 1, 1, D + 1], 0.0, 1.0), &idx, false).is_err());
    let mut broken = sl;
    broken.weight.set(pattern(&[H, D], 0.0, 1.0));
    assert!(LoRASwitchLinear::from_base(broken.into(), R, 0.0, 1.0).is_err());
}

#[test]
fn dora_linear_matches_mlx_lm() {
    let g = golden();
    let base =
        Linear::from_weights(pattern(&[H, D], 1.1, 0.3), Some(pattern(&[H], 1.2, 0.3))).unwrap();
    let x = pattern(&[2, 3, D], 1.5, 1.0);
    let adapters = || {
        vec![
            ("lora_a".to_owned(), pattern(&[D, R], 1.3, 0.3)),
            ("lora_b".to_owned(), pattern(&[R, H], 1.4, 0.3)),
        ]
    };
    let m_trained = (pattern(&[H], 1.6, 0.5) + 2.0).unwrap();
    let bases: [(&str, MaybeQuantized<Linear>, f64); 2] = [
        ("dora", base.clone().into(), 1e-5),
        (
            "dora_q",
            MaybeQuantized::Quantized(QuantizedLinear::from_linear(&base, q32()).unwrap()),
            1e-4,
        ),
    ];
    for (key, b, tol) in bases {
        let c = common::case(&g, key);
        let mut dora = DoRALinear::from_base(b.clone(), R, 0.0, 2.0).unwrap();
        assert_eq!(dora.m.dtype(), Dtype::Float32);
        common::assert_matches(&dora.m, &c["m"], 1e-6, 1e-6);
        let fresh = dora.forward(&x).unwrap();
        common::assert_matches(&fresh, &c["fresh_out"], tol, tol);
        dora.load_weights_lenient(adapters()).unwrap();
        assert_eq!(dora.parameters().paths(), strings(&c["paths"]));
        common::assert_matches(&dora.forward(&x).unwrap(), &c["out"], tol, tol);

        dora.update(
            &mlx_rs::utils::tree_unflatten(vec![("m".to_owned(), m_trained.clone())]).unwrap(),
        )
        .unwrap();
        // Gradients as mlx-lm's: the row norms of the adapted weight are not differentiated
        // through (a stop-gradient), which changes the adapters' gradients.
        dora.linear.freeze();
        let (_, grads) =
            mlx_rs::nn::value_and_grad(&mut dora, |m| m.forward(&x)?.sum(.., false)).unwrap();
        assert_eq!(grads.paths(), ["m", "lora_a", "lora_b"]);
        for name in ["m", "lora_a", "lora_b"] {
            common::assert_matches(grads.leaf(name).unwrap(), &c["grads"][name], tol, tol);
        }
        let y = dora.forward(&x).unwrap();
        common::assert_matches(&y, &c["m_trained_out"], tol, tol);
        let fused = dora.fuse(false).unwrap();
        assert_eq!(matches!(fused, MaybeQuantized::Quantized(_)), key == "dora_q");
        assert_eq!(fused.parameters().paths(), strings(&c["fused_paths"]));
        let fy = fused.forward(&x).unwrap();
        // A quantized fusion is re-quantized and runs through quantized_matmul, both of which
        // differ on MLX 0.32.2's CUDA backend (see `common::cuda_qmm_unreliable`).
        if key != "dora_q" || !common::cuda_qmm_unreliable() {
            common::assert_matches(&fy, &c["fused_out"], tol, tol);
            common::assert_matches(&dense_weight(&fused), &c["fused_weight"], 1e-5, 1e-5);
        }
        let dense = dora.fuse(true).unwrap();
        assert!(matches!(dense, MaybeQuantized::Dense(_)));
        // The dequantized fusion is exact up to rounding: it equals the unfused forward.
        assert!(max_abs_diff(&dense.forward(&x).unwrap(), &y) < rounding(1e-4));
    }

    let mut wrong = DoRALinear::from_base(base.into(), R, 0.0, 2.0).unwrap();
    assert!(wrong.set_linear(Linear::new(D, H + 1, false).unwrap().into()).is_err());
    let other = Linear::new(D, H, false).unwrap();
    wrong.set_linear(other.clone().into()).unwrap();
    let norms = mlx_rs::linalg::norm(&other.weight, None, Some(&[1]), false).unwrap();
    assert_eq!(wrong.m.to_vec::<f32>().unwrap(), norms.to_vec::<f32>().unwrap());
    assert!(wrong.forward(&pattern(&[2, D + 1], 0.0, 1.0)).is_err());
}

#[test]
fn dora_embedding_matches_mlx_lm() {
    let g = golden();
    let c = common::case(&g, "dora_embedding");
    let (n, dims) = (10, 16);
    let emb = Embedding::from_weight(pattern(&[n, dims], 2.1, 0.5)).unwrap();
    let mut de = DoRAEmbedding::from_base(emb.clone(), R, 0.0, 2.0).unwrap();
    common::assert_matches(&de.m, &c["m"], 1e-6, 1e-6);
    let ids = Array::from_slice(&[0i32, 3, 9, 5, 5, 1], &[2, 3]).unwrap();
    // Fresh: lora_b is zero and m the row norms, so rows are unchanged.
    assert!(max_abs_diff(&de.forward(&ids).unwrap(), &emb.forward(&ids).unwrap()) < 1e-6);
    de.load_weights_lenient(vec![
        ("lora_a".to_owned(), pattern(&[n, R], 2.3, 0.3)),
        ("lora_b".to_owned(), pattern(&[R, dims], 2.4, 0.3)),
        ("m".to_owned(), (pattern(&[n], 2.5, 0.5) + 2.0).unwrap()),
    ])
    .unwrap();
    assert_eq!(de.parameters().paths(), strings(&c["paths"]));
    let y = de.forward(&ids).unwrap();
    common::assert_matches(&y, &c["out"], 1e-5, 1e-5);
    let xe = pattern(&[2, dims], 2.6, 1.0);
    common::assert_matches(&de.as_linear(&xe).unwrap(), &c["as_linear"], 1e-5, 1e-5);
    let fused = de.fuse().unwrap();
    common::assert_matches(&fused.weight, &c["fused_weight"], 1e-5, 1e-5);
    assert!(max_abs_diff(&fused.forward(&ids).unwrap(), &y) < rounding(1e-5));
    de.embedding.freeze();
    let (_, grads) =
        mlx_rs::nn::value_and_grad(&mut de, |m| m.forward(&ids)?.sum(.., false)).unwrap();
    assert_eq!(grads.paths(), ["m", "lora_a", "lora_b"]);
    for name in ["m", "lora_a", "lora_b"] {
        common::assert_matches(grads.leaf(name).unwrap(), &c["grads"][name], 1e-5, 1e-5);
    }
    assert!(DoRAEmbedding::from_base(emb.clone(), 0, 0.0, 1.0).is_err());
    let mut broken = emb;
    broken.weight.set(pattern(&[n], 0.0, 1.0));
    assert!(DoRAEmbedding::from_base(broken, R, 0.0, 1.0).is_err());
}

#[test]
fn adapter_dropout_follows_training_mode() {
    let sl = SwitchLinear::from_weights(pattern(&[E, H, D], 0.2, 0.3), None).unwrap();
    let weights = vec![
        ("lora_a".to_owned(), pattern(&[E, R, D], 1.3, 0.3)),
        ("lora_b".to_owned(), pattern(&[E, H, R], 1.4, 0.3)),
    ];
    let mut plain = LoRASwitchLinear::from_base(sl.clone().into(), R, 0.0, 2.0).unwrap();
    plain.load_weights_lenient(weights.clone()).unwrap();
    let mut dropped = LoRASwitchLinear::from_base(sl.into(), R, 0.5, 2.0).unwrap();
    dropped.load_weights_lenient(weights).unwrap();
    let x = pattern(&[3, 1, 1, D], 0.5, 1.0);
    let idx = Array::from_slice(&[0i32, 1, 2, 3, 3, 0], &[3, 2]).unwrap();
    let want = plain.forward(&x, &idx, false).unwrap();
    // Training mode: the adapter's input is dropped, so the output moves.
    mlx_rs::random::seed(7).unwrap();
    assert!(max_abs_diff(&dropped.forward(&x, &idx, false).unwrap(), &want) > 1e-3);
    // Evaluation mode: dropout is the identity.
    dropped.train(false);
    assert!(!dropped.dropout.training());
    assert_eq!(
        dropped.forward(&x, &idx, false).unwrap().to_vec::<f32>().unwrap(),
        want.to_vec::<f32>().unwrap()
    );

    let base = Linear::from_weights(pattern(&[H, D], 1.1, 0.3), None).unwrap();
    let mut dora = DoRALinear::from_base(base.clone().into(), R, 0.5, 2.0).unwrap();
    let mut dora0 = DoRALinear::from_base(base.into(), R, 0.0, 2.0).unwrap();
    let a = vec![("lora_b".to_owned(), pattern(&[R, H], 1.4, 0.3))];
    dora.load_weights_lenient(a.clone()).unwrap();
    dora0.load_weights_lenient(a).unwrap();
    dora0.update(&dora.trainable_parameters()).unwrap();
    let xl = pattern(&[2, D], 1.5, 1.0);
    let want = dora0.forward(&xl).unwrap();
    assert!(max_abs_diff(&dora.forward(&xl).unwrap(), &want) > 1e-3);
    dora.train(false);
    assert!(max_abs_diff(&dora.forward(&xl).unwrap(), &want) < 1e-6);
}
