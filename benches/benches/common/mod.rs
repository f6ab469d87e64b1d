//! What the criterion benches share: the size profile and one bench per workload of the chosen
//! groups (the workloads are `mlx_benches::workloads`, the same code `compare` runs).

use std::time::Duration;

use criterion::Criterion;
use mlx_benches::workloads::{self, Profile};

/// The size profile: `MLX_BENCH_PROFILE=quick|gpu` if set; else `quick` when criterion is run
/// with `--quick` or the default device is a CPU; else `gpu`.
pub fn profile() -> Profile {
    match std::env::var("MLX_BENCH_PROFILE").ok().as_deref() {
        Some("quick") => return Profile::Quick,
        Some("gpu") => return Profile::Gpu,
        Some(other) => eprintln!("MLX_BENCH_PROFILE={other} is neither quick nor gpu; ignored"),
        None => {}
    }
    let quick = std::env::args().any(|a| a == "--quick");
    Profile::for_default_device(quick).unwrap_or(Profile::Quick)
}

/// Criterion's settings for the profile: few samples on a small CPU, more on a GPU.
pub fn config() -> Criterion {
    let c = Criterion::default().without_plots();
    match profile() {
        Profile::Quick => c
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1)),
        Profile::Gpu => c
            .sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3)),
    }
}

/// One criterion bench per workload of `groups`, named `<group>/<case>`. Each iteration builds
/// the graph and evaluates it inside the timed closure; the host `build` case times the graph
/// build alone (its graphs are dropped outside the clock). A case that cannot run on this
/// device (the fused kernel on a CPU) is skipped with a message.
// Every bench binary compiles this module; `kernels` builds its own cases.
#[allow(dead_code)]
pub fn bench_groups(c: &mut Criterion, groups: &[&str]) {
    let profile = profile();
    eprintln!("mlx-benches: {} profile", profile.name());
    for spec in workloads::cases(profile).into_iter().filter(|s| groups.contains(&s.group)) {
        if let Some(why) = spec.skip_reason() {
            eprintln!("{}: skipped: {why}", spec.name);
            continue;
        }
        let mut prepared = match spec.prepare() {
            Ok(p) => p,
            Err(e) => panic!("{}: cannot prepare: {e}", spec.name),
        };
        let id = spec.name.strip_prefix(&format!("{}/", spec.group)).unwrap_or(&spec.name);
        let mut group = c.benchmark_group(spec.group);
        if prepared.evaluates() {
            group.bench_function(id, |b| {
                b.iter(|| prepared.iteration().unwrap_or_else(|e| panic!("{}: {e}", spec.name)))
            });
        } else {
            group.bench_function(id, |b| {
                b.iter_with_large_drop(|| {
                    prepared.build().unwrap_or_else(|e| panic!("{}: {e}", spec.name))
                })
            });
        }
        group.finish();
    }
}
