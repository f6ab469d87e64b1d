//! Devices and streams: counts, equality, thread-local and thread-unsafe streams, the stream
//! registry, and the per-thread cache of the default stream that every `foo(..)` op runs on.
//!
//! The default device is process-wide, so every test here takes one lock: a test that changes
//! the default must not race with one that reads it.

use std::sync::{Arc, Barrier, Mutex, MutexGuard};

use mlx_rs::{Array, Device, DeviceType, Stream, ThreadLocalStream, ThreadUnsafeStream, ops};

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The stream the `foo(..)` ops of this thread run on now (the cached one).
fn op_stream_index() -> i32 {
    Stream::with_thread_default(|s| s.index()).unwrap()
}

/// The cached stream agrees with MLX's answer.
fn assert_cache_is_current() {
    let cached = Stream::with_thread_default(|s| Ok::<_, mlx_rs::Error>(s.to_string())).unwrap();
    assert_eq!(cached, Stream::thread_default().unwrap().to_string());
    assert!(
        Stream::with_thread_default(|s| Ok::<_, mlx_rs::Error>(*s == Stream::thread_default()?))
            .unwrap()
    );
}

fn two() -> Array {
    let x = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    ops::add(&x, &x).unwrap()
}

/// The device that is not the default one, when the machine has two kinds.
fn other_device() -> Option<Device> {
    let default = Device::default_device().unwrap();
    let other = match default.device_type() {
        DeviceType::Cpu => Device::gpu(),
        DeviceType::Gpu => Device::cpu(),
    };
    other.is_available().then_some(other)
}

#[test]
fn device_counts_and_equality() {
    let _serial = serial();
    assert_eq!(Device::count(DeviceType::Cpu).unwrap(), 1);
    let gpus = Device::count(DeviceType::Gpu).unwrap();
    assert_eq!(gpus > 0, Device::gpu().is_available());
    assert!(!Device::new(DeviceType::Gpu, gpus as i32).is_available());
    assert!(!Device::new(DeviceType::Cpu, 1).is_available());

    assert_eq!(Device::cpu(), Device::new(DeviceType::Cpu, 0));
    assert_ne!(Device::cpu(), Device::gpu());
    assert_ne!(Device::gpu(), Device::new(DeviceType::Gpu, 1));
    assert_eq!(Device::cpu().clone(), Device::cpu());
    let set: std::collections::HashSet<Device> =
        [Device::cpu(), Device::new(DeviceType::Cpu, 0), Device::gpu()].into_iter().collect();
    assert_eq!(set.len(), 2);

    let default = Device::default_device().unwrap();
    let expected = if gpus > 0 { DeviceType::Gpu } else { DeviceType::Cpu };
    assert_eq!(default.device_type(), expected);
    assert_eq!(default.index(), 0);
    let from_stream = Stream::cpu().unwrap().device().unwrap();
    assert_eq!((from_stream.device_type(), from_stream.index()), (DeviceType::Cpu, 0));
}

#[test]
fn stream_index_equality_and_registry() {
    let _serial = serial();
    let cpu = Device::cpu();
    let a = Stream::new(&cpu).unwrap();
    let b = Stream::new(&cpu).unwrap();
    assert_ne!(a, b);
    assert_eq!(b.index().unwrap(), a.index().unwrap() + 1);
    assert_eq!(Stream::cpu().unwrap(), Stream::default_for(&cpu).unwrap());
    assert_eq!(Stream::cpu().unwrap(), Stream::cpu().unwrap());
    assert_ne!(Stream::cpu().unwrap(), a);
    match Stream::gpu() {
        Ok(gpu) => assert_eq!(gpu.device().unwrap(), Device::gpu()),
        Err(err) => {
            assert!(!Device::gpu().is_available());
            assert!(err.to_string().contains("gpu"), "{err}");
        }
    }

    let all = Stream::all().unwrap();
    for (position, stream) in all.iter().enumerate() {
        assert_eq!(stream.index().unwrap(), position as i32);
    }
    assert_eq!(all[a.index().unwrap() as usize], a);
    assert_eq!(all[b.index().unwrap() as usize], b);
    assert_eq!(all[b.index().unwrap() as usize].to_string(), b.to_string());

    let x = two();
    let y = ops::multiply(&x, &x).unwrap();
    mlx_rs::transforms::async_eval(&[&y]).unwrap();
    Stream::synchronize_default().unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), [4.0, 16.0]);
}

