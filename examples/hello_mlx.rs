//! Prints the MLX version, the default device, and a small computation on it.
//!
//! Run with `cargo run --release --example hello_mlx` (add `--features cuda` for NVIDIA GPUs).

use mlx_rs::{Array, Device, ops};

fn main() -> std::process::ExitCode {
    mlx_examples::exit_status(run())
}

fn run() -> mlx_rs::Result<()> {
    println!("MLX {}", mlx_rs::version()?);
    println!("default device: {}", Device::default_device()?);
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    let b = Array::from_slice(&[10.0f32, 20.0, 30.0, 40.0], &[2, 2])?;
    let sum = ops::add(&a, &b)?;
    println!("a + b = {sum}");
    let expected = [11.0f32, 22.0, 33.0, 44.0];
    if sum.to_vec::<f32>()? != expected {
        return Err(mlx_rs::Error::invalid("hello_mlx", "a + b gave the wrong values"));
    }
    Ok(())
}
