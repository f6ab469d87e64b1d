//! Panic safety (issue 13): every entry point that hands a Rust closure (or a reader, a writer)
//! to MLX turns a panic in it, and an `Err` it returns, into an `Err` of the call, and the
//! process keeps working: the same entry point with a well-behaved closure gives the right value
//! right after.
//!
//! Each test drives one entry point through [`check`], with the closure's behaviour chosen by a
//! [`Mode`]: it panics, it fails, or it computes `x * x` (so values can be asserted: at x = 3 the
//! value is 9 and the derivative 6).
//!
//! The entry points (every public function of the crate that hands a Rust closure, reader or
//! writer to MLX): `transforms::{vjp, jvp, vmap, value_and_grad, grad, compile,
//! compile_shapeless, compile_with_state, compile_with_tree_state, checkpoint (also its
//! recomputation in the backward pass), custom_function (the function and its vjp, jvp and vmap
//! rules), custom_vjp (the function and its rule), value_and_grad_tree, grad_tree}`,
//! `nn::value_and_grad` (which also restores the model), `export::{export_function,
//! export_function_shapeless, export_function_kwargs, export_function_kwargs_shapeless,
//! Exporter::new, Exporter::new_shapeless}`, and the `io` reader and writer forms (npy and
//! safetensors, load and save). Closures the crate calls itself, never through MLX
//! (`optimizers` schedules, `Module` visitors, `Tree::map`), unwind as any Rust code does.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::rc::Rc;

use mlx_rs::export::{self, Exporter, ImportedFunction};
use mlx_rs::nn::{self, Linear, Module};
use mlx_rs::transforms::{self, CustomRules};
use mlx_rs::utils::Tree;
use mlx_rs::{Array, Error, ErrorKind, Result, io, ops};

/// What the closure under test does.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Panic,
    Fail,
    Good,
}

const PANIC_TEXT: &str = "boom from the user closure";
const FAIL_TEXT: &str = "the user closure refused";

/// The closure body: panics, fails, or squares `x`.
fn body(mode: Mode, x: &Array) -> Result<Array> {
    match mode {
        Mode::Panic => panic!("{PANIC_TEXT}"),
        Mode::Fail => Err(Error::invalid("user_closure", FAIL_TEXT)),
        Mode::Good => ops::multiply(x, x),
    }
}

fn squared(mode: Mode) -> impl FnMut(&[Array]) -> Result<Vec<Array>> + Clone + 'static {
    move |x: &[Array]| Ok(vec![body(mode, &x[0])?])
}

fn scalar(v: f32) -> Array {
    Array::scalar(v)
}

fn value(a: &Array) -> f32 {
    a.item::<f32>().unwrap()
}

/// Runs `run` with a panicking and with a failing closure, asserting an `Err` that carries the
/// closure's message, each time followed by a run with a good closure whose result `good`
/// checks; finally checks that unrelated work still computes.
#[track_caller]
fn check<T>(entry: &str, run: impl Fn(Mode) -> Result<T>, good: impl Fn(T)) {
    check_kind(entry, ErrorKind::Closure, run, good)
}

/// [`check`] where a panic gives an error of `panic_kind` (readers and writers: `Io`).
#[track_caller]
fn check_kind<T>(
    entry: &str,
    panic_kind: ErrorKind,
    run: impl Fn(Mode) -> Result<T>,
    good: impl Fn(T),
) {
    // A panic inside the closure still reaches the panic hook (and prints); the test is that it
    // stops there.
    for (mode, needles) in
        [(Mode::Panic, &["panicked", PANIC_TEXT][..]), (Mode::Fail, &[FAIL_TEXT][..])]
    {
        match run(mode) {
            Ok(_) => panic!("{entry}: {mode:?} closure gave Ok"),
            Err(e) => {
                let text = e.to_string();
                for needle in needles {
                    assert!(
                        text.contains(needle),
                        "{entry} ({mode:?}): `{needle}` not in {text:?}"
                    );
                }
                if mode == Mode::Panic {
                    assert_eq!(e.kind(), panic_kind, "{entry}: {e}");
                }
            }
        }
        match run(Mode::Good) {
            Ok(v) => good(v),
            Err(e) => panic!("{entry}: the call after a {mode:?} closure failed: {e}"),
        }
    }
    let two = ops::add(&scalar(1.0), &scalar(1.0)).unwrap();
    assert_eq!(value(&two), 2.0, "{entry}: MLX after the failures");
}

