//! `mlx_rs::fast` against Python MLX golden values; attention against an explicit
//! softmax(q kᵀ · scale + mask) v reference (computed by the generator with plain ops).

mod common;

use mlx_rs::Array;
use mlx_rs::fast::{
    self, AttentionMask, RopeFrequencies, RopeOffset, RopeOptions, scaled_dot_product_attention,
};
use serde_json::Value;

fn golden() -> Value {
    common::load(include_str!("golden/fast.json"))
}

/// The generator's input formula: `sin(i * 0.37 + phase)` in float32, row-major.
fn pattern(shape: &[i32], phase: f32) -> Array {
    let n: i32 = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + phase).sin()).collect();
    Array::from_slice(&data, shape).unwrap()
}

fn offset_pattern(shape: &[i32], phase: f32, scale: f32, shift: f32) -> Array {
    let n: i32 = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + phase).sin() * scale + shift).collect();
    Array::from_slice(&data, shape).unwrap()
}

#[track_caller]
fn check(actual: &Array, g: &Value, name: &str, key: &str) {
    // GPU attention kernels accumulate in a different order than the CPU reference.
    let (rtol, atol) = if common::on_gpu() { (2e-3, 2e-4) } else { (1e-4, 1e-5) };
    common::assert_matches(actual, &common::case(g, name)[key], rtol, atol);
}

#[test]
fn norms() {
    let g = golden();
    let x = pattern(&[2, 3, 16], 0.1);
    let w = offset_pattern(&[16], 0.7, 1.0, 1.5);
    let b = pattern(&[16], 1.3);
    check(&fast::rms_norm(&x, Some(&w), 1e-5).unwrap(), &g, "rms_norm", "out");
    check(&fast::rms_norm(&x, None, 1e-5).unwrap(), &g, "rms_norm_no_weight", "out");
    check(&fast::layer_norm(&x, Some(&w), Some(&b), 1e-5).unwrap(), &g, "layer_norm", "out");
    check(&fast::layer_norm(&x, None, None, 1e-5).unwrap(), &g, "layer_norm_plain", "out");
}

#[test]
fn rotary_embeddings() {
    let g = golden();
    let r = pattern(&[1, 2, 5, 16], 0.2);
    let base = RopeOptions { offset: RopeOffset::Position(3), ..RopeOptions::new(16) };
    check(&fast::rope(&r, base).unwrap(), &g, "rope", "out");
    let traditional = RopeOptions {
        traditional: true,
        frequencies: RopeFrequencies::Base(500.0),
        scale: 0.5,
        ..RopeOptions::new(8)
    };
    check(&fast::rope(&r, traditional).unwrap(), &g, "rope_traditional_partial", "out");
    let seven = Array::scalar(7i32);
    let dynamic = RopeOptions { offset: RopeOffset::Array(&seven), ..RopeOptions::new(16) };
    check(&fast::rope(&r, dynamic).unwrap(), &g, "rope_array_offset", "out");
    let freqs = offset_pattern(&[8], 0.9, 0.1, 0.2);
    let custom = RopeOptions {
        frequencies: RopeFrequencies::Custom(&freqs),
        offset: RopeOffset::Position(2),
        ..RopeOptions::new(16)
    };
    check(&fast::rope(&r, custom).unwrap(), &g, "rope_freqs", "out");
}

fn keep_mask(len: i32) -> Array {
    let data: Vec<bool> = (0..len).flat_map(|i| (0..len).map(move |j| (i + j) % 3 != 1)).collect();
    Array::from_slice(&data, &[len, len]).unwrap()
}

#[test]
fn attention_matches_the_explicit_reference() {
    let g = golden();
    let dim = 8;
    let scale = 1.0 / (dim as f32).sqrt();
    for (len, kv_heads) in [(1, 2), (127, 2), (128, 2), (129, 2), (128, 4), (1, 1)] {
        let q = pattern(&[1, 4, len, dim], 0.3);
        let k = pattern(&[1, kv_heads, len, dim], 1.1);
        let v = pattern(&[1, kv_heads, len, dim], 2.3);
        let tag = format!("L{len}_kv{kv_heads}");
        let mut masks = vec![("none", None), ("causal", None)];
        if len == 1 || len == 128 {
            masks.push(("bool", Some(keep_mask(len))));
            masks.push(("additive", Some(pattern(&[len, len], 0.5))));
        }
        for (name, array) in &masks {
            let mask = match (*name, array) {
                ("none", _) => AttentionMask::None,
                ("causal", _) => AttentionMask::Causal,
                (_, Some(a)) => AttentionMask::Array(a),
                _ => unreachable!(),
            };
            let out = scaled_dot_product_attention(&q, &k, &v, scale, mask, None).unwrap();
            check(&out, &g, &format!("sdpa_{name}_{tag}"), "out");
        }
    }
}

#[test]
fn attention_sinks() {
    let g = golden();
    let q = pattern(&[1, 4, 6, 8], 0.3);
    let k = pattern(&[1, 2, 6, 8], 1.1);
    let v = pattern(&[1, 2, 6, 8], 2.3);
    let sinks = pattern(&[4], 0.4);
    let out = scaled_dot_product_attention(&q, &k, &v, 0.35, AttentionMask::Causal, Some(&sinks))
        .unwrap();
    check(&out, &g, "sdpa_sinks", "out");
}

#[test]
fn cross_entropy() {
    let g = golden();
    let logits = offset_pattern(&[3, 5], 0.6, 3.0, 0.0);
    let targets = Array::from_slice(&[0i32, 4, 2], &[3]).unwrap();
    check(&fast::cross_entropy(&logits, &targets).unwrap(), &g, "cross_entropy", "out");
}

#[test]
fn bad_inputs_are_errors() {
    let q = pattern(&[1, 4, 6, 8], 0.3);
    let k = pattern(&[1, 3, 6, 8], 1.1);
    let v = pattern(&[1, 3, 6, 8], 2.3);
    // 4 query heads cannot share 3 KV heads.
    common::assert_err(
        scaled_dot_product_attention(&q, &k, &v, 0.3, AttentionMask::None, None),
        &["scaled_dot_product_attention"],
    );
    let k2 = pattern(&[1, 2, 6, 4], 1.1);
    common::assert_err(
        scaled_dot_product_attention(&q, &k2, &k2, 0.3, AttentionMask::None, None),
        &["scaled_dot_product_attention"],
    );
    let bad_mask = pattern(&[5, 7], 0.0);
    let k3 = pattern(&[1, 2, 6, 8], 1.1);
    common::assert_err(
        scaled_dot_product_attention(&q, &k3, &k3, 0.3, AttentionMask::Array(&bad_mask), None),
        &["scaled_dot_product_attention"],
    );
    let x = pattern(&[2, 16], 0.0);
    let wrong_weight = pattern(&[15], 0.0);
    common::assert_err(fast::rms_norm(&x, Some(&wrong_weight), 1e-5), &["rms_norm"]);
    common::assert_err(fast::layer_norm(&x, None, Some(&wrong_weight), 1e-5), &["layer_norm"]);
    common::assert_err(fast::rope(&x, RopeOptions::new(7)), &["rope", "even"]);
    common::assert_err(fast::rope(&x, RopeOptions::new(0)), &["rope"]);
    let logits = pattern(&[3, 5], 0.0);
    let targets = Array::from_slice(&[0i32, 1], &[2]).unwrap();
    common::assert_err(fast::cross_entropy(&logits, &targets), &["cross_entropy"]);
}
