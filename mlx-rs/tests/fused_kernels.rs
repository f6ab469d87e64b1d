//! The fused elementwise kernels (`kernels::swiglu`, `geglu`, `dropout`): on this CPU the
//! fallbacks equal MLX's ops and the reasons say why; where MLX has CUDA (`cuda_*` tests, run
//! on the GPU) the kernels against the ops over every dtype, odd sizes, model shapes, unaligned
//! slices and gradients.

use std::sync::Mutex;

use mlx_rs::fast::kernel::KernelBackend;
use mlx_rs::kernels::{self, Fused, GatedActivation};
use mlx_rs::nn::{self, GeluApprox, Module};
use mlx_rs::{Array, Dtype, ops, random, transforms};

/// Tests that change the process-wide policy hold this.
static POLICY: Mutex<()> = Mutex::new(());

const DTYPES: [Dtype; 3] = [Dtype::Float32, Dtype::Bfloat16, Dtype::Float16];

const ACTIVATIONS: [GatedActivation; 4] = [
    GatedActivation::Silu,
    GatedActivation::Gelu(GeluApprox::None),
    GatedActivation::Gelu(GeluApprox::Precise),
    GatedActivation::Gelu(GeluApprox::Fast),
];

/// Runs `f` under `policy`, then restores `Auto`.
fn with_policy<T>(policy: Fused, f: impl FnOnce() -> T) -> T {
    let _guard = POLICY.lock().unwrap_or_else(|e| e.into_inner());
    kernels::set_fused(policy);
    let out = f();
    kernels::set_fused(Fused::Auto);
    out
}

fn cuda() -> bool {
    KernelBackend::Cuda.is_available()
}

fn normal(shape: &[i32], dtype: Dtype, seed: u64) -> Array {
    let key = random::key(seed).unwrap();
    (random::normal(shape, Dtype::Float32, 0.0, 2.0, Some(&key)).unwrap()).astype(dtype).unwrap()
}

/// The values as float32 bit patterns (exact for every dtype here; NaNs made one pattern).
fn bits(a: &Array) -> Vec<u32> {
    let v = a.astype(Dtype::Float32).unwrap().to_vec::<f32>().unwrap();
    v.iter().map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() }).collect()
}

/// The largest `|got - want| / (1 + |want|)`.
fn scaled_error(got: &Array, want: &Array) -> f32 {
    let (g, w) = (got.astype(Dtype::Float32).unwrap(), want.astype(Dtype::Float32).unwrap());
    let diff = ops::abs(&(&g - &w).unwrap()).unwrap();
    let scaled = (&diff / &(ops::abs(&w).unwrap() + 1.0).unwrap()).unwrap();
    ops::max(&scaled, .., false).unwrap().item::<f32>().unwrap()
}

/// Half an ulp at 1 plus a margin: one rounding to the dtype after float32 math.
fn tolerance(dtype: Dtype) -> f32 {
    match dtype {
        Dtype::Bfloat16 => 1.0 / 128.0,
        Dtype::Float16 => 1.0 / 1024.0,
        _ => 1e-5,
    }
}

#[test]
fn fallbacks_equal_the_plain_ops() {
    for policy in [Fused::Off, Fused::On, Fused::Auto] {
        with_policy(policy, || {
            for dtype in DTYPES {
                for shape in [&[1][..], &[3], &[4097], &[3, 5, 7], &[0], &[2, 0, 3]] {
                    let (g, u) = (normal(shape, dtype, 1), normal(shape, dtype, 2));
                    // Where `On` runs the kernel (a GPU), the CUDA tests below compare it.
                    if policy == Fused::On && kernels::gated_support(&g, &u).is_ok() {
                        continue;
                    }
                    for act in ACTIVATIONS {
                        let got = kernels::activation::gated(act, &g, &u).unwrap();
                        let want = act.plain(&g, &u).unwrap();
                        assert_eq!(got.shape(), shape);
                        assert_eq!(got.dtype(), dtype);
                        assert_eq!(bits(&got), bits(&want), "{act:?} {dtype} {shape:?} {policy}");
                    }
                    let swiglu = kernels::swiglu(&g, &u).unwrap();
                    assert_eq!(bits(&swiglu), bits(&nn::swiglu(&g, &u).unwrap()));
                    let gelu = kernels::geglu(&g, &u, GeluApprox::None).unwrap();
                    assert_eq!(bits(&gelu), bits(&(nn::gelu(&g).unwrap() * &u).unwrap()));
                }
            }
        });
    }
}

