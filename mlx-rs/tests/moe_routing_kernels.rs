//! The MoE routing functions of `mlx_rs::kernels` (`softmax_topk`, `topk_softmax`, `glm_topk`,
//! `gather_add`): their plain paths against a straightforward reference (float32, bfloat16,
//! float16, odd sizes), bad arguments, the support reasons, ties; and on CUDA the fused kernels
//! against the plain ops at the models' router shapes.

use std::sync::Mutex;

use mlx_rs::kernels::{self, Fused, GroupedTopk};
use mlx_rs::ops::BoundedIndices;
use mlx_rs::{Array, Dtype};

/// Tests that change the process-wide policy hold this.
static POLICY: Mutex<()> = Mutex::new(());

fn cuda() -> bool {
    mlx_rs::fast::kernel::KernelBackend::Cuda.is_available()
}

/// Logits `[tokens, experts]` without ties: each row a permutation of `(i - experts / 2) / 8`
/// (exact in every float dtype for up to 256 experts).
fn distinct_logits(tokens: i32, experts: i32, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut out = Vec::new();
    for _ in 0..tokens {
        let mut row: Vec<i32> = (0..experts).collect();
        for i in (1..row.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            row.swap(i, (state >> 33) as usize % (i + 1));
        }
        out.extend(row.iter().map(|&v| (v - experts / 2) as f32 / 8.0));
    }
    out
}

fn array(values: &[f32], shape: &[i32], dtype: Dtype) -> Array {
    Array::from_slice(values, shape).unwrap().astype(dtype).unwrap()
}

/// Each row's (expert, weight) pairs sorted by expert.
fn pairs(inds: &BoundedIndices, weights: &Array) -> Vec<Vec<(u32, f32)>> {
    let k = inds.array().dim(-1).unwrap() as usize;
    let i = inds.array().astype(Dtype::Uint32).unwrap().to_vec::<u32>().unwrap();
    let w = weights.astype(Dtype::Float32).unwrap().to_vec::<f32>().unwrap();
    i.chunks(k)
        .zip(w.chunks(k))
        .map(|(i, w)| {
            let mut row: Vec<(u32, f32)> = i.iter().copied().zip(w.iter().copied()).collect();
            row.sort_by_key(|p| p.0);
            row
        })
        .collect()
}

fn assert_pairs(actual: &[Vec<(u32, f32)>], expected: &[Vec<(u32, f32)>], tol: f32, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: rows");
    for (t, (a, e)) in actual.iter().zip(expected).enumerate() {
        let (ai, ei): (Vec<u32>, Vec<u32>) =
            (a.iter().map(|p| p.0).collect(), e.iter().map(|p| p.0).collect());
        assert_eq!(ai, ei, "{what}: experts of row {t}");
        for ((_, x), (_, y)) in a.iter().zip(e) {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}: row {t}: {x} vs {y}");
        }
    }
}

/// The top `k` of `keys` (distinct), as indices, largest first.
fn top(keys: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| keys[b].total_cmp(&keys[a]));
    order.truncate(k);
    order
}

fn sorted_rows(rows: Vec<Vec<(u32, f64)>>) -> Vec<Vec<(u32, f32)>> {
    rows.into_iter()
        .map(|mut r| {
            r.sort_by_key(|p| p.0);
            r.into_iter().map(|(i, w)| (i, w as f32)).collect()
        })
        .collect()
}

fn softmax_topk_reference(x: &[f32], experts: usize, k: usize, norm: bool) -> Vec<Vec<(u32, f32)>> {
    sorted_rows(
        x.chunks(experts)
            .map(|row| {
                let m = row.iter().fold(f64::MIN, |m, &v| m.max(f64::from(v)));
                let e: Vec<f64> = row.iter().map(|&v| (f64::from(v) - m).exp()).collect();
                let s: f64 = e.iter().sum();
                let p: Vec<f64> = e.iter().map(|v| v / s).collect();
                let chosen = top(&p, k);
                let total: f64 = chosen.iter().map(|&i| p[i]).sum();
                chosen.iter().map(|&i| (i as u32, if norm { p[i] / total } else { p[i] })).collect()
            })
            .collect(),
    )
}

fn topk_softmax_reference(x: &[f32], experts: usize, k: usize) -> Vec<Vec<(u32, f32)>> {
    sorted_rows(
        x.chunks(experts)
            .map(|row| {
                let keys: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
                let chosen = top(&keys, k);
                let m = keys[chosen[0]];
                let s: f64 = chosen.iter().map(|&i| (keys[i] - m).exp()).sum();
                chosen.iter().map(|&i| (i as u32, (keys[i] - m).exp() / s)).collect()
            })
            .collect(),
    )
}

