//! Criterion benches: causal grouped-query scaled dot-product attention at lengths 32, 127, 128 and 512 (sizes: see `mlx_benches::workloads::cases`).

use criterion::{Criterion, criterion_group, criterion_main};

mod common;

fn attention(c: &mut Criterion) {
    common::bench_groups(c, &["sdpa"]);
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = attention
}
criterion_main!(benches);
