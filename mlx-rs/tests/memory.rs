//! Memory statistics and limits, device information, and graph export.
//!
//! The statistics are process-wide, so the tests that read them run one after another under a
//! lock (the test harness runs tests on several threads).

mod common;

use std::sync::Mutex;

use mlx_rs::memory::{self, DeviceInfoValue};
use mlx_rs::{Array, Device, ops};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A 64 MiB float32 array, evaluated.
fn big() -> Array {
    let a = ops::full(&[16 * 1024 * 1024], &Array::scalar(1.5f32), None).unwrap();
    a.eval().unwrap();
    a
}

#[test]
fn active_memory_follows_allocations() {
    let _guard = serial();
    memory::clear_cache().unwrap();
    let before = memory::get_active_memory().unwrap();
    let a = big();
    let during = memory::get_active_memory().unwrap();
    assert!(during >= before + a.nbytes(), "active {before} -> {during} for {} bytes", a.nbytes());
    assert!(memory::get_peak_memory().unwrap() >= during);

    drop(a);
    // GPU backends release buffers when the stream's work completes.
    mlx_rs::Stream::thread_default().unwrap().synchronize().unwrap();
    let after_drop = memory::get_active_memory().unwrap();
    assert!(after_drop < during, "active {during} -> {after_drop} after drop");
    // The freed buffer may sit in the cache until it is cleared.
    memory::clear_cache().unwrap();
    assert_eq!(memory::get_cache_memory().unwrap(), 0);
    assert!(memory::get_active_memory().unwrap() <= after_drop);
}

#[test]
fn cache_holds_freed_buffers_until_cleared() {
    let _guard = serial();
    let previous = memory::set_cache_limit(usize::MAX / 2).unwrap();
    drop(big());
    // GPU backends release buffers when the stream's work completes.
    mlx_rs::Stream::thread_default().unwrap().synchronize().unwrap();
    let cached = memory::get_cache_memory().unwrap();
    memory::clear_cache().unwrap();
    assert_eq!(memory::get_cache_memory().unwrap(), 0);
    assert!(cached > 0, "a freed 64 MiB buffer is cached");
    // Restore, and check that set returns the limit just set.
    assert_eq!(memory::set_cache_limit(previous).unwrap(), usize::MAX / 2);
}

#[test]
fn peak_memory_resets() {
    let _guard = serial();
    let a = big();
    let peak = memory::get_peak_memory().unwrap();
    assert!(peak >= memory::get_active_memory().unwrap());
    assert!(peak >= a.nbytes());
    drop(a);
    memory::clear_cache().unwrap();
    memory::reset_peak_memory().unwrap();
    let reset = memory::get_peak_memory().unwrap();
    assert!(reset < peak, "peak {peak} -> {reset} after reset");
    assert!(reset <= memory::get_active_memory().unwrap().max(reset));
}

#[test]
fn limits_round_trip() {
    let _guard = serial();
    let original = memory::get_memory_limit().unwrap();
    assert!(original > 0);
    let previous = memory::set_memory_limit(1 << 30).unwrap();
    assert_eq!(previous, original);
    assert_eq!(memory::get_memory_limit().unwrap(), 1 << 30);
    assert_eq!(memory::set_memory_limit(original).unwrap(), 1 << 30);
    assert_eq!(memory::get_memory_limit().unwrap(), original);

    let cache = memory::set_cache_limit(12345).unwrap();
    assert_eq!(memory::set_cache_limit(cache).unwrap(), 12345);

    // Only Metal wires memory; elsewhere MLX accepts the call and reports no previous limit.
    let wired = memory::set_wired_limit(0).unwrap();
    assert_eq!(memory::set_wired_limit(wired).unwrap(), 0);

    // MLX still computes after the limits changed back.
    let two = ops::add(&Array::scalar(1.0f32), &Array::scalar(1.0f32)).unwrap();
    assert_eq!(two.item::<f32>().unwrap(), 2.0);
}

#[test]
fn device_info_has_name_and_architecture() {
    let info = memory::device_info(&Device::cpu()).unwrap();
    for key in ["device_name", "architecture"] {
        assert!(matches!(info.get(key), Some(DeviceInfoValue::String(_))), "{key}: {info:?}");
    }
    let default = Device::default_device().unwrap();
    let info = memory::device_info(&default).unwrap();
    assert!(info.contains_key("device_name"), "{info:?}");
    // A GPU that is not there has no properties (MLX reports none rather than failing).
    if !Device::gpu().is_available() {
        assert!(memory::device_info(&Device::gpu()).unwrap().is_empty());
    }
}

#[test]
fn dot_export_names_ops_and_inputs() {
    use mlx_rs::graph;
    let x = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    let y = Array::from_slice(&[4.0f32, 5.0, 6.0], &[3]).unwrap();
    let s = ops::add(&x, &y).unwrap();
    let p = ops::multiply(&s, &x).unwrap();

    let dot = graph::to_dot(&[&p], &[(&x, "input_x"), (&y, "input_y")]).unwrap();
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    for needle in ["Add", "Multiply", "input_x", "input_y", "->"] {
        assert!(dot.contains(needle), "{needle} missing from\n{dot}");
    }

    // To any writer; unnamed nodes get automatic names.
    let mut out = Vec::new();
    graph::export_to_dot(&mut out, &[&p, &s], &[]).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("Add") && text.contains("Multiply"), "{text}");

    let mut listing = Vec::new();
    graph::print_graph(&mut listing, &[&p], &[(&x, "input_x")]).unwrap();
    let listing = String::from_utf8(listing).unwrap();
    assert!(listing.contains("Multiply") && listing.contains("input_x"), "{listing}");

    // The namer on its own.
    let namer = graph::NodeNamer::with_names(&[(&x, "x")]).unwrap();
    assert_eq!(namer.get_name(&x).unwrap(), "x");
    let auto = namer.get_name(&y).unwrap();
    assert!(!auto.is_empty());
    assert_eq!(namer.get_name(&y).unwrap(), auto, "automatic names are kept");

    // A name with a NUL byte is an error; a failing writer is an I/O error.
    common::assert_err(graph::to_dot(&[&p], &[(&x, "bad\0name")]), &["NUL"]);
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("pipe closed"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let err = common::assert_err(graph::export_to_dot(&mut Broken, &[&p], &[]), &["pipe closed"]);
    assert_eq!(err.kind(), mlx_rs::ErrorKind::Io);

    // The graph is still intact and computes.
    assert_eq!(p.to_vec::<f32>().unwrap(), [5.0, 14.0, 27.0]);
    // An evaluated array has no graph behind it: a single node.
    let dot = graph::to_dot(&[&p], &[]).unwrap();
    assert!(dot.starts_with("digraph") && !dot.contains("Multiply"), "{dot}");
}
