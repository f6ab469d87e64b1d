//! KV caches against mlx-lm 0.32.0's classes (`tests/golden/gen_kv_cache.py`): contents after
//! scripted updates (crossing the 256 block boundary, rotating, trimming), masks, quantized
//! attention, and prompt-cache files in both directions.

mod common;

use std::collections::HashMap;

use common::{assert_close, assert_err, assert_matches, case, load, on_gpu, values_f64};
use mlx_rs::fast::{self, AttentionMask};
use mlx_rs::nn::cache::{
    self, Cache, CacheMask, KVCache, KeysValues, QuantizedKVCache, RotatingKVCache, StateValue,
};
use mlx_rs::quantization::{self, QuantizationParams};
use mlx_rs::{Array, Dtype, ops};
use serde_json::Value;

const GOLDEN: &str = include_str!("golden/kv_cache.json");
const PROMPT_FILE: &[u8] = include_bytes!("golden/kv_cache/prompt_cache.safetensors");

/// `sin(i * 0.37 + phase)` over `shape`, as the generator computes it.
fn pattern(shape: &[i32], phase: f32) -> Array {
    let n: i32 = shape.iter().product();
    let x = ops::arange(0.0, f64::from(n), 1.0, Dtype::Float32).unwrap();
    (((x * 0.37f32).unwrap() + phase).unwrap()).sin().unwrap().reshape(shape).unwrap()
}

fn ints(v: &Value) -> Vec<i32> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as i32).collect()
}

fn int(v: &Value) -> i32 {
    v.as_i64().unwrap() as i32
}

/// Compares an array with a `{shape, sum, weighted}` digest from the generator.
#[track_caller]
fn assert_digest(a: &Array, d: &Value) {
    assert_eq!(a.shape(), ints(&d["shape"]).as_slice(), "digest shape");
    let flat = values_f64(a);
    let sum: f64 = flat.iter().sum();
    let weighted: f64 = flat.iter().enumerate().map(|(i, x)| x * (i as f64 * 0.01).cos()).sum();
    let tol = if on_gpu() { 1e-3 } else { 1e-6 };
    assert_close(
        &[sum, weighted],
        &[d["sum"].as_f64().unwrap(), d["weighted"].as_f64().unwrap()],
        tol,
        tol,
    );
}

#[track_caller]
fn assert_mask(got: &CacheMask, want: &Value) {
    match (got, want["kind"].as_str().unwrap()) {
        (CacheMask::None, "none") | (CacheMask::Causal, "causal") => {}
        (CacheMask::Array(a), "array") => assert_matches(a, &want["array"], 0.0, 0.0),
        (g, w) => panic!("mask {g:?}, want {w}"),
    }
}

fn state_int(state: &[StateValue], i: usize) -> i32 {
    match &state[i] {
        StateValue::Int(v) => *v as i32,
        other => panic!("state entry {i} is {other:?}"),
    }
}

