//! The crate's own kernels (`mlx_rs::kernels`): the grouped quantized expert matmul against
//! `gather_qmm` on CUDA (every bit width, group size and 16-bit dtype, odd pair counts, the
//! model shapes) and on Metal (a few formats), the decode kernels (`gather_qmv` against
//! `gather_qmm`, `quantized_matvec` against `quantized_matmul`) on CUDA, `SwitchGlu` with the kernels on against off (prefill and decode), and
//! the fallbacks and reasons everywhere else (this CPU).

use std::sync::Mutex;

use mlx_rs::fast::kernel::KernelBackend;
use mlx_rs::kernels::expert_matmul::{self, ExpertMatmul};
use mlx_rs::kernels::{self, Fused, gather_qmv_support, grouped_qmm, grouped_qmm_support};
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

/// The decode kernel against `gather_qmm` for `pairs` unsorted pairs of `e` experts
/// `[n, k]`, `pairs_per_row` pairs per row of `x`; with `swiglu`, the fused gate/up/activation
/// against `swiglu` of two `gather_qmm` products.
#[allow(clippy::too_many_arguments)]
fn check_decode(
    e: i32,
    n: i32,
    k: i32,
    pairs: i32,
    pairs_per_row: i32,
    dtype: Dtype,
    p: QuantizationParams,
    swiglu: bool,
) {
    let rows = (pairs + pairs_per_row - 1) / pairs_per_row;
    let key = random::key(21).unwrap();
    let routed = random::randint(
        &Array::scalar(0i32),
        &Array::scalar(e),
        &[pairs],
        Dtype::Int32,
        Some(&key),
    )
    .unwrap()
    .astype(Dtype::Uint32)
    .unwrap();
    let x = random::normal(&[rows, k], dtype, 0.0, 1.0, Some(&random::key(3).unwrap())).unwrap();
    let ids: Vec<u32> = (0..pairs).map(|i| (i / pairs_per_row).unsigned_abs()).collect();
    let row_of_pair = Array::from_slice(&ids, &[pairs]).unwrap();
    let gate = experts(e, n, k, dtype, p, 7);
    let (got, want) = if swiglu {
        let up = experts(e, n, k, dtype, p, 8);
        let got = kernels::gather_qmv_swiglu(&x, &routed, pairs_per_row, &gate, &up, p).unwrap();
        let g = reference_unsorted(&x, &row_of_pair, &routed, &gate, p);
        let u = reference_unsorted(&x, &row_of_pair, &routed, &up, p);
        (got, nn::swiglu(&g, &u).unwrap())
    } else {
        let got = kernels::gather_qmv(&x, &routed, pairs_per_row, &gate, p).unwrap();
        (got, reference_unsorted(&x, &row_of_pair, &routed, &gate, p))
    };
    assert_eq!(got.shape(), &[pairs, n]);
    assert_eq!(got.dtype(), dtype);
    let err = relative_error(&got, &want);
    let tol = if dtype == Dtype::Bfloat16 { 2e-2 } else { 5e-3 };
    let what = format!(
        "{dtype} bits {:?} group {:?} {e}x{n}x{k} pairs {pairs}/{pairs_per_row} swiglu {swiglu}",
        p.bits, p.group_size
    );
    assert!(err <= tol, "{what}: error {err}");
    eprintln!("{what}: error {err:.1e}");
}

/// `gather_qmm` of rows `rows` of `x` through unsorted `experts`.
fn reference_unsorted(
    x: &Array,
    rows: &Array,
    experts: &Array,
    q: &Quantized,
    p: QuantizationParams,
) -> Array {
    let x = ops::take(x, rows, 0).unwrap().expand_dims(-2).unwrap();
    let gather = GatherIndices { lhs: None, rhs: Some(experts), sorted: false };
    quantization::gather_qmm(&x, q, gather, true, p).unwrap().squeeze(-2).unwrap()
}

#[test]
fn gather_qmv_matches_gather_qmm_for_every_format() {
    if !cuda() {
        return;
    }
    for (bits, group, dtype) in formats_to_check() {
        // N = 100: a partial last block; 6 pairs, 2 per row, 3 rows.
        check_decode(8, 100, 384, 6, 2, dtype, params(group, bits), false);
    }
    let (bf16, f16) = (Dtype::Bfloat16, Dtype::Float16);
    for (bits, group, dtype) in [(4, 64, bf16), (3, 64, bf16), (4, 64, f16), (8, 32, bf16)] {
        check_decode(8, 100, 384, 6, 2, dtype, params(group, bits), true);
    }
}

#[test]
fn gather_qmv_matches_gather_qmm_at_model_shapes() {
    if !cuda() {
        return;
    }
    let bf16 = Dtype::Bfloat16;
    // One decode token of GLM-4.5-Air (3-bit, top 8), Qwen3-30B-A3B (top 8) and Mixtral-8x7B
    // (top 2): gate/up with the activation, then down (one pair per row).
    check_decode(16, 1408, 4096, 8, 8, bf16, params(64, 3), true);
    check_decode(16, 4096, 1408, 8, 1, bf16, params(64, 3), false);
    check_decode(16, 768, 2048, 8, 8, bf16, params(64, 4), true);
    check_decode(16, 2048, 768, 8, 1, bf16, params(64, 4), false);
    check_decode(8, 14336, 4096, 2, 2, bf16, params(64, 4), true);
    check_decode(8, 4096, 14336, 2, 1, bf16, params(64, 4), false);
}

