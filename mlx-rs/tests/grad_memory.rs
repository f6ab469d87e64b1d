//! A long `value_and_grad` training-style loop keeps MLX's active memory flat: no handle, closure
//! payload or intermediate leaks per iteration. (Its own binary: memory counters are
//! process-wide, so no other test may run beside it.)
//!
//! `MLX_RS_GRAD_ITERATIONS` overrides the iteration count (default 100 000).

use mlx_rs::{Array, memory, ops, transforms};

/// Resident set size in bytes (Linux), to catch leaks of the small C++ objects behind handles,
/// which MLX's own counters do not see.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn value_and_grad_loop_keeps_active_memory_flat() {
    let iterations: usize = std::env::var("MLX_RS_GRAD_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let target = Array::from_slice(&[1.0f32, -2.0, 3.0, 0.5], &[4]).unwrap();
    // loss(w, x) = sum((w * x - target)^2)
    let loss = move |args: &[Array]| {
        let residual = ops::subtract(&ops::multiply(&args[0], &args[1])?, &target)?;
        Ok(vec![ops::sum(&ops::square(&residual)?, .., false)?])
    };
    let step = transforms::value_and_grad(loss, &[0]).unwrap();
    let x = Array::from_slice(&[0.5f32, 1.0, 1.5, 2.0], &[4]).unwrap();
    let mut w = Array::from_slice(&[0.0f32; 4], &[4]).unwrap();
    let learning_rate = Array::scalar(0.05f32);
    let mut samples = Vec::new();
    let mut resident = Vec::new();
    let mut first_loss = None;
    let mut last_loss = 0.0;
    for i in 0..iterations {
        let (values, grads) = step.apply(&[w.clone(), x.clone()]).unwrap();
        w = ops::subtract(&w, &ops::multiply(&grads[0], &learning_rate).unwrap()).unwrap();
        transforms::eval(&[&w, &values[0]]).unwrap();
        if i % (iterations / 10).max(1) == 0 {
            last_loss = values[0].item::<f32>().unwrap();
            first_loss.get_or_insert(last_loss);
            memory::clear_cache().unwrap();
            samples.push(memory::get_active_memory().unwrap());
            resident.extend(resident_bytes());
        }
    }
    println!("active memory (bytes) every {} iterations: {samples:?}", (iterations / 10).max(1));
    println!("resident set size (bytes) at the same points: {resident:?}");
    println!("loss went from {first_loss:?} to {last_loss}");
    // The first sample is taken after the first iteration; later ones may not exceed it by more
    // than a few allocations' worth.
    let baseline = samples[0];
    let worst = samples.iter().copied().max().unwrap_or(0);
    assert!(worst <= baseline + 4096, "active memory grew from {baseline} to {worst} bytes");
    assert!(last_loss < first_loss.unwrap_or(f32::MAX), "the loop should also train");
    // A leak of even 100 bytes per iteration would add about 10 MB here; allow 4 MB of noise
    // after the first tenth (allocator warm-up).
    if let (Some(&early), Some(&late)) = (resident.get(1), resident.last()) {
        assert!(late <= early + (4 << 20), "resident memory grew from {early} to {late} bytes");
    }
}
