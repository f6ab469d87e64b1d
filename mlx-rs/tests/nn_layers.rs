//! `mlx_rs::nn` layers against Python `mlx.nn` 0.32.2 (goldens from `golden/gen_nn.py`):
//! Linear, Embedding, RMSNorm, LayerNorm, RoPE (with Llama 3 frequencies), activations,
//! quantized layers in every mode, Dropout in training and evaluation mode, Sequential.

mod common;

use mlx_rs::nn::{self, Dropout, Embedding, LayerNorm, Linear, Module, RmsNorm, RoPE};
use mlx_rs::quantization::{QuantizationMode, QuantizationParams};
use mlx_rs::{Array, Dtype, ops, random};
use serde_json::Value;

fn golden() -> Value {
    common::load(include_str!("golden/nn.json"))
}

/// The generator's formula: `sin(i * 0.37 + phase) * scale` in float32.
fn pattern(shape: &[i32], phase: f32, scale: f32) -> Array {
    let n: i32 = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + phase).sin() * scale).collect();
    Array::from_slice(&data, shape).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

#[test]
fn linear_matches_python() {
    let g = golden();
    let c = common::case(&g, "linear");
    let lin =
        Linear::from_weights(pattern(&[4, 6], 0.1, 1.0), Some(pattern(&[4], 0.2, 1.0))).unwrap();
    let nb = Linear::from_weights(pattern(&[4, 6], 0.1, 1.0), None).unwrap();
    common::assert_matches(
        &lin.forward(&pattern(&[3, 6], 0.3, 1.0)).unwrap(),
        &c["bias_2d"],
        1e-5,
        1e-5,
    );
    let x3 = pattern(&[2, 3, 6], 0.4, 1.0);
    common::assert_matches(&lin.forward(&x3).unwrap(), &c["bias_3d"], 1e-5, 1e-5);
    common::assert_matches(&nb.forward(&x3).unwrap(), &c["nobias_3d"], 1e-5, 1e-5);
    assert_eq!(lin.parameters().paths(), strings(&c["paths"]));
    assert_eq!(lin.dims(), (6, 4));
}

#[test]
fn linear_init_is_uniform_in_python_bounds() {
    random::seed(3).unwrap();
    let lin = Linear::new(100, 50, true).unwrap();
    let bound = 0.1f32; // 1 / sqrt(100)
    let w = lin.weight.to_vec::<f32>().unwrap();
    assert!(w.iter().all(|v| v.abs() <= bound));
    // Uniform on [-b, b]: mean ~ 0, variance b²/3.
    let mean = w.iter().sum::<f32>() / w.len() as f32;
    let var = w.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / w.len() as f32;
    assert!(mean.abs() < 0.01, "{mean}");
    assert!((var - bound * bound / 3.0).abs() < 3e-4, "{var}");
    assert_eq!(lin.bias.as_ref().unwrap().shape(), [50]);
    assert!(Linear::new(0, 3, true).is_err());
    assert!(Linear::from_weights(pattern(&[4], 0.0, 1.0), None).is_err());
    assert!(
        Linear::from_weights(pattern(&[4, 2], 0.0, 1.0), Some(pattern(&[3], 0.0, 1.0))).is_err()
    );
}

#[test]
fn embedding_matches_python() {
    let g = golden();
    let c = common::case(&g, "embedding");
    let emb = Embedding::from_weight(pattern(&[10, 4], 0.5, 1.0)).unwrap();
    let idx = Array::from_slice(&[1i32, 3, 9, 0, 0, 2], &[2, 3]).unwrap();
    common::assert_matches(&emb.forward(&idx).unwrap(), &c["lookup"], 1e-6, 0.0);
    common::assert_matches(
        &emb.as_linear(&pattern(&[2, 4], 0.6, 1.0)).unwrap(),
        &c["as_linear"],
        1e-5,
        1e-5,
    );
}

#[test]
fn norms_match_python() {
    let g = golden();
    let c = common::case(&g, "norm");
    let x = pattern(&[2, 3, 8], 0.7, 3.0);
    let mut rms = RmsNorm::new(8, 1e-5).unwrap();
    rms.load_weights([("weight".to_owned(), pattern(&[8], 0.8, 1.0))]).unwrap();
    common::assert_matches(&rms.forward(&x).unwrap(), &c["rms"], 1e-5, 1e-5);
    let mut ln = LayerNorm::new(8, 1e-5, true, true).unwrap();
    ln.load_weights([
        ("weight".to_owned(), pattern(&[8], 0.9, 1.0)),
        ("bias".to_owned(), pattern(&[8], 1.0, 1.0)),
    ])
    .unwrap();
    common::assert_matches(&ln.forward(&x).unwrap(), &c["ln"], 1e-5, 1e-5);
    let mut nb = LayerNorm::new(8, 1e-6, true, false).unwrap();
    nb.load_weights([("weight".to_owned(), pattern(&[8], 0.9, 1.0))]).unwrap();
    common::assert_matches(&nb.forward(&x).unwrap(), &c["ln_nobias"], 1e-5, 1e-5);
    assert_eq!(nb.parameters().paths(), strings(&c["ln_nobias_paths"]));
    let plain = LayerNorm::new(8, 1e-5, false, true).unwrap();
    common::assert_matches(&plain.forward(&x).unwrap(), &c["ln_plain"], 1e-5, 1e-5);
    assert_eq!(plain.parameters().paths(), strings(&c["ln_plain_paths"]));
    assert!(plain.parameters().is_empty());
}

