//! Samplers and logits processors against mlx-lm 0.32.0 (`tests/golden/gen_sample.py`).

use mlx_lm::sample::{
    self, LogitsProcessorSettings, Sampler, SamplerSettings, apply_logits_processors,
    make_logits_processors,
};
use mlx_rs::Array;
use serde_json::Value;

fn golden() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/sample.json"))
            .expect("run tests/golden/gen_sample.py");
    serde_json::from_str(&text).unwrap()
}

fn matrix(v: &Value) -> Array {
    let rows = v.as_array().unwrap();
    let data: Vec<f32> = rows
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32))
        .collect();
    Array::from_slice(&data, &[rows.len() as i32, (data.len() / rows.len()) as i32]).unwrap()
}

fn settings_of(s: &Value, seed: u64) -> SamplerSettings {
    let f = |k: &str, d: f64| s.get(k).and_then(Value::as_f64).unwrap_or(d);
    let i = |k: &str, d: i64| s.get(k).and_then(Value::as_i64).unwrap_or(d) as i32;
    SamplerSettings {
        temp: f("temp", 0.0),
        top_p: f("top_p", 0.0),
        min_p: f("min_p", 0.0),
        min_tokens_to_keep: i("min_tokens_to_keep", 1),
        top_k: i("top_k", 0),
        xtc_probability: f("xtc_probability", 0.0),
        xtc_threshold: f("xtc_threshold", 0.1),
        xtc_special_tokens: s
            .get("xtc_special_tokens")
            .map(|v| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect())
            .unwrap_or_default(),
        seed: Some(seed),
    }
}

#[test]
fn sampler_draws_match_mlx_lm() {
    let g = golden();
    let logprobs = matrix(&g["logprobs"]);
    for case in g["cases"].as_array().unwrap() {
        let settings = settings_of(&case["settings"], case["seed"].as_u64().unwrap());
        let mut sampler = Sampler::new(settings.clone()).unwrap();
        for (step, want) in case["draws"].as_array().unwrap().iter().enumerate() {
            let want: Vec<u32> =
                want.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            let got = sampler.sample(&logprobs).unwrap();
            assert_eq!(got.shape(), &[2]);
            assert_eq!(got.to_vec::<u32>().unwrap(), want, "{settings:?} draw {step}");
        }
    }
}

#[test]
fn sample_bounded_carries_vocab_bound() {
    let g = golden();
    let logprobs = matrix(&g["logprobs"]);
    let mut greedy = Sampler::new(SamplerSettings::default()).unwrap();
    let b = greedy.sample_bounded(&logprobs).unwrap();
    assert_eq!(b.bound(), 32);
    let want = logprobs.argmax(-1, false).unwrap().to_vec::<u32>().unwrap();
    assert_eq!(b.array().to_vec::<u32>().unwrap(), want);
    let mut s =
        Sampler::new(SamplerSettings { temp: 1.0, seed: Some(3), ..Default::default() }).unwrap();
    let b = s.sample_bounded(&logprobs).unwrap();
    assert_eq!(b.bound(), 32);
    assert!(b.array().to_vec::<u32>().unwrap().iter().all(|&t| t < 32));
}

fn assert_rows(got: &Array, want: &Value, what: &str) {
    let got = got.to_vec::<f32>().unwrap();
    let want: Vec<Option<f64>> = want
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(Value::as_f64))
        .collect();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        match w {
            None => assert_eq!(*g, f32::NEG_INFINITY, "{what}[{i}]"),
            Some(w) => assert!(
                (f64::from(*g) - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{what}[{i}]: {g} vs {w}"
            ),
        }
    }
}

#[test]
fn filters_match_mlx_lm() {
    let g = golden();
    let lp = matrix(&g["logprobs"]);
    let f = &g["filters"];
    assert_rows(&sample::apply_top_p(&lp, 0.7).unwrap(), &f["top_p_0_7"], "top_p");
    assert_rows(&sample::apply_min_p(&lp, 0.1, 1).unwrap(), &f["min_p_0_1"], "min_p");
    assert_rows(&sample::apply_min_p(&lp, 0.3, 4).unwrap(), &f["min_p_0_3_keep_4"], "min_p keep");
    assert_rows(&sample::apply_top_k(&lp, 4).unwrap(), &f["top_k_4"], "top_k");
}

