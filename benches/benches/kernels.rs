//! Criterion benches of the crate's own kernels (`mlx_rs::kernels`) against MLX's ops, 1 to 2048
//! tokens, bfloat16, on a GPU:
//!
//! - `expert_matmul/<model>/<projection>/<path>/<tokens>`: the expert-matmul paths of a sorted
//!   MoE layer (`gather_qmm`, dequantize + `gather_mm`, the grouped kernel) at the presets'
//!   expert shapes (`mlx_benches::moe_paths::MODEL_SHAPES`);
//! - `fused/<kernel>/<model>/{ops,compiled,kernel}/<tokens>`: the fused kernels (gated
//!   activations, dropout, MoE routers, gather-add) against MLX's ops and `compile` of them at
//!   the presets' sizes (`mlx_benches::fused_paths::CASES`).
//!
//! On a CPU (`--quick`) small shapes in float32, where the kernels do not run and only MLX's paths
//! are timed.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mlx_benches::fused_paths::{self, CASES, with_policy};
use mlx_benches::moe_paths::{ExpertCase, MODEL_SHAPES, Shape, expert_weights};
use mlx_benches::workloads::Profile;
use mlx_rs::kernels::{ExpertMatmul, Fused};
use mlx_rs::{Array, Dtype, Result};

mod common;

fn expert_matmul(c: &mut Criterion) {
    let (dtype, shapes, tokens): (Dtype, Vec<Shape>, &[i32]) = match common::profile() {
        Profile::Quick => {
            let small = |s: &Shape| Shape { experts: 8, n: 128, k: 256, ..*s };
            (Dtype::Float32, MODEL_SHAPES.iter().step_by(2).map(small).collect(), &[8, 64])
        }
        Profile::Gpu => (Dtype::Bfloat16, MODEL_SHAPES.to_vec(), &[1, 32, 128, 512, 2048]),
    };
    for shape in shapes {
        let q = expert_weights(shape, shape.bits, dtype).expect("expert weights");
        let name = format!("expert_matmul/{}/{}", shape.model, shape.projection);
        let mut group = c.benchmark_group(name);
        for &t in tokens {
            let case = ExpertCase::new(shape, &q, shape.bits, t, dtype).expect("routing");
            for path in [ExpertMatmul::GatherQmm, ExpertMatmul::Dequantized, ExpertMatmul::Grouped]
            {
                if !case.supports(path) {
                    continue;
                }
                group.bench_function(BenchmarkId::new(path.name(), t), |b| {
                    b.iter(|| case.run(path).and_then(|y| y.eval()).expect("expert product"))
                });
            }
        }
        group.finish();
    }
}

fn fused(c: &mut Criterion) {
    let (dtype, tokens): (Dtype, &[i32]) = match common::profile() {
        Profile::Quick => (Dtype::Float32, &[1, 16]),
        Profile::Gpu => (Dtype::Bfloat16, &[1, 32, 512, 2048]),
    };
    for case in CASES {
        let mut group = c.benchmark_group(format!("fused/{}/{}", case.kernel, case.model));
        for &t in tokens {
            let paths = fused_paths::paths(*case, t, dtype).expect("inputs");
            let run =
                |f: &dyn Fn() -> Result<Array>| f().and_then(|y| y.eval()).expect("fused case");
            group.bench_function(BenchmarkId::new("ops", t), |b| b.iter(|| run(&paths.plain)));
            group.bench_function(BenchmarkId::new("compiled", t), |b| {
                b.iter(|| run(&paths.compiled))
            });
            if paths.supported {
                with_policy(Fused::On, || {
                    group.bench_function(BenchmarkId::new("kernel", t), |b| {
                        b.iter(|| run(&paths.kernel))
                    });
                    Ok(())
                })
                .expect("kernel case");
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = expert_matmul, fused
}
criterion_main!(benches);