fn glm_reference(x: &[f32], bias: &[f32], p: &GroupedTopk) -> Vec<Vec<(u32, f32)>> {
    let experts = bias.len();
    let (groups, keep) = (p.n_group as usize, p.topk_group as usize);
    sorted_rows(
        x.chunks(experts)
            .map(|row| {
                let s: Vec<f64> =
                    row.iter().map(|&v| 1.0 / (1.0 + (-f64::from(v)).exp())).collect();
                let mut keys: Vec<f64> =
                    s.iter().zip(bias).map(|(s, &b)| s + f64::from(b)).collect();
                if groups > 1 && keep < groups {
                    let size = experts / groups;
                    let ratings: Vec<f64> =
                        keys.chunks(size).map(|g| top(g, 2).iter().map(|&i| g[i]).sum()).collect();
                    let kept = top(&ratings, keep);
                    for (e, key) in keys.iter_mut().enumerate() {
                        if !kept.contains(&(e / size)) {
                            *key = 0.0;
                        }
                    }
                }
                let chosen = top(&keys, p.top_k as usize);
                let total: f64 = chosen.iter().map(|&i| s[i]).sum();
                let norm = p.norm_topk_prob && p.top_k > 1;
                chosen
                    .iter()
                    .map(|&i| {
                        let w = if norm { s[i] / total } else { s[i] };
                        (i as u32, w * f64::from(p.routed_scaling_factor))
                    })
                    .collect()
            })
            .collect(),
    )
}

fn tolerance(dtype: Dtype) -> f32 {
    match dtype {
        Dtype::Float32 => 1e-5,
        Dtype::Float16 => 2e-3,
        _ => 1.6e-2,
    }
}

const DTYPES: [Dtype; 3] = [Dtype::Float32, Dtype::Bfloat16, Dtype::Float16];

/// The logits as the dtype rounds them, for the reference.
fn as_dtype(values: &[f32], dtype: Dtype) -> Vec<f32> {
    let n = values.len() as i32;
    array(values, &[n], dtype).astype(Dtype::Float32).unwrap().to_vec::<f32>().unwrap()
}

#[test]
fn softmax_topk_plain_matches_reference() {
    for dtype in DTYPES {
        for (tokens, experts, k) in [(3, 7, 2), (5, 60, 4), (2, 128, 8), (1, 1, 1)] {
            for norm in [false, true] {
                let x = distinct_logits(tokens, experts, 7);
                let logits = array(&x, &[tokens, experts], dtype);
                let (inds, w) = kernels::softmax_topk(&logits, k, norm, false).unwrap();
                assert_eq!((inds.bound(), w.dtype()), (i64::from(experts), dtype));
                assert_eq!(w.shape(), [tokens, k]);
                let expected = softmax_topk_reference(&x, experts as usize, k as usize, norm);
                let what = format!("{dtype} {tokens}x{experts} top {k} norm {norm}");
                assert_pairs(&pairs(&inds, &w), &expected, tolerance(dtype), &what);
            }
        }
    }
}

#[test]
fn topk_softmax_plain_matches_reference() {
    for dtype in DTYPES {
        for (tokens, experts, k) in [(3, 8, 2), (5, 33, 3), (1, 256, 16)] {
            let x = distinct_logits(tokens, experts, 11);
            let logits = array(&x, &[1, tokens, experts], dtype);
            let (inds, w) = kernels::topk_softmax(&logits, k, false).unwrap();
            assert_eq!(w.shape(), [1, tokens, k]);
            assert_eq!(w.dtype(), dtype);
            let expected = topk_softmax_reference(&x, experts as usize, k as usize);
            let what = format!("{dtype} {tokens}x{experts} top {k}");
            assert_pairs(&pairs(&inds, &w), &expected, tolerance(dtype), &what);
        }
    }
}

fn glm_bias(experts: i32) -> Vec<f32> {
    (0..experts).map(|e| 0.001 * ((e * 37) % 17) as f32 - 0.008).collect()
}

