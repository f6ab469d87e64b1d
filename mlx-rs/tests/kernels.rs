//! The crate's own kernels (`mlx_rs::kernels`): the grouped quantized expert matmul against
//! `gather_qmm` on CUDA (every bit width, group size and 16-bit dtype, odd pair counts, the
//! model shapes) and on Metal (a few formats), `SwitchGlu` with the kernels on against off, and
//! the fallbacks and reasons everywhere else (this CPU).

use std::sync::Mutex;

use mlx_rs::fast::kernel::KernelBackend;
use mlx_rs::kernels::expert_matmul::{self, ExpertMatmul};
use mlx_rs::kernels::{self, Fused, grouped_qmm, grouped_qmm_support};
use mlx_rs::nn::{self, Module, QuantizeDecision, SwitchGlu};
use mlx_rs::ops::{self, BoundedIndices};
use mlx_rs::quantization::{self, GatherIndices, QuantizationMode, QuantizationParams, Quantized};
use mlx_rs::{Array, Dtype, random};

/// Tests that change the process-wide policy hold this.
static POLICY: Mutex<()> = Mutex::new(());

fn cuda() -> bool {
    KernelBackend::Cuda.is_available()
}

fn metal() -> bool {
    KernelBackend::Metal.is_available()
}

fn params(group_size: i32, bits: i32) -> QuantizationParams {
    QuantizationParams {
        group_size: Some(group_size),
        bits: Some(bits),
        mode: QuantizationMode::Affine,
    }
}

/// Experts `[experts, n, k]` of `dtype`, quantized.
fn experts(e: i32, n: i32, k: i32, dtype: Dtype, p: QuantizationParams, seed: u64) -> Quantized {
    let key = random::key(seed).unwrap();
    let w = (random::normal(&[e, n, k], dtype, 0.0, 1.0, Some(&key)).unwrap() * 0.05).unwrap();
    quantization::quantize(&w.astype(dtype).unwrap(), p).unwrap()
}

/// `pairs` sorted expert ids below `e` and row ids below `rows`, both uint32.
fn routing(pairs: i32, e: i32, rows: i32, seed: u64) -> (Array, Array) {
    let key = random::key(seed).unwrap();
    let (k0, k1) = random::split_pair(&key).unwrap();
    let draw = |k: &Array, high: i32| {
        random::randint(&Array::scalar(0i32), &Array::scalar(high), &[pairs], Dtype::Int32, Some(k))
            .unwrap()
    };
    let experts = ops::sort(&draw(&k0, e), Some(0)).unwrap().astype(Dtype::Uint32).unwrap();
    (experts, draw(&k1, rows).astype(Dtype::Uint32).unwrap())
}

/// The largest difference relative to the largest reference value.
fn relative_error(got: &Array, want: &Array) -> f32 {
    let (got, want) = (got.astype(Dtype::Float32).unwrap(), want.astype(Dtype::Float32).unwrap());
    let diff = ops::max(&ops::abs(&(&got - &want).unwrap()).unwrap(), .., false).unwrap();
    let scale = ops::max(&ops::abs(&want).unwrap(), .., false).unwrap();
    diff.item::<f32>().unwrap() / scale.item::<f32>().unwrap().max(1e-30)
}

/// `gather_qmm` of the gathered rows: the reference.
fn reference(
    x: &Array,
    rows: Option<&Array>,
    experts: &Array,
    q: &Quantized,
    p: QuantizationParams,
) -> Array {
    let x = match rows {
        Some(r) => ops::take(x, r, 0).unwrap(),
        None => x.clone(),
    };
    let gather = GatherIndices { lhs: None, rhs: Some(experts), sorted: true };
    quantization::gather_qmm(&x.expand_dims(-2).unwrap(), q, gather, true, p)
        .unwrap()
        .squeeze(-2)
        .unwrap()
}

fn check_case(
    e: i32,
    n: i32,
    k: i32,
    pairs: i32,
    dtype: Dtype,
    p: QuantizationParams,
    gather: bool,
) {
    let num_rows = if gather { pairs / 2 + 1 } else { pairs };
    let (sorted, rows) = routing(pairs, e, num_rows, 11);
    check_routing(e, n, k, num_rows, &sorted, gather.then_some(&rows), dtype, p);
}

