//! Array construction, element access, dtypes, devices, streams and errors.

mod common;

use half::{bf16, f16};
use mlx_rs::{Array, ArrayElement, Device, DeviceType, Dtype, ErrorKind, Stream};
use num_complex::Complex32;

fn round_trip<T: ArrayElement + PartialEq + std::fmt::Debug>(values: &[T]) {
    let a = Array::from_slice(values, &[values.len() as i32]).unwrap();
    assert_eq!(a.dtype(), T::DTYPE);
    assert_eq!(a.itemsize(), T::DTYPE.size());
    assert_eq!(a.nbytes(), values.len() * T::DTYPE.size());
    assert_eq!(a.to_vec::<T>().unwrap(), values);
    assert_eq!(a.as_slice::<T>().unwrap(), values);
    let s = Array::scalar(values[0]);
    assert_eq!(s.ndim(), 0);
    assert_eq!(s.item::<T>().unwrap(), values[0]);
}

#[test]
fn every_dtype_round_trips() {
    round_trip(&[true, false, true]);
    round_trip(&[0u8, 7, 255]);
    round_trip(&[0u16, 7, u16::MAX]);
    round_trip(&[0u32, 7, u32::MAX]);
    round_trip(&[0u64, 7, u64::MAX]);
    round_trip(&[i8::MIN, -1, i8::MAX]);
    round_trip(&[i16::MIN, -1, i16::MAX]);
    round_trip(&[i32::MIN, -1, i32::MAX]);
    round_trip(&[i64::MIN, -1, i64::MAX]);
    round_trip(&[f16::from_f32(-1.5), f16::from_f32(0.25), f16::MAX]);
    round_trip(&[bf16::from_f32(-1.5), bf16::from_f32(0.25), bf16::MAX]);
    round_trip(&[-1.5f32, 0.25, f32::MAX]);
    round_trip(&[-1.5f64, 0.25, f64::MAX]);
    round_trip(&[Complex32::new(1.0, -2.0), Complex32::new(0.5, 0.25)]);
}

#[test]
fn shape_and_metadata() {
    let a = Array::from_slice(&(0..24).collect::<Vec<i32>>(), &[2, 3, 4]).unwrap();
    assert_eq!(a.shape(), &[2, 3, 4]);
    assert_eq!(a.ndim(), 3);
    assert_eq!(a.size(), 24);
    assert_eq!(a.dim(-1).unwrap(), 4);
    assert_eq!(a.dim(0).unwrap(), 2);
    common::assert_err(a.dim(3), &["axis 3", "3 dimensions"]);
    common::assert_err(a.dim(-4), &["axis -4", "valid axes are -3 to 2"]);
    a.eval().unwrap();
    assert_eq!(a.strides(), &[12, 4, 1]);
    let empty = Array::from_slice::<f32>(&[], &[0, 3]).unwrap();
    assert_eq!(empty.size(), 0);
    assert_eq!(empty.to_vec::<f32>().unwrap(), Vec::<f32>::new());
    assert_eq!(empty.as_slice::<f32>().unwrap(), &[] as &[f32]);
}

#[test]
fn construction_errors() {
    common::assert_err(Array::from_slice(&[1.0f32, 2.0, 3.0], &[2, 2]), &["4 elements", "3"]);
    common::assert_err(Array::from_slice(&[1.0f32], &[-1]), &["negative"]);
    common::assert_err(
        Array::from_slice(&[1.0f32], &[i32::MAX, i32::MAX, i32::MAX]),
        &["elements"],
    );
}

#[test]
fn reading_as_the_wrong_type_is_an_error() {
    let a = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    let err = common::assert_err(a.to_vec::<f64>(), &["float32", "float64"]);
    assert_eq!(err.kind(), ErrorKind::DtypeMismatch);
    assert_eq!(err.op(), "to_vec");
    common::assert_err(a.as_slice::<i32>(), &["float32", "int32"]);
    common::assert_err(a.item::<f32>(), &["one element"]);
    common::assert_err(Array::scalar(1u8).item::<i8>(), &["uint8", "int8"]);
}

#[test]
fn clone_shares_and_deep_copy_copies() {
    let a = Array::from_slice(&[1i32, 2, 3], &[3]).unwrap();
    let shared = a.clone();
    let copy = a.deep_copy().unwrap();
    drop(a);
    assert_eq!(shared.to_vec::<i32>().unwrap(), [1, 2, 3]);
    assert_eq!(copy.to_vec::<i32>().unwrap(), [1, 2, 3]);
}

#[test]
fn display_looks_like_python() {
    let a = Array::from_slice(&[1i32, 2, 3], &[3]).unwrap();
    assert_eq!(a.to_string(), "array([1, 2, 3], dtype=int32)");
    assert_eq!(format!("{:?}", Array::scalar(true)), "array(true, dtype=bool)");
    assert_eq!(Dtype::Bfloat16.to_string(), "bfloat16");
}