#[test]
fn vjp() {
    check(
        "vjp",
        |m| transforms::vjp(squared(m), &[scalar(3.0)], &[scalar(1.0)]),
        |(out, vjps)| {
            assert_eq!(value(&out[0]), 9.0);
            assert_eq!(value(&vjps[0]), 6.0);
        },
    );
}

#[test]
fn jvp() {
    check(
        "jvp",
        |m| transforms::jvp(squared(m), &[scalar(3.0)], &[scalar(1.0)]),
        |(out, jvps)| {
            assert_eq!(value(&out[0]), 9.0);
            assert_eq!(value(&jvps[0]), 6.0);
        },
    );
}

#[test]
fn vmap() {
    let xs = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    check(
        "vmap",
        |m| transforms::vmap(squared(m), &[&xs], &[0], &[0]),
        |out| assert_eq!(out[0].to_vec::<f32>().unwrap(), [1.0, 4.0, 9.0]),
    );
}

#[test]
fn value_and_grad_and_grad() {
    check(
        "value_and_grad",
        |m| transforms::value_and_grad(squared(m), &[0])?.apply(&[scalar(3.0)]),
        |(values, grads)| {
            assert_eq!(value(&values[0]), 9.0);
            assert_eq!(value(&grads[0]), 6.0);
        },
    );
    check(
        "grad",
        |m| transforms::grad(squared(m), &[0])?.apply(&[scalar(3.0)]),
        |grads| assert_eq!(value(&grads[0]), 6.0),
    );
}

/// The same transformed function fails on one call and works on the next: nothing inside MLX
/// (a half-made trace, a cache entry) is left behind by the failed call. A compiled function
/// calls its closure only when it traces (once per input shape), so each round uses a new shape.
#[test]
fn one_function_fails_then_works() {
    let mode = Rc::new(Cell::new(Mode::Panic));
    let shared = mode.clone();
    let f = move |x: &[Array]| Ok(vec![body(shared.get(), &x[0])?]);
    let compiled = transforms::compile(f.clone()).unwrap();
    let vg =
        transforms::value_and_grad(move |x: &[Array]| Ok(vec![f(x)?[0].sum(.., false)?]), &[0])
            .unwrap();
    for n in 1..=3usize {
        let x = Array::from_slice(&vec![3.0f32; n], &[n as i32]).unwrap();
        for bad in [Mode::Panic, Mode::Fail] {
            mode.set(bad);
            assert!(compiled.apply(&[&x]).is_err(), "compiled, {bad:?}, n = {n}");
            assert!(vg.apply(&[&x]).is_err(), "value_and_grad, {bad:?}, n = {n}");
        }
        mode.set(Mode::Good);
        assert_eq!(compiled.apply(&[&x]).unwrap()[0].to_vec::<f32>().unwrap(), vec![9.0; n]);
        let (v, g) = vg.apply(&[&x]).unwrap();
        assert_eq!(value(&v[0]), 9.0 * n as f32);
        assert_eq!(g[0].to_vec::<f32>().unwrap(), vec![6.0; n]);
        // The trace is cached now: the closure is not called again for this shape.
        mode.set(Mode::Panic);
        assert_eq!(compiled.apply(&[&x]).unwrap()[0].to_vec::<f32>().unwrap(), vec![9.0; n]);
    }
}

