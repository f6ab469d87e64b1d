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
    println!("rank {rank} ok");
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
