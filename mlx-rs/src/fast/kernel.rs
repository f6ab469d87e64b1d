//! Custom GPU kernels written in CUDA or Metal source, as in `mlx.core.fast.cuda_kernel` and
//! `mlx.core.fast.metal_kernel`.
//!
//! A [`Kernel`] is built once from its source and the names of its inputs and outputs, then
//! applied to arrays with a [`KernelLaunch`] (output shapes and dtypes, grid, thread group,
//! template arguments). MLX generates the kernel signature from the names: the source is only the
//! body, and each input `x` is visible as `x` plus `x_shape`, `x_strides`, `x_ndim` when the body
//! uses them.
//!
//! Building a kernel for a backend the loaded MLX lacks (CUDA on a CPU or Metal build, Metal
//! off macOS) returns an [`ErrorKind::Unsupported`](crate::ErrorKind) error.

use std::ffi::CString;

use mlx_sys as sys;

use crate::error::{Error, ErrorKind, Result};
use crate::vector::{VectorArray, VectorString};
use crate::{Array, Dtype, Stream, ffi};

/// The GPU language of a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelBackend {
    /// CUDA C++ (NVIDIA GPUs).
    Cuda,
    /// Metal Shading Language (Apple GPUs).
    Metal,
}

impl KernelBackend {
    /// True when the loaded MLX can run kernels of this backend.
    pub fn is_available(self) -> bool {
        match self {
            KernelBackend::Cuda => ffi::cuda_available(),
            KernelBackend::Metal => ffi::metal_available(),
        }
    }
}

/// What a kernel is made of.
#[derive(Clone, Debug, Default)]
pub struct KernelSource {
    /// The kernel's name (also its cache key inside MLX).
    pub name: String,
    /// Names of the input arrays, in the order they are passed to [`Kernel::apply`].
    pub input_names: Vec<String>,
    /// Names of the output arrays, in the order of [`KernelLaunch::outputs`].
    pub output_names: Vec<String>,
    /// The body of the kernel.
    pub source: String,
    /// Code placed before the kernel (helpers, includes).
    pub header: String,
    /// Copy inputs to row-contiguous layout before the launch (default `true`).
    pub ensure_row_contiguous: bool,
    /// CUDA only: bytes of dynamic shared memory.
    pub shared_memory: i32,
    /// Metal only: declare outputs as `device atomic<T>*`.
    pub atomic_outputs: bool,
}

impl KernelSource {
    /// A kernel named `name` with the given input and output names and body.
    pub fn new(name: &str, input_names: &[&str], output_names: &[&str], source: &str) -> Self {
        KernelSource {
            name: name.to_owned(),
            input_names: input_names.iter().map(|s| (*s).to_owned()).collect(),
            output_names: output_names.iter().map(|s| (*s).to_owned()).collect(),
            source: source.to_owned(),
            header: String::new(),
            ensure_row_contiguous: true,
            shared_memory: 0,
            atomic_outputs: false,
        }
    }
}

/// A template argument of a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateArg {
    /// An integer constant.
    Int(i32),
    /// A boolean constant.
    Bool(bool),
    /// A type (`float`, `half`, ...).
    Dtype(Dtype),
}

/// How one application of a kernel is launched.
#[derive(Clone, Debug)]
pub struct KernelLaunch {
    /// Shape and dtype of each output, in the order of [`KernelSource::output_names`].
    pub outputs: Vec<(Vec<i32>, Dtype)>,
    /// Total threads per dimension (not blocks), as in MLX.
    pub grid: (i32, i32, i32),
    /// Threads per group (block) per dimension.
    pub thread_group: (i32, i32, i32),
    /// Value every output is filled with before the launch; `None` leaves them uninitialised.
    pub init_value: Option<f32>,
    /// Template arguments by name.
    pub template_args: Vec<(String, TemplateArg)>,
    /// Print the generated source when the kernel is built.
    pub verbose: bool,
}

impl KernelLaunch {
    /// A launch of `grid` threads in groups of `thread_group`, with the given outputs.
    pub fn new(
        outputs: Vec<(Vec<i32>, Dtype)>,
        grid: (i32, i32, i32),
        thread_group: (i32, i32, i32),
    ) -> KernelLaunch {
        KernelLaunch {
            outputs,
            grid,
            thread_group,
            init_value: None,
            template_args: Vec::new(),
            verbose: false,
        }
    }

