//! Exporting array functions to files and importing them back (`mlx.core.export_function`,
//! `mlx.core.import_function`, `mlx.core.exporter`).
//!
//! An exported function is a traced graph: it can be imported and run by any MLX front end
//! (Python, C++, Swift, Rust) without the code that built it.

use std::collections::HashMap;
use std::ffi::{CString, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use mlx_sys as sys;

use crate::error::{Error, Result};
use crate::map::{MapStringToArray, read_borrowed_array_map};
use crate::transforms::closure::{Closure, arrays_of, call_with_closures, guard, write_arrays};
use crate::vector::VectorArray;
use crate::{Array, ffi};

fn path_c_string(op: &'static str, path: &Path) -> Result<CString> {
    let text = path
        .to_str()
        .ok_or_else(|| Error::invalid(op, format!("{} is not valid UTF-8", path.display())))?;
    ffi::c_string(op, text)
}

/// Traces `f` at `example_args` and writes the graph to `path`; the imported function accepts
/// inputs of the traced shapes (see [`export_function_shapeless`] for any shape).
///
/// ```
/// use mlx_rs::{Array, export, ops};
/// let path = std::env::temp_dir().join(format!("mlx-rs-doc-{}.mlxfn", std::process::id()));
/// let double = |x: &[Array]| Ok(vec![ops::add(&x[0], &x[0])?]);
/// export::export_function(&path, double, &[Array::scalar(1.0f32)])?;
/// let imported = export::ImportedFunction::load(&path)?;
/// assert_eq!(imported.apply(&[Array::scalar(21.0f32)])?[0].item::<f32>()?, 42.0);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn export_function(
    path: impl AsRef<Path>,
    f: impl FnMut(&[Array]) -> Result<Vec<Array>>,
    example_args: &[Array],
) -> Result<()> {
    export_with(path.as_ref(), f, example_args, false)
}

/// [`export_function`] whose imported function accepts inputs of any shape.
///
/// # Safety
/// MLX 0.32.2 reuses the trace for inputs of other shapes, including the index bounds and slice
/// sizes it computed from the traced shapes. If `f` gathers, takes, scatters or slices along
/// axes whose size changes between calls, running the imported function on other shapes reads
/// or writes outside its arrays. The caller guarantees that `f` has no such operation on axes
/// that change size (element-wise, reduction and matmul-style functions are fine).
pub unsafe fn export_function_shapeless(
    path: impl AsRef<Path>,
    f: impl FnMut(&[Array]) -> Result<Vec<Array>>,
    example_args: &[Array],
) -> Result<()> {
    export_with(path.as_ref(), f, example_args, true)
}

fn export_with(
    path: &Path,
    mut f: impl FnMut(&[Array]) -> Result<Vec<Array>>,
    example_args: &[Array],
    shapeless: bool,
) -> Result<()> {
    const OP: &str = "export_function";
    let file = path_c_string(OP, path)?;
    let f: &mut crate::transforms::closure::ArrayFn<'_> = &mut f;
    let closure = Closure::borrowed(f)?;
    let args = VectorArray::from_arrays(example_args);
    call_with_closures(OP, || {
        // SAFETY: live handles; `file` is NUL-terminated and outlives the call.
        ffi::status(OP, || unsafe {
            sys::mlx_export_function(file.as_ptr(), closure.raw(), args.raw(), shapeless)
        })
    })
}

/// A function of positional and keyword arrays.
type KwargsFn = dyn FnMut(&[Array], &HashMap<String, Array>) -> Result<Vec<Array>>;

extern "C" fn kwargs_trampoline(
    out: *mut sys::mlx_vector_array,
    args: sys::mlx_vector_array,
    kwargs: sys::mlx_map_string_to_array,
    payload: *mut c_void,
) -> c_int {
    let done = guard("export_function", || {
        // SAFETY: the payload is the boxed `RefCell` made by `export_function_kwargs`, alive
        // while mlx-c may call it; only shared references to it are made.
        let cell = unsafe { &*payload.cast::<std::cell::RefCell<Box<KwargsFn>>>() };
        let Ok(mut f) = cell.try_borrow_mut() else {
            return Err(Error::invalid("export_function", "a closure cannot call itself"));
        };
        let outputs = f(&arrays_of(args)?, &read_borrowed_array_map("export_function", kwargs)?)?;
        write_arrays(out, &outputs)
    });
    if done.is_some() { 0 } else { 1 }
}

