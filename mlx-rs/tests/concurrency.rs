//! Concurrency (issue 13): several threads build and evaluate graphs at the same time, each on
//! streams of its own, and every result is checked against values computed by hand. Arrays and
//! streams are not `Send`, so each thread makes its own; what the threads share is MLX itself
//! (its scheduler, allocator, compile cache and error handler).
//!
//! `cargo test -p mlx-rs --test concurrency`; `MLX_RS_CONCURRENCY_ROUNDS` raises the rounds per
//! thread (default 150) for longer soak runs, e.g. under ThreadSanitizer (see README,
//! "Guarantees").

use std::sync::{Arc, Barrier};

use mlx_rs::transforms;
use mlx_rs::{Array, Device, Dtype, Error, Stream, ThreadLocalStream, ops, random};

const THREADS: usize = 4;

fn rounds() -> usize {
    std::env::var("MLX_RS_CONCURRENCY_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(150)
}

/// One round of thread `k`'s work on `stream`: element-wise ops, reductions, a matmul, a
/// gradient, a vjp, a compiled function, an argsort, random numbers from an explicit key and an
/// error, each checked. Returns the number of checks made.
fn round(k: usize, i: usize, stream: &Stream, compiled: &transforms::Function) -> usize {
    let t = (k * 1000 + i) as f32;
    let x = Array::from_slice(&[t, 1.0, 2.0, 3.0], &[4]).unwrap();
    // sum(x * 2 + 1) on this stream.
    let doubled = ops::multiply_device(&x, &Array::scalar(2.0f32), stream).unwrap();
    let y = ops::add_device(&doubled, &Array::scalar(1.0f32), stream).unwrap();
    let s = ops::sum_device(&y, .., false, stream).unwrap();
    // [[t, 1], [2, 3]] @ [[t, 2], [1, 3]]: entry (0, 0) is t^2 + 1, (1, 1) is 13.
    let m = ops::reshape_device(&x, [2, 2], stream).unwrap();
    let mt = ops::transpose_device(&m, [1, 0], stream).unwrap();
    let mm = ops::matmul_device(&m, &mt, stream).unwrap();
    // Ops without a stream argument run on the thread's default (made this thread's stream by
    // the guard in `worker`).
    let g = transforms::grad(|a: &[Array]| Ok(vec![(&a[0] * &a[0])?.sum(.., false)?]), &[0])
        .unwrap()
        .apply(&[&x])
        .unwrap();
    let (_, vjps) = transforms::vjp(
        |a: &[Array]| Ok(vec![ops::exp(&a[0])?]),
        &[Array::scalar(0.0f32)],
        &[Array::scalar(k as f32)],
    )
    .unwrap();
    let c = compiled.apply(&[&x]).unwrap();
    let order =
        ops::argsort(&Array::from_slice(&[3.0f32, t + 4.0, -1.0], &[3]).unwrap(), Some(0)).unwrap();
    let key = random::key((k * 7919 + i) as u64).unwrap();
    let (lo, hi) = (Array::scalar(0.0f32), Array::scalar(1.0f32));
    let u = random::uniform_device(&lo, &hi, &[64], Dtype::Float32, Some(&key), stream).unwrap();
    let u_again =
        random::uniform_device(&lo, &hi, &[64], Dtype::Float32, Some(&key), stream).unwrap();
    transforms::eval(&[&s, &mm, &g[0], &vjps[0], &c[0], &u, &u_again]).unwrap();

    assert_eq!(s.item::<f32>().unwrap(), 2.0 * (t + 6.0) + 4.0, "thread {k} round {i}");
    let mm = mm.to_vec::<f32>().unwrap();
    assert_eq!([mm[0], mm[3]], [t * t + 1.0, 13.0], "thread {k} round {i}");
    assert_eq!(g[0].to_vec::<f32>().unwrap(), [2.0 * t, 2.0, 4.0, 6.0]);
    assert_eq!(vjps[0].item::<f32>().unwrap(), k as f32);
    // The compiled function is 3x - 1.
    assert_eq!(c[0].to_vec::<f32>().unwrap(), [3.0 * t - 1.0, 2.0, 5.0, 8.0]);
    assert_eq!(order.to_vec::<u32>().unwrap(), [2, 0, 1]);
    let (u, u_again) = (u.to_vec::<f32>().unwrap(), u_again.to_vec::<f32>().unwrap());
    assert_eq!(u, u_again, "the same key gives the same numbers");
    assert!(u.iter().all(|v| (0.0..1.0).contains(v)));
    // An error on one thread stays on that thread and names its own problem.
    let err = ops::reshape_device(&x, [3], stream).unwrap_err();
    assert!(err.to_string().contains("reshape"), "thread {k}: {err}");
    10
}

/// A thread's work: a fresh stream of its own (the thread's default for the duration), a
/// compiled function of its own, `rounds` rounds. Returns the stream index and the checks made.
fn worker(k: usize, rounds: usize, start: &Barrier) -> (i32, usize) {
    let stream = Stream::new(&Device::cpu()).unwrap();
    let _default = stream.scoped_default().unwrap();
    let compiled =
        transforms::compile(|a: &[Array]| Ok(vec![(&(&a[0] * 3.0f32)? - 1.0f32)?])).unwrap();
    start.wait();
    let checks = (0..rounds).map(|i| round(k, i, &stream, &compiled)).sum();
    stream.synchronize().unwrap();
    (stream.index().unwrap(), checks)
}

#[test]
fn threads_on_their_own_streams_compute_correctly() {
    let rounds = rounds();
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|k| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || worker(k, rounds, &start))
        })
        .collect();
    let results: Vec<(i32, usize)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut indices: Vec<i32> = results.iter().map(|r| r.0).collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), THREADS, "every thread had its own stream: {results:?}");
    assert!(results.iter().all(|r| r.1 == 10 * rounds));
}

/// One [`ThreadLocalStream`] shared by every thread: each gets its own stream behind it.
#[test]
fn a_shared_thread_local_stream_gives_each_thread_its_own() {
    let shared = Arc::new(ThreadLocalStream::new(&Device::cpu()).unwrap());
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|k| {
            let (shared, start) = (Arc::clone(&shared), Arc::clone(&start));
            std::thread::spawn(move || -> Result<(i32, f32), Error> {
                let stream = shared.stream()?;
                start.wait();
                let mut total = Array::scalar(0.0f32);
                for i in 0..50 {
                    let x = Array::from_slice(&[k as f32, i as f32], &[2])?;
                    let sq = ops::multiply_device(&x, &x, &stream)?;
                    total = ops::add_device(
                        &total,
                        &ops::sum_device(&sq, .., false, &stream)?,
                        &stream,
                    )?;
                    if i % 10 == 9 {
                        total.eval()?;
                    }
                }
                shared.synchronize()?;
                Ok((stream.index()?, total.item::<f32>()?))
            })
        })
        .collect();
    let results: Vec<(i32, f32)> =
        handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
    for (k, &(_, total)) in results.iter().enumerate() {
        // sum over i < 50 of k^2 + i^2 = 50 k^2 + 40425.
        assert_eq!(total, 50.0 * (k * k) as f32 + 40425.0, "thread {k}");
    }
    let mut indices: Vec<i32> = results.iter().map(|r| r.0).collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), THREADS);
}
