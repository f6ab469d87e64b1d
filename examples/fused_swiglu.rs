//! A fused SwiGLU (`silu(a) * b`) written as a custom CUDA kernel, checked against MLX's
//! unfused ops and timed against them (and against MLX's own compiled fusion).
//!
//! `cargo run --release --features cuda --example fused_swiglu -- [ROWS] [COLS] [ITERS]`
//! (default 4096 × 14336, 50 timed iterations). Needs the CUDA backend.

use std::time::Instant;

use mlx_rs::fast::kernel::{Kernel, KernelBackend, KernelLaunch, KernelSource, TemplateArg};
use mlx_rs::transforms::{self, Function};
use mlx_rs::{Array, Dtype, Error, Result, ops, random};

const SOURCE: &str = r#"
    auto elem = cooperative_groups::this_grid().thread_rank();
    if (elem < N) {
        float x = static_cast<float>(a[elem]);
        float y = static_cast<float>(b[elem]);
        out[elem] = static_cast<T>(x / (1.0f + expf(-x)) * y);
    }
"#;

fn unfused(a: &Array, b: &Array) -> Result<Array> {
    ops::multiply(&ops::multiply(a, &ops::sigmoid(a)?)?, b)
}

/// Median, min and max milliseconds of `iters` evaluated runs of `f`, after a warm-up.
fn time(iters: usize, mut f: impl FnMut() -> Result<Array>) -> Result<(f64, f64, f64)> {
    for _ in 0..5 {
        f()?.eval()?;
    }
    let mut ms = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        f()?.eval()?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], ms[0], ms[ms.len() - 1]))
}

fn main() -> std::process::ExitCode {
    mlx_examples::exit_status(run())
}

fn run() -> mlx_rs::Result<()> {
    let arg = |i: usize, default: i32| -> Result<i32> {
        std::env::args().nth(i).map_or(Ok(default), |s| {
            s.parse().map_err(|_| Error::invalid("fused_swiglu", format!("{s:?} is not a number")))
        })
    };
    let (rows, cols, iters) = (arg(1, 4096)?, arg(2, 14336)?, arg(3, 50)?.max(1) as usize);
    if !KernelBackend::Cuda.is_available() {
        return Err(Error::invalid(
            "fused_swiglu",
            "this example needs MLX's CUDA backend (build with --features cuda and run on an NVIDIA GPU)",
        ));
    }
    let n = rows * cols;
    let source = KernelSource::new("fused_swiglu", &["a", "b"], &["out"], SOURCE);
    let kernel = Kernel::new(KernelBackend::Cuda, &source)?;
    let (key_a, key_b) = (random::key(1)?, random::key(2)?);
    for dtype in [Dtype::Float32, Dtype::Bfloat16] {
        let a = random::normal(&[rows, cols], dtype, 0.0, 1.0, Some(&key_a))?;
        let b = random::normal(&[rows, cols], dtype, 0.0, 1.0, Some(&key_b))?;
        transforms::eval(&[&a, &b])?;
        let mut launch = KernelLaunch::new(vec![(vec![rows, cols], dtype)], (n, 1, 1), (256, 1, 1));
        launch.template_args =
            vec![("T".into(), TemplateArg::Dtype(dtype)), ("N".into(), TemplateArg::Int(n))];
        let fused = || -> Result<Array> { Ok(kernel.apply(&[&a, &b], &launch)?.remove(0)) };
        let compiled: Function =
            transforms::compile(|x: &[Array]| Ok(vec![unfused(&x[0], &x[1])?]), false)?;

        let reference = unfused(&a, &b)?.astype(Dtype::Float32)?;
        let diff = ops::max(
            &ops::abs(&ops::subtract(&fused()?.astype(Dtype::Float32)?, &reference)?)?,
            None,
            false,
        )?;
        let max_diff = diff.item::<f32>()?;
        let tolerance = if dtype == Dtype::Float32 { 1e-5 } else { 2e-2 };
        if max_diff > tolerance {
            return Err(Error::invalid(
                "fused_swiglu",
                format!("fused result differs by {max_diff}"),
            ));
        }

        let gb = 3.0 * n as f64 * dtype.size() as f64 / 1e9;
        println!("{dtype} {rows}x{cols}: max |fused - unfused| = {max_diff:e}");
        for (name, (median, min, max)) in [
            ("unfused ops", time(iters, || unfused(&a, &b))?),
            ("mx.compile", time(iters, || Ok(compiled.apply(&[a.clone(), b.clone()])?.remove(0)))?),
            ("fused kernel", time(iters, fused)?),
        ] {
            println!(
                "  {name:<13} median {median:8.3} ms (min {min:.3}, max {max:.3}), {:6.0} GB/s at the median",
                gb / (median / 1e3)
            );
        }
    }
    Ok(())
}