#[test]
fn rope_matches_python() {
    let g = golden();
    let c = common::case(&g, "rope");
    let x = pattern(&[1, 2, 5, 8], 1.1, 1.0);
    common::assert_matches(
        &RoPE::new(8, false, 10000.0, 1.0).unwrap().forward(&x).unwrap(),
        &c["default"],
        1e-5,
        1e-5,
    );
    let trad = RoPE::new(8, true, 10000.0, 1.0).unwrap();
    common::assert_matches(&trad.forward_at(&x, 3).unwrap(), &c["traditional_offset"], 1e-5, 1e-5);
    let offset = Array::scalar(3i32);
    common::assert_matches(
        &trad.forward_at_array(&x, &offset).unwrap(),
        &c["traditional_offset"],
        1e-5,
        1e-5,
    );
    let partial = RoPE::new(4, false, 500.0, 0.5).unwrap();
    common::assert_matches(
        &partial.forward_at(&x, 2).unwrap(),
        &c["partial_base_scale"],
        1e-5,
        1e-5,
    );
    assert!(RoPE::new(5, false, 10000.0, 1.0).is_err());
    assert!(partial.parameters().is_empty());
}

#[test]
fn llama3_frequencies_match_mlx_lm_formula() {
    let g = golden();
    let c = common::case(&g, "llama3");
    let freqs = nn::llama3_rope_frequencies(64, 500000.0, nn::Llama3RopeScaling::new(8.0)).unwrap();
    common::assert_matches(&freqs, &c["freqs"], 1e-5, 0.0);
    let rope = RoPE::with_frequencies(64, false, freqs, 1.0).unwrap();
    let x = pattern(&[1, 1, 4, 64], 1.2, 1.0);
    common::assert_matches(&rope.forward_at(&x, 7).unwrap(), &c["rope"], 1e-5, 1e-5);
    let bad = ops::ones(&[3], Dtype::Float32).unwrap();
    assert!(RoPE::with_frequencies(64, false, bad, 1.0).is_err());
}

#[test]
fn activations_match_python() {
    let g = golden();
    let c = common::case(&g, "act");
    let x = pattern(&[3, 7], 1.3, 4.0);
    let gate = pattern(&[3, 7], 1.4, 2.0);
    let check = |name: &str, y: Array| common::assert_matches(&y, &c[name], 1e-5, 1e-6);
    check("silu", nn::silu(&x).unwrap());
    check("gelu", nn::gelu(&x).unwrap());
    check("gelu_approx", nn::gelu_approx(&x).unwrap());
    check("gelu_fast_approx", nn::gelu_fast_approx(&x).unwrap());
    check("relu", nn::relu(&x).unwrap());
    check("leaky_relu", nn::leaky_relu(&x, 0.1).unwrap());
    check("sigmoid", nn::sigmoid(&x).unwrap());
    check("tanh", nn::tanh(&x).unwrap());
    check("softmax", nn::softmax(&x, -1).unwrap());
    check("log_softmax", nn::log_softmax(&x, -1).unwrap());
    check("swiglu", nn::swiglu(&gate, &x).unwrap());
    // The unit modules apply the same functions.
    check("silu", nn::Silu.forward(&x).unwrap());
    check("relu", nn::Relu.forward(&x).unwrap());
    check("gelu", nn::Gelu::default().forward(&x).unwrap());
    check("gelu_approx", nn::Gelu { approx: nn::GeluApprox::Precise }.forward(&x).unwrap());
    check("gelu_fast_approx", nn::Gelu { approx: nn::GeluApprox::Fast }.forward(&x).unwrap());
    check("leaky_relu", nn::LeakyRelu { negative_slope: 0.1 }.forward(&x).unwrap());
    check("log_softmax", nn::LogSoftmax.forward(&x).unwrap());
    check("softmax", nn::Softmax.forward(&x).unwrap());
    check("tanh", nn::Tanh.forward(&x).unwrap());
    check("sigmoid", nn::Sigmoid.forward(&x).unwrap());
}

