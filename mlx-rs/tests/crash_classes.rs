//! Regression tests for the inputs that crashed the process (issue 13): allocation failure,
//! shape arithmetic overflow, quantization parameters, hostile files, transforms of closures
//! without outputs, and the crashes the bad-input battery found (convolution groups, sorts and
//! scans of empty arrays).
//!
//! Each case runs in a child process (this test binary re-executed with `MLX_RS_CRASH_CASE`
//! naming the case), so a crash fails only its own test and cannot hide the others. The child
//! prints the case's outcome and then checks that the process still computes; the parent asserts
//! that the child exited 0 having printed the expected error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use mlx_rs::ops::{ConvGeneralOptions, ConvOptions};
use mlx_rs::quantization::{self, GatherIndices, QuantizationMode, QuantizationParams, Quantized};
use mlx_rs::transforms::{self, CustomRules};
use mlx_rs::{Array, Dtype, Index, Result, io, linalg, memory, ops};

const CASE: &str = "MLX_RS_CRASH_CASE";

/// The outcome of a case that must fail: `Err: message`, or a panic for an unexpected `Ok`.
fn err<T: std::fmt::Debug>(result: Result<T>) -> String {
    match result {
        Err(e) => format!("Err: {e}"),
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
    }
}

/// `Err` of the first failing step, for cases where the error may come at creation or at
/// evaluation. An array that comes back is evaluated and its last element read (where the
/// crashes of issue 13 happened) before the case fails.
fn err_of(f: impl FnOnce() -> Result<Array>) -> String {
    err(f().and_then(|a| {
        a.eval()?;
        let last: Vec<Index> = a.shape().iter().map(|&d| Index::from((d - 1).max(0))).collect();
        let element = a.index(last)?.astype(Dtype::Float32)?.item::<f32>()?;
        Ok((a.shape().to_vec(), element))
    }))
}

/// Whether the loaded MLX has a GPU backend (the free-memory check is for CPU-only MLX).
fn gpu_backend() -> bool {
    mlx_rs::cuda::is_available() || mlx_rs::metal::is_available()
}

/// `MemAvailable + SwapFree` of this machine, in bytes.
fn free_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib = |name: &str| -> u64 {
        let line = meminfo.lines().find(|l| l.starts_with(name)).unwrap_or("0 kB");
        line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    (kib("MemAvailable:") + kib("SwapFree:")) * 1024
}

/// Elements of f32 that take just over MLX's memory limit.
fn over_limit_elements() -> i64 {
    (memory::get_memory_limit().unwrap() / 4 + 4096) as i64
}

/// A shape of `n` elements with dimensions that fit `i32`.
fn shape_of(n: i64) -> Vec<i32> {
    let rows = n / (1 << 20) + 1;
    vec![i32::try_from(rows).unwrap(), 1 << 20]
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("mlx-rs-crash-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// An `.npy` file of float32 with the header's `shape` text and `data` zero bytes.
fn npy_bytes(shape: &str, data: usize) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data, 0);
    bytes
}

/// A safetensors file with one float32 tensor `w` of `shape` whose data is `data` zero bytes.
fn safetensors_bytes(shape: &str, data: usize) -> Vec<u8> {
    let header = format!(r#"{{"w":{{"dtype":"F32","shape":{shape},"data_offsets":[0,{data}]}}}}"#);
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data, 0);
    bytes
}

fn quantized() -> Quantized {
    let w = ops::ones(&[4, 64], Dtype::Float32).unwrap();
    quantization::quantize(&w, QuantizationParams::default()).unwrap()
}

fn params(group_size: i32, bits: i32) -> QuantizationParams {
    QuantizationParams { group_size: Some(group_size), bits: Some(bits), ..Default::default() }
}

/// A float32 vector `0, 1, .., n - 1`.
fn counting(n: i32) -> Array {
    let data: Vec<f32> = (0..n).map(|i| i as f32).collect();
    Array::from_slice(&data, &[n]).unwrap()
}

