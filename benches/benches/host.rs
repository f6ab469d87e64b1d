//! Criterion benches: host overhead of a chain of 1000 tiny ops: graph build alone, and build + eval (sizes: see `mlx_benches::workloads::cases`).

use criterion::{Criterion, criterion_group, criterion_main};

mod common;

fn host(c: &mut Criterion) {
    common::bench_groups(c, &["host"]);
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = host
}
criterion_main!(benches);