#[test]
fn compile_and_compile_shapeless() {
    check(
        "compile",
        |m| transforms::compile(squared(m))?.apply(&[scalar(3.0)]),
        |out| assert_eq!(value(&out[0]), 9.0),
    );
    check(
        "compile_shapeless",
        // SAFETY: `x * x` is element-wise.
        |m| unsafe { transforms::compile_shapeless(squared(m)) }?.apply(&[scalar(3.0)]),
        |out| assert_eq!(value(&out[0]), 9.0),
    );
}

#[test]
fn compile_with_state() {
    check(
        "compile_with_state",
        |m| {
            let mut f = transforms::compile_with_state(
                move |x: &[Array], total: &[Array]| {
                    let sum = ops::add(&body(m, &x[0])?, &total[0])?;
                    Ok((vec![sum.clone()], vec![sum]))
                },
                vec![scalar(1.0)],
            )?;
            f.apply(&[scalar(3.0)])
        },
        |out| assert_eq!(value(&out[0]), 10.0),
    );
}

#[test]
fn compile_with_tree_state() {
    check(
        "compile_with_tree_state",
        |m| {
            let mut state = Tree::new();
            state.insert("w", scalar(1.0))?;
            let mut f = transforms::compile_with_tree_state(
                move |x: &[Array], state: &Tree| {
                    let w = (&body(m, &x[0])? + state.leaf("w")?)?;
                    let mut next = Tree::new();
                    next.insert("w", w.clone())?;
                    Ok((vec![w], next))
                },
                state,
            )?;
            f.apply(&[scalar(3.0)])
        },
        |out| assert_eq!(value(&out[0]), 10.0),
    );
}

#[test]
fn checkpoint() {
    check(
        "checkpoint",
        |m| transforms::checkpoint(squared(m))?.apply(&[scalar(3.0)]),
        |out| assert_eq!(value(&out[0]), 9.0),
    );
    // The closure also runs again in the backward pass: a panic there is an error too.
    let calls = Rc::new(Cell::new(0));
    let seen = calls.clone();
    let panics_on_recompute = move |x: &[Array]| {
        seen.set(seen.get() + 1);
        let mode = if seen.get() > 1 { Mode::Panic } else { Mode::Good };
        Ok(vec![body(mode, &x[0])?])
    };
    let f = transforms::checkpoint(panics_on_recompute).unwrap();
    let result = transforms::vjp(|x| f.apply(x), &[scalar(3.0)], &[scalar(1.0)]);
    assert!(calls.get() > 1, "the backward pass recomputes the function");
    let err = result.expect_err("the recomputation panicked");
    assert!(err.to_string().contains(PANIC_TEXT), "{err}");
    let f = transforms::checkpoint(squared(Mode::Good)).unwrap();
    let (_, vjps) = transforms::vjp(|x| f.apply(x), &[scalar(3.0)], &[scalar(1.0)]).unwrap();
    assert_eq!(value(&vjps[0]), 6.0);
}