const GLM_CONFIGS: [GroupedTopk; 4] = [
    GroupedTopk {
        top_k: 8,
        n_group: 1,
        topk_group: 1,
        routed_scaling_factor: 1.0,
        norm_topk_prob: true,
    },
    GroupedTopk {
        top_k: 8,
        n_group: 8,
        topk_group: 4,
        routed_scaling_factor: 2.5,
        norm_topk_prob: true,
    },
    GroupedTopk {
        top_k: 3,
        n_group: 4,
        topk_group: 1,
        routed_scaling_factor: 1.0,
        norm_topk_prob: false,
    },
    GroupedTopk {
        top_k: 1,
        n_group: 2,
        topk_group: 2,
        routed_scaling_factor: 2.5,
        norm_topk_prob: true,
    },
];

#[test]
fn glm_topk_plain_matches_reference() {
    for dtype in DTYPES {
        for (tokens, experts) in [(3, 128), (5, 16)] {
            for p in GLM_CONFIGS {
                let x = distinct_logits(tokens, experts, 5);
                let b = glm_bias(experts);
                let logits = array(&x, &[tokens, experts], dtype);
                let bias = array(&b, &[experts], Dtype::Float32);
                let (inds, w) = kernels::glm_topk(&logits, &bias, &p, false).unwrap();
                assert_eq!(w.dtype(), Dtype::Float32);
                let expected = glm_reference(&as_dtype(&x, dtype), &b, &p);
                let what = format!("{dtype} {tokens}x{experts} {p:?}");
                assert_pairs(&pairs(&inds, &w), &expected, 1e-5, &what);
            }
        }
    }
}

#[test]
fn gather_add_plain_matches_reference() {
    for dtype in DTYPES {
        let (tokens, k, dim) = (3, 5, 7);
        let y: Vec<f32> =
            (0..tokens * k * dim).map(|i| ((i * 13) % 29) as f32 / 8.0 - 1.5).collect();
        let s: Vec<f32> = (0..tokens * k).map(|i| ((i * 7) % 11) as f32 / 16.0).collect();
        let ya = array(&y, &[tokens, k, dim], dtype);
        let sa = array(&s, &[tokens, k], dtype);
        let (y, s) = (as_dtype(&y, dtype), as_dtype(&s, dtype));
        for out in [None, Some(dtype), Some(Dtype::Float32)] {
            let sum = kernels::gather_add(&ya, &sa, out, false).unwrap();
            assert_eq!(sum.dtype(), out.unwrap_or(dtype));
            assert_eq!(sum.shape(), [tokens, dim]);
            let got = sum.astype(Dtype::Float32).unwrap().to_vec::<f32>().unwrap();
            for t in 0..tokens as usize {
                for d in 0..dim as usize {
                    let want: f32 = (0..k as usize)
                        .map(|j| s[t * k as usize + j] * y[(t * k as usize + j) * dim as usize + d])
                        .sum();
                    let g = got[t * dim as usize + d];
                    assert!(
                        (g - want).abs() <= 4.0 * tolerance(dtype) * (1.0 + want.abs()),
                        "{g} vs {want}"
                    );
                }
            }
        }
    }
    // Mixed dtypes: the product's dtype by default.
    let y = array(&[1.0, 2.0], &[1, 1, 2], Dtype::Bfloat16);
    let s = array(&[0.5], &[1, 1], Dtype::Float32);
    let sum = kernels::gather_add(&y, &s, None, false).unwrap();
    assert_eq!(sum.dtype(), Dtype::Float32);
    assert_eq!(sum.to_vec::<f32>().unwrap(), [0.5, 1.0]);
}

