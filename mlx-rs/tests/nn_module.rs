//! `nn::Module` and `#[derive(Module)]`: parameter paths of a nested model against Python's
//! `tree_flatten(model.parameters())`, forward and `nn::quantize` with per-path overrides,
//! `nn::value_and_grad`, freeze/unfreeze, strict `update`, weight loading from safetensors
//! (errors naming the path: missing, unexpected, mis-shaped, mis-typed keys), training mode,
//! enum modules, renames and skipped fields. Goldens from `golden/gen_nn.py`.

mod common;

use mlx_rs::nn::{
    self, Dropout, Embedding, Linear, MaybeQuantized, Module, Param, QuantizeDecision, RmsNorm,
};
use mlx_rs::quantization::{QuantizationMode, QuantizationParams};
use mlx_rs::utils::{Tree, tree_unflatten};
use mlx_rs::{Array, Dtype, Result, ops};
use serde_json::Value;

fn golden() -> Value {
    common::load(include_str!("golden/nn.json"))
}

fn pattern(shape: &[i32], phase: f32, scale: f32) -> Array {
    let n: i32 = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + phase).sin() * scale).collect();
    Array::from_slice(&data, shape).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

type QLinear = MaybeQuantized<Linear>;

#[derive(Module)]
struct Attention {
    q_proj: QLinear,
    o_proj: QLinear,
}

#[derive(Module)]
struct Mlp {
    gate_proj: QLinear,
    up_proj: QLinear,
    down_proj: QLinear,
}

impl Mlp {
    fn forward(&self, x: &Array) -> Result<Array> {
        let h = nn::swiglu(&self.gate_proj.forward(x)?, &self.up_proj.forward(x)?)?;
        self.down_proj.forward(&h)
    }
}

#[derive(Module)]
struct Block {
    self_attn: Attention,
    input_layernorm: RmsNorm,
    mlp: Mlp,
}

impl Block {
    fn forward(&self, x: &Array) -> Result<Array> {
        let h = self.input_layernorm.forward(x)?;
        let h = self.self_attn.o_proj.forward(&self.self_attn.q_proj.forward(&h)?)?;
        x + self.mlp.forward(&h)?
    }
}

#[derive(Module)]
struct Model {
    embed_tokens: MaybeQuantized<Embedding>,
    layers: Vec<Block>,
    norm: RmsNorm,
    lm_head: QLinear,
    /// Configuration, skipped without an attribute.
    vocab: i32,
}

impl Model {
    fn new(vocab: i32, d: i32, n: usize) -> Result<Model> {
        let lin = |i, o, b| -> Result<QLinear> { Ok(Linear::new(i, o, b)?.into()) };
        let layers = (0..n)
            .map(|_| {
                Ok(Block {
                    self_attn: Attention { q_proj: lin(d, d, false)?, o_proj: lin(d, d, true)? },
                    input_layernorm: RmsNorm::new(d, 1e-5)?,
                    mlp: Mlp {
                        gate_proj: lin(d, 2 * d, false)?,
                        up_proj: lin(d, 2 * d, false)?,
                        down_proj: lin(2 * d, d, false)?,
                    },
                })
            })
            .collect::<Result<_>>()?;
        Ok(Model {
            embed_tokens: Embedding::new(vocab, d)?.into(),
            layers,
            norm: RmsNorm::new(d, 1e-5)?,
            lm_head: lin(d, vocab, false)?,
            vocab,
        })
    }

    fn forward(&self, tokens: &Array) -> Result<Array> {
        let mut x = self.embed_tokens.forward(tokens)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        self.lm_head.forward(&self.norm.forward(&x)?)
    }
}

/// The generator's model with its formula weights.
fn model() -> Model {
    let mut m = Model::new(16, 64, 2).unwrap();
    let weights: Vec<(String, Array)> = m
        .named_parameters()
        .into_iter()
        .enumerate()
        .map(|(i, (k, v))| (k, pattern(v.shape(), 0.01 * i as f32, 0.2)))
        .collect();
    m.load_weights(weights).unwrap();
    m
}