/// The dense decode kernel against `quantized_matmul` for `x` `[1, rows, k]` through an
/// `[n, k]` matrix.
fn check_matvec(n: i32, k: i32, rows: i32, dtype: Dtype, p: QuantizationParams) {
    let q = experts(1, n, k, dtype, p, 5);
    let q = Quantized {
        weights: q.weights.squeeze(0).unwrap(),
        scales: q.scales.squeeze(0).unwrap(),
        biases: q.biases.map(|b| b.squeeze(0).unwrap()),
    };
    let x = random::normal(&[1, rows, k], dtype, 0.0, 1.0, Some(&random::key(4).unwrap())).unwrap();
    let got = kernels::quantized_matvec(&x, &q, p).unwrap();
    let want = quantization::quantized_matmul(&x, &q, true, p).unwrap();
    assert_eq!(got.shape(), &[1, rows, n]);
    let err = relative_error(&got, &want);
    let tol = if dtype == Dtype::Bfloat16 { 2e-2 } else { 5e-3 };
    let what = format!("{dtype} bits {:?} group {:?} {n}x{k} rows {rows}", p.bits, p.group_size);
    assert!(err <= tol, "{what}: error {err}");
    eprintln!("{what}: error {err:.1e}");
}

#[test]
fn quantized_matvec_matches_quantized_matmul() {
    if !cuda() {
        return;
    }
    let (bf16, f16) = (Dtype::Bfloat16, Dtype::Float16);
    for (bits, group, dtype) in
        [(4, 64, bf16), (3, 64, bf16), (4, 32, f16), (8, 64, bf16), (6, 128, f16)]
    {
        check_matvec(100, 384, 1, dtype, params(group, bits));
        check_matvec(100, 384, 3, dtype, params(group, bits));
    }
    // Mistral-7B's attention and MLP matrices, GLM-4.5-Air's q projection (3-bit).
    check_matvec(4096, 4096, 1, bf16, params(64, 4));
    check_matvec(14336, 4096, 1, bf16, params(64, 4));
    check_matvec(4096, 14336, 1, bf16, params(64, 4));
    check_matvec(12288, 4096, 1, bf16, params(64, 3));
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
    // One token, top 2: the decode branch.
    let (x1, top1) = (x.index((.., ..1, ..)).unwrap(), top.index((.., ..1, ..)).unwrap());
    let mut decoded = Vec::new();
    for policy in [Fused::Off, Fused::On, Fused::Auto] {
        kernels::set_fused(policy);
        let y = glu.forward(&x1, &top1).unwrap();
        y.eval().unwrap();
        decoded.push(y);
    }
    kernels::set_fused(Fused::Auto);
    assert_eq!(outputs[0].shape(), &[1, 40, 2, 128]);
    assert_eq!(decoded[0].shape(), &[1, 1, 2, 128]);
    for (ys, what) in [(&outputs, "prefill"), (&decoded, "decode")] {
        for y in &ys[1..] {
            assert_eq!(y.shape(), ys[0].shape());
            let err = relative_error(y, &ys[0]);
            assert!(err <= 2e-2, "{what}: kernels on/auto differ from off by {err}");
        }
    }
    // The decode step equals the first token of the prefill pass.
    let first = outputs[0].index((.., ..1, .., ..)).unwrap();
    assert!(relative_error(&decoded[0], &first) <= 2e-2);
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
    let qmv_reason = |dtype, q: &Quantized, p| gather_qmv_support(dtype, q, p).unwrap_err();
    assert!(qmv_reason(Dtype::Float32, &q, params(64, 4)).contains("float32"));
    assert!(qmv_reason(Dtype::Bfloat16, &q, params(32, 4)).contains("scales and biases"));
    assert!(qmv_reason(Dtype::Bfloat16, &q, mx).contains("mxfp4"));
    if cuda() {
        assert!(gather_qmv_support(Dtype::Bfloat16, &q, params(64, 4)).is_ok());
        let wrong = ops::zeros(&[3, 64], Dtype::Bfloat16).unwrap();
        let err = kernels::gather_qmv(&wrong, &sorted, 2, &q, params(64, 4)).unwrap_err();
        assert!(err.to_string().contains("[rows, 128]"), "{err}");
        let err = kernels::gather_qmv(&x, &sorted, 0, &q, params(64, 4)).unwrap_err();
        assert!(err.to_string().contains("pairs_per_row"), "{err}");
    }
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
        let err = kernels::gather_qmv(&x, &sorted, 2, &q, params(64, 4)).unwrap_err().to_string();
        assert!(err.contains("CUDA backend"), "{err}");
        let dense = Quantized {
            weights: q.weights.index(0).unwrap(),
            scales: q.scales.index(0).unwrap(),
            biases: q.biases.as_ref().map(|b| b.index(0).unwrap()),
        };
        let err = kernels::quantized_matvec(&x, &dense, params(64, 4)).unwrap_err().to_string();
        assert!(err.contains("CUDA backend"), "{err}");
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
