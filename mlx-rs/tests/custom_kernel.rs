//! Custom kernels: a fused SwiGLU on CUDA (checked against the unfused math), and clear errors
//! where the backend is missing.

mod common;

use mlx_rs::fast::kernel::{Kernel, KernelBackend, KernelLaunch, KernelSource, TemplateArg};
use mlx_rs::{Array, Dtype, ErrorKind};

const SWIGLU_CUDA: &str = r#"
    auto elem = cooperative_groups::this_grid().thread_rank();
    if (elem < N) {
        float x = static_cast<float>(a[elem]);
        float y = static_cast<float>(b[elem]);
        out[elem] = static_cast<T>(x / (1.0f + expf(-x)) * y);
    }
"#;

fn swiglu_source() -> KernelSource {
    KernelSource::new("rs_test_swiglu", &["a", "b"], &["out"], SWIGLU_CUDA)
}

fn launch(n: i32, dtype: Dtype) -> KernelLaunch {
    let mut launch = KernelLaunch::new(vec![(vec![n], dtype)], (n, 1, 1), (256, 1, 1));
    launch.template_args =
        vec![("T".to_owned(), TemplateArg::Dtype(dtype)), ("N".to_owned(), TemplateArg::Int(n))];
    launch
}

#[test]
fn fused_swiglu_matches_the_unfused_math_on_cuda() {
    if !KernelBackend::Cuda.is_available() {
        let err = Kernel::new(KernelBackend::Cuda, &swiglu_source()).expect_err("no CUDA here");
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("Cuda"), "{err}");
        return;
    }
    let kernel = Kernel::new(KernelBackend::Cuda, &swiglu_source()).unwrap();
    let n = 1000;
    let a_data: Vec<f32> = (0..n).map(|i| i as f32 * 0.01 - 5.0).collect();
    let b_data: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    let a = Array::from_slice(&a_data, &[n]).unwrap();
    let b = Array::from_slice(&b_data, &[n]).unwrap();
    let out = kernel.apply(&[&a, &b], &launch(n, Dtype::Float32)).unwrap();
    assert_eq!(out.len(), 1);
    let got = out[0].to_vec::<f32>().unwrap();
    let want: Vec<f64> =
        a_data.iter().zip(&b_data).map(|(&x, &y)| f64::from(x / (1.0 + (-x).exp()) * y)).collect();
    common::assert_close(&got.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), &want, 1e-5, 1e-6);
}

#[test]
fn metal_kernels_need_metal() {
    let source = KernelSource::new("rs_test_copy", &["inp"], &["out"], "out[0] = inp[0];");
    match Kernel::new(KernelBackend::Metal, &source) {
        Ok(_) => assert!(KernelBackend::Metal.is_available()),
        Err(err) => {
            assert!(!KernelBackend::Metal.is_available());
            assert_eq!(err.kind(), ErrorKind::Unsupported);
        }
    }
    assert_eq!(mlx_rs::metal::is_available(), KernelBackend::Metal.is_available());
    assert_eq!(mlx_rs::cuda::is_available(), KernelBackend::Cuda.is_available());
}

#[test]
fn bad_launches_are_errors() {
    let backend = if KernelBackend::Cuda.is_available() {
        KernelBackend::Cuda
    } else if KernelBackend::Metal.is_available() {
        KernelBackend::Metal
    } else {
        // Without a GPU backend, building is already the error (tested above); the checks below
        // need a kernel object.
        return;
    };
    let kernel = Kernel::new(backend, &swiglu_source()).unwrap();
    let a = Array::from_slice(&[1.0f32; 4], &[4]).unwrap();
    common::assert_err(kernel.apply(&[&a], &launch(4, Dtype::Float32)), &["2 inputs", "1"]);
    let mut no_outputs = launch(4, Dtype::Float32);
    no_outputs.outputs.clear();
    common::assert_err(kernel.apply(&[&a, &a], &no_outputs), &["1 outputs", "0"]);
    let mut zero_grid = launch(4, Dtype::Float32);
    zero_grid.grid = (0, 1, 1);
    common::assert_err(kernel.apply(&[&a, &a], &zero_grid), &["positive"]);
    let mut negative = launch(4, Dtype::Float32);
    negative.outputs[0].0 = vec![-4];
    common::assert_err(kernel.apply(&[&a, &a], &negative), &["negative"]);
}

#[test]
fn kernel_sources_are_checked_before_the_backend() {
    for backend in [KernelBackend::Cuda, KernelBackend::Metal] {
        let mut source = swiglu_source();
        source.name = "bad\0name".to_owned();
        common::assert_err(Kernel::new(backend, &source), &["NUL"]);
        let empty = KernelSource::new("rs_test_empty", &["a"], &[], "");
        common::assert_err(Kernel::new(backend, &empty), &["at least one output"]);
    }
}