#[test]
fn custom_function_and_its_rules() {
    check(
        "custom_function",
        |m| transforms::custom_function(squared(m), CustomRules::default())?.apply(&[scalar(3.0)]),
        |out| assert_eq!(value(&out[0]), 9.0),
    );
    // A vjp rule that doubles the cotangent: d/dx at x = 3 gives 2.
    let vjp_rule = |m: Mode| -> CustomRules {
        CustomRules {
            vjp: Some(Box::new(move |_p, cot, _o| Ok(vec![(&body(m, &cot[0])? * 2.0f32)?]))),
            ..CustomRules::default()
        }
    };
    check(
        "custom_function vjp rule",
        |m| {
            let f = transforms::custom_function(squared(Mode::Good), vjp_rule(m))?;
            transforms::vjp(|x| f.apply(x), &[scalar(3.0)], &[scalar(1.0)])
        },
        |(_, vjps)| assert_eq!(value(&vjps[0]), 2.0),
    );
    // A jvp rule that returns 5 * tangent.
    let jvp_rule = |m: Mode| -> CustomRules {
        CustomRules {
            jvp: Some(Box::new(move |_p, tan, _argnums| Ok(vec![(&body(m, &tan[0])? * 5.0f32)?]))),
            ..CustomRules::default()
        }
    };
    check(
        "custom_function jvp rule",
        |m| {
            let f = transforms::custom_function(squared(Mode::Good), jvp_rule(m))?;
            transforms::jvp(|x| f.apply(x), &[scalar(3.0)], &[scalar(1.0)])
        },
        |(_, jvps)| assert_eq!(value(&jvps[0]), 5.0),
    );
    // A vmap rule that squares the batch (the same values as the function, batched at axis 0).
    let vmap_rule = |m: Mode| -> CustomRules {
        CustomRules {
            vmap: Some(Box::new(move |inputs, _axes| Ok((vec![body(m, &inputs[0])?], vec![0])))),
            ..CustomRules::default()
        }
    };
    let xs = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    check(
        "custom_function vmap rule",
        |m| {
            let f = transforms::custom_function(squared(Mode::Good), vmap_rule(m))?;
            transforms::vmap(|x| f.apply(x), &[&xs], &[0], &[0])
        },
        |out| assert_eq!(out[0].to_vec::<f32>().unwrap(), [1.0, 4.0, 9.0]),
    );
}

#[test]
fn custom_vjp() {
    check(
        "custom_vjp function",
        |m| {
            let f = transforms::custom_vjp(squared(m), |_p, cot, _o| Ok(cot.to_vec()))?;
            f.apply(&[scalar(3.0)])
        },
        |out| assert_eq!(value(&out[0]), 9.0),
    );
    check(
        "custom_vjp rule",
        |m| {
            let f = transforms::custom_vjp(squared(Mode::Good), move |_p, cot, _o| {
                Ok(vec![(&body(m, &cot[0])? * 2.0f32)?])
            })?;
            transforms::vjp(|x| f.apply(x), &[scalar(3.0)], &[scalar(1.0)])
        },
        |(_, vjps)| assert_eq!(value(&vjps[0]), 2.0),
    );
}

fn w_tree() -> Tree {
    let mut params = Tree::new();
    params.insert("w", scalar(3.0)).unwrap();
    params
}

#[test]
fn value_and_grad_tree_and_grad_tree() {
    check(
        "value_and_grad_tree",
        |m| transforms::value_and_grad_tree(&w_tree(), |p| Ok(vec![body(m, p.leaf("w")?)?])),
        |(values, grads)| {
            assert_eq!(value(&values[0]), 9.0);
            assert_eq!(value(grads.leaf("w").unwrap()), 6.0);
        },
    );
    check(
        "grad_tree",
        |m| transforms::grad_tree(&w_tree(), |p| Ok(vec![body(m, p.leaf("w")?)?])),
        |grads| assert_eq!(value(grads.leaf("w").unwrap()), 6.0),
    );
}

#[test]
fn nn_value_and_grad_restores_the_model() {
    let mut model = Linear::new(1, 1, false).unwrap();
    model
        .update(
            &mlx_rs::utils::tree_unflatten(vec![(
                "weight".to_owned(),
                Array::from_slice(&[3.0f32], &[1, 1]).unwrap(),
            )])
            .unwrap(),
        )
        .unwrap();
    let model = std::cell::RefCell::new(model);
    check(
        "nn::value_and_grad",
        |m| {
            let result = nn::value_and_grad(&mut *model.borrow_mut(), |lin| {
                body(m, &lin.weight)?.sum(.., false)
            });
            // Whatever the closure did, the model holds its own weight afterwards.
            assert_eq!(model.borrow().weight.to_vec::<f32>().unwrap(), [3.0]);
            result
        },
        |(loss, grads)| {
            assert_eq!(value(&loss), 9.0);
            assert_eq!(grads.leaf("weight").unwrap().to_vec::<f32>().unwrap(), [6.0]);
        },
    );
}