/// Cuts the file at `path` to `len` bytes.
fn truncate(path: &PathBuf, len: u64) {
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

/// Where a case cuts a file after loading it: before its data (at byte 8), or inside it (1000
/// bytes before the end, so that the read of the data comes up short).
fn cut_length(path: &PathBuf, inside_data: bool) -> u64 {
    if inside_data { std::fs::metadata(path).unwrap().len() - 1000 } else { 8 }
}

/// `text` with the file's path replaced by `FILE`: MLX's messages name it.
fn without_path(text: &str, path: &std::path::Path) -> String {
    text.replace(path.to_str().unwrap(), "FILE")
}

/// A `.npy` file of `counting(4096)` loaded, cut (see [`cut_length`]) and evaluated, then
/// restored and loaded again.
fn npy_cut_after_load(inside_data: bool) -> String {
    let path = temp_file(&format!("trunc-{inside_data}.npy"), b"");
    io::save(&path, &counting(4096)).unwrap();
    let a = io::load(&path).unwrap();
    truncate(&path, cut_length(&path, inside_data));
    let built_before = ops::multiply(&a, &Array::scalar(2.0f32)).unwrap();
    let first = fails_twice(&a);
    let derived = derived_fail(&a, &built_before);
    std::fs::write(&path, b"").unwrap();
    io::save(&path, &counting(4096)).unwrap();
    let restored = restored_file(&a, &io::load(&path).unwrap());
    without_path(&format!("{first} / {derived} / {restored}"), &path)
}

/// [`npy_cut_after_load`] for a safetensors file, evaluated through `async_eval` first.
fn safetensors_cut_after_load(inside_data: bool) -> String {
    let path = temp_file(&format!("trunc-{inside_data}.safetensors"), b"");
    let arrays = HashMap::from([("w", counting(4096))]);
    io::save_safetensors(&path, &arrays, &HashMap::<&str, &str>::new()).unwrap();
    let w = io::load_safetensors(&path).unwrap().0.remove("w").unwrap();
    truncate(&path, cut_length(&path, inside_data));
    let built_before = ops::multiply(&w, &Array::scalar(2.0f32)).unwrap();
    // Scheduled by `async_eval`: the failure shows when the array is waited for, or in
    // `async_eval` itself when the read fails while MLX is still scheduling.
    if let Err(e) = transforms::async_eval(&[&w]) {
        assert!(e.message().contains(READ_FAILED), "{e}");
    }
    let first = fails_twice(&w);
    let derived = derived_fail(&w, &built_before);
    io::save_safetensors(&path, &arrays, &HashMap::<&str, &str>::new()).unwrap();
    let reloaded = io::load_safetensors(&path).unwrap().0.remove("w").unwrap();
    let restored = restored_file(&w, &reloaded);
    without_path(&format!("{first} / {derived} / {restored}"), &path)
}

/// What mlx-c's reader raises when a read of a loaded file comes up short.
const READ_FAILED: &str = "[mlx_io_reader] unable to read";

/// `Err: message` of `a`'s evaluation, which must fail twice with the same message.
fn fails_twice(a: &Array) -> String {
    let first = err(a.eval());
    let second = err(a.eval());
    assert_eq!(first, second, "the second evaluation must fail as the first");
    first
}

/// After `failed` failed: arrays built from it before and after fail, through every way of
/// evaluating, with the same message; an unrelated array still computes.
fn derived_fail(failed: &Array, built_before: &Array) -> String {
    let message = err(failed.eval());
    let built_after = ops::add(failed, &Array::scalar(1.0f32)).unwrap();
    let sum = failed.sum(.., false).unwrap();
    let outcomes = [
        err(built_before.eval()),
        err(built_after.to_vec::<f32>()),
        err(sum.item::<f32>()),
        err(transforms::eval(&[&built_after, &sum])),
        err(transforms::async_eval(&[&built_before]).and_then(|()| built_before.eval())),
    ];
    // `Err: op: message`: the op differs, MLX's message is the same.
    let mlx_message = message.splitn(3, ": ").nth(2).unwrap();
    for outcome in &outcomes {
        assert!(outcome.ends_with(mlx_message), "{outcome} does not end with {mlx_message}");
    }
    let unrelated = counting(8).sum(.., false).unwrap();
    assert_eq!(unrelated.item::<f32>().unwrap(), 28.0);
    format!("derived: {} fail", outcomes.len())
}

/// Once the file is whole again, a new load reads it. The failed array never shows the bytes of
/// the failed read: it stays failed when MLX had scheduled it before the read failed, and it
/// kept its load, so it reads the whole file now, when the error came while MLX was still
/// scheduling (which of the two depends on when the read fails).
fn restored_file(failed: &Array, reloaded: &Array) -> String {
    let expected = (4095.0 * 4096.0) / 2.0;
    let sum = reloaded.sum(.., false).unwrap().item::<f32>().unwrap();
    assert_eq!(sum, expected);
    match failed.sum(.., false).and_then(|s| s.item::<f32>()) {
        Ok(again) => assert_eq!(again, expected),
        Err(e) => assert!(e.message().contains(READ_FAILED), "{e}"),
    }
    format!("restored: reloaded sum {sum}")
}

/// Runs the case `name` in this process and returns its outcome line.
fn run_case(name: &str) -> String {
    match name {
        // 1. Allocation failure: MLX's CPU allocator returns a null buffer (SIGSEGV).
        "zeros_absurd" => err_of(|| ops::zeros(&[1_000_000, 1_000_000, 1000], Dtype::Float32)),
        "zeros_over_limit" => {
            err_of(|| ops::zeros(&shape_of(over_limit_elements()), Dtype::Float32))
        }
        "zeros_32gb" => err_of(|| ops::zeros(&[8, 1 << 30], Dtype::Float32)),
        "outer_over_limit" => {
            let n = (over_limit_elements() as f64).sqrt() as i32 + 16;
            let v = ops::ones(&[n], Dtype::Float32).unwrap();
            err_of(|| ops::outer(&v, &v))
        }
        "broadcast_then_exp_over_limit" => {
            let big =
                ops::broadcast_to(&Array::scalar(1.0f32), shape_of(over_limit_elements())).unwrap();
            // The view shares one element; materialising it is what must fail.
            err_of(|| big.exp())
        }
        "lowered_memory_limit" => {
            let previous = memory::set_memory_limit(1 << 20).unwrap();
            let out = err_of(|| ops::zeros(&[1 << 20], Dtype::Float32));
            memory::set_memory_limit(previous).unwrap();
            let fine = ops::zeros(&[1 << 20], Dtype::Float32).unwrap();
            assert_eq!(fine.sum(.., false).unwrap().item::<f32>().unwrap(), 0.0);
            out
        }
        "raised_limit_beyond_free_memory" => {
            if gpu_backend() {
                return "skipped: MLX's limit follows the GPU's memory".into();
            }
            // Within a raised limit, but more than the machine has free: the OOM killer's case.
            let free = free_bytes();
            let previous = memory::set_memory_limit(usize::MAX / 2).unwrap();
            let elements = (free / 4 + (1 << 29)) as i64;
            let out = err_of(|| ops::zeros(&shape_of(elements), Dtype::Float32));
            memory::set_memory_limit(previous).unwrap();
            out
        }
        "split_empty_axis_into_i32_max_parts" => {
            // MLX would make i32::MAX empty arrays (the fuzzer's out-of-memory input).
            let empty = ops::zeros(&[3, 0], Dtype::Float32).unwrap();
            err(ops::split(&empty, i32::MAX, 1).map(|parts| parts.len()))
        }
        "unstack_of_a_long_empty_axis" => {
            let empty = ops::zeros(&[1 << 30, 0], Dtype::Float32).unwrap();
            err(ops::unstack(&empty, 0).map(|parts| parts.len()))
        }
        // 2. Shape arithmetic overflow: the element count wraps (here to 0 or 4).
        "ones_wrapping" => err_of(|| ops::ones(&[1 << 30, 1 << 30, 16], Dtype::Float32)),
        "reshape_wrapping_to_4" => {
            // 4 * 27905 * 429509837 * 384773 = 4 * (2^62 + 1), which wraps to 4.
            let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[4]).unwrap();
            err_of(|| a.reshape([4, 27905, 429_509_837, 384_773]))
        }
        "reshape_empty_wrapping" => {
            let a = ops::zeros(&[0], Dtype::Float32).unwrap();
            err_of(|| a.reshape([1 << 30, 1 << 30, 16]))
        }
        "broadcast_wrapping" => {
            err_of(|| ops::broadcast_to(&Array::scalar(1.0f32), [1 << 30, 1 << 30, 16]))
        }
        "broadcast_bytes_overflow" => {
            // 2^62 elements fit a 64-bit count, but not their 2^64 bytes.
            err_of(|| ops::broadcast_to(&Array::scalar(1.0f32), [1 << 30, 1 << 30, 4]))
        }
        "broadcast_arrays_wrapping" => {
            let a = ops::broadcast_to(&Array::scalar(1.0f32), [1 << 30, 1, 16]).unwrap();
            let b = ops::broadcast_to(&Array::scalar(2.0f32), [1, 1 << 30, 1]).unwrap();
            err(ops::broadcast_arrays(&[a, b]).map(|v| v.len()))
        }
        "zeros_negative" => err_of(|| ops::zeros(&[-1, 4], Dtype::Float32)),
        // 3. Quantization parameters: MLX divides by them before checking (SIGFPE).
        "quantize_group_size_0" => {
            let w = ops::ones(&[2, 64], Dtype::Float32).unwrap();
            err(quantization::quantize(&w, params(0, 4)).map(|q| q.weights.shape().to_vec()))
        }
        "quantize_bits_0" => {
            let w = ops::ones(&[2, 64], Dtype::Float32).unwrap();
            err(quantization::quantize(&w, params(64, 0)).map(|q| q.weights.shape().to_vec()))
        }
        "quantize_negative_group" => {
            let w = ops::ones(&[2, 64], Dtype::Float32).unwrap();
            err(quantization::quantize(&w, params(-64, 4)).map(|q| q.weights.shape().to_vec()))
        }
        "quantize_mxfp4_group_64" => {
            let w = ops::ones(&[2, 64], Dtype::Float32).unwrap();
            let p = QuantizationParams {
                group_size: Some(64),
                mode: QuantizationMode::Mxfp4,
                ..Default::default()
            };
            err(quantization::quantize(&w, p).map(|q| q.weights.shape().to_vec()))
        }
        "dequantize_group_size_0" => {
            err_of(|| quantization::dequantize(&quantized(), params(0, 4), None))
        }
        "quantized_matmul_bits_0" => {
            let x = ops::ones(&[1, 64], Dtype::Float32).unwrap();
            err_of(|| quantization::quantized_matmul(&x, &quantized(), true, params(64, 0)))
        }
        "gather_qmm_group_size_0" => {
            let x = ops::ones(&[1, 64], Dtype::Float32).unwrap();
            let idx = GatherIndices { lhs: None, rhs: None, sorted: false };
            err_of(|| quantization::gather_qmm(&x, &quantized(), idx, true, params(0, 4)))
        }
        // 4. Hostile files.
        "npy_negative_dim" => {
            let path = temp_file("neg.npy", &npy_bytes("(-1, 4)", 16));
            err_of(|| io::load(&path))
        }
        "npy_wrapping_shape" => {
            let path = temp_file("wrap.npy", &npy_bytes("(1073741824, 1073741824, 16)", 16));
            err_of(|| io::load(&path))
        }
        "npy_reader_wrapping_shape" => {
            let bytes = npy_bytes("(1073741824, 1073741824, 16)", 16);
            err_of(|| io::load_from_reader(&mut std::io::Cursor::new(bytes)))
        }
        "safetensors_wrapping_shape" => {
            let path = temp_file("wrap.st", &safetensors_bytes("[1073741824,1073741824,16]", 0));
            err(io::load_safetensors(&path).map(|(a, _)| a.len()))
        }
        "safetensors_negative_dims" => {
            let path = temp_file("neg.st", &safetensors_bytes("[-2,-2]", 16));
            err(io::load_safetensors(&path).map(|(a, _)| a.len()))
        }
        "safetensors_reader_wrapping_shape" => {
            let bytes = safetensors_bytes("[1073741824,1073741824,16]", 0);
            err(io::load_safetensors_from_reader(&mut std::io::Cursor::new(bytes))
                .map(|(a, _)| a.len()))
        }
        "safetensors_offsets_past_end" => {
            let header = r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[1000,1016]}}"#;
            let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
            bytes.extend_from_slice(header.as_bytes());
            bytes.resize(bytes.len() + 16, 0);
            let path = temp_file("past.st", &bytes);
            err(io::load_safetensors(&path).map(|(a, _)| a.len()))
        }
        "safetensors_truncated_file" => {
            let mut bytes = safetensors_bytes("[4]", 16);
            bytes.truncate(bytes.len() - 4);
            let path = temp_file("short.st", &bytes);
            err(io::load_safetensors(&path).map(|(a, _)| a.len()))
        }
        // A failed evaluation stays failed: MLX 0.32.2 marks an array evaluated when it schedules
        // it, so a second `eval` returned `Ok` over bytes the failed work never wrote. A file cut
        // inside its data was read as `Ok` with repeated bytes by MLX's own file reader.
        "npy_cut_before_data_after_load" => npy_cut_after_load(false),
        "npy_cut_inside_data_after_load" => npy_cut_after_load(true),
        "safetensors_cut_before_data_after_load" => safetensors_cut_after_load(false),
        "safetensors_cut_inside_data_after_load" => safetensors_cut_after_load(true),
        "inv_singular_stays_failed" => {
            // MLX 0.32.2's CPU inverse reports LAPACK's failure from its scheduled work.
            let a = linalg::inv(&ops::zeros(&[2, 2], Dtype::Float32).unwrap()).unwrap();
            let built_before = ops::multiply(&a, &Array::scalar(2.0f32)).unwrap();
            let first = fails_twice(&a);
            let derived = derived_fail(&a, &built_before);
            format!("{first} / {derived}")
        }
        // Found by fuzzing (fuzz/README.md).
        "scans_of_empty_arrays" => {
            // MLX 0.32.2's CPU scan divides by zero (SIGFPE) on an array with no elements.
            let f16 = ops::zeros(&[3, 0], Dtype::Float16).unwrap();
            let i8s = ops::zeros(&[0, 2], Dtype::Int8).unwrap();
            let results = [
                ops::cumsum(&f16, Some(0), false, true, None).unwrap(),
                ops::cumsum(&i8s, None, true, false, None).unwrap(),
                ops::cumprod(&f16, Some(1), false, true, Some(Dtype::Float32)).unwrap(),
                ops::cummax(&i8s, Some(0), false, true).unwrap(),
                ops::cummin(&f16, Some(-1), true, true).unwrap(),
                ops::logcumsumexp(&f16, Some(0), false, false).unwrap(),
            ];
            let shapes: Vec<String> = results
                .iter()
                .map(|r| {
                    r.eval().unwrap();
                    assert_eq!(r.size(), 0);
                    format!("{:?} {:?}", r.shape(), r.dtype())
                })
                .collect();
            // The axis is still checked.
            let bad_axis = err(ops::cumsum(&f16, Some(2), false, true, None).map(|a| a.size()));
            format!("Ok: {} / {bad_axis}", shapes.join(", "))
        }
        "sorts_of_empty_arrays" => {
            // MLX 0.32.2's CPU sort divides by zero (SIGFPE) when the sorted axis is empty.
            let a = ops::zeros(&[0, 3], Dtype::Float32).unwrap();
            let b = ops::zeros(&[0], Dtype::Bool).unwrap();
            let results = [
                ops::sort(&a, Some(0)).unwrap(),
                ops::argsort(&a, Some(0)).unwrap(),
                ops::argsort(&b, None).unwrap(),
                ops::partition(&a, 0, Some(1)).unwrap(),
                ops::argpartition(&a, 1, Some(-1)).unwrap(),
                ops::topk(&a, 2, Some(1)).unwrap(),
            ];
            let shapes: Vec<String> = results
                .iter()
                .map(|r| {
                    r.eval().unwrap();
                    assert_eq!(r.size(), 0);
                    format!("{:?} {:?}", r.shape(), r.dtype())
                })
                .collect();
            format!("Ok: {}", shapes.join(", "))
        }
        "convolutions_with_empty_weights" => {
            // No input channels: MLX 0.32.2's CPU convolution divides by zero (SIGFPE).
            let x = ops::zeros(&[1, 4, 0], Dtype::Float32).unwrap();
            let w = ops::zeros(&[3, 1, 0], Dtype::Float32).unwrap();
            let c1 = err_of(|| ops::conv1d(&x, &w, ConvOptions::new()));
            let x2 = ops::zeros(&[1, 4, 4, 0], Dtype::Float32).unwrap();
            let w2 = ops::zeros(&[3, 1, 1, 0], Dtype::Float32).unwrap();
            let c2 = err_of(|| ops::conv2d(&x2, &w2, ConvOptions::new()));
            let t1 = err_of(|| ops::conv_transpose1d(&x, &w, ConvOptions::new()));
            let g = err_of(|| ops::conv_general(&x, &w, &ConvGeneralOptions::new()));
            // An empty kernel: BLAS refuses the product and leaves the output unwritten.
            let x = ops::ones(&[1, 4, 2], Dtype::Float32).unwrap();
            let k0 = err_of(|| {
                ops::conv1d(&x, &ops::ones(&[3, 0, 2], Dtype::Float32)?, ConvOptions::new())
            });
            // Zero groups: MLX divides by the group count first (SIGFPE).
            let w = ops::ones(&[2, 1, 2], Dtype::Float32).unwrap();
            let g0 = err_of(|| ops::conv1d(&x, &w, ConvOptions::new().groups(0)));
            assert!(g0.contains("groups must be at least 1, got 0"), "{g0}");
            let gg = ConvGeneralOptions::new().groups(0);
            let g1 = err_of(|| ops::conv_general(&x, &w, &gg));
            assert!(g1.contains("groups must be at least 1, got 0"), "{g1}");
            for e in [&c2, &t1, &g, &k0] {
                assert!(e.contains("the weight has shape"), "{e}");
            }
            format!("{c1} / {c2} / {t1} / {g} / {k0}")
        }
        "eye_and_tri_extreme_diagonals" => {
            // MLX 0.32.2 negates `k` in `int`: `i32::MIN` overflowed into an 8 GB arange.
            let e = ops::eye(i32::MAX, Some(0), i32::MIN, Dtype::Uint8).unwrap();
            e.eval().unwrap();
            let e2 = ops::eye(3, Some(2), i32::MIN, Dtype::Int32).unwrap();
            assert_eq!(e2.to_vec::<i32>().unwrap(), [0; 6]);
            let e3 = ops::eye(2, None, -1, Dtype::Int32).unwrap();
            assert_eq!(e3.to_vec::<i32>().unwrap(), [0, 0, 1, 0]);
            let t = ops::tri(2, Some(3), i32::MIN, Dtype::Int32).unwrap();
            assert_eq!(t.to_vec::<i32>().unwrap(), [0; 6]);
            let t2 = ops::tri(2, Some(3), i32::MAX, Dtype::Int32).unwrap();
            assert_eq!(t2.to_vec::<i32>().unwrap(), [1; 6]);
            let t3 = ops::tri(2, Some(3), -1, Dtype::Int32).unwrap();
            assert_eq!(t3.to_vec::<i32>().unwrap(), [0, 0, 0, 1, 0, 0]);
            // `m - k` wrapped in MLX: an empty `[n, 0]` after an 8 GB intermediate.
            let huge = err(ops::tri(i32::MAX, None, -2, Dtype::Bool).map(|t| t.shape().to_vec()));
            format!("Ok: {:?} {:?} / {huge}", e.shape(), e.dtype())
        }
        "quantized_empty_last_axis" => {
            // MLX 0.32.2 quantizes a `[5, 0]` matrix; its fp-mode matmul then divides by zero.
            let w = ops::zeros(&[5, 0], Dtype::Float32).unwrap();
            let p = QuantizationParams { mode: QuantizationMode::Mxfp4, ..Default::default() };
            let q = err(quantization::quantize(&w, p).map(|q| q.weights.shape().to_vec()));
            let packed = Quantized {
                weights: ops::zeros(&[5, 0], Dtype::Uint32).unwrap(),
                scales: ops::zeros(&[5, 0], Dtype::Uint8).unwrap(),
                biases: None,
            };
            let x = ops::ones(&[5, 5], Dtype::Float32).unwrap();
            let mm = err_of(|| quantization::quantized_matmul(&x, &packed, true, p));
            let dq = err_of(|| quantization::dequantize(&packed, p, None));
            format!("{q} / {mm} / {dq}")
        }
        "error_message_with_percent_signs" => {
            // mlx-c ran every MLX error message through printf as the format: a `%s` in a path
            // or in a file's tensor name or dtype read garbage varargs (SIGSEGV).
            let dir = std::env::temp_dir();
            let missing = dir.join("mlx-rs-missing-%s%s%s%s%s%s%s%s%n.npy");
            let from_path = err(io::load(&missing).map(|a| a.size()));
            assert!(from_path.contains("%s%s%s%s%s%s%s%s%n.npy"), "{from_path}");
            let header = r#"{"w":{"dtype":"%s%s%s%s%s%s%s%s","shape":[1],"data_offsets":[0,4]}}"#;
            let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend_from_slice(&[0; 4]);
            let path = temp_file("percent.st", &bytes);
            let st = err(io::load_safetensors(&path).map(|(a, _)| a.len()));
            assert!(st.contains("%s%s%s%s"), "{st}");
            format!("{from_path} / {st}")
        }
        "gguf_fuzz_crash" => {
            // Found by the gguf fuzz target; crashes Python MLX 0.32.2 too (SIGSEGV in gguflib's
            // `gguf_set_data_offset`): MLX loses its place after a float64 metadata value.
            let input = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/regressions/gguf");
            let bytes = std::fs::read(format!("{input}/float64-metadata")).unwrap();
            let path = temp_file("fuzz.gguf", &bytes);
            err(io::load_gguf(&path).map(|(a, _)| a.len()))
        }
        "npy_huge_header_length" => {
            // A version 2 header claiming 2 GB: MLX allocated it before finding the file short.
            let mut bytes = npy_bytes("(2,)", 8);
            bytes[6] = 2;
            bytes.splice(8..10, [0x3a, 0x7b, 0x7b, 0x7b, 0x00, 0x00]);
            let path = temp_file("hugeheader.npy", &bytes);
            let from_path = err_of(|| io::load(&path));
            let from_reader = err_of(|| io::load_from_reader(&mut std::io::Cursor::new(&bytes)));
            format!("{from_path} / {from_reader}")
        }
        // 5. Transforms of a closure that returns no outputs.
        "grad_no_outputs" => {
            let g = transforms::grad(|_: &[Array]| Ok(vec![]), &[0]).unwrap();
            err(g.apply(&[Array::scalar(1.0f32)]).map(|v| v.len()))
        }
        "value_and_grad_no_outputs" => {
            let g = transforms::value_and_grad(|_: &[Array]| Ok(vec![]), &[0]).unwrap();
            err(g.apply(&[Array::scalar(1.0f32)]).map(|v| v.0.len()))
        }
        // Python MLX 0.32.2 returns empty results for these (no error): so does the crate.
        "others_no_outputs" => {
            let x = Array::scalar(1.0f32);
            let (outs, cts) = transforms::vjp(|_| Ok(vec![]), &[&x], &[] as &[Array]).unwrap();
            assert!(outs.is_empty());
            // Python: ([], [array(0, dtype=float32)]).
            assert_eq!(cts.len(), 1);
            assert_eq!(cts[0].item::<f32>().unwrap(), 0.0);
            let (outs, tans) = transforms::jvp(|_| Ok(vec![]), &[&x], &[&x]).unwrap();
            assert!(outs.is_empty() && tans.is_empty());
            let v = Array::from_slice(&[1.0f32], &[1]).unwrap();
            assert!(transforms::vmap(|_| Ok(vec![]), &[&v], &[0], &[]).unwrap().is_empty());
            let compiled = transforms::compile(|_| Ok(vec![])).unwrap();
            assert!(compiled.apply(&[&v]).unwrap().is_empty());
            let custom =
                transforms::custom_function(|_| Ok(vec![]), CustomRules::default()).unwrap();
            assert!(custom.apply(&[&x]).unwrap().is_empty());
            "Ok: vjp, jvp, vmap, compile and custom_function return empty results".to_owned()
        }
        // 6. Found by the bad-input battery (`bad_input.rs`): SIGFPE in MLX 0.32.2 (and Python).
        "conv_groups_0" => {
            let (x, w) =
                (ops::ones(&[1, 5, 3], Dtype::Float32), ops::ones(&[2, 3, 3], Dtype::Float32));
            err_of(|| ops::conv1d(&x?, &w?, ops::ConvOptions::new().groups(0)))
        }
        "sort_empty_axis" => {
            let e = ops::zeros(&[3, 0], Dtype::Float32).unwrap();
            let sorted = ops::sort(&e, Some(1)).unwrap();
            let order = ops::argsort(&e, Some(-1)).unwrap();
            transforms::eval(&[&sorted, &order]).unwrap();
            format!("Ok: sort {:?}, argsort {:?}", sorted.shape(), order.shape())
        }
        "cumsum_empty" => {
            let e = ops::zeros(&[0], Dtype::Float32).unwrap();
            let scans = [
                ops::cumsum(&e, Some(0), false, true, None).unwrap(),
                ops::cumprod(&e, None, true, false, None).unwrap(),
                ops::cummax(&e, Some(0), false, true).unwrap(),
                ops::logcumsumexp(&e, Some(0), false, true).unwrap(),
            ];
            transforms::eval(&scans).unwrap();
            format!("Ok: {} empty scans", scans.len())
        }
        other => panic!("unknown case {other}"),
    }
}

