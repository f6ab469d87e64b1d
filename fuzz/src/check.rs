//! What every array that comes back `Ok` must satisfy.

use half::{bf16, f16};
use mlx_rs::{Array, ArrayElement, Dtype, Index};
use num_complex::Complex32;

/// Once per process: no buffer cache in MLX, so that the fuzzer's RSS measures live arrays (MLX
/// keeps freed buffers for reuse, and the growing cache looked like a leak to libFuzzer's RSS
/// limit).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = mlx_rs::memory::set_cache_limit(0);
    });
}

/// Evaluates `a` and, when that succeeds, checks that it is well formed: its size is the
/// product of its shape, its byte size matches its dtype, all its elements read back in its
/// own dtype and as float32, and its last element reads as a scalar. An `Err` from the
/// evaluation is an accepted outcome (the input was bad) and returns `false`; a failure after a
/// successful evaluation panics.
pub fn check_array(a: &Array) -> bool {
    if a.eval().is_err() {
        return false;
    }
    let shape = a.shape().to_vec();
    assert!(shape.iter().all(|&d| d >= 0), "negative dimension in {shape:?}");
    let elements: u64 = shape.iter().map(|&d| d as u64).product();
    assert_eq!(a.size() as u64, elements, "size of {shape:?}");
    assert_eq!(a.nbytes(), a.size() * a.dtype().size(), "byte size of {shape:?} {:?}", a.dtype());
    assert_eq!(a.itemsize(), a.dtype().size());
    let read = match a.dtype() {
        Dtype::Bool => read::<bool>(a),
        Dtype::Uint8 => read::<u8>(a),
        Dtype::Uint16 => read::<u16>(a),
        Dtype::Uint32 => read::<u32>(a),
        Dtype::Uint64 => read::<u64>(a),
        Dtype::Int8 => read::<i8>(a),
        Dtype::Int16 => read::<i16>(a),
        Dtype::Int32 => read::<i32>(a),
        Dtype::Int64 => read::<i64>(a),
        Dtype::Float16 => read::<f16>(a),
        Dtype::Float32 => read::<f32>(a),
        Dtype::Float64 => read::<f64>(a),
        Dtype::Bfloat16 => read::<bf16>(a),
        Dtype::Complex64 => read::<Complex32>(a),
    };
    assert_eq!(read, a.size(), "elements read from {shape:?} {:?}", a.dtype());
    if a.dtype() != Dtype::Complex64 {
        let as_f32 = a.astype(Dtype::Float32).and_then(|f| f.to_vec::<f32>());
        let as_f32 = as_f32.unwrap_or_else(|e| panic!("{shape:?} as float32: {e}"));
        assert_eq!(as_f32.len(), a.size());
    }
    if a.size() > 0 {
        let last: Vec<Index> = shape.iter().map(|&d| Index::from(d - 1)).collect();
        let element = a.index(last).and_then(|e| e.astype(Dtype::Float32)?.item::<f32>());
        if a.dtype() != Dtype::Complex64 {
            element.unwrap_or_else(|e| panic!("last element of {shape:?}: {e}"));
        }
    }
    true
}

/// Reads all elements of `a` as `T` (its dtype) and returns how many there were.
fn read<T: ArrayElement>(a: &Array) -> usize {
    let values = a.to_vec::<T>().unwrap_or_else(|e| panic!("reading {:?}: {e}", a.shape()));
    values.len()
}