/// A closure that panics or fails while nested in two transforms (compile of a grad of a vjp)
/// is reported by the outermost call.
#[test]
fn nested_transforms() {
    check(
        "compile(grad(vjp(..)))",
        |m| {
            let g = transforms::grad(
                move |x: &[Array]| {
                    let (out, _) = transforms::vjp(squared(m), x, &[scalar(1.0)])?;
                    Ok(out)
                },
                &[0],
            )?;
            let compiled = transforms::compile(move |x: &[Array]| g.apply(x))?;
            compiled.apply(&[scalar(3.0)])
        },
        |grads| assert_eq!(value(&grads[0]), 6.0),
    );
}

/// Set in the child process that runs the export checks.
const EXPORT_CHILD: &str = "MLX_RS_PANIC_SAFETY_EXPORT_CHILD";

/// MLX 0.32 records the exporting thread's stream indices in an exported graph, and an imported
/// function runs only on the thread whose streams match: the first thread that used MLX (see
/// `ImportedFunction`). So the export checks run in a child process (this binary re-executed with
/// only [`export_entry_points_child`]), where they are the first to use MLX.
#[test]
fn export_entry_points() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "export_entry_points_child", "--include-ignored", "--test-threads=1"])
        .env(EXPORT_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("test export_entry_points_child ... ok"), "{stdout}");
}

#[test]
#[ignore = "run by export_entry_points in a child process"]
fn export_entry_points_child() {
    assert!(std::env::var_os(EXPORT_CHILD).is_some(), "run me through export_entry_points");
    export_function_and_shapeless();
    export_function_kwargs();
    exporter();
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mlx-rs-panic-{}-{name}", std::process::id()))
}

/// After an export whose closure failed, the good export at the same path imports and runs.
fn imported_value(path: &std::path::Path, x: f32) -> f32 {
    let f = ImportedFunction::load(path).unwrap();
    let out = value(&f.apply(&[scalar(x)]).unwrap()[0]);
    std::fs::remove_file(path).ok();
    out
}

fn export_function_and_shapeless() {
    let path = temp_path("export.mlxfn");
    check(
        "export_function",
        |m| export::export_function(&path, squared(m), &[scalar(1.0)]),
        |()| assert_eq!(imported_value(&path, 3.0), 9.0),
    );
    check(
        "export_function_shapeless",
        // SAFETY: `x * x` is element-wise.
        |m| unsafe { export::export_function_shapeless(&path, squared(m), &[scalar(1.0)]) },
        |()| assert_eq!(imported_value(&path, 3.0), 9.0),
    );
}

fn export_function_kwargs() {
    let path = temp_path("export-kwargs.mlxfn");
    let kwargs = HashMap::from([("y".to_owned(), scalar(1.0))]);
    let f = |m: Mode| {
        move |args: &[Array], kw: &HashMap<String, Array>| {
            Ok(vec![(&body(m, &args[0])? + &kw["y"])?])
        }
    };
    let run_imported = |path: &std::path::Path| {
        let imported = ImportedFunction::load(path).unwrap();
        let kw = HashMap::from([("y".to_owned(), scalar(10.0))]);
        let out = value(&imported.apply_kwargs(&[scalar(3.0)], &kw).unwrap()[0]);
        std::fs::remove_file(path).ok();
        out
    };
    check(
        "export_function_kwargs",
        |m| export::export_function_kwargs(&path, f(m), &[scalar(1.0)], &kwargs),
        |()| assert_eq!(run_imported(&path), 19.0),
    );
    check(
        "export_function_kwargs_shapeless",
        // SAFETY: the function is element-wise.
        |m| unsafe {
            export::export_function_kwargs_shapeless(&path, f(m), &[scalar(1.0)], &kwargs)
        },
        |()| assert_eq!(run_imported(&path), 19.0),
    );
}