/// The child side: runs the case named by `MLX_RS_CRASH_CASE`, then checks that the process
/// still computes (ignored in a normal run).
#[test]
#[ignore = "run by the other tests of this file as a child process"]
fn crash_case_child() {
    let Ok(name) = std::env::var(CASE) else { panic!("run me through a parent test") };
    println!("CASE-RESULT: {}", run_case(&name));
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    let sum = ((&a * 2.0).unwrap().sum(.., false)).unwrap().item::<f32>().unwrap();
    assert_eq!(sum, 12.0);
    println!("STILL-WORKS");
}

/// Runs `name` in a child process and asserts that it exited 0 having printed an outcome that
/// contains `expected`.
fn in_child(name: &str, expected: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["crash_case_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CASE, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "case {name} failed ({}):\n{stdout}\n{stderr}", out.status);
    // libtest prints `test crash_case_child ... ` before the case's own output.
    let line = stdout.lines().find_map(|l| l.split_once("CASE-RESULT: ")).map(|(_, r)| r);
    let line = line.unwrap_or_default();
    assert!(line.contains(expected), "case {name}: expected `{expected}` in {line:?}");
    assert!(stdout.contains("STILL-WORKS"), "case {name}:\n{stdout}");
}

macro_rules! cases {
    ($($name:ident => $expected:expr),* $(,)?) => {$(
        #[test]
        fn $name() {
            in_child(stringify!($name), $expected);
        }
    )*};
}

cases! {
    zeros_absurd => "cannot allocate 4000000000000000 bytes",
    zeros_over_limit => "more than the memory limit",
    zeros_32gb => "Err: zeros",
    outer_over_limit => "cannot allocate",
    broadcast_then_exp_over_limit => "cannot allocate",
    lowered_memory_limit => "memory limit of 1048576 bytes",
    split_empty_axis_into_i32_max_parts => "2147483647 results: their arrays alone",
    unstack_of_a_long_empty_axis => "1073741824 results: their arrays alone",
    raised_limit_beyond_free_memory =>
        if gpu_backend() { "skipped" } else { "memory free on this machine" },
    ones_wrapping => "more bytes than a 64-bit size can count",
    reshape_wrapping_to_4 => "more bytes than a 64-bit size can count",
    reshape_empty_wrapping => "more bytes than a 64-bit size can count",
    broadcast_wrapping => "more bytes than a 64-bit size can count",
    broadcast_bytes_overflow => "more bytes than a 64-bit size can count",
    broadcast_arrays_wrapping => "more bytes than a 64-bit size can count",
    zeros_negative => "Err: ",
    quantize_group_size_0 => "group size 0 is not supported by affine quantization",
    quantize_bits_0 => "0 bits are not supported by affine quantization",
    quantize_negative_group => "group size -64 is not supported",
    quantize_mxfp4_group_64 => "group size 64 is not supported by mxfp4",
    dequantize_group_size_0 => "dequantize: group size 0 is not supported",
    quantized_matmul_bits_0 => "quantized_matmul: 0 bits are not supported",
    gather_qmm_group_size_0 => "gather_qmm: group size 0 is not supported",
    npy_negative_dim => "negative size",
    npy_wrapping_shape => "more bytes than a 64-bit size can count",
    npy_reader_wrapping_shape => "more bytes than a 64-bit size can count",
    safetensors_wrapping_shape => "tensor `w` in the file",
    safetensors_negative_dims => "negative size",
    safetensors_reader_wrapping_shape => "tensor `w` in the file",
    safetensors_offsets_past_end => "exceeding the size of the file",
    safetensors_truncated_file => "Err: load_safetensors",
    scans_of_empty_arrays => "Ok: [3, 0] Float16, [0] Int8, [3, 0] Float32, [0, 2] Int8, [3, 0] Float16, [3, 0] Float16 / Err: cumsum",
    sorts_of_empty_arrays => "Ok: [0, 3] Float32, [0, 3] Uint32, [0] Uint32, [0, 3] Float32, [0, 3] Uint32, [0, 2] Float32",
    convolutions_with_empty_weights => "Err: conv1d: the weight has shape [3, 1, 0]: a convolution needs at least one output channel, kernel element and input channel / Err: conv2d",
    eye_and_tri_extreme_diagonals => "Ok: [2147483647, 0] Uint8 / Err: tri: a 2147483647 x 2147483647 triangle overflows",
    quantized_empty_last_axis => "Err: quantize: the matrix has shape [5, 0]: quantization needs a non-empty last axis / Err: quantized_matmul: the packed weight has shape [5, 0]",
    error_message_with_percent_signs => "Err: load: ",
    npy_huge_header_length => "header ends at byte 2071690054 but it holds only 140 bytes / Err: load: the reader's data is not a valid .npy file",
    grad_no_outputs => "returned no outputs",
    value_and_grad_no_outputs => "returned no outputs",
    others_no_outputs => "Ok: vjp, jvp, vmap, compile and custom_function",
    conv_groups_0 => "groups must be at least 1, got 0",
    sort_empty_axis => "Ok: sort [3, 0], argsort [3, 0]",
    cumsum_empty => "Ok: 4 empty scans",
    npy_cut_before_data_after_load => "Err: eval: [mlx_io_reader] unable to read 16384 bytes (read 0 instead) in FILE / derived: 5 fail / restored: reloaded sum 8386560",
    npy_cut_inside_data_after_load => "Err: eval: [mlx_io_reader] unable to read 16384 bytes (read 15384 instead) in FILE / derived: 5 fail / restored: reloaded sum 8386560",
    safetensors_cut_before_data_after_load => "Err: eval: [mlx_io_reader] unable to read 16384 bytes (read 0 instead) in FILE / derived: 5 fail / restored: reloaded sum 8386560",
    safetensors_cut_inside_data_after_load => "Err: eval: [mlx_io_reader] unable to read 16384 bytes (read 15384 instead) in FILE / derived: 5 fail / restored: reloaded sum 8386560",
    inv_singular_stays_failed => "Err: eval: [Inverse::eval_cpu] LU factorization failed with error code 1 / derived: 5 fail",
}

/// A GGUF file the fuzzer found that crashed MLX 0.32.2's GGUF reader (gguflib): it holds a
/// float64 metadata value.
#[test]
fn gguf_fuzz_crash() {
    in_child(
        "gguf_fuzz_crash",
        "holds float64 metadata, which MLX 0.32.2's GGUF reader cannot read safely",
    );
}