/// The compiled `silu` and `swiglu` equal the ops they fuse bit for bit, whatever shape or
/// dtype comes first (one shapeless trace per thread serves them all); broadcasting inputs and
/// integers take the ops; gradients flow through the compiled function.
#[test]
fn compiled_activations_equal_their_ops() {
    let bits = |a: &Array| a.astype(Dtype::Float32).unwrap().to_vec::<f32>().unwrap();
    for dtype in [Dtype::Bfloat16, Dtype::Float32, Dtype::Float16] {
        for shape in [&[7][..], &[3, 5], &[2, 1, 9], &[1]] {
            let g = (pattern(shape, 0.7, 3.0) * 1.5f32).unwrap().astype(dtype).unwrap();
            let u = pattern(shape, 1.9, 2.0).astype(dtype).unwrap();
            let silu_ops = (&g * g.sigmoid().unwrap()).unwrap();
            let swiglu_ops = (&silu_ops * &u).unwrap();
            let (silu, swiglu) = (nn::silu(&g).unwrap(), nn::swiglu(&g, &u).unwrap());
            assert_eq!((silu.shape(), silu.dtype()), (shape, dtype));
            assert_eq!(bits(&silu), bits(&silu_ops), "silu {dtype} {shape:?}");
            assert_eq!(bits(&swiglu), bits(&swiglu_ops), "swiglu {dtype} {shape:?}");
        }
    }
    let row = pattern(&[1, 4], 0.3, 2.0);
    let up = pattern(&[3, 4], 1.1, 2.0);
    let broadcast = nn::swiglu(&row, &up).unwrap();
    assert_eq!(broadcast.shape(), [3, 4]);
    let want = (&(&row * row.sigmoid().unwrap()).unwrap() * &up).unwrap();
    assert_eq!(bits(&broadcast), bits(&want));
    let ints = Array::from_slice(&[-2i32, 0, 3], &[3]).unwrap();
    let y = nn::silu(&ints).unwrap();
    assert_eq!(y.dtype(), Dtype::Float32);
    let want = [-2.0 / (1.0 + 2f32.exp()), 0.0, 3.0 / (1.0 + (-3f32).exp())];
    for (got, want) in y.to_vec::<f32>().unwrap().iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "{got} {want}");
    }
    // d/dg sum(silu(g) * u) = u * sigmoid(g) * (1 + g * (1 - sigmoid(g))).
    let loss = |x: &[Array]| Ok(vec![nn::swiglu(&x[0], &x[1])?.sum(.., false)?]);
    let grad = mlx_rs::transforms::grad(loss, &[0]).unwrap();
    let (g, u) = (pattern(&[2, 3], 0.5, 2.0), pattern(&[2, 3], 1.7, 1.0));
    let dg = grad.apply(&[&g, &u]).unwrap().remove(0);
    let s = g.sigmoid().unwrap();
    let one_minus = (&s * -1.0f32).unwrap() + 1.0f32;
    let inner = ((&g * &one_minus.unwrap()).unwrap() + 1.0f32).unwrap();
    let want = (&(&u * &s).unwrap() * &inner).unwrap();
    for (got, want) in dg.to_vec::<f32>().unwrap().iter().zip(want.to_vec::<f32>().unwrap()) {
        assert!((got - want).abs() < 1e-5, "{got} {want}");
    }
}