extern "C" fn drop_kwargs_payload(payload: *mut c_void) {
    // SAFETY: the pointer comes from `Box::into_raw` below and mlx-c frees it once; dropping
    // user state must not unwind into C.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: see above.
        drop(unsafe { Box::from_raw(payload.cast::<std::cell::RefCell<Box<KwargsFn>>>()) })
    }));
}

/// [`export_function`] for a function of positional and keyword arrays.
pub fn export_function_kwargs(
    path: impl AsRef<Path>,
    f: impl FnMut(&[Array], &HashMap<String, Array>) -> Result<Vec<Array>> + 'static,
    example_args: &[Array],
    example_kwargs: &HashMap<String, Array>,
) -> Result<()> {
    export_kwargs_with(path.as_ref(), f, example_args, example_kwargs, false)
}

/// [`export_function_kwargs`] whose imported function accepts inputs of any shape.
///
/// # Safety
/// MLX 0.32.2 reuses the trace for inputs of other shapes, including the index bounds and slice
/// sizes it computed from the traced shapes. If `f` gathers, takes, scatters or slices along
/// axes whose size changes between calls, running the imported function on other shapes reads
/// or writes outside its arrays. The caller guarantees that `f` has no such operation on axes
/// that change size (element-wise, reduction and matmul-style functions are fine).
pub unsafe fn export_function_kwargs_shapeless(
    path: impl AsRef<Path>,
    f: impl FnMut(&[Array], &HashMap<String, Array>) -> Result<Vec<Array>> + 'static,
    example_args: &[Array],
    example_kwargs: &HashMap<String, Array>,
) -> Result<()> {
    export_kwargs_with(path.as_ref(), f, example_args, example_kwargs, true)
}

fn export_kwargs_with(
    path: &Path,
    f: impl FnMut(&[Array], &HashMap<String, Array>) -> Result<Vec<Array>> + 'static,
    example_args: &[Array],
    example_kwargs: &HashMap<String, Array>,
    shapeless: bool,
) -> Result<()> {
    const OP: &str = "export_function";
    let file = path_c_string(OP, path)?;
    let boxed: Box<KwargsFn> = Box::new(f);
    let payload = Box::into_raw(Box::new(std::cell::RefCell::new(boxed)));
    let closure = ffi::handle_out(
        OP,
        // SAFETY: the trampoline matches the payload type; mlx-c owns the payload from here and
        // frees it with `drop_kwargs_payload`.
        || unsafe {
            sys::mlx_closure_kwargs_new_func_payload(
                Some(kwargs_trampoline),
                payload.cast(),
                Some(drop_kwargs_payload),
            )
        },
        KwargsClosure,
    )?;
    let args = VectorArray::from_arrays(example_args);
    let kwargs = MapStringToArray::from_map(OP, example_kwargs)?;
    call_with_closures(OP, || {
        // SAFETY: live handles; `file` is NUL-terminated and outlives the call.
        ffi::status(OP, || unsafe {
            sys::mlx_export_function_kwargs(
                file.as_ptr(),
                closure.0,
                args.raw(),
                kwargs.raw(),
                shapeless,
            )
        })
    })
}

/// An owned `mlx_closure_kwargs`.
struct KwargsClosure(sys::mlx_closure_kwargs);

impl Drop for KwargsClosure {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_closure_kwargs_free(self.0) });
    }
}

/// Writes several traces of one function to one file: each [`Exporter::export`] adds the trace
/// at new arguments (other shapes or dtypes), and the imported function picks the matching one.
pub struct Exporter {
    raw: sys::mlx_function_exporter,
}

impl Exporter {
    /// An exporter of `f` writing to `path`; each trace accepts inputs of its shapes.
    pub fn new(
        path: impl AsRef<Path>,
        f: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static,
    ) -> Result<Exporter> {
        Exporter::with(path.as_ref(), f, false)
    }

