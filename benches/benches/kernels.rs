//! Criterion benches of the crate's own kernels (`mlx_rs::kernels`) against MLX's ops: the
//! expert-matmul paths of a sorted MoE layer (`gather_qmm`, dequantize + `gather_mm`, the
//! grouped kernel) at the presets' expert shapes (`mlx_benches::moe_paths::MODEL_SHAPES`), 1 to
//! 2048 tokens, bfloat16, on a GPU; on a CPU (`--quick`) small shapes in float32, where the
//! kernel does not run and only MLX's paths are timed.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mlx_benches::moe_paths::{ExpertCase, MODEL_SHAPES, Shape, expert_weights};
use mlx_benches::workloads::Profile;
use mlx_rs::Dtype;
use mlx_rs::kernels::ExpertMatmul;

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

criterion_group! {
    name = benches;
    config = common::config();
    targets = expert_matmul
}
criterion_main!(benches);
