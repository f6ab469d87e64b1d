//! Quantization against Python MLX golden values and identities.

mod common;

use mlx_rs::quantization::{
    BlockMasks, GatherIndices, QuantizationMode, QuantizationParams, Quantized, block_masked_mm,
    dequantize, from_fp8, gather_mm, quantize, quantized_matmul, segmented_mm, to_fp8,
};
use mlx_rs::{Array, Dtype};
use serde_json::Value;

fn golden() -> Value {
    common::load(include_str!("golden/quantization.json"))
}

fn params(
    mode: QuantizationMode,
    group_size: Option<i32>,
    bits: Option<i32>,
) -> QuantizationParams {
    QuantizationParams { group_size, bits, mode }
}

fn check_mode(name: &str, p: QuantizationParams, max_error: f64) {
    let g = golden();
    let w = common::array(&common::case(&g, "w")["out"]);
    let x = common::array(&common::case(&g, "x")["out"]);
    let c = common::case(&g, name);
    let q = quantize(&w, p).unwrap();
    // The GPU kernels may round a code differently at exact ties; the packed bits are compared
    // on the CPU, and the dequantized values everywhere (below).
    let gpu = common::on_gpu();
    if !gpu {
        common::assert_matches(&q.weights, &c["weights"], 0.0, 0.0);
    }
    common::assert_matches(&q.scales, &c["scales"], 1e-6, 1e-6);
    match (&q.biases, c.get("biases")) {
        (Some(b), Some(want)) => common::assert_matches(b, want, 1e-6, 1e-6),
        (None, None) => {}
        (got, want) => panic!("biases: got {got:?}, want {want:?}"),
    }
    let back = dequantize(&q, p, None).unwrap();
    if !gpu {
        common::assert_matches(&back, &c["dequantized"], 1e-6, 1e-6);
    }
    // dequantize(quantize(w)) ~ w within the quantization error of the mode.
    let err = common::values_f64(&back)
        .iter()
        .zip(common::values_f64(&w))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(err <= max_error, "{name}: max error {err}");
    let y = quantized_matmul(&x, &q, true, p).unwrap();
    if gpu && p.mode == QuantizationMode::Affine && p.bits.unwrap_or(4) == 4 {
        // MLX 0.32.2's CUDA quantized_matmul gives wrong values for 4-bit affine weights with
        // K = 64 (Python MLX on an H100: max |qmm - x @ dequantize(w).T| = 0.96 on these inputs,
        // while 8-bit and mxfp4 match), so this case is only checked on the CPU.
        println!("{name}: skipped the 4-bit affine quantized_matmul check on the GPU (MLX bug)");
    } else if gpu {
        // Against x @ dequantize(q)ᵀ with the same codes (TF32 products on the GPU).
        let reference =
            mlx_rs::ops::matmul(&x, &mlx_rs::ops::swapaxes(&back, 0, 1).unwrap()).unwrap();
        common::assert_close(&common::values_f64(&y), &common::values_f64(&reference), 1e-2, 1e-2);
    } else {
        common::assert_matches(&y, &c["qmm"], 1e-4, 1e-4);
    }
}

#[test]
fn affine_default() {
    check_mode("affine_None_None", params(QuantizationMode::Affine, None, None), 2.0 / 15.0);
}

#[test]
fn affine_8_bit_groups_of_32() {
    check_mode("affine_32_8", params(QuantizationMode::Affine, Some(32), Some(8)), 2.0 / 255.0);
}

#[test]
fn mxfp4() {
    check_mode("mxfp4_None_None", params(QuantizationMode::Mxfp4, None, None), 0.5);
}

#[test]
fn nvfp4() {
    check_mode("nvfp4_None_None", params(QuantizationMode::Nvfp4, None, None), 0.5);
}

#[test]
fn mxfp8() {
    check_mode("mxfp8_None_None", params(QuantizationMode::Mxfp8, None, None), 0.07);
}

#[test]
fn dequantize_to_another_dtype() {
    let w = common::array(&common::case(&golden(), "w")["out"]);
    let p = QuantizationParams::default();
    let q = quantize(&w, p).unwrap();
    assert_eq!(dequantize(&q, p, Some(Dtype::Float16)).unwrap().dtype(), Dtype::Float16);
}