#[test]
fn quantized_linear_every_mode_matches_python() {
    let g = golden();
    let c = common::case(&g, "qlinear");
    let x = pattern(&[3, 64], 1.7, 1.0);
    let cases = [
        ("affine", QuantizationMode::Affine, None, None, true),
        ("affine_g32_b8_nobias", QuantizationMode::Affine, Some(32), Some(8), false),
        ("mxfp4", QuantizationMode::Mxfp4, None, None, true),
        ("nvfp4", QuantizationMode::Nvfp4, None, None, true),
        ("mxfp8", QuantizationMode::Mxfp8, None, None, true),
    ];
    for (name, mode, group_size, bits, bias) in cases {
        let want = &c[name];
        let lin = Linear::from_weights(
            pattern(&[8, 64], 1.5, 0.5),
            bias.then(|| pattern(&[8], 1.6, 1.0)),
        )
        .unwrap();
        let q =
            nn::QuantizedLinear::from_linear(&lin, QuantizationParams { group_size, bits, mode })
                .unwrap();
        assert_eq!(i64::from(q.group_size), want["group_size"].as_i64().unwrap(), "{name}");
        assert_eq!(i64::from(q.bits), want["bits"].as_i64().unwrap(), "{name}");
        assert_eq!(q.parameters().paths(), strings(&want["paths"]), "{name}");
        assert_eq!(q.trainable_parameters().paths(), strings(&want["trainable"]), "{name}");
        let shape = |v: &Value| {
            v.as_array().unwrap().iter().map(|d| d.as_i64().unwrap() as i32).collect::<Vec<_>>()
        };
        assert_eq!(q.weight.shape(), shape(&want["weight_shape"]), "{name}");
        assert_eq!(q.scales.shape(), shape(&want["scales_shape"]), "{name}");
        let out = q.forward(&x).unwrap();
        if !common::cuda_qmm_unreliable() {
            common::assert_matches(&out, &want["out"], 1e-4, 1e-4);
        }
        // The same layer from its packed parts.
        let parts = nn::QuantizedLinear::from_parts(
            q.weight.value().clone(),
            q.scales.value().clone(),
            q.biases.as_ref().map(|b| b.value().clone()),
            q.bias.as_ref().map(|b| b.value().clone()),
            QuantizationParams { group_size, bits, mode },
        )
        .unwrap();
        let from_parts = parts.forward(&x).unwrap();
        if !common::cuda_qmm_unreliable() {
            common::assert_matches(&from_parts, &want["out"], 1e-4, 1e-4);
        }
    }
    assert_eq!(nn::mode_defaults(QuantizationMode::Nvfp4), (16, 4));
    // Affine needs biases; the float modes have none.
    let w = ops::zeros(&[8, 8], Dtype::Uint32).unwrap();
    let s = ops::ones(&[8, 1], Dtype::Float32).unwrap();
    assert!(
        nn::QuantizedLinear::from_parts(
            w.clone(),
            s.clone(),
            None,
            None,
            QuantizationParams::default()
        )
        .is_err()
    );
    let mx = QuantizationParams { mode: QuantizationMode::Mxfp4, ..Default::default() };
    assert!(nn::QuantizedLinear::from_parts(w, s.clone(), Some(s), None, mx).is_err());
}

#[test]
fn quantized_embedding_matches_python() {
    let g = golden();
    let c = common::case(&g, "qembedding");
    let emb = Embedding::from_weight(pattern(&[10, 64], 1.8, 1.0)).unwrap();
    let params =
        QuantizationParams { group_size: Some(32), bits: Some(4), mode: QuantizationMode::Affine };
    let q = nn::QuantizedEmbedding::from_embedding(&emb, params).unwrap();
    let idx = Array::from_slice(&[1i32, 3, 9, 0, 0, 2], &[2, 3]).unwrap();
    common::assert_matches(&q.forward(&idx).unwrap(), &c["lookup"], 1e-6, 1e-6);
    common::assert_matches(
        &q.as_linear(&pattern(&[2, 64], 1.9, 1.0)).unwrap(),
        &c["as_linear"],
        1e-4,
        1e-4,
    );
    assert_eq!(q.parameters().paths(), strings(&c["paths"]));
    assert!(q.trainable_parameters().is_empty());
}

#[test]
fn dropout_in_training_and_evaluation() {
    let x = ops::ones(&[1000], Dtype::Float32).unwrap();
    let mut d = Dropout::new(0.25).unwrap();
    assert!(d.training());
    random::seed(7).unwrap();
    let y = d.forward(&x).unwrap().to_vec::<f32>().unwrap();
    // Kept values are scaled by 1 / (1 - p); about a quarter are zero.
    assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    let zeros = y.iter().filter(|&&v| v == 0.0).count();
    assert!((150..350).contains(&zeros), "{zeros}");
    d.train(false);
    assert!(!d.training());
    assert_eq!(d.forward(&x).unwrap().to_vec::<f32>().unwrap(), vec![1.0; 1000]);
    assert!(Dropout::new(1.0).is_err());
    assert!(Dropout::new(-0.1).is_err());
    assert_eq!(
        Dropout::new(0.0).unwrap().forward(&x).unwrap().to_vec::<f32>().unwrap(),
        vec![1.0; 1000]
    );
}

#[test]
fn sequential_paths_and_forward() {
    let g = golden();
    let c = common::case(&g, "sequential");
    let l1 =
        Linear::from_weights(pattern(&[8, 4], 0.1, 1.0), Some(pattern(&[8], 0.2, 1.0))).unwrap();
    let l2 = Linear::from_weights(pattern(&[2, 8], 0.3, 1.0), None).unwrap();
    let seq = nn::Sequential::new().push(l1.clone()).push(nn::Relu).push(l2.clone());
    assert_eq!(seq.parameters().paths(), strings(&c["paths"]));
    let x = pattern(&[3, 4], 0.4, 1.0);
    let want = l2.forward(&nn::relu(&l1.forward(&x).unwrap()).unwrap()).unwrap();
    assert_eq!(seq.forward(&x).unwrap().to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    // An error names the failing layer.
    let err = seq.forward(&pattern(&[3, 5], 0.0, 1.0)).unwrap_err();
    assert!(err.to_string().contains("layers.0"), "{err}");
}
