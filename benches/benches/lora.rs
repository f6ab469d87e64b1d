//! Criterion benches: LoRALinear forward by rank (4 to 64) and size (512 to 2048) (sizes: see `mlx_benches::workloads::cases`).

use criterion::{Criterion, criterion_group, criterion_main};

mod common;

fn lora(c: &mut Criterion) {
    common::bench_groups(c, &["lora"]);
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = lora
}
criterion_main!(benches);