#[test]
fn gathered_masked_and_segmented_matmuls() {
    let g = golden();
    let c = common::case(&g, "gather_mm");
    let (a, b) = (common::array(&c["a"]), common::array(&c["b"]));
    let (lhs, rhs) = (common::array(&c["lhs"]), common::array(&c["rhs"]));
    let idx = GatherIndices { lhs: Some(&lhs), rhs: Some(&rhs), sorted: false };
    common::assert_matches(&gather_mm(&a, &b, idx).unwrap(), &c["out"], 1e-5, 1e-5);

    let c = common::case(&g, "block_masked_mm");
    let (m, mask) = (common::array(&c["a"]), common::array(&c["mask"]));
    let masks = BlockMasks { out: Some(&mask), ..BlockMasks::default() };
    let rtol = if common::on_gpu() { 2e-3 } else { 1e-4 };
    common::assert_matches(&block_masked_mm(&m, &m, 32, masks).unwrap(), &c["out"], rtol, 1e-3);

    let c = common::case(&g, "segmented_mm");
    let out = segmented_mm(
        &common::array(&c["a"]),
        &common::array(&c["b"]),
        &common::array(&c["segments"]),
    );
    common::assert_matches(&out.unwrap(), &c["out"], 1e-5, 1e-5);
}

#[test]
fn fp8_round_trip() {
    let g = golden();
    let c = common::case(&g, "fp8");
    let packed = to_fp8(&common::array(&c["x"])).unwrap();
    common::assert_matches(&packed, &c["packed"], 0.0, 0.0);
    common::assert_matches(&from_fp8(&packed, Dtype::Float32).unwrap(), &c["back"], 0.0, 0.0);
}

#[test]
fn bad_quantization_arguments_are_errors() {
    let w = Array::from_slice(&[0.5f32; 2 * 64], &[2, 64]).unwrap();
    common::assert_err(
        quantize(&w, params(QuantizationMode::Affine, Some(48), None)),
        &["quantize", "group"],
    );
    common::assert_err(
        quantize(&w, params(QuantizationMode::Affine, None, Some(7))),
        &["quantize", "bits"],
    );
    let odd = Array::from_slice(&[0.5f32; 2 * 10], &[2, 10]).unwrap();
    common::assert_err(quantize(&odd, QuantizationParams::default()), &["quantize"]);
    let q = quantize(&w, QuantizationParams::default()).unwrap();
    let x = Array::from_slice(&[1.0f32; 3 * 32], &[3, 32]).unwrap();
    common::assert_err(
        quantized_matmul(&x, &q, true, QuantizationParams::default()),
        &["quantized_matmul"],
    );
    let broken = Quantized { biases: None, ..q.clone() };
    common::assert_err(dequantize(&broken, QuantizationParams::default(), None), &["dequantize"]);
    common::assert_err(block_masked_mm(&w, &w, 0, BlockMasks::default()), &["block_size 0"]);
}

#[test]
fn hadamard_transform_matches_python() {
    // Values from Python MLX 0.32.2: mx.hadamard_transform(mx.arange(8.0)) and
    // mx.hadamard_transform(mx.arange(12.0), scale=1.0).
    let x = Array::from_slice(&(0..8).map(|i| i as f32).collect::<Vec<_>>(), &[8]).unwrap();
    let got = mlx_rs::ops::hadamard_transform(&x, None).unwrap();
    let r = std::f64::consts::SQRT_2;
    let want = [7.0 * r, -r, -2.0 * r, 0.0, -4.0 * r, 0.0, 0.0, 0.0];
    common::assert_close(&common::values_f64(&got), &want, 1e-5, 1e-5);
    let x = Array::from_slice(&(0..12).map(|i| i as f32).collect::<Vec<_>>(), &[12]).unwrap();
    // MLX 0.32.2's CUDA backend fails to compile its size-12 Hadamard kernel (an Err, tested
    // below); run this case on the CPU.
    let cpu = mlx_rs::Stream::cpu().unwrap();
    let got = mlx_rs::ops::hadamard_transform_device(&x, Some(1.0), &cpu).unwrap();
    let want = [64.0, -6.0, 0.0, -6.0, -20.0, -10.0, 0.0, -14.0, 20.0, -18.0, 0.0, -22.0];
    common::assert_close(&common::values_f64(&got), &want, 1e-5, 1e-4);
    let bad = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    // MLX checks the size when the array is evaluated.
    let lazy = mlx_rs::ops::hadamard_transform(&bad, None).and_then(|h| h.eval());
    common::assert_err(lazy, &["hadamard"]);
}
