//! Raw-FFI smoke test: the native library loads, reports the pinned version, and computes.

use std::ffi::CStr;

use mlx_sys::*;

/// Reads an `mlx_string` into a Rust `String` and frees it.
///
/// # Safety
/// `s` must be a live string returned by mlx-c.
unsafe fn take_string(s: mlx_string) -> String {
    // SAFETY: the caller passes a live string; its data is NUL-terminated while it lives.
    let text = unsafe { CStr::from_ptr(mlx_string_data(s)) }.to_string_lossy().into_owned();
    // SAFETY: `s` is live and freed exactly once here.
    assert_eq!(unsafe { mlx_string_free(s) }, 0);
    text
}

#[test]
fn reports_the_pinned_mlx_version() {
    // SAFETY: a fresh string is filled by mlx_version and read once.
    let version = unsafe {
        let mut s = mlx_string_new();
        assert_eq!(mlx_version(&mut s), 0);
        take_string(s)
    };
    assert_eq!(version, MLX_VERSION);
    assert_eq!(version, "0.32.2");
}

#[test]
fn adds_and_multiplies_on_the_default_device() {
    let a_data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b_data = [10.0f32, 20.0, 30.0, 40.0, 50.0, 60.0];
    let shape = [2i32, 3];
    // SAFETY: every handle is created here, used while alive, and freed once; data pointers are
    // read only after evaluation and only for the array's element count and dtype.
    unsafe {
        let mut device = mlx_device_new();
        assert_eq!(mlx_get_default_device(&mut device), 0);
        let mut device_name = mlx_string_new();
        assert_eq!(mlx_device_tostring(&mut device_name, device), 0);
        let device_name = take_string(device_name);
        let mut device_type: mlx_device_type = MLX_CPU;
        assert_eq!(mlx_device_get_type(&mut device_type, device), 0);
        let expected = if BACKEND == "cpu" { MLX_CPU } else { MLX_GPU };
        assert_eq!(device_type, expected, "default device is {device_name}");
        println!("default device: {device_name}");

        let mut stream = mlx_stream_new();
        assert_eq!(mlx_get_default_stream(&mut stream, device), 0);
        let a = mlx_array_new_data(a_data.as_ptr().cast(), shape.as_ptr(), 2, MLX_FLOAT32);
        let b = mlx_array_new_data(b_data.as_ptr().cast(), shape.as_ptr(), 2, MLX_FLOAT32);
        let mut sum = mlx_array_new();
        assert_eq!(mlx_add(&mut sum, a, b, stream), 0);
        let mut product = mlx_array_new();
        assert_eq!(mlx_multiply(&mut product, sum, a, stream), 0);
        assert_eq!(mlx_array_eval(product), 0);

        assert_eq!(mlx_array_dtype(product), MLX_FLOAT32);
        assert_eq!(mlx_array_ndim(product), 2);
        assert_eq!(mlx_array_size(product), 6);
        let data = mlx_array_data_float32(product);
        assert!(!data.is_null());
        let values = std::slice::from_raw_parts(data, 6);
        let expected: Vec<f32> = a_data.iter().zip(&b_data).map(|(a, b)| (a + b) * a).collect();
        assert_eq!(values, expected.as_slice());

        for array in [a, b, sum, product] {
            assert_eq!(mlx_array_free(array), 0);
        }
        assert_eq!(mlx_stream_free(stream), 0);
        assert_eq!(mlx_device_free(device), 0);
    }
}
