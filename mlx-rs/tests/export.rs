//! Exporting functions to files and importing them back.
//!
//! MLX 0.32 records stream indices in exported graphs, and since 0.31 streams belong to the
//! thread that made them: an imported function runs on the thread whose default streams match
//! the exporting process's (the first thread that used MLX). So everything here runs in one
//! test, on one thread, and this binary has no other tests.

mod common;

use std::collections::HashMap;

use mlx_rs::export::{
    Exporter, ImportedFunction, export_function, export_function_kwargs, export_function_shapeless,
};
use mlx_rs::{Array, Error, ops};

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mlx-rs-export-{}-{name}", std::process::id()))
}

fn vector(v: &[f32]) -> Array {
    Array::from_slice(v, &[v.len() as i32]).unwrap()
}

fn export_then_import_runs_the_same_graph() {
    let path = temp("add.mlxfn");
    let bias = vector(&[1.0, 2.0, 3.0]);
    export_function(&path, |x| Ok(vec![ops::add(&x[0], &bias)?]), &[vector(&[0.0; 3])]).unwrap();
    let f = ImportedFunction::load(&path).unwrap();
    let out = f.apply(&[vector(&[10.0, 20.0, 30.0])]).unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), [11.0, 22.0, 33.0]);
    // The trace was made for shape (3,): another shape is MLX's error.
    common::assert_err(f.apply(&[vector(&[1.0; 4])]), &["imported_function"]);
    std::fs::remove_file(path).unwrap();
}

fn shapeless_exports_and_multiple_traces() {
    let path = temp("shapeless.mlxfn");
    // SAFETY: an element-wise function: no index bounds depend on the traced shape.
    unsafe {
        export_function_shapeless(&path, |x| Ok(vec![ops::add(&x[0], &x[0])?]), &[vector(&[1.0])])
    }
    .unwrap();
    let f = ImportedFunction::load(&path).unwrap();
    assert_eq!(f.apply(&[vector(&[1.0, 2.0])]).unwrap()[0].to_vec::<f32>().unwrap(), [2.0, 4.0]);
    std::fs::remove_file(&path).unwrap();

    let path = temp("traces.mlxfn");
    {
        let exporter =
            Exporter::new(&path, |x: &[Array]| Ok(vec![ops::add(&x[0], &x[0])?])).unwrap();
        exporter.export(&[vector(&[1.0])]).unwrap();
        exporter.export(&[vector(&[1.0, 2.0])]).unwrap();
    }
    let f = ImportedFunction::load(&path).unwrap();
    assert_eq!(f.apply(&[vector(&[3.0])]).unwrap()[0].to_vec::<f32>().unwrap(), [6.0]);
    assert_eq!(f.apply(&[vector(&[3.0, 4.0])]).unwrap()[0].to_vec::<f32>().unwrap(), [6.0, 8.0]);
    std::fs::remove_file(path).unwrap();
}

fn keyword_arguments() {
    let path = temp("kwargs.mlxfn");
    let kwargs = HashMap::from([("bias".to_owned(), vector(&[5.0, 5.0]))]);
    export_function_kwargs(
        &path,
        |args, kwargs| Ok(vec![ops::add(&args[0], &kwargs["bias"])?]),
        &[vector(&[0.0, 0.0])],
        &kwargs,
    )
    .unwrap();
    let f = ImportedFunction::load(&path).unwrap();
    let other = HashMap::from([("bias".to_owned(), vector(&[1.0, -1.0]))]);
    let out = f.apply_kwargs(&[vector(&[10.0, 10.0])], &other).unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), [11.0, 9.0]);
    std::fs::remove_file(path).unwrap();
}

fn failures_are_errors() {
    let path = temp("failing.mlxfn");
    let err = export_function(
        &path,
        |_| Err(Error::invalid("model", "layer 3 is missing")),
        &[vector(&[1.0])],
    );
    common::assert_err(err, &["layer 3 is missing"]);
    let _ = std::fs::remove_file(&path);
    common::assert_err(ImportedFunction::load(temp("does-not-exist.mlxfn")), &["import_function"]);
    let garbage = temp("garbage.mlxfn");
    std::fs::write(&garbage, b"this is not an exported MLX function").unwrap();
    common::assert_err(ImportedFunction::load(&garbage), &["import_function"]);
    std::fs::remove_file(garbage).unwrap();
    common::assert_err(ImportedFunction::load("bad\0path"), &["NUL"]);
}

#[test]
fn export_and_import() {
    export_then_import_runs_the_same_graph();
    shapeless_exports_and_multiple_traces();
    keyword_arguments();
    failures_are_errors();
}