#[test]
fn mismatched_shapes_are_an_error() {
    with_policy(Fused::On, || {
        let (g, u) = (normal(&[4, 3], Dtype::Float32, 1), normal(&[3], Dtype::Float32, 2));
        let err = kernels::swiglu(&g, &u).unwrap_err().to_string();
        assert!(err.contains("same shape") && err.contains("[4, 3]"), "{err}");
        assert!(kernels::geglu(&g, &u, GeluApprox::Fast).is_err());
        assert!(kernels::gated_support(&g, &u).unwrap_err().contains("differ"));
    });
}

#[test]
fn support_reasons() {
    let f32s = normal(&[8], Dtype::Float32, 1);
    let ints = f32s.astype(Dtype::Int32).unwrap();
    let bf16s = f32s.astype(Dtype::Bfloat16).unwrap();
    let empty = normal(&[0], Dtype::Float32, 1);
    let reason = |r: Result<(), String>| r.unwrap_err();
    assert!(reason(kernels::gated_support(&ints, &ints)).contains("int32"));
    assert!(reason(kernels::gated_support(&f32s, &bf16s)).contains("dtypes float32"));
    assert!(reason(kernels::gated_support(&empty, &empty)).contains("empty"));
    assert!(reason(kernels::dropout_support(&ints)).contains("int32"));
    assert!(reason(kernels::dropout_support(&empty)).contains("empty"));
    if !cuda() && !KernelBackend::Metal.is_available() {
        assert!(reason(kernels::gated_support(&f32s, &f32s)).contains("GPU"));
        assert!(reason(kernels::dropout_support(&bf16s)).contains("GPU"));
    }
}

/// MLX's dropout ops, as `nn::Dropout` wrote them before the kernel.
fn plain_dropout(x: &Array, p: f32, key: Option<&Array>) -> Array {
    let keep = 1.0 - p;
    let mask = random::bernoulli(&Array::scalar(keep), Some(x.shape()), key).unwrap();
    ((&mask * x).unwrap() * (1.0 / keep)).unwrap()
}

/// `x` with signed zeros, infinities and NaN among the normal values.
fn dropout_input(shape: &[i32], dtype: Dtype) -> Array {
    let x = normal(shape, Dtype::Float32, 3);
    let n = x.size();
    let mut v = x.to_vec::<f32>().unwrap();
    for (i, special) in [-0.0f32, f32::INFINITY, f32::NEG_INFINITY, f32::NAN].iter().enumerate() {
        if i < n {
            v[i] = *special;
        }
    }
    Array::from_slice(&v, shape).unwrap().astype(dtype).unwrap()
}

#[test]
fn dropout_equals_the_plain_ops_for_a_key() {
    for policy in [Fused::Off, Fused::On] {
        with_policy(policy, || {
            for dtype in DTYPES {
                for shape in [&[1][..], &[3], &[4097], &[3, 5, 7], &[0]] {
                    let x = dropout_input(shape, dtype);
                    for (seed, p) in [(0, 0.5f32), (1, 0.1), (2, 0.9)] {
                        let key = random::key(seed).unwrap();
                        let got = kernels::dropout(&x, p, Some(&key)).unwrap();
                        let want = plain_dropout(&x, p, Some(&key));
                        assert_eq!(got.dtype(), dtype);
                        assert_eq!(bits(&got), bits(&want), "{dtype} {shape:?} p {p} {policy}");
                    }
                }
            }
        });
    }
}

#[test]
fn dropout_keeps_one_minus_p_and_scales() {
    with_policy(Fused::On, || {
        let x = Array::from_slice(&vec![1.0f32; 100_000], &[100_000]).unwrap();
        for (seed, p) in [(7, 0.3f32), (8, 0.75)] {
            let key = random::key(seed).unwrap();
            let y = kernels::dropout(&x, p, Some(&key)).unwrap().to_vec::<f32>().unwrap();
            let kept = y.iter().filter(|&&v| v != 0.0).count() as f32 / y.len() as f32;
            assert!((kept - (1.0 - p)).abs() < 0.01, "p {p}: kept {kept}");
            assert!(y.iter().all(|&v| v == 0.0 || v == 1.0 / (1.0 - p)));
            let again = kernels::dropout(&x, p, Some(&key)).unwrap().to_vec::<f32>().unwrap();
            assert_eq!(y, again, "same key, same mask");
            let other = random::key(seed + 100).unwrap();
            let third = kernels::dropout(&x, p, Some(&other)).unwrap().to_vec::<f32>().unwrap();
            assert_ne!(y, third, "another key, another mask");
        }
    });
}