    fn validate(&self, kernel: &Kernel) -> Result<()> {
        if self.outputs.len() != kernel.output_count {
            return Err(Error::invalid(
                "kernel_apply",
                format!(
                    "kernel {} has {} outputs but the launch describes {}",
                    kernel.name,
                    kernel.output_count,
                    self.outputs.len()
                ),
            ));
        }
        let dims = [self.grid, self.thread_group];
        if dims.iter().any(|&(x, y, z)| x <= 0 || y <= 0 || z <= 0) {
            return Err(Error::invalid(
                "kernel_apply",
                format!(
                    "grid {:?} and thread group {:?} must be positive",
                    self.grid, self.thread_group
                ),
            ));
        }
        for (shape, _) in &self.outputs {
            crate::array::element_count("kernel_apply", shape)?;
        }
        Ok(())
    }
}

enum Handle {
    Cuda(sys::mlx_fast_cuda_kernel),
    Metal(sys::mlx_fast_metal_kernel),
}

/// A compiled-on-first-use custom kernel.
pub struct Kernel {
    handle: Handle,
    name: String,
    input_count: usize,
    output_count: usize,
}

impl Kernel {
    /// Builds a kernel for `backend` from `source`.
    pub fn new(backend: KernelBackend, source: &KernelSource) -> Result<Kernel> {
        const OP: &str = "kernel_new";
        if source.output_names.is_empty() {
            return Err(Error::invalid(OP, "a kernel needs at least one output"));
        }
        let name = ffi::c_string(OP, &source.name)?;
        let body = ffi::c_string(OP, &source.source)?;
        let header = ffi::c_string(OP, &source.header)?;
        let inputs = VectorString::from_strs(OP, &source.input_names)?;
        let outputs = VectorString::from_strs(OP, &source.output_names)?;
        if !backend.is_available() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                OP,
                format!(
                    "the loaded MLX has no {backend:?} backend, so {backend:?} kernels cannot run"
                ),
            ));
        }
        let handle = match backend {
            KernelBackend::Cuda => {
                ffi::handle_out(
                    OP,
                    // SAFETY: all strings are NUL-terminated and live; mlx-c copies them.
                    || unsafe {
                        sys::mlx_fast_cuda_kernel_new(
                            name.as_ptr(),
                            inputs.raw(),
                            outputs.raw(),
                            body.as_ptr(),
                            header.as_ptr(),
                            source.ensure_row_contiguous,
                            source.shared_memory,
                        )
                    },
                    Handle::Cuda,
                )?
            }
            KernelBackend::Metal => {
                ffi::handle_out(
                    OP,
                    // SAFETY: as above.
                    || unsafe {
                        sys::mlx_fast_metal_kernel_new(
                            name.as_ptr(),
                            inputs.raw(),
                            outputs.raw(),
                            body.as_ptr(),
                            header.as_ptr(),
                            source.ensure_row_contiguous,
                            source.atomic_outputs,
                        )
                    },
                    Handle::Metal,
                )?
            }
        };
        Ok(Kernel {
            handle,
            name: source.name.clone(),
            input_count: source.input_names.len(),
            output_count: source.output_names.len(),
        })
    }

    /// Runs the kernel on `inputs` (in the order of [`KernelSource::input_names`]) on the thread's
    /// default stream.
    pub fn apply<A: AsRef<Array>>(
        &self,
        inputs: &[A],
        launch: &KernelLaunch,
    ) -> Result<Vec<Array>> {
        Stream::with_thread_default(|stream| self.apply_device(inputs, launch, stream))
    }

    /// Runs the kernel on `inputs` on `stream`.
    pub fn apply_device<A: AsRef<Array>>(
        &self,
        inputs: &[A],
        launch: &KernelLaunch,
        stream: &Stream,
    ) -> Result<Vec<Array>> {
        const OP: &str = "kernel_apply";
        if inputs.len() != self.input_count {
            return Err(Error::invalid(
                OP,
                format!(
                    "kernel {} takes {} inputs but {} were given",
                    self.name,
                    self.input_count,
                    inputs.len()
                ),
            ));
        }
        launch.validate(self)?;
        let template_names = launch
            .template_args
            .iter()
            .map(|(name, _)| ffi::c_string(OP, name))
            .collect::<Result<Vec<CString>>>()?;
        let inputs = VectorArray::from_arrays(inputs);
        match &self.handle {
            Handle::Cuda(kernel) => {
                let config = CudaConfig::new();
                config.fill(launch, &template_names)?;
                ffi::arrays_out(OP, |out| {
                    // SAFETY: live handles; the outputs are owned by `arrays_out`.
                    unsafe {
                        sys::mlx_fast_cuda_kernel_apply(
                            out,
                            *kernel,
                            inputs.raw(),
                            config.0,
                            stream.raw(),
                        )
                    }
                })
            }
            Handle::Metal(kernel) => {
                let config = MetalConfig::new();
                config.fill(launch, &template_names)?;
                ffi::arrays_out(OP, |out| {
                    // SAFETY: live handles; the outputs are owned by `arrays_out`.
                    unsafe {
                        sys::mlx_fast_metal_kernel_apply(
                            out,
                            *kernel,
                            inputs.raw(),
                            config.0,
                            stream.raw(),
                        )
                    }
                })
            }
        }
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.handle {
            Handle::Cuda(_) => KernelBackend::Cuda,
            Handle::Metal(_) => KernelBackend::Metal,
        };
        f.debug_struct("Kernel")
            .field("name", &self.name)
            .field("backend", &backend)
            .field("inputs", &self.input_count)
            .field("outputs", &self.output_count)
            .finish()
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe {
            match self.handle {
                Handle::Cuda(raw) => sys::mlx_fast_cuda_kernel_free(raw),
                Handle::Metal(raw) => sys::mlx_fast_metal_kernel_free(raw),
            }
        });
    }
}

