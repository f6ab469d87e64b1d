//! Distributed collectives: a single-process group, and two processes on localhost joined by
//! MLX's ring backend (this test binary re-runs itself as the two ranks).

mod common;

use std::net::TcpListener;
use std::process::Command;

use mlx_rs::distributed::{self, Backend};
use mlx_rs::{Array, Dtype};

const ROLE: &str = "MLX_RS_TEST_RING_ROLE";

#[test]
fn a_single_process_group() {
    let group = distributed::init(false, Backend::Any).unwrap();
    assert_eq!(group.size(), 1);
    assert_eq!(group.rank(), 0);
    let x = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    let sum = distributed::all_sum(&x, Some(&group)).unwrap();
    assert_eq!(sum.to_vec::<f32>().unwrap(), [1.0, 2.0]);
    assert!(Backend::Ring.is_available());
    common::assert_err(distributed::recv(&[-1], Dtype::Float32, 0, None), &["negative"]);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The work of one rank when this binary runs as a child of
/// `two_processes_all_reduce_over_the_ring_backend` (ignored in a normal run).
#[test]
#[ignore = "run by two_processes_all_reduce_over_the_ring_backend as a child process"]
fn ring_rank_worker() {
    let Ok(role) = std::env::var(ROLE) else { panic!("run me through the parent test") };
    let rank: i32 = role.parse().unwrap();
    let group = distributed::init(true, Backend::Ring).unwrap();
    assert_eq!(group.size(), 2);
    assert_eq!(group.rank(), rank);
    let r = rank as f32;
    let x = Array::from_slice(&[r + 1.0, 10.0 * (r + 1.0), -r], &[3]).unwrap();
    let cpu = mlx_rs::Stream::cpu().unwrap();
    let sum = distributed::all_sum_device(&x, Some(&group), &cpu).unwrap();
    assert_eq!(sum.to_vec::<f32>().unwrap(), [3.0, 30.0, -1.0]);
    let max = distributed::all_max_device(&x, Some(&group), &cpu).unwrap();
    assert_eq!(max.to_vec::<f32>().unwrap(), [2.0, 20.0, 0.0]);
    let min = distributed::all_min_device(&x, Some(&group), &cpu).unwrap();
    assert_eq!(min.to_vec::<f32>().unwrap(), [1.0, 10.0, -1.0]);
    let gathered = distributed::all_gather_device(&x, Some(&group), &cpu).unwrap();
    assert_eq!(gathered.to_vec::<f32>().unwrap(), [1.0, 10.0, 0.0, 2.0, 20.0, -1.0]);
    // Splitting: both ranks ask for the same color, with reversed keys, so the ranks swap.
    match group.split(0, 1 - rank) {
        Ok(swapped) => {
            assert_eq!(swapped.size(), 2);
            assert_eq!(swapped.rank(), 1 - rank);
            println!("split: ranks swapped");
        }
        Err(err) => {
            assert!(err.to_string().contains("split"), "{err}");
            println!("split: not supported by this backend ({err})");
        }
    }
    // Point to point: rank 0 sends, rank 1 receives.
    if rank == 0 {
        let payload = Array::from_slice(&[7i32, 8, 9], &[3]).unwrap();
        distributed::send_device(&payload, 1, Some(&group), &cpu).unwrap().eval().unwrap();
    } else {
        let got = distributed::recv_device(&[3], Dtype::Int32, 0, Some(&group), &cpu).unwrap();
        assert_eq!(got.to_vec::<i32>().unwrap(), [7, 8, 9]);
    }
    sharded_linear_layers(&group, rank);
    println!("rank {rank} ok");
}

/// A deterministic `[rows, cols]` array with values in `[-0.5, 0.5)`.
fn pattern(rows: i32, cols: i32, salt: i32) -> Array {
    let v: Vec<f32> =
        (0..rows * cols).map(|i| ((i * 37 + salt * 11) % 23) as f32 / 23.0 - 0.5).collect();
    Array::from_slice(&v, &[rows, cols]).unwrap()
}

fn assert_close(got: &Array, want: &Array, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (g, w) = (got.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    for (i, (g, w)) in g.iter().zip(&w).enumerate() {
        assert!((g - w).abs() <= 1e-5 + 1e-5 * w.abs(), "{what}: element {i}: {g} vs {w}");
    }
}

/// Both ranks hold the same whole layer; its sharded forms, run on both, give its outputs.
fn sharded_linear_layers(group: &distributed::Group, rank: i32) {
    use mlx_rs::nn::{self, Linear, Module, QuantizedLinear, Sharding};
    use mlx_rs::quantization::{QuantizationMode, QuantizationParams};
    let linear =
        Linear::from_weights(pattern(6, 64, 1), Some(pattern(1, 6, 2).reshape([6]).unwrap()))
            .unwrap();
    let x = pattern(3, 64, 3);
    let want = linear.forward(&x).unwrap();
    // All-to-sharded: each rank computes 3 of the 6 outputs (bias slice included).
    let a2s = nn::shard_linear(linear.clone().into(), Sharding::AllToSharded, group).unwrap();
    assert_eq!(a2s.parameters().leaf("weight").unwrap().shape(), [3, 64]);
    assert_eq!(a2s.parameters().leaf("bias").unwrap().shape(), [3]);
    let mine = a2s.forward(&x).unwrap();
    let whole = distributed::all_gather(&mine.t().unwrap(), Some(group)).unwrap().t().unwrap();
    assert_close(&whole, &want, "all-to-sharded");
    // Sharded-to-all: each rank takes its 32 input features; one all-sum; the bias added once.
    let s2a = nn::shard_linear(linear.clone().into(), Sharding::ShardedToAll, group).unwrap();
    assert_eq!(s2a.parameters().paths(), ["weight", "bias"]);
    let cols = mlx_rs::ops::slice(&x, &[0, 32 * rank], &[3, 32 * (rank + 1)], None).unwrap();
    assert_close(&s2a.forward(&cols).unwrap(), &want, "sharded-to-all");
    // Quantized, group size 32: two groups per row, one per rank.
    let params =
        QuantizationParams { group_size: Some(32), bits: Some(4), mode: QuantizationMode::Affine };
    let q = QuantizedLinear::from_linear(&linear, params).unwrap();
    let want_q = q.forward(&x).unwrap();
    let qs2a =
        nn::shard_linear(nn::MaybeQuantized::Quantized(q.clone()), Sharding::ShardedToAll, group)
            .unwrap();
    assert_eq!(qs2a.parameters().paths(), ["weight", "scales", "biases", "bias"]);
    assert_close(&qs2a.forward(&cols).unwrap(), &want_q, "quantized sharded-to-all");
    let qa2s =
        nn::shard_linear(nn::MaybeQuantized::Quantized(q), Sharding::AllToSharded, group).unwrap();
    let mine = qa2s.forward(&x).unwrap();
    let whole = distributed::all_gather(&mine.t().unwrap(), Some(group)).unwrap().t().unwrap();
    assert_close(&whole, &want_q, "quantized all-to-sharded");
    // One quantization group per row cannot be split in two; nor can 5 outputs.
    let narrow = QuantizedLinear::from_linear(&Linear::new(32, 4, false).unwrap(), params).unwrap();
    let err =
        nn::shard_linear(nn::MaybeQuantized::Quantized(narrow), Sharding::ShardedToAll, group)
            .unwrap_err();
    assert!(err.to_string().contains("cannot split axis 1 of shape [4, 1]"), "{err}");
    let odd = Linear::new(8, 5, false).unwrap();
    let err = nn::shard_linear(odd.into(), Sharding::AllToSharded, group).unwrap_err();
    assert!(err.to_string().contains("into 2 equal parts"), "{err}");
    // In place, sharded-to-all, a bias would be summed once per rank: an error.
    let mut with_bias = linear.clone();
    let err = nn::shard_inplace(&mut with_bias, Sharding::ShardedToAll, group).unwrap_err();
    assert!(err.to_string().contains("cannot keep a bias"), "{err}");
    // In place, all-to-sharded: the layer keeps its type and computes its slice.
    let mut sliced = linear;
    nn::shard_inplace(&mut sliced, Sharding::AllToSharded, group).unwrap();
    let mine = sliced.forward(&x).unwrap();
    let whole = distributed::all_gather(&mine.t().unwrap(), Some(group)).unwrap().t().unwrap();
    assert_close(&whole, &want, "all-to-sharded in place");
    println!("sharded linear layers ok");
}

#[test]
fn two_processes_all_reduce_over_the_ring_backend() {
    let dir = std::env::temp_dir().join(format!("mlx-rs-ring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hostfile = dir.join("hosts.json");
    let (a, b) = (free_port(), free_port());
    std::fs::write(&hostfile, format!(r#"[["127.0.0.1:{a}"], ["127.0.0.1:{b}"]]"#)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|rank| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "ring_rank_worker",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ROLE, rank.to_string())
                .env("MLX_RANK", rank.to_string())
                .env("MLX_HOSTFILE", &hostfile)
                .output_spawn()
        })
        .collect();
    for (rank, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(&format!("rank {rank} ok")),
            "rank {rank} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

trait SpawnPiped {
    fn output_spawn(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn output_spawn(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}