/// The kernel against `gather_qmm` for the pairs `sorted` (expert ids) and `rows` (row ids
/// below `num_rows`, or `None`: pair `p` is row `p`).
#[allow(clippy::too_many_arguments)]
fn check_routing(
    e: i32,
    n: i32,
    k: i32,
    num_rows: i32,
    sorted: &Array,
    rows: Option<&Array>,
    dtype: Dtype,
    p: QuantizationParams,
) {
    let start = std::time::Instant::now();
    let pairs = i32::try_from(sorted.size()).unwrap();
    let gather = rows.is_some();
    let q = experts(e, n, k, dtype, p, 7);
    let x =
        random::normal(&[num_rows, k], dtype, 0.0, 1.0, Some(&random::key(3).unwrap())).unwrap();
    let got = grouped_qmm(&x, rows, sorted, &q, p).unwrap();
    assert_eq!(got.shape(), &[pairs, n]);
    assert_eq!(got.dtype(), dtype);
    let want = reference(&x, rows, sorted, &q, p);
    let err = relative_error(&got, &want);
    let tol = if dtype == Dtype::Bfloat16 { 2e-2 } else { 5e-3 };
    assert!(
        err <= tol,
        "{dtype} bits {:?} group {:?} experts {e} n {n} k {k} pairs {pairs} gather {gather}: error {err}",
        p.bits,
        p.group_size
    );
    eprintln!(
        "{dtype} bits {:?} group {:?} {e}x{n}x{k} pairs {pairs} gather {gather}: error {err:.1e} ({:.1} s)",
        p.bits,
        p.group_size,
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn grouped_qmm_matches_gather_qmm_for_every_format() {
    if !cuda() {
        return;
    }
    for (bits, group, dtype) in formats_to_check() {
        // 77 pairs: tiles of 32 with ragged ends; 500 pairs over 8 experts: tiles of 64.
        for (pairs, gather) in [(77, true), (500, false)] {
            check_case(8, 128, 256, pairs, dtype, params(group, bits), gather);
        }
    }
}

/// Every format the grouped kernel takes, the checkpoints' common ones first (each new format
/// costs tens of seconds of CUDA compilation), or only those that `MLX_RS_GROUPED_FORMATS`
/// lists as `bits/group/dtype` entries, e.g. `6/64/bf16,5/32/f16` (so that several processes
/// can share the formats out). An entry that is not a format is an error, not a skip.
fn formats_to_check() -> Vec<(i32, i32, Dtype)> {
    let name = |d: Dtype| if d == Dtype::Bfloat16 { "bf16" } else { "f16" };
    let mut all = Vec::new();
    for bits in [4, 8, 6, 5, 3, 2] {
        for group in [64, 32, 128] {
            for dtype in [Dtype::Bfloat16, Dtype::Float16] {
                all.push((bits, group, dtype));
            }
        }
    }
    let Ok(list) = std::env::var("MLX_RS_GROUPED_FORMATS") else { return all };
    list.split(',')
        .map(|entry| {
            *all.iter()
                .find(|(b, g, d)| format!("{b}/{g}/{}", name(*d)) == entry.trim())
                .unwrap_or_else(|| panic!("MLX_RS_GROUPED_FORMATS: {entry:?} is not a format"))
        })
        .collect()
}

/// The Metal twin at a few formats: word-aligned codes (4, 8 bits) and codes across bytes (3, 6
/// bits), both dtypes, ragged tiles of 32 with gathered rows and full tiles of 64.
#[test]
fn grouped_qmm_on_metal_matches_gather_qmm() {
    if !metal() {
        return;
    }
    let (bf16, f16) = (Dtype::Bfloat16, Dtype::Float16);
    for (bits, group, dtype) in [(4, 64, bf16), (8, 32, f16), (3, 64, bf16), (6, 128, f16)] {
        for (pairs, gather) in [(77, true), (500, false)] {
            check_case(8, 128, 256, pairs, dtype, params(group, bits), gather);
        }
    }
    // Qwen3-30B-A3B's gate/up: 128 experts, K = 2048.
    check_case(128, 768, 2048, 1024, bf16, params(64, 4), true);
}

#[test]
fn grouped_qmm_matches_gather_qmm_at_model_shapes() {
    if !cuda() {
        return;
    }
    let bf16 = Dtype::Bfloat16;
    // GLM-4.5-Air (3-bit), Qwen3-30B-A3B and Mixtral-8x7B (4-bit): gate/up and down.
    check_case(128, 1408, 4096, 256, bf16, params(64, 3), true);
    check_case(128, 4096, 1408, 4096, bf16, params(64, 3), false);
    check_case(128, 768, 2048, 1024, bf16, params(64, 4), true);
    check_case(128, 2048, 768, 1000, bf16, params(64, 4), false);
    check_case(8, 14336, 4096, 1024, bf16, params(64, 4), true);
}

/// Every token routed to the same experts, as a random-weight router with tied scores does:
/// each chosen expert holds one pair per token, many tiles of one expert.
#[test]
fn grouped_qmm_matches_gather_qmm_with_skewed_routing() {
    if !cuda() {
        return;
    }
    let tokens = 512i32;
    let chosen = [0u32, 5, 17, 40, 41, 90, 126, 127];
    let experts: Vec<u32> = chosen.iter().flat_map(|&e| std::iter::repeat_n(e, 512)).collect();
    let rows: Vec<u32> = chosen.iter().flat_map(|_| 0..tokens.unsigned_abs()).collect();
    let pairs = i32::try_from(experts.len()).unwrap();
    let experts = Array::from_slice(&experts, &[pairs]).unwrap();
    let rows = Array::from_slice(&rows, &[pairs]).unwrap();
    let (bf16, p) = (Dtype::Bfloat16, params(64, 4));
    // Qwen3-30B-A3B's gate/up (gathered rows) and down (one row per pair).
    check_routing(128, 768, 2048, tokens, &experts, Some(&rows), bf16, p);
    check_routing(128, 2048, 768, pairs, &experts, None, bf16, p);
}

#[test]
fn switch_glu_with_kernels_on_equals_off() {
    let _guard = POLICY.lock().unwrap_or_else(|e| e.into_inner());
    let dtype = if cuda() { Dtype::Bfloat16 } else { Dtype::Float32 };
    let mut glu = SwitchGlu::new(128, 256, 16, false).unwrap();
    let cast = glu.parameters().map(|a| a.astype(dtype)).unwrap();
    glu.update(&cast).unwrap();
    nn::quantize(&mut glu, params(64, 4), |_, _| QuantizeDecision::Default).unwrap();
    glu.train(false);
    let x = random::normal(&[1, 40, 128], dtype, 0.0, 1.0, Some(&random::key(5).unwrap())).unwrap();
    let scores =
        random::normal(&[1, 40, 16], Dtype::Float32, 0.0, 1.0, Some(&random::key(6).unwrap()))
            .unwrap();
    // Top 2 of 16 for 40 tokens: 80 pairs, the sorted branch.
    let top = BoundedIndices::argpartition(&ops::negative(&scores).unwrap(), 1, -1).unwrap();
    let top = top.index((.., .., ..2)).unwrap();
    let mut outputs = Vec::new();
    for policy in [Fused::Off, Fused::On, Fused::Auto] {
        kernels::set_fused(policy);
        let y = glu.forward(&x, &top).unwrap();
        y.eval().unwrap();
        outputs.push(y);
    }
    kernels::set_fused(Fused::Auto);
    assert_eq!(outputs[0].shape(), &[1, 40, 2, 128]);
    for y in &outputs[1..] {
        let err = relative_error(y, &outputs[0]);
        assert!(err <= 2e-2, "kernels on/auto differ from off by {err}");
    }
}

#[test]
fn fallbacks_and_reasons() {
    let q = experts(4, 64, 128, Dtype::Bfloat16, params(64, 4), 1);
    let reason = |dtype, q: &Quantized, p| grouped_qmm_support(dtype, q, p).unwrap_err();
    assert!(reason(Dtype::Float32, &q, params(64, 4)).contains("float32"));
    assert!(reason(Dtype::Bfloat16, &q, params(32, 4)).contains("scales and biases"));
    let mx =
        QuantizationParams { group_size: Some(32), bits: Some(4), mode: QuantizationMode::Mxfp4 };
    assert!(reason(Dtype::Bfloat16, &q, mx).contains("mxfp4"));
    let odd = experts(4, 40, 128, Dtype::Bfloat16, params(64, 4), 1);
    assert!(reason(Dtype::Bfloat16, &odd, params(64, 4)).contains("multiples of 64"));
    let x = ops::zeros(&[3, 128], Dtype::Bfloat16).unwrap();
    let (sorted, _) = routing(6, 4, 3, 2);
    if cuda() || metal() {
        assert!(grouped_qmm_support(Dtype::Bfloat16, &q, params(64, 4)).is_ok());
        let wrong = ops::zeros(&[3, 64], Dtype::Bfloat16).unwrap();
        let err = grouped_qmm(&wrong, None, &sorted, &q, params(64, 4)).unwrap_err();
        assert!(err.to_string().contains("[rows, 128]"), "{err}");
        if metal() {
            let many = experts(2049, 64, 64, Dtype::Bfloat16, params(64, 4), 1);
            let why = reason(Dtype::Bfloat16, &many, params(64, 4));
            assert!(why.contains("at most 2048 on Metal"), "{why}");
        }
    } else {
        let err = grouped_qmm(&x, None, &sorted, &q, params(64, 4)).unwrap_err().to_string();
        assert!(err.contains("CUDA or Metal backend"), "{err}");
        for policy in [Fused::On, Fused::Auto] {
            let path = expert_matmul::choose(policy, 4096, Dtype::Bfloat16, &q, params(64, 4));
            assert_eq!(path, ExpertMatmul::GatherQmm);
        }
    }
    let path = expert_matmul::choose(Fused::Off, 4096, Dtype::Bfloat16, &q, params(64, 4));
    assert_eq!(path, ExpertMatmul::GatherQmm);
}

/// `Auto` follows the backend's measured table: CUDA's picks the kernel from its 4-bit
/// crossover, Metal's has no entry for any bit width, so `Auto` never picks the kernel there.
#[test]
fn auto_never_picks_the_grouped_kernel_on_metal() {
    let picks = |backend, bits| expert_matmul::crossovers(backend).iter().any(|c| c.bits == bits);
    assert!(picks(KernelBackend::Cuda, 4));
    for bits in [2, 3, 4, 5, 6, 8] {
        assert!(!picks(KernelBackend::Metal, bits), "{bits} bits");
    }
    if metal() {
        let q = experts(4, 64, 128, Dtype::Bfloat16, params(64, 4), 1);
        for pairs in [1, 64, 4096, 1 << 20] {
            let p = params(64, 4);
            let path = expert_matmul::choose(Fused::Auto, pairs, Dtype::Bfloat16, &q, p);
            assert_eq!(path, ExpertMatmul::GatherQmm, "{pairs} pairs");
            let path = expert_matmul::choose(Fused::On, pairs, Dtype::Bfloat16, &q, p);
            assert_eq!(path, ExpertMatmul::Grouped, "{pairs} pairs");
        }
    }
}

#[test]
fn dequantized_path_equals_gather_qmm() {
    let p = params(64, 4);
    let q = experts(4, 64, 128, Dtype::Float32, p, 9);
    let x = random::normal(&[70, 128], Dtype::Float32, 0.0, 1.0, Some(&random::key(4).unwrap()))
        .unwrap();
    let (sorted, _) = routing(70, 4, 70, 8);
    let got = expert_matmul::dequantized_gather_mm(&x.expand_dims(-2).unwrap(), &sorted, &q, p)
        .unwrap()
        .squeeze(-2)
        .unwrap();
    let want = reference(&x, None, &sorted, &q, p);
    // Float32 products on CUDA may run in TF32 (10-bit mantissa).
    let tol = if cuda() { 5e-3 } else { 1e-5 };
    let err = relative_error(&got, &want);
    assert!(err < tol, "dequantized path differs by {err}");
}