#[test]
fn bad_arguments_are_errors() {
    let logits = array(&distinct_logits(2, 8, 1), &[2, 8], Dtype::Float32);
    for k in [0, 9, -1] {
        let e = kernels::softmax_topk(&logits, k, true, false).unwrap_err().to_string();
        assert!(e.contains("1..=8"), "{e}");
        assert!(kernels::topk_softmax(&logits, k, false).is_err());
    }
    let scalar = Array::scalar(1.0f32);
    assert!(kernels::softmax_topk(&scalar, 1, false, false).is_err());
    let ints = Array::from_slice(&[1i32, 2, 3], &[1, 3]).unwrap();
    let e = kernels::topk_softmax(&ints, 1, false).unwrap_err().to_string();
    assert!(e.contains("floating point"), "{e}");
    let bias = array(&[0.0; 8], &[8], Dtype::Float32);
    let ok = GroupedTopk {
        top_k: 2,
        n_group: 4,
        topk_group: 2,
        routed_scaling_factor: 1.0,
        norm_topk_prob: true,
    };
    let short = array(&[0.0; 7], &[7], Dtype::Float32);
    assert!(
        kernels::glm_topk(&logits, &short, &ok, false).unwrap_err().to_string().contains("[8]")
    );
    for (n_group, topk_group, needle) in
        [(3, 1, "divide"), (4, 5, "topk_group"), (8, 2, "2 per group")]
    {
        let p = GroupedTopk { n_group, topk_group, ..ok };
        let e = kernels::glm_topk(&logits, &bias, &p, false).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
    let y = array(&[0.0; 12], &[2, 3, 2], Dtype::Float32);
    let s = array(&[0.0; 4], &[2, 2], Dtype::Float32);
    let e = kernels::gather_add(&y, &s, None, false).unwrap_err().to_string();
    assert!(e.contains("[..., k, dim]"), "{e}");
}

#[test]
fn support_reasons() {
    let logits = array(&[0.0; 16], &[2, 8], Dtype::Float32);
    let p = GLM_CONFIGS[0];
    if !cuda() {
        for why in [
            kernels::softmax_topk_support(&logits, 2),
            kernels::topk_softmax_support(&logits, 2),
            kernels::glm_topk_support(&logits, &GroupedTopk { top_k: 2, ..p }),
        ] {
            assert!(why.unwrap_err().contains("GPU"));
        }
    }
    let wide = array(&[0.0; 300], &[1, 300], Dtype::Float32);
    assert!(kernels::softmax_topk_support(&wide, 2).unwrap_err().contains("at most 256"));
    assert!(kernels::topk_softmax_support(&logits, 17).unwrap_err().contains("at most 16"));
    // float64 straight from the host: a cast to it is an error on the GPU.
    let f64s = Array::from_slice(&[0.0f64; 16], &[2, 8]).unwrap();
    assert!(kernels::softmax_topk_support(&f64s, 2).unwrap_err().contains("float32, bfloat16"));
    let many = GroupedTopk { n_group: 64, ..p };
    assert!(kernels::glm_topk_support(&wide, &many).unwrap_err().contains("at most 32"));
    let y = array(&[0.0; 8], &[2, 2, 2], Dtype::Float32);
    let s = Array::from_slice(&[0.0f64; 4], &[2, 2]).unwrap();
    assert!(kernels::gather_add_support(&y, &s, None).unwrap_err().contains("float32"));
}

/// Valid choices under ties: `k` distinct experts in range whose values are the row's `k`
/// largest.
fn assert_valid_ties(inds: &BoundedIndices, keys: &[f32], experts: usize, k: usize) {
    for (row, chosen) in inds.array().to_vec::<u32>().unwrap().chunks(k).zip(keys.chunks(experts)) {
        let mut seen: Vec<u32> = row.to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), k, "distinct: {row:?}");
        assert!(row.iter().all(|&e| (e as usize) < experts));
        let mut sorted = chosen.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let mut picked: Vec<f32> = row.iter().map(|&e| chosen[e as usize]).collect();
        picked.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(picked, sorted[..k], "the largest values");
    }
}

/// Ties: every path gives valid choices; the kernel (CUDA) the lowest experts among equals.
#[test]
fn ties_give_valid_choices() {
    let _guard = POLICY.lock().unwrap_or_else(|e| e.into_inner());
    let x = [1.0f32, 3.0, 3.0, 0.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0];
    let logits = array(&x, &[2, 8], Dtype::Float32);
    for policy in [Fused::Off, Fused::On] {
        kernels::set_fused(policy);
        let (inds, _) = kernels::topk_softmax(&logits, 3, false).unwrap();
        assert_valid_ties(&inds, &x, 8, 3);
        let (inds, _) = kernels::softmax_topk(&logits, 3, true, false).unwrap();
        assert_valid_ties(&inds, &x, 8, 3);
        let bias = array(&[0.0; 8], &[8], Dtype::Float32);
        let p = GroupedTopk { top_k: 3, ..GLM_CONFIGS[0] };
        let (inds, _) = kernels::glm_topk(&logits, &bias, &p, false).unwrap();
        assert_valid_ties(&inds, &x, 8, 3);
        if policy == Fused::On && cuda() {
            assert_eq!(inds.array().to_vec::<u32>().unwrap(), [1, 2, 4, 0, 1, 2]);
        }
    }
    kernels::set_fused(Fused::Auto);
}