#[test]
fn cache_follows_the_default_stream_guard() {
    let _serial = serial();
    let device = Device::default_device().unwrap();
    let original = op_stream_index();
    assert_cache_is_current();
    let mine = Stream::new(&device).unwrap();
    {
        let _guard = mine.scoped_default().unwrap();
        assert_eq!(op_stream_index(), mine.index().unwrap());
        assert_cache_is_current();
        assert_eq!(two().to_vec::<f32>().unwrap(), [2.0, 4.0]);
        // Nested: an op run inside the closure of another sees the same stream.
        let nested = Stream::with_thread_default(|outer| {
            let inner = op_stream_index();
            let value = ops::add(&two(), &two())?.to_vec::<f32>()?;
            Ok::<_, mlx_rs::Error>((outer.index()?, inner, value))
        })
        .unwrap();
        assert_eq!(nested, (mine.index().unwrap(), mine.index().unwrap(), vec![4.0, 8.0]));
    }
    assert_eq!(op_stream_index(), original);
    assert_cache_is_current();
}

#[test]
fn ops_really_run_on_the_guarded_stream() {
    let _serial = serial();
    // A stream of another thread: ops on it fail when evaluated here, naming it. That makes the
    // stream an op was built on observable.
    let foreign_index = std::thread::spawn(|| {
        let device = Device::default_device().unwrap();
        Stream::new(&device).unwrap().index().unwrap()
    })
    .join()
    .unwrap();
    let foreign = Stream::all().unwrap().into_iter().nth(foreign_index as usize).unwrap();
    let before = two();
    {
        let _guard = foreign.scoped_default().unwrap();
        let there = two();
        let err = there.eval().unwrap_err().to_string();
        assert!(err.contains(&format!(", {foreign_index})")), "{err}");
        assert!(err.contains("current thread"), "{err}");
    }
    // After the guard, ops go back to this thread's own stream.
    assert_eq!(two().to_vec::<f32>().unwrap(), [2.0, 4.0]);
    assert_eq!(before.to_vec::<f32>().unwrap(), [2.0, 4.0]);
}

#[test]
fn cache_follows_the_default_device_guard() {
    let _serial = serial();
    let default = Device::default_device().unwrap();
    let Some(other) = other_device() else {
        // One kind of device: switching to the default itself must keep the cache right.
        let _same = default.scoped_default().unwrap();
        assert_cache_is_current();
        assert_eq!(two().to_vec::<f32>().unwrap(), [2.0, 4.0]);
        eprintln!("only {default} here: the switch to another device is tested on GPU machines");
        return;
    };
    assert_eq!(Stream::with_thread_default(|s| s.device()).unwrap(), default);
    {
        let _guard = other.scoped_default().unwrap();
        assert_eq!(Stream::with_thread_default(|s| s.device()).unwrap(), other);
        assert_cache_is_current();
        assert_eq!(two().to_vec::<f32>().unwrap(), [2.0, 4.0]);
    }
    assert_eq!(Stream::with_thread_default(|s| s.device()).unwrap(), default);
    assert_cache_is_current();
}

#[test]
fn two_threads_keep_their_own_defaults() {
    let _serial = serial();
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let device = Device::default_device().unwrap();
                let mine = Stream::new(&device).unwrap();
                let _guard = mine.scoped_default().unwrap();
                // Both threads hold their own default from here on.
                barrier.wait();
                let seen = op_stream_index();
                assert_cache_is_current();
                let x = Array::from_slice(&[i as f32 + 1.0], &[1]).unwrap();
                let value = ops::multiply(&x, &x).unwrap().item::<f32>().unwrap();
                barrier.wait();
                // The other thread's guard change did not move this thread's default.
                assert_eq!(op_stream_index(), seen);
                (seen, mine.index().unwrap(), value)
            })
        })
        .collect();
    let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    for (seen, mine, _) in &results {
        assert_eq!(seen, mine);
    }
    assert_ne!(results[0].0, results[1].0);
    assert_eq!([results[0].2, results[1].2], [1.0, 4.0]);
}

#[test]
fn a_device_change_on_one_thread_reaches_the_next_op_of_another() {
    let _serial = serial();
    let default = Device::default_device().unwrap();
    let target = other_device().unwrap_or_else(|| default.clone());
    let barrier = Arc::new(Barrier::new(2));
    let watcher = {
        let barrier = Arc::clone(&barrier);
        std::thread::spawn(move || {
            let first = Stream::with_thread_default(|s| s.device()).unwrap();
            assert_eq!(two().to_vec::<f32>().unwrap(), [2.0, 4.0]);
            barrier.wait(); // A has a cached default.
            barrier.wait(); // B has changed the default device.
            let during = Stream::with_thread_default(|s| s.device()).unwrap();
            assert_cache_is_current();
            assert_eq!(two().to_vec::<f32>().unwrap(), [2.0, 4.0]);
            barrier.wait(); // A has looked.
            barrier.wait(); // B has restored it.
            let after = Stream::with_thread_default(|s| s.device()).unwrap();
            (first, during, after)
        })
    };
    barrier.wait();
    let guard = target.scoped_default().unwrap();
    barrier.wait();
    barrier.wait();
    drop(guard);
    barrier.wait();
    let (first, during, after) = watcher.join().unwrap();
    assert_eq!(first, default);
    assert_eq!(during, target);
    assert_eq!(after, default);
    if target == default {
        eprintln!("only {default} here: the device switch itself is tested on GPU machines");
    }
}