/// Writes a launch into one backend's config object. The two backends' config APIs are
/// identical apart from their names, so one macro writes both wrappers.
macro_rules! config_type {
    ($name:ident, $raw:ty, $new:ident, $free:ident, $output:ident, $grid:ident, $group:ident,
     $init:ident, $verbose:ident, $t_dtype:ident, $t_int:ident, $t_bool:ident) => {
        struct $name($raw);

        impl $name {
            fn new() -> $name {
                // SAFETY: no preconditions; freed in `Drop`.
                $name(ffi::call(|| unsafe { sys::$new() }))
            }

            fn fill(&self, launch: &KernelLaunch, template_names: &[CString]) -> Result<()> {
                const OP: &str = "kernel_apply";
                for (shape, dtype) in &launch.outputs {
                    // SAFETY: the config is live; `shape` holds `len` sizes (checked).
                    ffi::status(OP, || unsafe {
                        sys::$output(self.0, shape.as_ptr(), shape.len(), dtype.to_raw())
                    })?;
                }
                let (gx, gy, gz) = launch.grid;
                // SAFETY: the config is live.
                ffi::status(OP, || unsafe { sys::$grid(self.0, gx, gy, gz) })?;
                let (tx, ty, tz) = launch.thread_group;
                // SAFETY: the config is live.
                ffi::status(OP, || unsafe { sys::$group(self.0, tx, ty, tz) })?;
                if let Some(value) = launch.init_value {
                    // SAFETY: the config is live.
                    ffi::status(OP, || unsafe { sys::$init(self.0, value) })?;
                }
                // SAFETY: the config is live.
                ffi::status(OP, || unsafe { sys::$verbose(self.0, launch.verbose) })?;
                for ((_, arg), name) in launch.template_args.iter().zip(template_names) {
                    // SAFETY: the config is live and `name` is NUL-terminated; mlx-c copies it.
                    ffi::status(OP, || unsafe {
                        match *arg {
                            TemplateArg::Int(v) => sys::$t_int(self.0, name.as_ptr(), v),
                            TemplateArg::Bool(v) => sys::$t_bool(self.0, name.as_ptr(), v),
                            TemplateArg::Dtype(d) => {
                                sys::$t_dtype(self.0, name.as_ptr(), d.to_raw())
                            }
                        }
                    })?;
                }
                Ok(())
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: owned handle, freed once.
                ffi::free(|| unsafe { sys::$free(self.0) });
            }
        }
    };
}

config_type!(
    CudaConfig,
    sys::mlx_fast_cuda_kernel_config,
    mlx_fast_cuda_kernel_config_new,
    mlx_fast_cuda_kernel_config_free,
    mlx_fast_cuda_kernel_config_add_output_arg,
    mlx_fast_cuda_kernel_config_set_grid,
    mlx_fast_cuda_kernel_config_set_thread_group,
    mlx_fast_cuda_kernel_config_set_init_value,
    mlx_fast_cuda_kernel_config_set_verbose,
    mlx_fast_cuda_kernel_config_add_template_arg_dtype,
    mlx_fast_cuda_kernel_config_add_template_arg_int,
    mlx_fast_cuda_kernel_config_add_template_arg_bool
);

config_type!(
    MetalConfig,
    sys::mlx_fast_metal_kernel_config,
    mlx_fast_metal_kernel_config_new,
    mlx_fast_metal_kernel_config_free,
    mlx_fast_metal_kernel_config_add_output_arg,
    mlx_fast_metal_kernel_config_set_grid,
    mlx_fast_metal_kernel_config_set_thread_group,
    mlx_fast_metal_kernel_config_set_init_value,
    mlx_fast_metal_kernel_config_set_verbose,
    mlx_fast_metal_kernel_config_add_template_arg_dtype,
    mlx_fast_metal_kernel_config_add_template_arg_int,
    mlx_fast_metal_kernel_config_add_template_arg_bool
);