fn tokens() -> Array {
    Array::from_slice(&[1i32, 5, 7, 2], &[1, 4]).unwrap()
}

#[test]
fn nested_paths_and_forward_match_python() {
    let g = golden();
    let c = common::case(&g, "model");
    let m = model();
    assert_eq!(m.vocab, 16);
    assert_eq!(m.parameters().paths(), strings(&c["paths"]));
    assert_eq!(m.trainable_parameters().paths(), strings(&c["paths"]));
    common::assert_matches(&m.forward(&tokens()).unwrap(), &c["dense_out"], 1e-4, 1e-5);
    let n: usize = m.named_parameters().iter().map(|(_, a)| a.size()).sum();
    assert_eq!(m.num_parameters(), n);
}

#[test]
fn value_and_grad_matches_python_and_restores_the_model() {
    let g = golden();
    let c = common::case(&g, "model");
    let mut m = model();
    let before = m.named_parameters();
    let t = tokens();
    let (loss, grads) =
        nn::value_and_grad(&mut m, |m| m.forward(&t)?.square()?.mean(.., false)).unwrap();
    common::assert_matches(&loss, &c["loss"], 1e-5, 1e-7);
    assert_eq!(grads.paths(), strings(&c["grad_paths"]));
    common::assert_matches(
        grads.leaf("layers.1.self_attn.q_proj.weight").unwrap(),
        &c["grad_q_proj"],
        1e-3,
        1e-6,
    );
    common::assert_matches(
        grads.leaf("embed_tokens.weight").unwrap(),
        &c["grad_embed"],
        1e-3,
        1e-6,
    );
    // The model holds its original arrays again.
    for ((k, a), (k2, b)) in before.iter().zip(m.named_parameters()) {
        assert_eq!(k, &k2);
        assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap(), "{k}");
    }
    // Frozen parameters get no gradient.
    m.freeze_where(|p| p.starts_with("layers.0"));
    let (_, grads) = nn::value_and_grad(&mut m, |m| m.forward(&t)?.sum(.., false)).unwrap();
    assert!(grads.paths().iter().all(|p| !p.starts_with("layers.0")));
    assert!(grads.get_leaf("layers.1.mlp.up_proj.weight").is_some());
    // An error inside the closure comes back, and the model is restored.
    let err =
        nn::value_and_grad(&mut m, |_| Err(mlx_rs::Error::invalid("loss", "boom"))).unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
    assert_eq!(
        m.parameters().leaf("norm.weight").unwrap().to_vec::<f32>().unwrap(),
        before.iter().find(|(k, _)| k == "norm.weight").unwrap().1.to_vec::<f32>().unwrap()
    );
}

#[test]
fn freeze_and_unfreeze_match_python() {
    let g = golden();
    let c = common::case(&g, "model");
    let mut m = model();
    m.freeze();
    assert!(m.trainable_parameters().is_empty());
    assert_eq!(m.parameters().num_leaves(), strings(&c["paths"]).len());
    // Python: model.unfreeze(keys=["weight"]).
    m.unfreeze_where(|p| p == "weight" || p.ends_with(".weight"));
    assert_eq!(m.trainable_parameters().paths(), strings(&c["weights_trainable"]));
    m.unfreeze();
    assert_eq!(m.trainable_parameters().paths(), strings(&c["paths"]));
}

