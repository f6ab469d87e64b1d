//! Criterion benches: quantized matmul (decode and prefill) and gather_qmm with MoE top-k routing (sizes: see `mlx_benches::workloads::cases`).

use criterion::{Criterion, criterion_group, criterion_main};

mod common;

fn quantized(c: &mut Criterion) {
    common::bench_groups(c, &["qmm", "gather_qmm"]);
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = quantized
}
criterion_main!(benches);
