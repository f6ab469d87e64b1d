//! A fused SwiGLU (`silu(a) * b`) written as a custom CUDA kernel, checked against MLX's
//! unfused ops and timed against them (and against MLX's own compiled fusion).
//!
//! `cargo run --release --features cuda --example fused_swiglu -- [ROWS] [COLS] [ITERS]`
//! (default 4096 × 14336, 50 timed iterations). Needs the CUDA backend.

use std::time::Instant;

use mlx_rs::fast::kernel::{Kernel, KernelBackend, KernelLaunch, KernelSource, TemplateArg};
use mlx_rs::transforms::{self, Function};
use mlx_rs::{Array, Dtype, Error, Result, ops, random};

/// Four elements per thread through one vector load of each input (16 bytes for float32):
/// `N` must be a multiple of 4, which the launch checks.
const HEADER: &str = r#"
template <typename T>
struct alignas(4 * sizeof(T)) Vec4 {
    T v[4];
};
"#;

const SOURCE: &str = r#"
    auto quad = cooperative_groups::this_grid().thread_rank();
    if (quad * 4 < N) {
        Vec4<T> x = reinterpret_cast<const Vec4<T>*>(a)[quad];
        Vec4<T> y = reinterpret_cast<const Vec4<T>*>(b)[quad];
        Vec4<T> r;
        #pragma unroll
        for (int j = 0; j < 4; ++j) {
            float xf = static_cast<float>(x.v[j]);
            r.v[j] = static_cast<T>(xf / (1.0f + expf(-xf)) * static_cast<float>(y.v[j]));
        }
        reinterpret_cast<Vec4<T>*>(out)[quad] = r;
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
    if n % 4 != 0 {
        return Err(Error::invalid("fused_swiglu", "ROWS * COLS must be a multiple of 4"));
    }
    let mut source = KernelSource::new("fused_swiglu", &["a", "b"], &["out"], SOURCE);
    source.header = HEADER.to_owned();
    let kernel = Kernel::new(KernelBackend::Cuda, &source)?;
    let (key_a, key_b) = (random::key(1)?, random::key(2)?);
    for dtype in [Dtype::Float32, Dtype::Bfloat16] {
        let a = random::normal(&[rows, cols], dtype, 0.0, 1.0, Some(&key_a))?;
        let b = random::normal(&[rows, cols], dtype, 0.0, 1.0, Some(&key_b))?;
        transforms::eval(&[&a, &b])?;
        let mut launch =
            KernelLaunch::new(vec![(vec![rows, cols], dtype)], (n / 4, 1, 1), (256, 1, 1));
        launch.template_args =
            vec![("T".into(), TemplateArg::Dtype(dtype)), ("N".into(), TemplateArg::Int(n))];
        let fused = || -> Result<Array> { Ok(kernel.apply(&[&a, &b], &launch)?.remove(0)) };
        let compiled: Function =
            transforms::compile(|x: &[Array]| Ok(vec![unfused(&x[0], &x[1])?]))?;

        // Both against a float32 evaluation of the same inputs: the fused kernel computes in
        // float32 and rounds once, so it must be at least as accurate as the unfused ops, which
        // round after every op in the input dtype.
        let reference = unfused(&a.astype(Dtype::Float32)?, &b.astype(Dtype::Float32)?)?;
        let max_error = |x: Array| -> Result<f32> {
            let diff = ops::abs(&ops::subtract(&x.astype(Dtype::Float32)?, &reference)?)?;
            ops::max(&diff, .., false)?.item::<f32>()
        };
        let (fused_error, unfused_error) = (max_error(fused()?)?, max_error(unfused(&a, &b)?)?);
        if fused_error > unfused_error.max(1e-5) {
            return Err(Error::invalid(
                "fused_swiglu",
                format!("fused error {fused_error} exceeds the unfused ops' {unfused_error}"),
            ));
        }
        let max_diff = fused_error;
        let gb = 3.0 * n as f64 * dtype.size() as f64 / 1e9;
        println!(
            "{dtype} {rows}x{cols}: max error vs float32 math: fused {max_diff:e}, unfused {unfused_error:e}"
        );
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