/// Kernel (On) against plain (Off) for one router call.
fn on_vs_off(f: &dyn Fn() -> (BoundedIndices, Array), tol: f32, what: &str) {
    kernels::set_fused(Fused::Off);
    let (pi, pw) = f();
    kernels::set_fused(Fused::On);
    let (ki, kw) = f();
    assert_eq!(
        (ki.bound(), kw.dtype(), kw.shape()),
        (pi.bound(), pw.dtype(), pw.shape()),
        "{what}"
    );
    assert_pairs(&pairs(&ki, &kw), &pairs(&pi, &pw), tol, what);
}

#[test]
fn cuda_routing_kernels_match_plain_ops() {
    if !cuda() {
        return;
    }
    let _guard = POLICY.lock().unwrap_or_else(|e| e.into_inner());
    for tokens in [1, 3, 513] {
        for dtype in DTYPES {
            let x = distinct_logits(tokens, 128, 3);
            let logits = array(&x, &[tokens, 128], dtype);
            for norm in [true, false] {
                let what = format!("qwen3 {dtype} {tokens} norm {norm}");
                on_vs_off(
                    &|| kernels::softmax_topk(&logits, 8, norm, false).unwrap(),
                    tolerance(dtype),
                    &what,
                );
            }
            let x = distinct_logits(tokens, 8, 4);
            let logits = array(&x, &[1, tokens, 8], dtype);
            let what = format!("mixtral {dtype} {tokens}");
            on_vs_off(
                &|| kernels::topk_softmax(&logits, 2, false).unwrap(),
                tolerance(dtype),
                &what,
            );
            let x = distinct_logits(tokens, 128, 6);
            let logits = array(&x, &[tokens, 128], dtype);
            let bias = array(&glm_bias(128), &[128], Dtype::Float32);
            for p in GLM_CONFIGS {
                let what = format!("glm {dtype} {tokens} {p:?}");
                on_vs_off(&|| kernels::glm_topk(&logits, &bias, &p, false).unwrap(), 1e-5, &what);
            }
        }
    }
    // Under training the plain ops run (same arrays as Off, bit for bit).
    let logits = array(&distinct_logits(3, 128, 1), &[3, 128], Dtype::Bfloat16);
    kernels::set_fused(Fused::Off);
    let (_, off) = kernels::softmax_topk(&logits, 8, true, true).unwrap();
    kernels::set_fused(Fused::On);
    let (_, train) = kernels::softmax_topk(&logits, 8, true, true).unwrap();
    let f32s = |a: &Array| a.astype(Dtype::Float32).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(f32s(&off), f32s(&train));
    kernels::set_fused(Fused::Auto);
}

#[test]
fn cuda_gather_add_matches_plain_ops() {
    if !cuda() {
        return;
    }
    let _guard = POLICY.lock().unwrap_or_else(|e| e.into_inner());
    for tokens in [1, 3, 513] {
        for (k, dim) in [(8, 2048), (2, 4096), (8, 4096), (3, 7)] {
            for dtype in DTYPES {
                let n = tokens * k * dim;
                let y: Vec<f32> = (0..n).map(|i| ((i * 13) % 29) as f32 / 8.0 - 1.5).collect();
                let s: Vec<f32> = (0..tokens * k).map(|i| ((i * 7) % 11) as f32 / 16.0).collect();
                let y = array(&y, &[tokens, k, dim], dtype);
                for sd in [dtype, Dtype::Float32] {
                    let s = array(&s, &[tokens, k], sd);
                    for out in [None, Some(dtype)] {
                        kernels::set_fused(Fused::Off);
                        let plain = kernels::gather_add(&y, &s, out, false).unwrap();
                        kernels::set_fused(Fused::On);
                        let fused = kernels::gather_add(&y, &s, out, false).unwrap();
                        assert_eq!((fused.dtype(), fused.shape()), (plain.dtype(), plain.shape()));
                        let p = plain.astype(Dtype::Float32).unwrap().to_vec::<f32>().unwrap();
                        let f = fused.astype(Dtype::Float32).unwrap().to_vec::<f32>().unwrap();
                        let tol = 4.0 * tolerance(fused.dtype());
                        for (a, b) in f.iter().zip(&p) {
                            assert!(
                                (a - b).abs() <= tol * (1.0 + b.abs()),
                                "{dtype} {k}x{dim}: {a} vs {b}"
                            );
                        }
                    }
                }
            }
        }
    }
    kernels::set_fused(Fused::Auto);
}