#[test]
fn clearing_streams_gives_fresh_defaults() {
    let _serial = serial();
    // On a thread of its own: the clear destroys every stream of the calling thread.
    std::thread::spawn(|| {
        let old = op_stream_index();
        let mine = Stream::new(&Device::cpu()).unwrap();
        let x = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
        let pending = ops::add(&x, &x).unwrap();
        let on_mine = ops::add_device(&x, &x, &mine).unwrap();
        Stream::clear_thread_streams().unwrap();
        // Unevaluated work on the destroyed streams errs instead of crashing.
        assert!(pending.eval().is_err());
        assert!(on_mine.eval().is_err());
        // The cached default was dropped: ops run on the fresh default.
        let fresh = op_stream_index();
        assert_ne!(fresh, old);
        assert!(fresh > mine.index().unwrap());
        assert_cache_is_current();
        assert_eq!(two().to_vec::<f32>().unwrap(), [2.0, 4.0]);
        assert_eq!(
            ops::add_device(&x, &x, &Stream::cpu().unwrap()).unwrap().to_vec::<f32>().unwrap(),
            [2.0, 4.0]
        );
    })
    .join()
    .unwrap();
}

#[test]
fn thread_local_streams_are_one_per_thread() {
    let _serial = serial();
    let tls = Arc::new(ThreadLocalStream::new(&Device::cpu()).unwrap());
    assert_eq!(*tls.device(), Device::cpu());
    let here = tls.stream().unwrap();
    assert_eq!(here, tls.stream().unwrap());
    assert_eq!(here.device().unwrap(), Device::cpu());
    let x = Array::from_slice(&[3.0f32], &[1]).unwrap();
    let y = ops::multiply_device(&x, &x, &here).unwrap();
    mlx_rs::transforms::async_eval(&[&y]).unwrap();
    tls.synchronize().unwrap();
    assert_eq!(y.item::<f32>().unwrap(), 9.0);

    let elsewhere = {
        let tls = Arc::clone(&tls);
        std::thread::spawn(move || {
            let there = tls.stream().unwrap();
            assert_eq!(there, tls.stream().unwrap());
            // Python's `with mx.stream(generation_stream)`.
            let _guard = there.scoped_default().unwrap();
            let on_default_device = Device::default_device().unwrap() == Device::cpu();
            if on_default_device {
                assert_eq!(op_stream_index(), there.index().unwrap());
            }
            let z = Array::from_slice(&[4.0f32], &[1]).unwrap();
            let value = ops::sqrt(&z).unwrap().item::<f32>().unwrap();
            tls.synchronize().unwrap();
            (there.index().unwrap(), value)
        })
        .join()
        .unwrap()
    };
    assert_ne!(elsewhere.0, here.index().unwrap());
    assert_eq!(elsewhere.1, 2.0);
    // Each thread's stream is a real registered stream.
    let all = Stream::all().unwrap();
    assert_eq!(all[elsewhere.0 as usize].device().unwrap(), Device::cpu());
}

#[test]
fn a_thread_unsafe_stream_serves_threads_in_turn() {
    let _serial = serial();
    let before = Stream::all().unwrap().len() as i32;
    // SAFETY: this binary's tests run one at a time (the lock above), the spawned threads use the
    // stream in turn (each is joined before the next starts), and no clear_streams runs meanwhile.
    let shared = Arc::new(unsafe { ThreadUnsafeStream::new(&Device::cpu()) }.unwrap());
    let index = shared.stream().unwrap().index().unwrap();
    assert!(index >= before);
    assert!(format!("{shared:?}").contains("cpu"));
    for i in 1..=3 {
        let shared = Arc::clone(&shared);
        let (seen, value) = std::thread::spawn(move || {
            let stream = shared.stream().unwrap();
            let x = Array::from_slice(&[i as f32], &[1]).unwrap();
            let y = ops::multiply_device(&x, &x, &stream).unwrap();
            stream.synchronize().unwrap();
            (stream.index().unwrap(), y.item::<f32>().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(seen, index);
        assert_eq!(value, (i * i) as f32);
    }
    // And on the creating thread.
    let x = Array::from_slice(&[5.0f32], &[1]).unwrap();
    let y = ops::add_device(&x, &x, &shared.stream().unwrap()).unwrap();
    assert_eq!(y.item::<f32>().unwrap(), 10.0);
}