fn exporter() {
    let path = temp_path("exporter.mlxfn");
    check(
        "Exporter::export",
        |m| {
            let exporter = Exporter::new(&path, squared(m))?;
            exporter.export(&[scalar(1.0)])
        },
        |()| assert_eq!(imported_value(&path, 3.0), 9.0),
    );
    check(
        "Exporter::new_shapeless",
        // SAFETY: `x * x` is element-wise.
        |m| unsafe { Exporter::new_shapeless(&path, squared(m)) }?.export(&[scalar(1.0)]),
        |()| assert_eq!(imported_value(&path, 3.0), 9.0),
    );
    let kwargs: HashMap<String, Array> = HashMap::new();
    check(
        "Exporter::export_kwargs",
        |m| {
            let exporter = Exporter::new(&path, squared(m))?;
            exporter.export_kwargs(&[scalar(1.0)], &kwargs)
        },
        |()| assert_eq!(imported_value(&path, 3.0), 9.0),
    );
}

/// A reader or writer that panics, fails, or works.
struct Io {
    inner: Cursor<Vec<u8>>,
    mode: Mode,
}

impl Io {
    fn act(&self) -> std::io::Result<()> {
        match self.mode {
            Mode::Panic => panic!("{PANIC_TEXT}"),
            Mode::Fail => Err(std::io::Error::other(FAIL_TEXT)),
            Mode::Good => Ok(()),
        }
    }
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.act()?;
        self.inner.read(buf)
    }
}

impl Seek for Io {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.act()?;
        self.inner.seek(pos)
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.act()?;
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.act()
    }
}

fn sample() -> Array {
    Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap()
}

#[test]
fn npy_reader_and_writer() {
    let mut bytes = Vec::new();
    io::save_to_writer(&mut bytes, &sample()).unwrap();
    check_kind(
        "load_from_reader (npy)",
        ErrorKind::Io,
        |mode| {
            let mut reader = Io { inner: Cursor::new(bytes.clone()), mode };
            let a = io::load_from_reader(&mut reader)?;
            a.eval()?;
            Ok(a)
        },
        |a| assert_eq!(a.to_vec::<f32>().unwrap(), [1.0, 2.0, 3.0]),
    );
    check_kind(
        "save_to_writer (npy)",
        ErrorKind::Io,
        |mode| {
            let mut writer = Io { inner: Cursor::new(Vec::new()), mode };
            io::save_to_writer(&mut writer, &sample())?;
            Ok(writer.inner.into_inner())
        },
        |written| assert_eq!(written, bytes),
    );
}

#[test]
fn safetensors_reader_and_writer() {
    let arrays = HashMap::from([("a", sample())]);
    let meta = HashMap::from([("k", "v")]);
    let mut bytes = Vec::new();
    io::save_safetensors_to_writer(&mut bytes, &arrays, &meta).unwrap();
    check_kind(
        "load_safetensors_from_reader",
        ErrorKind::Io,
        |mode| {
            let mut reader = Io { inner: Cursor::new(bytes.clone()), mode };
            let (loaded, meta) = io::load_safetensors_from_reader(&mut reader)?;
            transforms::eval(&loaded.values().collect::<Vec<_>>())?;
            Ok((loaded, meta))
        },
        |(loaded, meta)| {
            assert_eq!(loaded["a"].to_vec::<f32>().unwrap(), [1.0, 2.0, 3.0]);
            assert_eq!(meta["k"], "v");
        },
    );
    check_kind(
        "save_safetensors_to_writer",
        ErrorKind::Io,
        |mode| {
            let mut writer = Io { inner: Cursor::new(Vec::new()), mode };
            io::save_safetensors_to_writer(&mut writer, &arrays, &meta)?;
            Ok(writer.inner.into_inner())
        },
        |written| assert_eq!(written, bytes),
    );
}