#[test]
fn dtype_properties() {
    assert_eq!(Dtype::ALL.len(), 14);
    for d in Dtype::ALL {
        let kinds = [d.is_floating(), d.is_integer(), d.is_complex(), d == Dtype::Bool];
        assert_eq!(kinds.iter().filter(|k| **k).count(), 1, "{d}");
    }
    assert_eq!(Dtype::Complex64.size(), 8);
    assert_eq!(Dtype::Float16.size(), 2);
}

#[test]
fn version_is_the_pinned_one() {
    assert_eq!(mlx_rs::version().unwrap(), "0.32.2");
}

#[test]
fn devices_and_streams() {
    let default = Device::default_device().unwrap();
    let cpu = Device::cpu();
    assert!(cpu.is_available());
    assert_eq!(cpu.device_type(), DeviceType::Cpu);
    assert_eq!(cpu.index(), 0);
    assert_eq!(cpu.to_string(), "Device(cpu, 0)");
    assert_eq!(cpu.clone(), cpu);
    if default.device_type() == DeviceType::Cpu {
        assert!(!Device::gpu().is_available());
        common::assert_err(Device::gpu().set_default(), &["not available"]);
    }
    let stream = Stream::new(&cpu).unwrap();
    assert_eq!(stream.device().unwrap(), cpu);
    let a = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    let b = mlx_rs::ops::add_device(&a, &a, &stream).unwrap();
    stream.synchronize().unwrap();
    assert_eq!(b.to_vec::<f32>().unwrap(), [2.0, 4.0]);
    let thread_default = Stream::thread_default().unwrap();
    assert_eq!(thread_default.device().unwrap(), default);
}

#[test]
fn devices_can_be_shared_across_threads() {
    let cpu = std::sync::Arc::new(Device::cpu());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let cpu = cpu.clone();
            std::thread::spawn(move || {
                let stream = Stream::new(&cpu).unwrap();
                let a = Array::from_slice(&[i as f32], &[1]).unwrap();
                mlx_rs::ops::add_device(&a, &a, &stream).unwrap().item::<f32>().unwrap()
            })
        })
        .collect();
    let sums: Vec<f32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(sums, [0.0, 2.0, 4.0, 6.0]);
}

#[test]
fn errors_stay_on_their_thread() {
    let a = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    let b = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    let err = common::assert_err(mlx_rs::ops::add(&a, &b), &["add", "broadcast"]);
    assert_eq!(err.kind(), ErrorKind::Mlx);
    // A failure on another thread leaves this thread's next error message alone.
    std::thread::spawn(|| {
        let x = Array::from_slice(&[1.0f32; 4], &[4]).unwrap();
        let y = Array::from_slice(&[1.0f32; 5], &[5]).unwrap();
        assert!(mlx_rs::ops::add(&x, &y).is_err());
    })
    .join()
    .unwrap();
    let c = mlx_rs::ops::add(&a, &a).unwrap();
    assert_eq!(c.to_vec::<f32>().unwrap(), [2.0, 4.0]);
}

#[test]
fn owned_vectors_become_arrays() {
    let a = Array::from_vec_owned(vec![1.5f32, -2.0, 3.25, 4.0, 5.0, 6.0], &[3, 2]).unwrap();
    assert_eq!(a.shape(), &[3, 2]);
    let doubled = mlx_rs::ops::add(&a, &a).unwrap();
    drop(a);
    assert_eq!(doubled.to_vec::<f32>().unwrap(), [3.0, -4.0, 6.5, 8.0, 10.0, 12.0]);
    let ints = Array::from_vec_owned((0..1000i64).collect(), &[10, 100]).unwrap();
    assert_eq!(ints.to_vec::<i64>().unwrap()[999], 999);
    assert_eq!(Array::from_vec_owned(Vec::<u8>::new(), &[0]).unwrap().size(), 0);
    common::assert_err(Array::from_vec_owned(vec![1u8, 2], &[3]), &["3 elements", "2"]);
}

#[test]
fn scoped_defaults_restore_the_previous_ones() {
    let before = Device::default_device().unwrap();
    {
        let _cpu = Device::cpu().scoped_default().unwrap();
        assert_eq!(Device::default_device().unwrap(), Device::cpu());
    }
    assert_eq!(Device::default_device().unwrap(), before);

    let cpu = Device::cpu();
    let original = Stream::default_for(&cpu).unwrap().to_string();
    let mine = Stream::new(&cpu).unwrap();
    assert_ne!(mine.to_string(), original);
    {
        let _guard = mine.scoped_default().unwrap();
        assert_eq!(Stream::default_for(&cpu).unwrap().to_string(), mine.to_string());
        let x = Array::from_slice(&[1.0f32], &[1]).unwrap();
        let y = mlx_rs::ops::add_device(&x, &x, &Stream::default_for(&cpu).unwrap()).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), [2.0]);
    }
    assert_eq!(Stream::default_for(&cpu).unwrap().to_string(), original);
}
