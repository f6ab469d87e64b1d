//! Criterion benches: matmul, softmax, layer norm, RMS norm and SwiGLU (ops, compiled, fused kernel) (sizes: see `mlx_benches::workloads::cases`).

use criterion::{Criterion, criterion_group, criterion_main};

mod common;

fn ops(c: &mut Criterion) {
    common::bench_groups(c, &["matmul", "softmax", "layer_norm", "rms_norm", "swiglu"]);
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = ops
}
criterion_main!(benches);