#[test]
fn quantize_with_overrides_matches_python() {
    let g = golden();
    let c = common::case(&g, "model");
    let mut m = model();
    let mut seen = Vec::new();
    let params =
        QuantizationParams { group_size: Some(64), bits: Some(4), mode: QuantizationMode::Affine };
    nn::quantize(&mut m, params, |path, layer| {
        seen.push((path.to_owned(), layer.kind()));
        if path == "lm_head" {
            QuantizeDecision::With(QuantizationParams {
                group_size: Some(32),
                bits: Some(8),
                mode: QuantizationMode::Affine,
            })
        } else if path.ends_with("o_proj") {
            QuantizeDecision::Skip
        } else {
            QuantizeDecision::Default
        }
    })
    .unwrap();
    assert_eq!(seen[0], ("embed_tokens".to_owned(), "Embedding"));
    assert_eq!(seen[1], ("layers.0.self_attn.q_proj".to_owned(), "Linear"));
    assert_eq!(seen.len(), 1 + 2 * 5 + 1);
    assert_eq!(m.parameters().paths(), strings(&c["quantized_paths"]));
    assert_eq!(m.trainable_parameters().paths(), strings(&c["quantized_trainable"]));
    match &m.lm_head {
        MaybeQuantized::Quantized(q) => assert_eq!((q.group_size, q.bits), (32, 8)),
        MaybeQuantized::Dense(_) => panic!("lm_head was not quantized"),
    }
    let out = m.forward(&tokens()).unwrap();
    if !common::cuda_qmm_unreliable() {
        common::assert_matches(&out, &c["quantized_out"], 1e-4, 1e-5);
    }
    // A second pass leaves quantized layers alone; a layer that cannot be quantized names its path.
    nn::quantize(&mut m, params, |_, _| QuantizeDecision::Default).unwrap();
    let mut odd = Model::new(16, 48, 1).unwrap();
    let err = nn::quantize(&mut odd, params, |_, _| QuantizeDecision::Default).unwrap_err();
    assert!(err.to_string().contains("quantizing `"), "{err}");
}