#[test]
fn logits_processors_match_mlx_lm() {
    let g = golden();
    let tokens: Vec<i32> =
        g["tokens"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as i32).collect();
    let tokens = Array::from_slice(&tokens, &[tokens.len() as i32]).unwrap();
    let logits = matrix(&g["proc_logits"]);
    for case in g["processors"].as_array().unwrap() {
        let s = &case["settings"];
        let opt = |k: &str| s.get(k).and_then(Value::as_f64);
        let ctx = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(20) as usize;
        let settings = LogitsProcessorSettings {
            logit_bias: s
                .get("logit_bias")
                .map(|v| {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap() as f32))
                        .collect()
                })
                .unwrap_or_default(),
            repetition_penalty: opt("repetition_penalty"),
            repetition_context_size: ctx("repetition_context_size"),
            presence_penalty: opt("presence_penalty"),
            presence_context_size: ctx("presence_context_size"),
            frequency_penalty: opt("frequency_penalty"),
            frequency_context_size: ctx("frequency_context_size"),
        };
        let procs = make_logits_processors(&settings).unwrap();
        let out = apply_logits_processors(&procs, &tokens, &logits).unwrap();
        let want: Vec<Option<f64>> =
            case["out"][0].as_array().unwrap().iter().map(Value::as_f64).collect();
        let got = out.to_vec::<f32>().unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let w = w.unwrap();
            assert!((f64::from(*g) - w).abs() <= 1e-5, "{settings:?} [{i}]: {g} vs {w}");
        }
        // Something changed, and only at the listed tokens (or biased ids).
        assert_ne!(got, logits.to_vec::<f32>().unwrap(), "{settings:?}");
    }
    // No tokens yet: the penalties leave the logits alone.
    let procs = make_logits_processors(&LogitsProcessorSettings {
        repetition_penalty: Some(1.5),
        presence_penalty: Some(1.0),
        frequency_penalty: Some(1.0),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(procs.len(), 3);
    let empty = Array::from_slice::<i32>(&[], &[0]).unwrap();
    let out = apply_logits_processors(&procs, &empty, &logits).unwrap();
    assert_eq!(out.to_vec::<f32>().unwrap(), logits.to_vec::<f32>().unwrap());
}

#[test]
fn bad_settings_are_errors() {
    let bad = [
        SamplerSettings { min_p: 1.5, temp: 1.0, ..Default::default() },
        SamplerSettings { min_tokens_to_keep: 0, ..Default::default() },
        SamplerSettings { temp: -1.0, ..Default::default() },
        SamplerSettings {
            temp: 1.0,
            xtc_probability: 0.5,
            xtc_threshold: 0.7,
            ..Default::default()
        },
        SamplerSettings { temp: 1.0, top_k: -2, ..Default::default() },
    ];
    for s in bad {
        assert!(Sampler::new(s.clone()).is_err(), "{s:?}");
    }
    // top_k must be below the vocabulary: checked when the vocab is known.
    let lp = Array::from_slice(&[-1.0f32, -2.0, -3.0], &[1, 3]).unwrap();
    let mut s =
        Sampler::new(SamplerSettings { temp: 1.0, top_k: 3, ..Default::default() }).unwrap();
    let e = s.sample(&lp).unwrap_err();
    assert!(e.to_string().contains("top_k"), "{e}");
    assert!(
        make_logits_processors(&LogitsProcessorSettings {
            repetition_penalty: Some(-1.0),
            ..Default::default()
        })
        .is_err()
    );
    let procs = make_logits_processors(&LogitsProcessorSettings {
        presence_penalty: Some(1.0),
        ..Default::default()
    })
    .unwrap();
    let two_d = Array::from_slice(&[1i32, 2], &[1, 2]).unwrap();
    assert!(procs[0].apply(&two_d, &lp).is_err());
}

#[test]
fn unseeded_sampler_draws_from_the_global_key_like_mlx_lm() {
    // mlx-lm seeds MLX's global key (`mx.random.seed`) and draws from it: a sampler without a
    // seed does the same. (The only test of this binary that touches the global key.)
    let g = golden();
    let logprobs = matrix(&g["logprobs"]);
    for case in g["cases"].as_array().unwrap().iter().skip(1).take(3) {
        let seed = case["seed"].as_u64().unwrap();
        let settings = SamplerSettings { seed: None, ..settings_of(&case["settings"], seed) };
        let mut sampler = Sampler::new(settings).unwrap();
        mlx_rs::random::seed(seed).unwrap();
        for want in case["draws"].as_array().unwrap() {
            let want: Vec<u32> =
                want.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            assert_eq!(sampler.sample(&logprobs).unwrap().to_vec::<u32>().unwrap(), want);
        }
    }
}
