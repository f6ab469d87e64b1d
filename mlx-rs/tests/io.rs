//! Loading and saving: round trips, files written by Python MLX (`golden/gen_io.py`), readers and
//! writers, and truncated, corrupt or missing files.

mod common;

use std::collections::HashMap;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use mlx_rs::io::{self, GgufMetadata};
use mlx_rs::{Array, Dtype, ErrorKind, ops};
use serde_json::{Value, json};

const GOLDEN: &str = include_str!("golden/io.json");
const SAFETENSORS: &[u8] = include_bytes!("golden/io/arrays.safetensors");
const GGUF: &[u8] = include_bytes!("golden/io/model.gguf");
const NPYS: &[(&str, &[u8])] = &[
    ("f32.npy", include_bytes!("golden/io/f32.npy")),
    ("i64.npy", include_bytes!("golden/io/i64.npy")),
    ("bool.npy", include_bytes!("golden/io/bool.npy")),
    ("f16.npy", include_bytes!("golden/io/f16.npy")),
    ("scalar.npy", include_bytes!("golden/io/scalar.npy")),
];

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("mlx_rs_io_{}_{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small array of `dtype` with distinct values.
fn sample(dtype: Dtype) -> Array {
    let data: Vec<Value> = match dtype {
        Dtype::Bool => {
            vec![json!(true), json!(false), json!(false), json!(true), json!(true), json!(false)]
        }
        Dtype::Complex64 => (0..6).map(|i| json!([i as f64 - 1.5, 0.25 * i as f64])).collect(),
        Dtype::Uint8 | Dtype::Uint16 | Dtype::Uint32 | Dtype::Uint64 => {
            (0..6).map(|i| json!(i * 7 + 1)).collect()
        }
        Dtype::Int8 | Dtype::Int16 | Dtype::Int32 | Dtype::Int64 => {
            (0..6).map(|i| json!(i * 9 - 20)).collect()
        }
        _ => (0..6).map(|i| json!(i as f64 * 0.75 - 2.0)).collect(),
    };
    common::array(&json!({"dtype": dtype.name(), "shape": [2, 3], "data": data}))
}

/// Asserts two arrays have the same dtype, shape and values.
#[track_caller]
fn assert_same(got: &Array, want: &Array) {
    assert_eq!(got.dtype(), want.dtype(), "dtype");
    assert_eq!(got.shape(), want.shape(), "shape");
    if want.dtype() == Dtype::Complex64 {
        let got = got.to_vec::<num_complex::Complex32>().unwrap();
        assert_eq!(got, want.to_vec::<num_complex::Complex32>().unwrap());
    } else {
        common::assert_close(&common::values_f64(got), &common::values_f64(want), 0.0, 0.0);
    }
}

fn golden_metadata(g: &Value) -> HashMap<String, String> {
    g["metadata"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// The dtypes MLX 0.32.2 writes to safetensors: all but float64 (see `save_rejects_float64`).
fn safetensors_dtypes() -> Vec<Dtype> {
    Dtype::ALL.into_iter().filter(|d| *d != Dtype::Float64).collect()
}

/// Golden tolerance: the JSON holds f16/bf16 values as decimal text.
const RTOL: f64 = 1e-7;

// ---------------------------------------------------------------------------------------------
// Files written by Python MLX

#[test]
fn loads_python_safetensors() {
    let g = common::load(GOLDEN);
    let case = common::case(&g, "safetensors");
    let dir = TempDir::new("py_safetensors");
    let path = dir.file("arrays.safetensors", SAFETENSORS);
    let (arrays, metadata) = io::load_safetensors(&path).unwrap();
    let want = case["arrays"].as_object().unwrap();
    assert_eq!(arrays.len(), want.len());
    for (name, expected) in want {
        common::assert_matches(&arrays[name], expected, RTOL, 0.0);
    }
    assert_eq!(metadata, golden_metadata(case));

    // The same file through `File` as a reader.
    let mut file = std::fs::File::open(&path).unwrap();
    let (arrays, _) = io::load_safetensors_from_reader(&mut file).unwrap();
    for (name, expected) in want {
        common::assert_matches(&arrays[name], expected, RTOL, 0.0);
    }

    // The same bytes through a reader.
    let (arrays, metadata) =
        io::load_safetensors_from_reader(&mut Cursor::new(SAFETENSORS)).unwrap();
    for (name, expected) in want {
        common::assert_matches(&arrays[name], expected, RTOL, 0.0);
    }
    assert_eq!(metadata, golden_metadata(case));
}

#[test]
fn loads_python_npy() {
    let g = common::load(GOLDEN);
    let case = common::case(&g, "npy");
    let dir = TempDir::new("py_npy");
    for (name, bytes) in NPYS {
        let path = dir.file(name, bytes);
        common::assert_matches(&io::load(&path).unwrap(), &case[*name], RTOL, 0.0);
        let from_reader = io::load_from_reader(&mut Cursor::new(*bytes)).unwrap();
        common::assert_matches(&from_reader, &case[*name], RTOL, 0.0);
    }
}

#[test]
fn loads_python_gguf() {
    let g = common::load(GOLDEN);
    let case = common::case(&g, "gguf");
    let dir = TempDir::new("py_gguf");
    let path = dir.file("model.gguf", GGUF);
    let (arrays, metadata) = io::load_gguf(&path).unwrap();
    let want = case["arrays"].as_object().unwrap();
    assert_eq!(arrays.len(), want.len());
    for (name, expected) in want {
        common::assert_matches(&arrays[name], expected, RTOL, 0.0);
    }
    let want = case["metadata"].as_object().unwrap();
    assert_eq!(metadata.len(), want.len(), "{metadata:?}");
    for (key, expected) in want {
        match (&metadata[key], expected) {
            (GgufMetadata::String(s), e) if e.get("string").is_some() => {
                assert_eq!(s, &e["string"])
            }
            (GgufMetadata::Strings(list), e) if e.get("strings").is_some() => {
                let want: Vec<&str> =
                    e["strings"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
                assert_eq!(list, &want);
            }
            (GgufMetadata::Array(a), e) if e.get("array").is_some() => {
                common::assert_matches(a, &e["array"], RTOL, 0.0)
            }
            (got, e) => panic!("metadata {key}: got {got:?}, want {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn safetensors_round_trip_every_dtype() {
    let dir = TempDir::new("st_round_trip");
    let mut arrays = HashMap::new();
    for dtype in safetensors_dtypes() {
        arrays.insert(dtype.name().to_owned(), sample(dtype));
    }
    arrays.insert("scalar".to_owned(), Array::scalar(2.5f32));
    arrays.insert("empty".to_owned(), Array::from_slice::<f32>(&[], &[0, 3]).unwrap());
    // A lazy, non-contiguous input: saving evaluates it and writes it in logical order.
    let t = ops::transpose(&sample(Dtype::Int32), ..).unwrap();
    arrays.insert("transposed".to_owned(), t.clone());
    let metadata = HashMap::from([
        ("format".to_owned(), "mlx".to_owned()),
        ("unicode".to_owned(), "grüße ✓".to_owned()),
        ("empty".to_owned(), String::new()),
    ]);
    let path = dir.path("all.safetensors");
    io::save_safetensors(&path, &arrays, &metadata).unwrap();
    let (loaded, meta) = io::load_safetensors(&path).unwrap();
    assert_eq!(meta, metadata);
    assert_eq!(loaded.len(), arrays.len());
    for (name, want) in &arrays {
        assert_same(&loaded[name], want);
    }

    // The same through a writer and a reader.
    let mut bytes = Cursor::new(Vec::new());
    io::save_safetensors_to_writer(&mut bytes, &arrays, &metadata).unwrap();
    assert_eq!(bytes.get_ref(), &std::fs::read(&path).unwrap(), "writer and file agree");
    let (loaded, meta) = io::load_safetensors_from_reader(&mut bytes).unwrap();
    assert_eq!(meta, metadata);
    for (name, want) in &arrays {
        assert_same(&loaded[name], want);
    }
}

#[test]
fn save_rejects_float64_safetensors() {
    let dir = TempDir::new("st_f64");
    let arrays = HashMap::from([("x", sample(Dtype::Float64))]);
    let no_meta: HashMap<String, String> = HashMap::new();
    // MLX's GPU backends refuse float64 before the format does.
    let reason = if common::on_gpu() { "float64" } else { "invalid dtype" };
    let err = common::assert_err(
        io::save_safetensors(dir.path("f.safetensors"), &arrays, &no_meta),
        &[reason],
    );
    assert_eq!(err.kind(), ErrorKind::Io);
    let err = common::assert_err(
        io::save_safetensors_to_writer(&mut Vec::new(), &arrays, &no_meta),
        &[reason],
    );
    assert_eq!(err.kind(), ErrorKind::Io);
    let nul_meta = HashMap::from([("k", "v\0")]);
    let ok = HashMap::from([("x", sample(Dtype::Float32))]);
    let err = common::assert_err(
        io::save_safetensors(dir.path("n.safetensors"), &ok, &nul_meta),
        &["NUL"],
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn npy_round_trip_every_dtype() {
    let dir = TempDir::new("npy_round_trip");
    let mut dtypes = Dtype::ALL.to_vec();
    dtypes.retain(|d| *d != Dtype::Bfloat16); // NumPy has no bfloat16; checked separately below
    if common::on_gpu() {
        dtypes.retain(|d| *d != Dtype::Float64); // MLX's GPU backends have no float64
    }
    for dtype in dtypes {
        let a = sample(dtype);
        let path = dir.path(&format!("{}.npy", dtype.name()));
        io::save(&path, &a).unwrap();
        assert_same(&io::load(&path).unwrap(), &a);

        let mut bytes = Cursor::new(Vec::new());
        io::save_to_writer(&mut bytes, &a).unwrap();
        bytes.set_position(0);
        assert_same(&io::load_from_reader(&mut bytes).unwrap(), &a);
    }
    // A scalar and a non-contiguous view.
    let path = dir.path("scalar.npy");
    io::save(&path, &Array::scalar(-3i64)).unwrap();
    assert_eq!(io::load(&path).unwrap().item::<i64>().unwrap(), -3);
    let t = ops::transpose(&sample(Dtype::Float32), ..).unwrap();
    io::save(&path, &t).unwrap();
    assert_same(&io::load(&path).unwrap(), &t);
}

#[test]
fn npy_bfloat16_is_rejected_or_round_trips() {
    let dir = TempDir::new("npy_bf16");
    let a = sample(Dtype::Bfloat16);
    let path = dir.path("bf16.npy");
    // MLX has no NumPy name for bfloat16: either an error, or a file it reads back exactly.
    match io::save(&path, &a) {
        Ok(()) => assert_same(&io::load(&path).unwrap(), &a),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Io, "{e}"),
    }
}

#[test]
fn gguf_round_trip() {
    let dir = TempDir::new("gguf_round_trip");
    let arrays = HashMap::from([
        ("f32".to_owned(), sample(Dtype::Float32)),
        ("f16".to_owned(), sample(Dtype::Float16)),
        ("i32".to_owned(), sample(Dtype::Int32)),
        ("i8".to_owned(), sample(Dtype::Int8)),
    ]);
    let metadata = HashMap::from([
        ("general.name".to_owned(), GgufMetadata::String("round trip".to_owned())),
        ("vocab".to_owned(), GgufMetadata::Strings(vec!["a".into(), "".into(), "ccc".into()])),
        ("count".to_owned(), GgufMetadata::Array(Array::scalar(7u32))),
        ("ratio".to_owned(), GgufMetadata::Array(Array::scalar(0.125f32))),
        ("ids".to_owned(), GgufMetadata::Array(Array::from_slice(&[4i32, 5, 6], &[3]).unwrap())),
    ]);
    let path = dir.path("model.gguf");
    io::save_gguf(&path, &arrays, &metadata).unwrap();
    let (loaded, meta) = io::load_gguf(&path).unwrap();
    assert_eq!(loaded.len(), arrays.len());
    for (name, want) in &arrays {
        assert_same(&loaded[name], want);
    }
    assert_eq!(meta.len(), metadata.len());
    for (key, want) in &metadata {
        match (&meta[key], want) {
            (GgufMetadata::String(a), GgufMetadata::String(b)) => assert_eq!(a, b),
            (GgufMetadata::Strings(a), GgufMetadata::Strings(b)) => assert_eq!(a, b),
            (GgufMetadata::Array(a), GgufMetadata::Array(b)) => assert_same(a, b),
            (got, want) => panic!("{key}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn gguf_rejects_what_it_cannot_store() {
    let dir = TempDir::new("gguf_reject");
    let path = dir.path("bad.gguf");
    let none: HashMap<String, GgufMetadata> = HashMap::new();
    let complex = HashMap::from([("c".to_owned(), sample(Dtype::Complex64))]);
    let err = common::assert_err(io::save_gguf(&path, &complex, &none), &["save_gguf"]);
    assert_eq!(err.kind(), ErrorKind::Io);
    let bf16 = HashMap::from([("b".to_owned(), sample(Dtype::Bfloat16))]);
    common::assert_err(io::save_gguf(&path, &bf16, &none), &["bfloat16", "not supported"]);
    let nul = HashMap::from([("a\0b".to_owned(), sample(Dtype::Float32))]);
    let err = common::assert_err(io::save_gguf(&path, &nul, &none), &["NUL"]);
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn lazy_load_evaluates_later() {
    let dir = TempDir::new("lazy");
    let a = sample(Dtype::Float32);
    let path = dir.path("lazy.safetensors");
    let no_meta: HashMap<String, String> = HashMap::new();
    io::save_safetensors(&path, &HashMap::from([("a", a.clone())]), &no_meta).unwrap();
    let (loaded, _) = io::load_safetensors(&path).unwrap();
    // Use the lazy array in a graph before it has read anything, then evaluate.
    let doubled = ops::add(&loaded["a"], &loaded["a"]).unwrap();
    let want: Vec<f32> = a.to_vec::<f32>().unwrap().iter().map(|x| x * 2.0).collect();
    assert_eq!(doubled.to_vec::<f32>().unwrap(), want);

    let npy = dir.path("lazy.npy");
    io::save(&npy, &a).unwrap();
    let loaded = io::load(&npy).unwrap();
    assert_same(&ops::multiply(&loaded, &Array::scalar(1.0f32)).unwrap(), &a);
}

/// A tensor large enough that the reader splits its read into parts read in parallel (64 MiB
/// or more) loads every element; cut inside its last part after loading, it fails to evaluate.
#[test]
fn large_tensor_reads_in_parts() {
    let dir = TempDir::new("large");
    let values: Vec<u32> = (0..18 << 20).collect();
    let arrays =
        HashMap::from([("w", Array::from_slice(&values, &[values.len() as i32]).unwrap())]);
    let path = dir.path("large.safetensors");
    io::save_safetensors(&path, &arrays, &HashMap::<String, String>::new()).unwrap();
    let (loaded, _) = io::load_safetensors(&path).unwrap();
    assert!(loaded["w"].to_vec::<u32>().unwrap() == values, "the loaded elements differ");

    let (loaded, _) = io::load_safetensors(&path).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 1000).unwrap();
    let err = common::assert_err(loaded["w"].eval(), &["unable to read 75497472 bytes"]);
    assert!(err.message().contains("(read 75496472 instead)"), "{err}");
}

#[test]
fn save_appends_extension_like_mlx() {
    let dir = TempDir::new("extension");
    io::save(dir.path("plain"), &Array::scalar(1u8)).unwrap();
    assert!(dir.path("plain.npy").exists());
    let no_meta: HashMap<String, String> = HashMap::new();
    io::save_safetensors(dir.path("w"), &HashMap::from([("x", Array::scalar(1u8))]), &no_meta)
        .unwrap();
    assert!(dir.path("w.safetensors").exists());
}

// ---------------------------------------------------------------------------------------------
// Readers and writers that fail

/// A reader over bytes that fails with an I/O error (or panics) once `fail_at` bytes are read.
struct Faulty {
    inner: Cursor<Vec<u8>>,
    fail_at: u64,
    panic: bool,
}

impl Read for Faulty {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let pos = self.inner.position();
        let end = pos + buf.len() as u64;
        if end > self.fail_at {
            if self.panic {
                panic!("reader exploded at byte {pos}");
            }
            return Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "disk on fire"));
        }
        self.inner.read(buf)
    }
}

impl Seek for Faulty {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

fn safetensors_bytes() -> Vec<u8> {
    let arrays = HashMap::from([("a", sample(Dtype::Float32)), ("b", sample(Dtype::Int64))]);
    let mut bytes = Vec::new();
    io::save_safetensors_to_writer(&mut bytes, &arrays, &HashMap::from([("k", "v")])).unwrap();
    bytes
}

#[test]
fn reader_io_error_is_an_io_error() {
    let bytes = safetensors_bytes();
    // Midway through the header, and midway through the data (read when evaluating).
    for fail_at in [4, 20, bytes.len() as u64 - 10] {
        let mut reader = Faulty { inner: Cursor::new(bytes.clone()), fail_at, panic: false };
        let err =
            common::assert_err(io::load_safetensors_from_reader(&mut reader), &["disk on fire"]);
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    }
    let mut npy = Vec::new();
    io::save_to_writer(&mut npy, &sample(Dtype::Float32)).unwrap();
    for fail_at in [3, npy.len() as u64 - 4] {
        let mut reader = Faulty { inner: Cursor::new(npy.clone()), fail_at, panic: false };
        let err = common::assert_err(io::load_from_reader(&mut reader), &["disk on fire"]);
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    }
    // The reader still works after being lent.
    let mut reader = Faulty { inner: Cursor::new(bytes), fail_at: u64::MAX, panic: false };
    reader.seek(SeekFrom::Start(0)).unwrap();
    let (loaded, _) = io::load_safetensors_from_reader(&mut reader).unwrap();
    assert_same(&loaded["a"], &sample(Dtype::Float32));
}

#[test]
fn reader_panic_is_an_error_not_an_abort() {
    let bytes = safetensors_bytes();
    for fail_at in [4, bytes.len() as u64 - 10] {
        let mut reader = Faulty { inner: Cursor::new(bytes.clone()), fail_at, panic: true };
        let err = common::assert_err(
            io::load_safetensors_from_reader(&mut reader),
            &["panicked", "exploded"],
        );
        assert_eq!(err.kind(), ErrorKind::Io);
    }
    let mut npy = Vec::new();
    io::save_to_writer(&mut npy, &sample(Dtype::Int32)).unwrap();
    let mut reader = Faulty { inner: Cursor::new(npy), fail_at: 30, panic: true };
    common::assert_err(io::load_from_reader(&mut reader), &["panicked"]);
}

/// A writer that fails (or panics) after `limit` bytes.
struct FaultyWriter {
    written: usize,
    limit: usize,
    panic: bool,
}

impl Write for FaultyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() > self.limit {
            if self.panic {
                panic!("writer exploded");
            }
            return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left"));
        }
        self.written += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn writer_errors_and_panics_are_errors() {
    let arrays = HashMap::from([("a", sample(Dtype::Float32))]);
    let no_meta: HashMap<String, String> = HashMap::new();
    for limit in [0, 10, 100] {
        let mut w = FaultyWriter { written: 0, limit, panic: false };
        let err = common::assert_err(
            io::save_safetensors_to_writer(&mut w, &arrays, &no_meta),
            &["no space left"],
        );
        assert_eq!(err.kind(), ErrorKind::Io);
        let mut w = FaultyWriter { written: 0, limit, panic: false };
        let err = common::assert_err(io::save_to_writer(&mut w, &arrays["a"]), &["no space left"]);
        assert_eq!(err.kind(), ErrorKind::Io);
        let mut w = FaultyWriter { written: 0, limit, panic: true };
        common::assert_err(
            io::save_safetensors_to_writer(&mut w, &arrays, &no_meta),
            &["panicked", "writer exploded"],
        );
        let mut w = FaultyWriter { written: 0, limit, panic: true };
        common::assert_err(io::save_to_writer(&mut w, &arrays["a"]), &["panicked"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Missing, truncated and corrupt files

#[test]
fn missing_files_and_bad_paths() {
    let dir = TempDir::new("missing");
    let missing = dir.path("nope");
    for err in [
        io::load(missing.with_extension("npy")).map(|_| ()),
        io::load_safetensors(missing.with_extension("safetensors")).map(|_| ()),
        io::load_gguf(missing.with_extension("gguf")).map(|_| ()),
    ] {
        let err = common::assert_err(err, &[]);
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    }
    let no_dir = dir.path("no/such/dir/x.npy");
    assert_eq!(
        common::assert_err(io::save(&no_dir, &Array::scalar(1.0f32)), &[]).kind(),
        ErrorKind::Io
    );

    let nul = Path::new("bad\0name.npy");
    let err = common::assert_err(io::load(nul), &["NUL"]);
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    common::assert_err(io::save(nul, &Array::scalar(1.0f32)), &["NUL"]);
    common::assert_err(io::load_safetensors(nul), &["NUL"]);
    common::assert_err(io::load_gguf(nul), &["NUL"]);

    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bad = Path::new(std::ffi::OsStr::from_bytes(b"bad\xffname.npy"));
        let err = common::assert_err(io::load(bad), &["UTF-8"]);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        common::assert_err(
            io::save_safetensors(
                bad,
                &HashMap::<String, Array>::new(),
                &HashMap::<String, String>::new(),
            ),
            &["UTF-8"],
        );
    }
}

/// Loads from an in-memory reader.
type ReaderLoad = dyn Fn(&mut Cursor<Vec<u8>>) -> mlx_rs::Result<()>;

/// Every proper prefix of `bytes`, written to a file, fails to load through `load` (path) and
/// through `from_reader` (when given).
fn check_truncations(
    dir: &TempDir,
    name: &str,
    bytes: &[u8],
    load: impl Fn(&Path) -> mlx_rs::Result<()>,
    from_reader: Option<&ReaderLoad>,
) {
    let path = dir.path(name);
    for len in 0..bytes.len() {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let result = load(&path);
        let err = result.expect_err(&format!("{name} truncated to {len} bytes loaded"));
        assert_eq!(err.kind(), ErrorKind::Io, "{name}[..{len}]: {err}");
        if let Some(from_reader) = from_reader {
            let err = from_reader(&mut Cursor::new(bytes[..len].to_vec()))
                .expect_err(&format!("{name} truncated to {len} bytes loaded from a reader"));
            assert_eq!(err.kind(), ErrorKind::Io, "reader {name}[..{len}]: {err}");
        }
    }
    // MLX still works, and the whole file still loads.
    std::fs::write(&path, bytes).unwrap();
    load(&path).unwrap();
    common::assert_err::<()>(Err(mlx_rs::Error::invalid("probe", "probe")), &["probe"]);
}

#[test]
fn truncated_safetensors_fail() {
    let dir = TempDir::new("trunc_st");
    let load = |p: &Path| {
        let (arrays, _) = io::load_safetensors(p)?;
        arrays.values().try_for_each(Array::eval)
    };
    let from_reader = |r: &mut Cursor<Vec<u8>>| io::load_safetensors_from_reader(r).map(|_| ());
    check_truncations(&dir, "a.safetensors", SAFETENSORS, load, Some(&from_reader));
    let err =
        io::load_safetensors(dir.file("t.safetensors", &SAFETENSORS[..SAFETENSORS.len() - 3]))
            .unwrap_err();
    assert!(err.to_string().contains("incomplete download or corrupt file"), "{err}");
}

#[test]
fn truncated_npy_fail() {
    let dir = TempDir::new("trunc_npy");
    for (name, bytes) in NPYS {
        let load = |p: &Path| io::load(p)?.eval();
        let from_reader = |r: &mut Cursor<Vec<u8>>| io::load_from_reader(r).map(|_| ());
        check_truncations(&dir, name, bytes, load, Some(&from_reader));
    }
    let (_, f32_npy) = NPYS[0];
    let err = io::load(dir.file("t.npy", &f32_npy[..f32_npy.len() - 1])).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn truncated_gguf_fail() {
    let dir = TempDir::new("trunc_gguf");
    let load = |p: &Path| io::load_gguf(p).map(|_| ());
    check_truncations(&dir, "m.gguf", GGUF, load, None);
}

#[test]
fn garbage_files_fail() {
    let dir = TempDir::new("garbage");
    // Deterministic pseudo-random bytes.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut garbage = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    for n in [1, 8, 64, 300, 4096] {
        let bytes = garbage(n);
        let p = dir.file("g.safetensors", &bytes);
        assert_eq!(common::assert_err(io::load_safetensors(&p), &[]).kind(), ErrorKind::Io);
        common::assert_err(io::load_safetensors_from_reader(&mut Cursor::new(bytes.clone())), &[]);
        let p = dir.file("g.npy", &bytes);
        assert_eq!(common::assert_err(io::load(&p), &[]).kind(), ErrorKind::Io);
        common::assert_err(io::load_from_reader(&mut Cursor::new(bytes.clone())), &[]);
        let p = dir.file("g.gguf", &bytes);
        assert_eq!(common::assert_err(io::load_gguf(&p), &[]).kind(), ErrorKind::Io);

        // Right magic, garbage after it (MLX 0.32.2 alone crashes on this one).
        let mut gguf = b"GGUF\x03\x00\x00\x00".to_vec();
        gguf.extend(&bytes);
        let p = dir.file("m.gguf", &gguf);
        common::assert_err(io::load_gguf(&p), &["not a valid GGUF file"]);
        // A safetensors header length that claims more than the file.
        let mut st = (bytes.len() as u64 + 100).to_le_bytes().to_vec();
        st.extend(&bytes);
        let p = dir.file("h.safetensors", &st);
        common::assert_err(io::load_safetensors(&p), &[]);
        // An npy magic followed by garbage.
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend(&bytes);
        let p = dir.file("h.npy", &npy);
        common::assert_err(io::load(&p).and_then(|a| a.eval()), &[]);
    }
}

#[test]
fn corrupt_gguf_bytes_never_crash() {
    // Every single byte of the header region set to 0xff or 0x00 in turn: loading may succeed
    // (the byte was data) or fail, but never crashes.
    let dir = TempDir::new("corrupt_gguf");
    let path = dir.path("c.gguf");
    let header_end = GGUF.len().min(400);
    let mut failures = 0;
    for at in 0..header_end {
        for value in [0xffu8, 0x00, 0x7f, 0x04, 0x80] {
            let mut bytes = GGUF.to_vec();
            bytes[at] = value;
            std::fs::write(&path, &bytes).unwrap();
            if let Err(e) = io::load_gguf(&path) {
                assert_eq!(e.kind(), ErrorKind::Io, "byte {at} = {value:#x}: {e}");
                failures += 1;
            }
        }
    }
    assert!(failures > 0);
    common::assert_err::<()>(Err(mlx_rs::Error::invalid("probe", "probe")), &["probe"]);
}

/// Deterministic pseudo-random numbers (xorshift).
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// Loads `count` copies of `bytes` with 1 to 3 random bytes changed among the first `span`:
/// each load may succeed or fail, but must not crash.
fn fuzz(
    name: &str,
    bytes: &[u8],
    span: usize,
    count: usize,
    load: impl Fn(&Path) -> mlx_rs::Result<()>,
) {
    let dir = TempDir::new(&format!("fuzz_{name}"));
    let path = dir.path(name);
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..count {
        let mut copy = bytes.to_vec();
        for _ in 0..1 + next() % 3 {
            let at = (next() as usize) % span.min(copy.len());
            copy[at] = next() as u8;
        }
        std::fs::write(&path, &copy).unwrap();
        if let Err(e) = load(&path) {
            assert!(matches!(e.kind(), ErrorKind::Io), "{name}: {e}");
        }
    }
    common::assert_err::<()>(Err(mlx_rs::Error::invalid("probe", "probe")), &["probe"]);
}

#[test]
fn corrupt_files_never_crash() {
    fuzz("f.gguf", GGUF, 400, 3000, |p| io::load_gguf(p).map(|_| ()));
    fuzz("f.safetensors", SAFETENSORS, 1000, 3000, |p| {
        let (arrays, _) = io::load_safetensors(p)?;
        arrays.values().try_for_each(Array::eval)
    });
    for (name, bytes) in NPYS {
        fuzz(name, bytes, 64, 600, |p| io::load(p)?.eval());
    }
}