/// The shape of the key buffer, read through the cache's state.
fn buffer_shape(cache: &dyn Cache) -> Vec<i32> {
    match &cache.state()[0] {
        StateValue::Array(a) => a.shape().to_vec(),
        StateValue::List(parts) => match &parts[0] {
            StateValue::Array(a) => a.shape().to_vec(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

/// Replays a golden script on `cache`, checking every record.
fn replay(cache: &mut dyn Cache, c: &Value) {
    let dims = ints(&c["dims"]);
    let (b, h, d) = (dims[0], dims[1], dims[2]);
    let mut k = 0;
    // The golden floats carry 9 significant digits: within 2e-8 is the same float32 (float32
    // neighbours differ by 6e-8 or more).
    let (rtol, atol) = if on_gpu() { (1e-5, 1e-5) } else { (2e-8, 1e-12) };
    for (step, (op, rec)) in
        c["script"].as_array().unwrap().iter().zip(c["records"].as_array().unwrap()).enumerate()
    {
        let what = format!("step {step}: {op}");
        match op["op"].as_str().unwrap() {
            "update" => {
                let n = int(&op["n"]);
                let keys = pattern(&[b, h, n, d], k as f32);
                let values = pattern(&[b, h, n, d], k as f32 + 0.5);
                k += 1;
                let fetched = cache.update_and_fetch(&keys, &values).unwrap();
                assert_eq!(buffer_shape(cache), ints(&rec["buffer_shape"]), "{what}");
                match fetched {
                    KeysValues::Dense { keys, values } => {
                        for (name, a) in [("keys", &keys), ("values", &values)] {
                            match rec.get(name) {
                                Some(want) => assert_matches(a, want, rtol, atol),
                                None => assert_digest(a, &rec[format!("{name}_digest")]),
                            }
                        }
                    }
                    KeysValues::Quantized { keys, values, group_size, bits } => {
                        assert_eq!((group_size, bits), (int(&c["group_size"]), int(&c["bits"])));
                        assert_eq!(keys.weights.shape(), ints(&rec["fetched_shape"]).as_slice());
                        for (name, q) in [("keys", &keys), ("values", &values)] {
                            let parts = [
                                ("w", &q.weights),
                                ("scales", &q.scales),
                                ("biases", q.biases.as_ref().unwrap()),
                            ];
                            for (part, a) in parts {
                                let full = format!("{name}.{part}");
                                match rec.get(&full) {
                                    // GPU rounding may flip a code: packed words on CPU only.
                                    Some(want) if part == "w" && on_gpu() => {
                                        assert_eq!(a.shape(), common::shape_of(want).as_slice())
                                    }
                                    Some(want) => assert_matches(a, want, rtol, atol),
                                    None if part == "w" && on_gpu() => {}
                                    None => assert_digest(a, &rec[format!("{full}_digest")]),
                                }
                            }
                        }
                    }
                }
            }
            "trim" => assert_eq!(cache.trim(int(&op["n"])), int(&rec["trimmed"]), "{what}"),
            "mask" => {
                let window = op["window"].as_i64().map(|w| w as i32);
                let m = cache
                    .make_mask(int(&op["n"]), window, op["return_array"].as_bool().unwrap())
                    .unwrap();
                assert_mask(&m, &rec["mask"]);
            }
            other => panic!("unknown op {other}"),
        }
        assert_eq!(cache.offset(), int(&rec["offset"]), "{what}: offset");
        assert_eq!(cache.is_trimmable(), rec["trimmable"].as_bool().unwrap(), "{what}: trimmable");
        if let Some(idx) = rec.get("idx") {
            assert_eq!(state_int(&cache.state(), 5), int(idx), "{what}: idx");
        }
    }
}

#[test]
fn kv_cache_decode_across_block_boundary() {
    let g = load(GOLDEN);
    let mut cache = KVCache::new();
    replay(&mut cache, case(&g, "kv_decode"));
    // 250 + 8 + 2 - 1000 (clamped) + 5: the buffer grew to two blocks at position 257.
    assert_eq!(cache.keys().unwrap().shape(), [1, 2, 512, 3]);
    assert_eq!(cache.size(), 5);
}

#[test]
fn kv_cache_multi_block_prefill() {
    let g = load(GOLDEN);
    let mut cache = KVCache::new();
    replay(&mut cache, case(&g, "kv_prefill"));
}

#[test]
fn rotating_caches() {
    let g = load(GOLDEN);
    for name in
        ["rot_prefill_big", "rot_grow_decode", "rot_trim", "rot_keep0_decode", "rot_big_window"]
    {
        let c = case(&g, name);
        let mut cache = RotatingKVCache::new(int(&c["max_size"]), int(&c["keep"])).unwrap();
        replay(&mut cache, c);
        assert_eq!(cache.size(), cache.offset().min(cache.max_size()), "{name}");
    }
}

#[test]
fn quantized_caches() {
    let g = load(GOLDEN);
    for name in ["quant_8", "quant_4"] {
        let c = case(&g, name);
        let mut cache = QuantizedKVCache::with_params(int(&c["group_size"]), int(&c["bits"]));
        replay(&mut cache, c);
    }
    assert_eq!((QuantizedKVCache::new().group_size(), QuantizedKVCache::new().bits()), (64, 8));
}

fn dequantized(q: &quantization::Quantized, group_size: i32, bits: i32) -> Array {
    let params =
        QuantizationParams { group_size: Some(group_size), bits: Some(bits), ..Default::default() };
    quantization::dequantize(q, params, None).unwrap()
}

#[test]
fn quantized_attention_matches_mlx_lm_and_dense_attention() {
    let g = load(GOLDEN);
    let mut checked = 0;
    for (name, c) in g.as_object().unwrap() {
        if !name.starts_with("qsdpa_") {
            continue;
        }
        let (heads, l, t) = (int(&c["heads"]), int(&c["L"]), int(&c["T"]));
        let (gs, bits) = (int(&c["group_size"]), int(&c["bits"]));
        let params =
            QuantizationParams { group_size: Some(gs), bits: Some(bits), ..Default::default() };
        let q = pattern(&[1, heads, l, 64], 0.25);
        let k = pattern(&[1, 2, t, 64], 1.0);
        let v = pattern(&[1, 2, t, 64], 2.0);
        let qk = quantization::quantize(&k, params).unwrap();
        let qv = quantization::quantize(&v, params).unwrap();
        let rows =
            ops::arange(0.0, f64::from(l), 1.0, Dtype::Int32).unwrap().expand_dims(1).unwrap();
        let cols =
            ops::arange(0.0, f64::from(t), 1.0, Dtype::Int32).unwrap().expand_dims(0).unwrap();
        let bool_mask = (&rows % 3).unwrap().not_equal((&cols % 3).unwrap()).unwrap();
        let add_mask = pattern(&[l, t], 0.75);
        let mask = match c["mask"].as_str().unwrap() {
            "none" => AttentionMask::None,
            "causal" => AttentionMask::Causal,
            "bool" => AttentionMask::Array(&bool_mask),
            "additive" => AttentionMask::Array(&add_mask),
            other => panic!("{other}"),
        };
        let out =
            cache::quantized_scaled_dot_product_attention(&q, &qk, &qv, 0.125, mask, gs, bits);
        if common::cuda_qmm_unreliable() {
            // Wrong values or "No implementation for problem shape": an Err at worst, no crash.
            if let Ok(out) = out {
                assert_eq!(out.shape(), q.shape());
            }
            checked += 1;
            continue;
        }
        let out = out.unwrap();
        let tol = if on_gpu() { 2e-3 } else { 1e-5 };
        assert_matches(&out, &c["out"], tol, tol);
        // Dense attention over the dequantized cache computes the same function.
        let dk = dequantized(&qk, gs, bits);
        let dv = dequantized(&qv, gs, bits);
        let dense = fast::scaled_dot_product_attention(&q, &dk, &dv, 0.125, mask, None).unwrap();
        assert_close(&values_f64(&out), &values_f64(&dense), 2e-3, 2e-3);
        // And it stays near attention over the unquantized keys and values.
        let exact = fast::scaled_dot_product_attention(&q, &k, &v, 0.125, mask, None).unwrap();
        let loose = if bits == 8 { 1e-2 } else { 1.5e-1 };
        assert_close(&values_f64(&out), &values_f64(&exact), loose, loose);
        checked += 1;
    }
    assert_eq!(checked, 28);
}

#[test]
fn attention_through_the_cache_dispatches_on_the_kind() {
    let q = pattern(&[1, 4, 1, 64], 0.1);
    let k = pattern(&[1, 2, 9, 64], 0.2);
    let v = pattern(&[1, 2, 9, 64], 0.3);
    let mut dense = KVCache::new();
    let mut quant = QuantizedKVCache::new();
    let d = Cache::update_and_fetch(&mut dense, &k, &v).unwrap();
    let qd = Cache::update_and_fetch(&mut quant, &k, &v).unwrap();
    let a = cache::scaled_dot_product_attention(&q, &d, 0.125, AttentionMask::None, None).unwrap();
    let b = cache::scaled_dot_product_attention(&q, &qd, 0.125, AttentionMask::None, None);
    assert_eq!(a.shape(), [1, 4, 1, 64]);
    if !common::cuda_qmm_unreliable() {
        assert_close(&values_f64(&a), &values_f64(&b.unwrap()), 1e-2, 1e-2);
    }
    let sinks = Array::zeros::<f32>(&[4]).unwrap();
    assert_err(
        cache::scaled_dot_product_attention(&q, &qd, 0.125, AttentionMask::None, Some(&sinks)),
        &["sinks"],
    );
    // to_quantized gives the same cache as quantizing on the way in.
    let converted = dense.to_quantized(64, 8).unwrap();
    assert_eq!(converted.offset(), 9);
    let (ck, _) = match Cache::update_and_fetch(&mut converted.clone(), &k, &v).unwrap() {
        KeysValues::Quantized { keys, values, .. } => (keys, values),
        other => panic!("{other:?}"),
    };
    assert_eq!(ck.weights.shape(), [1, 2, 18, 16]);
}

/// The caches the generator saved, rebuilt here by the same updates.
fn rust_prompt_cache() -> cache::PromptCache {
    fn fill(mut c: Box<dyn Cache>, dims: [i32; 3], ns: &[i32]) -> Box<dyn Cache> {
        let [b, h, d] = dims;
        for (k, &n) in ns.iter().enumerate() {
            let keys = pattern(&[b, h, n, d], k as f32);
            let values = pattern(&[b, h, n, d], k as f32 + 0.5);
            c.update_and_fetch(&keys, &values).unwrap();
        }
        c
    }
    vec![
        fill(Box::new(KVCache::new()), [1, 2, 3], &[260, 1]),
        fill(Box::new(RotatingKVCache::new(16, 4).unwrap()), [1, 2, 3], &[20, 1, 1]),
        fill(Box::new(QuantizedKVCache::new()), [1, 2, 64], &[7, 1]),
        Box::new(KVCache::new()),
    ]
}

fn user_metadata() -> HashMap<String, String> {
    HashMap::from([
        ("model".to_owned(), "tiny".to_owned()),
        ("note".to_owned(), "written by mlx-lm 0.32.0".to_owned()),
    ])
}

#[track_caller]
fn assert_same_state(a: &[StateValue], b: &[StateValue], path: &str) {
    assert_eq!(a.len(), b.len(), "{path}: length");
    for (j, (x, y)) in a.iter().zip(b).enumerate() {
        let p = format!("{path}.{j}");
        match (x, y) {
            (StateValue::Array(x), StateValue::Array(y)) => {
                assert_eq!((x.dtype(), x.shape()), (y.dtype(), y.shape()), "{p}");
                if on_gpu() && !x.dtype().is_integer() {
                    // CUDA kernels round differently; packed words may differ, shapes may not.
                    assert_close(&values_f64(x), &values_f64(y), 0.0, 0.0);
                } else if !on_gpu() {
                    assert!(ops::array_equal(x, y, false).unwrap().item::<bool>().unwrap(), "{p}");
                }
            }
            (StateValue::List(x), StateValue::List(y)) => assert_same_state(x, y, &p),
            (StateValue::Int(x), StateValue::Int(y)) => assert_eq!(x, y, "{p}"),
            (StateValue::None, StateValue::None) => {}
            (x, y) => panic!("{p}: {x:?} vs {y:?}"),
        }
    }
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mlx_rs_kv_cache_{}_{name}.safetensors", std::process::id()))
}

#[test]
fn prompt_cache_written_by_python_loads() {
    let path = temp_path("python");
    std::fs::write(&path, PROMPT_FILE).unwrap();
    let (loaded, meta) = cache::load_prompt_cache_with_metadata(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(meta, user_metadata());
    let classes: Vec<&str> = loaded.iter().map(|c| c.class_name()).collect();
    assert_eq!(classes, ["KVCache", "RotatingKVCache", "QuantizedKVCache", "KVCache"]);
    let ours = rust_prompt_cache();
    for (i, (a, b)) in loaded.iter().zip(&ours).enumerate() {
        assert_same_state(&a.state(), &b.state(), &i.to_string());
        assert_eq!(a.offset(), b.offset());
    }
    assert!(loaded[3].is_empty());
    let rot = loaded[1].as_any().downcast_ref::<RotatingKVCache>().unwrap();
    assert_eq!((rot.max_size(), rot.keep(), rot.idx(), rot.offset()), (16, 4, 6, 22));
    // A loaded cache keeps working: one more position in each.
    let mut loaded = loaded;
    let mut ours = ours;
    for (i, dims) in [[1, 2, 3], [1, 2, 3], [1, 2, 64], [1, 2, 3]].into_iter().enumerate() {
        let [b, h, d] = dims;
        let (k, v) = (pattern(&[b, h, 1, d], 9.0), pattern(&[b, h, 1, d], 9.5));
        loaded[i].update_and_fetch(&k, &v).unwrap();
        ours[i].update_and_fetch(&k, &v).unwrap();
        assert_same_state(&loaded[i].state(), &ours[i].state(), &format!("after update {i}"));
    }
}

#[test]
fn prompt_cache_written_by_rust_matches_the_python_file() {
    let python = temp_path("python_cmp");
    std::fs::write(&python, PROMPT_FILE).unwrap();
    let (py_arrays, py_meta) = mlx_rs::io::load_safetensors(&python).unwrap();
    std::fs::remove_file(&python).ok();
    // Also kept for a check by Python: `python3 gen_kv_cache.py --check-rust PATH`.
    let path = std::env::temp_dir().join("mlx_rs_kv_cache_rust_prompt.safetensors");
    cache::save_prompt_cache(&path, &rust_prompt_cache(), &user_metadata()).unwrap();
    let (arrays, meta) = mlx_rs::io::load_safetensors(&path).unwrap();
    assert_eq!(meta, py_meta, "metadata");
    let mut names: Vec<&String> = arrays.keys().collect();
    let mut py_names: Vec<&String> = py_arrays.keys().collect();
    names.sort();
    py_names.sort();
    assert_eq!(names, py_names);
    for (name, a) in &arrays {
        let b = &py_arrays[name];
        assert_eq!((a.dtype(), a.shape()), (b.dtype(), b.shape()), "{name}");
        if !common::cuda_qmm_unreliable() {
            assert!(ops::array_equal(a, b, false).unwrap().item::<bool>().unwrap(), "{name}");
        }
    }
    // The golden's listing (what Python's `mx.load` saw) agrees.
    let g = load(GOLDEN);
    let listing = case(&g, "prompt_file");
    assert_eq!(listing["arrays"].as_object().unwrap().len(), arrays.len());
    assert_eq!(listing["metadata"]["1.2"], "QuantizedKVCache");
    // And the Rust file loads back.
    let back = cache::load_prompt_cache(&path).unwrap();
    assert_eq!(back.len(), 4);
    assert_same_state(&back[2].state(), &rust_prompt_cache()[2].state(), "2");
}

#[test]
fn prompt_cache_scalars_strings_and_bad_files() {
    // Entries of every kind survive the flattening.
    let caches = rust_prompt_cache();
    let (mut arrays, mut meta) = cache::prompt_cache_entries(&caches, &HashMap::new()).unwrap();
    assert_eq!(meta["2.0"], "");
    assert_eq!(meta["1.0"], "KVCache");
    assert_eq!(arrays["0.2"].dtype(), Dtype::Int32);
    assert_eq!(arrays["0.2"].item::<i32>().unwrap(), 261);
    assert_eq!(arrays["3.0"].shape(), [0]);
    let (back, user) = cache::prompt_cache_from_entries(arrays.clone(), &meta).unwrap();
    assert!(user.is_empty());
    assert_eq!(back[0].offset(), 261);
    // Unknown class.
    meta.insert("1.0".to_owned(), "MambaCache".to_owned());
    assert_err(cache::prompt_cache_from_entries(arrays.clone(), &meta), &["MambaCache"]);
    meta.insert("1.0".to_owned(), "KVCache".to_owned());
    // A missing state entry, a stray array, a bad metadata key.
    let keys = arrays.remove("0.0").unwrap();
    assert_err(cache::prompt_cache_from_entries(arrays.clone(), &meta), &["no entry 0"]);
    arrays.insert("0.0".to_owned(), keys);
    let mut stray = arrays.clone();
    stray.insert("7.0".to_owned(), Array::scalar(1.0f32));
    assert_err(cache::prompt_cache_from_entries(stray, &meta), &["cache 7"]);
    let mut bad = meta.clone();
    bad.insert("format".to_owned(), "mlx".to_owned());
    assert_err(cache::prompt_cache_from_entries(arrays.clone(), &bad), &["format"]);
    // An offset past the buffer.
    let mut far = arrays.clone();
    far.insert("0.2".to_owned(), Array::scalar(100_000i32));
    assert_err(cache::prompt_cache_from_entries(far, &meta), &["offset"]);
}

#[test]
fn caches_reject_bad_shapes_and_trim_as_mlx_lm() {
    let mut cache = KVCache::new();
    let k3 = Array::zeros::<f32>(&[2, 3, 4]).unwrap();
    assert_err(cache.update_and_fetch(&k3, &k3), &["batch, kv_heads"]);
    let k = Array::zeros::<f32>(&[1, 2, 3, 4]).unwrap();
    let v = Array::zeros::<f32>(&[1, 2, 5, 4]).unwrap();
    assert_err(cache.update_and_fetch(&k, &v), &["differ"]);
    cache.update_and_fetch(&k, &k).unwrap();
    let other_heads = Array::zeros::<f32>(&[1, 3, 1, 4]).unwrap();
    assert_err(cache.update_and_fetch(&other_heads, &other_heads), &["fit"]);
    assert_eq!(cache.trim(-4), 0);
    assert_eq!(cache.trim(2), 2);
    assert_eq!(cache.offset(), 1);
    assert_err(RotatingKVCache::new(4, 4).map(|_| ()), &["keep"]);
    let mut q = QuantizedKVCache::new();
    let odd = Array::zeros::<f32>(&[1, 1, 1, 48]).unwrap();
    assert_err(q.update_and_fetch(&odd, &odd), &["group size"]);
    // make_prompt_cache / trim_prompt_cache.
    let mut caches = cache::make_prompt_cache(3, None).unwrap();
    for c in caches.iter_mut() {
        c.update_and_fetch(&k, &k).unwrap();
    }
    assert!(cache::can_trim_prompt_cache(&caches));
    assert_eq!(cache::trim_prompt_cache(&mut caches, 2), 2);
    assert!(caches.iter().all(|c| c.offset() == 1));
    let mut rotating = cache::make_prompt_cache(2, Some(2)).unwrap();
    for c in rotating.iter_mut() {
        for _ in 0..3 {
            c.update_and_fetch(
                &Array::zeros::<f32>(&[1, 2, 1, 4]).unwrap(),
                &Array::zeros::<f32>(&[1, 2, 1, 4]).unwrap(),
            )
            .unwrap();
        }
    }
    assert!(!cache::can_trim_prompt_cache(&rotating));
    assert_eq!(cache::trim_prompt_cache(&mut rotating, 1), 0);
    assert_eq!(rotating[0].nbytes(), 2 * 2 * 2 * 4 * 4);
}
