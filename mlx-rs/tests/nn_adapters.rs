//! Adaptable slots: `apply_adapters` turns the picked slots into LoRA / DoRA layers with
//! mlx-lm's parameter names, the adapted forward equals the adapter layer's own, `fuse_adapters`
//! merges them back, and misuse is an error.

use mlx_rs::nn::{
    self, AdaptableLinear, AdaptableSwitchLinear, AdapterConfig, Linear, LoRALinear, Module,
    QuantizeDecision, SwitchGlu,
};
use mlx_rs::ops::BoundedIndices;
use mlx_rs::quantization::QuantizationParams;
use mlx_rs::{Array, random};

#[derive(Module)]
struct Block {
    q_proj: AdaptableLinear,
    o_proj: AdaptableLinear,
    experts: SwitchGlu,
}

fn block() -> Block {
    Block {
        q_proj: Linear::new(64, 64, true).unwrap().into(),
        o_proj: Linear::new(64, 64, false).unwrap().into(),
        experts: SwitchGlu::new(64, 32, 4, false).unwrap(),
    }
}

fn x() -> Array {
    random::normal(&[2, 3, 64], mlx_rs::Dtype::Float32, 0.0, 1.0, Some(&random::key(1).unwrap()))
        .unwrap()
}

fn max_diff(a: &Array, b: &Array) -> f32 {
    (a - b).unwrap().abs().unwrap().max(.., false).unwrap().item::<f32>().unwrap()
}

/// Sets every `lora_b` to a non-zero pattern, so that adapters change the output.
fn nonzero_lora_b(m: &mut impl Module) {
    let t = m
        .parameters()
        .map_with_path(|p, a| match p.ends_with("lora_b") {
            true => mlx_rs::ops::full_like(a, &Array::scalar(0.05f32), None),
            false => Ok(a.clone()),
        })
        .unwrap();
    m.update(&t).unwrap();
}

#[test]
fn adapters_take_mlx_lms_names_and_only_they_train() {
    let mut b = block();
    b.freeze();
    let n = nn::apply_adapters(&mut b, |p| p != "o_proj", AdapterConfig::lora(4, 20.0)).unwrap();
    assert_eq!(n, 4); // q_proj and the three expert projections
    assert_eq!(
        b.trainable_parameters().paths(),
        [
            "q_proj.lora_a",
            "q_proj.lora_b",
            "experts.gate_proj.lora_a",
            "experts.gate_proj.lora_b",
            "experts.up_proj.lora_a",
            "experts.up_proj.lora_b",
            "experts.down_proj.lora_a",
            "experts.down_proj.lora_b",
        ]
    );
    let paths = b.parameters().paths();
    assert!(paths.contains(&"q_proj.linear.weight".to_owned()));
    assert!(paths.contains(&"q_proj.linear.bias".to_owned()));
    assert!(paths.contains(&"experts.up_proj.linear.weight".to_owned()));
    assert_eq!(b.parameters().leaf("q_proj.lora_a").unwrap().shape(), [64, 4]);
    assert_eq!(b.parameters().leaf("experts.up_proj.lora_a").unwrap().shape(), [4, 4, 64]);
}

#[test]
fn the_adapted_slot_computes_what_the_adapter_layer_computes_and_fuses_back() {
    let mut b = block();
    let base = b.q_proj.forward(&x()).unwrap();
    nn::apply_adapters(&mut b, |p| p == "q_proj", AdapterConfig::lora(8, 2.0)).unwrap();
    nonzero_lora_b(&mut b);
    let AdaptableLinear::LoRA(lora) = &b.q_proj else { panic!("q_proj is not LoRA") };
    let own: &LoRALinear = lora;
    let adapted = b.q_proj.forward(&x()).unwrap();
    assert_eq!(max_diff(&adapted, &own.forward(&x()).unwrap()), 0.0);
    assert!(max_diff(&adapted, &base) > 1e-2, "the adapter changes the output");
    nn::fuse_adapters(&mut b, false).unwrap();
    assert!(matches!(b.q_proj, AdaptableLinear::Base(_)));
    assert!(max_diff(&b.q_proj.forward(&x()).unwrap(), &adapted) < 1e-4);
}

#[test]
fn experts_adapt_and_fuse_with_the_same_outputs() {
    let mut b = block();
    let idx =
        BoundedIndices::clamped(&Array::from_slice(&[0i32, 3, 1, 2, 2, 0], &[2, 3, 1]).unwrap(), 4)
            .unwrap();
    nn::apply_adapters(&mut b, |p| p.starts_with("experts"), AdapterConfig::lora(4, 1.0)).unwrap();
    nonzero_lora_b(&mut b);
    assert!(matches!(b.experts.up_proj, AdaptableSwitchLinear::LoRA(_)));
    let adapted = b.experts.forward(&x(), &idx).unwrap();
    nn::fuse_adapters(&mut b, false).unwrap();
    assert!(matches!(b.experts.up_proj, AdaptableSwitchLinear::Base(_)));
    assert!(max_diff(&b.experts.forward(&x(), &idx).unwrap(), &adapted) < 1e-4);
}

#[test]
fn qlora_dora_and_misuse() {
    // Quantize first, then adapt: LoRA over a QuantizedLinear (QLoRA).
    let mut b = block();
    nn::quantize(&mut b, QuantizationParams::default(), |p, _| match p.starts_with("q_proj") {
        true => QuantizeDecision::Default,
        false => QuantizeDecision::Skip,
    })
    .unwrap();
    nn::apply_adapters(&mut b, |p| p == "q_proj", AdapterConfig::lora(4, 20.0)).unwrap();
    assert!(b.parameters().paths().contains(&"q_proj.linear.scales".to_owned()));
    // DoRA on a linear layer: its magnitude `m` is a parameter.
    nn::apply_adapters(&mut b, |p| p == "o_proj", AdapterConfig::dora(4, 20.0)).unwrap();
    assert_eq!(b.parameters().leaf("o_proj.m").unwrap().shape(), [64]);
    // An adapter on an adapted slot, DoRA on experts, a bad rank: errors naming the layer.
    let err = nn::apply_adapters(&mut b, |p| p == "q_proj", AdapterConfig::lora(4, 1.0));
    assert!(err.unwrap_err().to_string().contains("`q_proj`"));
    let err = nn::apply_adapters(&mut b, |p| p == "experts.up_proj", AdapterConfig::dora(4, 1.0));
    assert!(err.unwrap_err().to_string().contains("DoRA"));
    let err = nn::apply_adapters(&mut b, |p| p == "experts.gate_proj", AdapterConfig::lora(0, 1.0));
    assert!(err.unwrap_err().to_string().contains("rank"));
}