#[test]
fn save_and_load_weights_round_trip_through_files() {
    let dir = std::env::temp_dir().join(format!("mlx_rs_nn_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let m = model();
    let path = dir.join("model.safetensors");
    m.save_weights(&path).unwrap();
    let mut fresh = Model::new(16, 64, 2).unwrap();
    fresh.load_safetensors(&[&path]).unwrap();
    let t = tokens();
    assert_eq!(
        fresh.forward(&t).unwrap().to_vec::<f32>().unwrap(),
        m.forward(&t).unwrap().to_vec::<f32>().unwrap()
    );
    // Sharded: two files together, as a multi-file checkpoint.
    let named = m.named_parameters();
    let (a, b) = named.split_at(named.len() / 2);
    let shard = |name: &str, items: &[(String, Array)]| {
        let p = dir.join(name);
        let map: std::collections::HashMap<String, Array> = items.iter().cloned().collect();
        mlx_rs::io::save_safetensors(&p, &map, &std::collections::HashMap::<String, String>::new())
            .unwrap();
        p
    };
    let (pa, pb) = (shard("a.safetensors", a), shard("b.safetensors", b));
    let mut sharded = Model::new(16, 64, 2).unwrap();
    sharded.load_safetensors(&[&pa, &pb]).unwrap();
    assert_eq!(
        sharded.forward(&t).unwrap().to_vec::<f32>().unwrap(),
        m.forward(&t).unwrap().to_vec::<f32>().unwrap()
    );
    // One shard alone is missing keys; the error names the first missing path.
    let err = Model::new(16, 64, 2).unwrap().load_safetensors(&[&pa]).unwrap_err();
    assert!(err.to_string().contains(&format!("`{}`", b[0].0)), "{err}");
    // Lenient loading reports what it skipped.
    let report = Model::new(16, 64, 2).unwrap().load_safetensors_lenient(&[&pa]).unwrap();
    assert_eq!(report.missing, b.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
    assert!(report.unexpected.is_empty() && report.mismatched.is_empty());
    // The same key in two files is an error; a missing file is an error naming it.
    assert!(Model::new(16, 64, 2).unwrap().load_safetensors(&[&pa, &pa]).is_err());
    let err = Model::new(16, 64, 2)
        .unwrap()
        .load_safetensors(&[dir.join("nope.safetensors")])
        .unwrap_err();
    assert!(err.to_string().contains("nope.safetensors"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Named weights, as `load_weights` takes them.
type Weights = Vec<(String, Array)>;

#[test]
fn strict_loading_names_the_offending_path() {
    let good = model().named_parameters();
    let load = |edit: &dyn Fn(&mut Weights)| {
        let mut w = good.clone();
        edit(&mut w);
        let mut m = Model::new(16, 64, 2).unwrap();
        let before = m.parameters().leaf("norm.weight").unwrap().to_vec::<f32>().unwrap();
        let err = m.load_weights(w).unwrap_err();
        // Nothing was loaded.
        assert_eq!(m.parameters().leaf("norm.weight").unwrap().to_vec::<f32>().unwrap(), before);
        err.to_string()
    };
    let missing = load(&|w| w.retain(|(k, _)| k != "layers.1.mlp.up_proj.weight"));
    assert!(
        missing.contains("`layers.1.mlp.up_proj.weight`") && missing.contains("no weight"),
        "{missing}"
    );
    let unexpected =
        load(&|w| w.push(("layers.2.mlp.up_proj.weight".into(), Array::scalar(1.0f32))));
    assert!(
        unexpected.contains("`layers.2.mlp.up_proj.weight`")
            && unexpected.contains("matches no parameter"),
        "{unexpected}"
    );
    let shape = load(&|w| {
        let e = w.iter_mut().find(|(k, _)| k == "layers.0.self_attn.o_proj.bias").unwrap();
        e.1 = ops::zeros(&[63], Dtype::Float32).unwrap();
    });
    assert!(
        shape.contains("`layers.0.self_attn.o_proj.bias`") && shape.contains("[63]"),
        "{shape}"
    );
    let dtype = load(&|w| {
        let e = w.iter_mut().find(|(k, _)| k == "norm.weight").unwrap();
        e.1 = e.1.astype(Dtype::Float16).unwrap();
    });
    assert!(dtype.contains("`norm.weight`") && dtype.contains("float16"), "{dtype}");
    // A model cast to the checkpoint's dtype loads it.
    let half: Vec<(String, Array)> =
        good.iter().map(|(k, v)| (k.clone(), v.astype(Dtype::Bfloat16).unwrap())).collect();
    let mut m = Model::new(16, 64, 2).unwrap();
    m.set_dtype(Dtype::Bfloat16).unwrap();
    m.load_weights(half).unwrap();
    assert_eq!(m.norm.weight.dtype(), Dtype::Bfloat16);
    nn::quantize(&mut m, QuantizationParams::default(), |_, _| QuantizeDecision::Default).unwrap();
    m.set_dtype(Dtype::Float16).unwrap();
    let q = m.parameters();
    assert_eq!(q.leaf("lm_head.weight").unwrap().dtype(), Dtype::Uint32);
    assert_eq!(q.leaf("lm_head.scales").unwrap().dtype(), Dtype::Float16);
    // Lenient: the mismatch is reported and skipped, the rest loaded.
    let mut w = good.clone();
    w.iter_mut().find(|(k, _)| k == "norm.weight").unwrap().1 =
        ops::zeros(&[3], Dtype::Float32).unwrap();
    w.push(("extra".into(), Array::scalar(0.0f32)));
    let mut m = Model::new(16, 64, 2).unwrap();
    let report = m.load_weights_lenient(w).unwrap();
    assert_eq!(report.unexpected, ["extra"]);
    assert_eq!(report.mismatched.len(), 1);
    assert_eq!(report.mismatched[0].path, "norm.weight");
    assert_eq!(report.mismatched[0].found.0, [3]);
    assert!(report.missing.is_empty());
    assert!(!report.is_clean());
    let lm = m.parameters().leaf("lm_head.weight").unwrap().to_vec::<f32>().unwrap();
    assert_eq!(
        lm,
        good.iter().find(|(k, _)| k == "lm_head.weight").unwrap().1.to_vec::<f32>().unwrap()
    );
}

#[test]
fn update_is_strict_about_paths_and_shapes() {
    let mut m = model();
    let mut t = Tree::new();
    t.insert("norm.weight", ops::zeros(&[64], Dtype::Float32).unwrap()).unwrap();
    m.update(&t).unwrap();
    assert_eq!(m.norm.weight.to_vec::<f32>().unwrap(), vec![0.0; 64]);
    let bad = tree_unflatten(vec![("norm.bias".to_owned(), Array::scalar(0.0f32))]).unwrap();
    let err = m.update(&bad).unwrap_err();
    assert!(err.to_string().contains("`norm.bias`"), "{err}");
    let bad = tree_unflatten(vec![
        ("lm_head.weight".to_owned(), ops::zeros(&[16, 64], Dtype::Float32).unwrap()),
        ("norm.weight".to_owned(), ops::zeros(&[65], Dtype::Float32).unwrap()),
    ])
    .unwrap();
    let err = m.update(&bad).unwrap_err();
    assert!(err.to_string().contains("`norm.weight`") && err.to_string().contains("65"), "{err}");
    // Nothing changed on the failed update.
    assert_ne!(
        m.parameters().leaf("lm_head.weight").unwrap().to_vec::<f32>().unwrap(),
        vec![0.0; 16 * 64]
    );
}

/// An enum module delegates to its active variant; renames and skips; a training flag field.
#[derive(Module)]
struct Dense {
    up: Linear,
}

#[derive(Module)]
struct Experts {
    experts: Vec<Linear>,
    #[module(rename = "gate")]
    router: Linear,
}

#[derive(Module)]
enum Ffn {
    Dense(Dense),
    Moe(Experts),
}

#[derive(Module)]
struct Layer {
    mlp: Ffn,
    dropout: Dropout,
    extra: Option<Linear>,
    #[module(skip)]
    cache: Vec<Array>,
    scale: Param,
}

#[derive(Module)]
struct WithFlag {
    #[module(training)]
    training: bool,
    scale: Param,
}

fn lin(i: i32, o: i32) -> Linear {
    Linear::new(i, o, false).unwrap()
}

#[test]
fn derive_enums_renames_skips_and_training() {
    let dense = Layer {
        mlp: Ffn::Dense(Dense { up: lin(2, 3) }),
        dropout: Dropout::new(0.5).unwrap(),
        extra: None,
        cache: vec![Array::scalar(1.0f32)],
        scale: Param::new(Array::scalar(2.0f32)),
    };
    assert_eq!(dense.parameters().paths(), ["mlp.up.weight", "scale"]);
    assert_eq!(dense.cache.len(), 1);
    let mut moe = Layer {
        mlp: Ffn::Moe(Experts { experts: vec![lin(2, 3), lin(2, 3)], router: lin(2, 2) }),
        dropout: Dropout::new(0.5).unwrap(),
        extra: Some(lin(3, 3)),
        cache: vec![],
        scale: Param::frozen(Array::scalar(2.0f32)),
    };
    assert_eq!(
        moe.parameters().paths(),
        [
            "mlp.experts.0.weight",
            "mlp.experts.1.weight",
            "mlp.gate.weight",
            "extra.weight",
            "scale"
        ]
    );
    assert_eq!(moe.trainable_parameters().num_leaves(), 4);
    assert!(moe.training());
    moe.train(false);
    assert!(!moe.training() && !moe.dropout.training());
    match &moe.mlp {
        Ffn::Moe(e) => assert!(!e.router.training() && !e.experts[1].training()),
        Ffn::Dense(_) => unreachable!(),
    }
    moe.train(true);
    assert!(moe.dropout.training());
    let mut flag = WithFlag { training: true, scale: Param::new(Array::scalar(1.0f32)) };
    flag.train(false);
    assert!(!flag.training && !flag.training());
    // Sequential inside a derived module, loaded and saved by path.
    let x = ops::ones(&[1, 2], Dtype::Float32).unwrap();
    let Ffn::Dense(d) = &dense.mlp else { unreachable!() };
    assert_eq!(d.up.forward(&x).unwrap().shape(), [1, 3]);
}