#[test]
fn dropout_probability_edges() {
    let x = normal(&[16], Dtype::Float32, 1);
    assert_eq!(bits(&kernels::dropout(&x, 0.0, None).unwrap()), bits(&x));
    for p in [1.0f32, -0.1, f32::NAN] {
        let err = kernels::dropout(&x, p, None).unwrap_err().to_string();
        assert!(err.contains("[0, 1)"), "{err}");
    }
}

/// `nn::Dropout` draws the same global random step as the plain ops, whichever path runs.
#[test]
fn dropout_module_follows_the_global_seed() {
    for policy in [Fused::Off, Fused::On] {
        with_policy(policy, || {
            for dtype in DTYPES {
                let x = dropout_input(&[33, 65], dtype);
                let layer = nn::Dropout::new(0.25).unwrap();
                random::seed(11).unwrap();
                let got = layer.forward(&x).unwrap();
                random::seed(11).unwrap();
                let want = plain_dropout(&x, 0.25, None);
                assert_eq!(bits(&got), bits(&want), "{dtype} {policy}");
                let mut eval = layer.clone();
                eval.train(false);
                assert_eq!(bits(&eval.forward(&x).unwrap()), bits(&x));
            }
        });
    }
}

/// Gradients through the dispatching functions equal those of the plain ops, exactly.
fn check_gradients(shape: &[i32], dtype: Dtype) {
    let (g, u) = (normal(shape, dtype, 4), normal(shape, dtype, 5));
    let w = normal(shape, dtype, 6);
    for act in ACTIVATIONS {
        let loss = |fused: bool| {
            let w = w.clone();
            move |x: &[Array]| {
                let h = if fused {
                    kernels::activation::gated(act, &x[0], &x[1])?
                } else {
                    act.plain(&x[0], &x[1])?
                };
                Ok(vec![ops::sum(&(&h * &w)?.astype(Dtype::Float32)?, .., false)?])
            }
        };
        let got = transforms::grad(loss(true), &[0, 1]).unwrap().apply(&[&g, &u]).unwrap();
        let want = transforms::grad(loss(false), &[0, 1]).unwrap().apply(&[&g, &u]).unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert_eq!(bits(a), bits(b), "{act:?} {dtype} {shape:?}");
        }
    }
    let x = normal(shape, dtype, 7);
    let key = random::key(9).unwrap();
    let loss = |fused: bool| {
        let (w, key) = (w.clone(), key.clone());
        move |x: &[Array]| {
            let y = if fused {
                kernels::dropout(&x[0], 0.4, Some(&key))?
            } else {
                plain_dropout(&x[0], 0.4, Some(&key))
            };
            Ok(vec![ops::sum(&(&y * &w)?.astype(Dtype::Float32)?, .., false)?])
        }
    };
    let got = transforms::grad(loss(true), &[0]).unwrap().apply(&[&x]).unwrap();
    let want = transforms::grad(loss(false), &[0]).unwrap().apply(&[&x]).unwrap();
    assert_eq!(bits(&got[0]), bits(&want[0]), "dropout {dtype} {shape:?}");
}

#[test]
fn gradients_equal_the_plain_ones() {
    with_policy(Fused::On, || {
        for dtype in DTYPES {
            check_gradients(&[5, 7], dtype);
        }
    });
}