    /// An exporter whose traces accept inputs of any shape.
    ///
    /// # Safety
    /// MLX 0.32.2 reuses the trace for inputs of other shapes, including the index bounds and slice
    /// sizes it computed from the traced shapes. If `f` gathers, takes, scatters or slices along
    /// axes whose size changes between calls, running the imported function on other shapes reads
    /// or writes outside its arrays. The caller guarantees that `f` has no such operation on axes
    /// that change size (element-wise, reduction and matmul-style functions are fine).
    pub unsafe fn new_shapeless(
        path: impl AsRef<Path>,
        f: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static,
    ) -> Result<Exporter> {
        Exporter::with(path.as_ref(), f, true)
    }

    fn with(
        path: &Path,
        f: impl FnMut(&[Array]) -> Result<Vec<Array>> + 'static,
        shapeless: bool,
    ) -> Result<Exporter> {
        const OP: &str = "exporter";
        let file = path_c_string(OP, path)?;
        let closure = Closure::owned(f)?;
        ffi::handle_out(
            OP,
            // SAFETY: live handles; `file` is NUL-terminated; mlx-c keeps its own closure copy.
            || unsafe { sys::mlx_function_exporter_new(file.as_ptr(), closure.raw(), shapeless) },
            |raw| Exporter { raw },
        )
    }

    /// Traces the function at `args` and appends the trace.
    pub fn export(&self, args: &[Array]) -> Result<()> {
        let args = VectorArray::from_arrays(args);
        call_with_closures("exporter", || {
            // SAFETY: live handles.
            ffi::status("exporter", || unsafe {
                sys::mlx_function_exporter_apply(self.raw, args.raw())
            })
        })
    }

    /// Traces the function at positional `args` and keyword `kwargs`, and appends the trace.
    pub fn export_kwargs(&self, args: &[Array], kwargs: &HashMap<String, Array>) -> Result<()> {
        let args = VectorArray::from_arrays(args);
        let kwargs = MapStringToArray::from_map("exporter", kwargs)?;
        call_with_closures("exporter", || {
            // SAFETY: live handles.
            ffi::status("exporter", || unsafe {
                sys::mlx_function_exporter_apply_kwargs(self.raw, args.raw(), kwargs.raw())
            })
        })
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once (this closes the file).
        ffi::free(|| unsafe { sys::mlx_function_exporter_free(self.raw) });
    }
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter")
    }
}

/// A function read from a file written by [`export_function`] or any MLX front end.
///
/// MLX 0.32 records the stream indices of the exporting process in the graph, and streams belong
/// to the thread that created them: run imported functions on the thread that first used MLX
/// (usually the main thread); elsewhere MLX reports that the stream does not exist (an `Err`).
pub struct ImportedFunction {
    raw: sys::mlx_imported_function,
}

impl ImportedFunction {
    /// Reads the function at `path`. A missing or corrupt file is an error.
    pub fn load(path: impl AsRef<Path>) -> Result<ImportedFunction> {
        const OP: &str = "import_function";
        let file = path_c_string(OP, path.as_ref())?;
        ffi::handle_out(
            OP,
            // SAFETY: `file` is NUL-terminated; mlx-c returns an empty handle on failure.
            || unsafe { sys::mlx_imported_function_new(file.as_ptr()) },
            |raw| ImportedFunction { raw },
        )
    }

    /// Runs the function on positional `args`.
    pub fn apply(&self, args: &[Array]) -> Result<Vec<Array>> {
        let args = VectorArray::from_arrays(args);
        ffi::arrays_out("imported_function", |out| {
            // SAFETY: live handles; the outputs are owned by `arrays_out`.
            unsafe { sys::mlx_imported_function_apply(out, self.raw, args.raw()) }
        })
    }

    /// Runs the function on positional `args` and keyword `kwargs`.
    pub fn apply_kwargs(
        &self,
        args: &[Array],
        kwargs: &HashMap<String, Array>,
    ) -> Result<Vec<Array>> {
        let args = VectorArray::from_arrays(args);
        let kwargs = MapStringToArray::from_map("imported_function", kwargs)?;
        ffi::arrays_out("imported_function", |out| {
            // SAFETY: live handles; the outputs are owned by `arrays_out`.
            unsafe {
                sys::mlx_imported_function_apply_kwargs(out, self.raw, args.raw(), kwargs.raw())
            }
        })
    }
}

impl Drop for ImportedFunction {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        ffi::free(|| unsafe { sys::mlx_imported_function_free(self.raw) });
    }
}

impl std::fmt::Debug for ImportedFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImportedFunction")
    }
}
