//! All-reduce across processes with MLX's own distributed backends.
//!
//! Run one process per rank with the backend's environment, e.g. two processes over NCCL on two
//! GPUs (`NCCL_NVLS_ENABLE=0` keeps NVLink multicast off):
//!
//! ```text
//! for r in 0 1; do
//!   NCCL_NVLS_ENABLE=0 MLX_RANK=$r MLX_WORLD_SIZE=2 CUDA_VISIBLE_DEVICES=$r \
//!   NCCL_HOST_IP=127.0.0.1 NCCL_PORT=12355 distributed_all_sum nccl &
//! done; wait
//! ```
//!
//! or over the ring backend with `MLX_HOSTFILE` and `MLX_RANK` (`distributed_all_sum ring`).
//! Each rank contributes `rank + 1` in every element; the program checks the sum and the
//! gathered array, prints them and exits non-zero on a mismatch.

use mlx_rs::distributed::{self, Backend};
use mlx_rs::{Array, Device, Error};

fn main() -> std::process::ExitCode {
    mlx_examples::exit_status(run())
}

fn run() -> mlx_rs::Result<()> {
    let backend = match std::env::args().nth(1).as_deref() {
        Some("nccl") => Backend::Nccl,
        Some("ring") => Backend::Ring,
        Some("mpi") => Backend::Mpi,
        None | Some("any") => Backend::Any,
        Some(other) => {
            return Err(Error::invalid("distributed_all_sum", format!("unknown backend {other}")));
        }
    };
    let group = distributed::init(true, backend)?;
    let (rank, size) = (group.rank(), group.size());
    let n = 1 << 20;
    let x = Array::from_slice(&vec![(rank + 1) as f32; n], &[n as i32])?;
    let sum = distributed::all_sum(&x, Some(&group))?;
    let gathered =
        distributed::all_gather(&Array::from_slice(&[rank as f32], &[1])?, Some(&group))?;
    let expected = (size * (size + 1) / 2) as f32;
    let values = sum.to_vec::<f32>()?;
    let ok = values.iter().all(|&v| v == expected);
    let ranks = gathered.to_vec::<f32>()?;
    println!(
        "rank {rank}/{size} on {} via {backend:?}: all_sum of {n} elements = {} (expected {expected}), all_gather = {ranks:?}: {}",
        Device::default_device()?,
        values[0],
        if ok { "ok" } else { "MISMATCH" }
    );
    if !ok || ranks != (0..size).map(|r| r as f32).collect::<Vec<_>>() {
        return Err(Error::invalid("distributed_all_sum", "wrong collective result"));
    }
    Ok(())
}