/// The CUDA kernel against float32 math (one rounding) and against the ops in the dtype.
#[test]
fn cuda_gated_kernels_match_the_plain_ops() {
    if !cuda() {
        return;
    }
    with_policy(Fused::On, || {
        for dtype in DTYPES {
            for shape in [&[1][..], &[3], &[4], &[4097], &[7, 3, 5], &[512, 14336]] {
                let (g, u) = (normal(shape, dtype, 1), normal(shape, dtype, 2));
                assert_eq!(kernels::gated_support(&g, &u), Ok(()));
                let (g32, u32) =
                    (g.astype(Dtype::Float32).unwrap(), u.astype(Dtype::Float32).unwrap());
                for act in ACTIVATIONS {
                    let got = kernels::activation::gated(act, &g, &u).unwrap();
                    assert_eq!((got.shape(), got.dtype()), (shape, dtype));
                    let exact = act.plain(&g32, &u32).unwrap();
                    let err = scaled_error(&got, &exact);
                    assert!(err <= tolerance(dtype), "{act:?} {dtype} {shape:?}: {err}");
                    // The ops round to the dtype after each of their (up to six) steps.
                    let plain = act.plain(&g, &u).unwrap();
                    let err = scaled_error(&got, &plain);
                    assert!(err <= 8.0 * tolerance(dtype), "{act:?} {dtype} {shape:?}: {err}");
                }
            }
        }
    });
}

/// Slices that start mid-buffer (not 16-byte aligned) and transposed inputs.
#[test]
fn cuda_gated_kernels_take_unaligned_and_strided_inputs() {
    if !cuda() {
        return;
    }
    with_policy(Fused::On, || {
        for dtype in DTYPES {
            let (g, u) = (normal(&[4099], dtype, 1), normal(&[4101], dtype, 2));
            let (gs, us) = (
                ops::slice(&g, &[1], &[4098], None).unwrap(),
                ops::slice(&u, &[3], &[4100], None).unwrap(),
            );
            let got = kernels::swiglu(&gs, &us).unwrap();
            let want = nn::swiglu(&gs, &us).unwrap();
            assert!(scaled_error(&got, &want) <= 4.0 * tolerance(dtype), "{dtype}");
            let (g, u) = (normal(&[33, 17], dtype, 3), normal(&[33, 17], dtype, 4));
            let (gt, ut) = (g.t().unwrap(), u.t().unwrap());
            let got = kernels::swiglu(&gt, &ut).unwrap();
            assert!(scaled_error(&got, &nn::swiglu(&gt, &ut).unwrap()) <= 4.0 * tolerance(dtype));
        }
    });
}

#[test]
fn cuda_dropout_kernel_equals_the_plain_ops() {
    if !cuda() {
        return;
    }
    with_policy(Fused::On, || {
        for dtype in DTYPES {
            for shape in [&[1][..], &[3], &[4097], &[512, 14336]] {
                let x = dropout_input(shape, dtype);
                assert_eq!(kernels::dropout_support(&x), Ok(()));
                let key = random::key(21).unwrap();
                let got = kernels::dropout(&x, 0.3, Some(&key)).unwrap();
                assert_eq!(bits(&got), bits(&plain_dropout(&x, 0.3, Some(&key))), "{dtype}");
            }
            let x = dropout_input(&[4099], dtype);
            let slice = ops::slice(&x, &[1], &[4098], None).unwrap();
            let key = random::key(22).unwrap();
            let got = kernels::dropout(&slice, 0.5, Some(&key)).unwrap();
            assert_eq!(bits(&got), bits(&plain_dropout(&slice, 0.5, Some(&key))), "{dtype}");
        }
    });
}

#[test]
fn cuda_gradients_equal_the_plain_ones() {
    if !cuda() {
        return;
    }
    with_policy(Fused::On, || {
        for dtype in DTYPES {
            for shape in [&[3][..], &[4097], &[64, 1408]] {
                check_gradients(shape, dtype);
            }
        }
    });
}

/// The kernels inside `transforms::compile` give what they give outside it.
#[test]
fn cuda_kernels_compile() {
    if !cuda() {
        return;
    }
    with_policy(Fused::On, || {
        let (g, u) =
            (normal(&[64, 1408], Dtype::Bfloat16, 1), normal(&[64, 1408], Dtype::Bfloat16, 2));
        let compiled =
            transforms::compile(|x: &[Array]| Ok(vec![kernels::swiglu(&x[0], &x[1])?])).unwrap();
        let got = compiled.apply(&[&g, &u]).unwrap().remove(0);
        assert_eq!(bits(&got), bits(&kernels::swiglu(&g, &u).unwrap()));
    });
}
