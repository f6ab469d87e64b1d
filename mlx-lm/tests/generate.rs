//! Generation on the model fixtures: greedy decoding (chunked prefill, pipelined decode) equal
//! to mlx-lm's recorded continuation, speculative decoding equal to plain greedy, stop
//! conditions and figures, and prompt-cache reuse.

mod common;

use std::collections::HashMap;

use mlx_lm::generate::{FinishReason, SpeculativeTokenStream};
use mlx_lm::sample::{LogitsProcessorSettings, SamplerSettings};
use mlx_lm::{GenerateOptions, Generation, LoadedModel, TokenStream, load_model};
use mlx_rs::nn::cache::{load_prompt_cache, save_prompt_cache};

fn fixture(name: &str) -> (LoadedModel, common::Expected) {
    (load_model(common::fixture_dir(name)).unwrap(), common::expected(name))
}

fn ids(v: &[i32]) -> Vec<u32> {
    v.iter().map(|&x| x as u32).collect()
}

fn options(max_tokens: usize, prefill_step_size: usize) -> GenerateOptions {
    GenerateOptions { max_tokens: Some(max_tokens), prefill_step_size, ..Default::default() }
}

fn greedy_stream(loaded: &LoadedModel, prompt: &[u32], opts: GenerateOptions) -> Vec<u32> {
    TokenStream::new(loaded.model.as_ref(), prompt, None, opts)
        .unwrap()
        .map(|t| t.unwrap().id)
        .collect()
}

#[test]
fn greedy_tokens_equal_mlx_lm_with_any_prefill_chunking() {
    for name in ["llama_f32", "llama_q4", "mistral_f32"] {
        let (loaded, want) = fixture(name);
        for step in [2048, 3, 1] {
            let got = greedy_stream(&loaded, &ids(&want.prompt), options(20, step));
            assert_eq!(got, ids(&want.greedy), "{name}, prefill step {step}");
        }
    }
}

#[test]
fn prefill_progress_is_reported_per_chunk() {
    let (loaded, want) = fixture("llama_f32");
    let mut seen = Vec::new();
    let stream = TokenStream::new(loaded.model.as_ref(), &ids(&want.prompt), None, options(2, 4))
        .unwrap()
        .on_prefill_progress(|done, total| seen.push((done, total)));
    assert_eq!(stream.count(), 2);
    // 10 prompt tokens, as mlx-lm splits them: chunks of 4, 4 and 1, then the last token goes
    // with the first decode step.
    assert_eq!(seen, [(0, 10), (4, 10), (8, 10), (9, 10), (10, 10)]);
}

#[test]
fn speculative_output_equals_plain_greedy() {
    let (main, want) = fixture("llama_f32");
    let (other, _) = fixture("llama_q4");
    let prompt = ids(&want.prompt);
    for (draft, label) in [(&main, "self-draft"), (&other, "other draft")] {
        for k in [1, 2, 3] {
            let opts = GenerateOptions { num_draft_tokens: k, ..options(20, 2048) };
            let tokens: Vec<_> = SpeculativeTokenStream::new(
                main.model.as_ref(),
                draft.model.as_ref(),
                &prompt,
                opts,
            )
            .unwrap()
            .map(|t| t.unwrap())
            .collect();
            let got: Vec<u32> = tokens.iter().map(|t| t.id).collect();
            assert_eq!(got, ids(&want.greedy), "{label}, {k} draft tokens");
            let drafted = tokens.iter().filter(|t| t.from_draft).count();
            if label == "self-draft" {
                // A model drafting for itself is always right: k of every k + 1 tokens.
                assert!(drafted >= 20 * k / (k + 1) - 1, "{label}: {drafted} drafted");
            }
        }
    }
}

#[test]
fn penalties_give_mlx_lms_tokens_plain_and_speculative() {
    // Goldens from mlx-lm's own loops (golden/gen_generate.py). mlx-lm's speculative loop shows
    // its processors another history than the plain loop (the prompt but its last token is left
    // out, drafts come and go), so the two differ; each port matches its mlx-lm loop.
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("golden/generate.json")).unwrap();
    let list = |key: &str| -> Vec<u32> {
        golden[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
    };
    let (main, want) = fixture("llama_f32");
    let (q4, _) = fixture("llama_q4");
    let prompt = ids(&want.prompt);
    let processors = LogitsProcessorSettings {
        repetition_penalty: Some(1.5),
        repetition_context_size: 6,
        presence_penalty: Some(0.5),
        presence_context_size: 20,
        ..Default::default()
    };
    let opts =
        GenerateOptions { logits_processors: processors, num_draft_tokens: 3, ..options(20, 4) };
    let plain: Vec<u32> = TokenStream::new(main.model.as_ref(), &prompt, None, opts.clone())
        .unwrap()
        .map(|t| t.unwrap().id)
        .collect();
    assert_eq!(plain, list("plain"));
    assert_ne!(plain, ids(&want.greedy), "the penalties change the continuation");
    for (draft, key) in [(&main, "speculative_self"), (&q4, "speculative_q4")] {
        let got: Vec<u32> = SpeculativeTokenStream::new(
            main.model.as_ref(),
            draft.model.as_ref(),
            &prompt,
            opts.clone(),
        )
        .unwrap()
        .map(|t| t.unwrap().id)
        .collect();
        assert_eq!(got, list(key), "{key}");
    }
}

#[test]
fn eos_and_max_tokens_end_generation_with_mlx_lms_counts() {
    let (loaded, want) = fixture("llama_f32");
    let prompt = ids(&want.prompt);
    let eos = want.greedy[5] as u32;
    let first = want.greedy.iter().position(|&t| t as u32 == eos).unwrap();
    let responses: Vec<_> =
        Generation::new(loaded.model.as_ref(), None, None, &prompt, &[eos], options(20, 2048))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
    assert_eq!(responses.len(), first + 1);
    let last = responses.last().unwrap();
    assert_eq!((last.token, last.finish_reason), (eos, Some(FinishReason::Stop)));
    // The EOS token counts as generated, as in mlx-lm's stream_generate.
    assert_eq!(last.generation_tokens, first + 1);
    assert_eq!(last.prompt_tokens, 10);
    assert!(last.prompt_tps > 0.0 && last.generation_tps > 0.0 && last.peak_memory_gb > 0.0);
    let report = last.report();
    assert!(report.starts_with("Prompt: 10 tokens, "), "{report}");
    assert!(report.contains("\nGeneration: ") && report.contains(" tokens-per-sec\nPeak memory: "));

    let responses: Vec<_> =
        Generation::new(loaded.model.as_ref(), None, None, &prompt, &[], options(7, 2048))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
    assert_eq!(responses.len(), 7);
    assert_eq!(responses[6].finish_reason, Some(FinishReason::Length));
    assert!(responses[..6].iter().all(|r| r.finish_reason.is_none()));
    let got: Vec<u32> = responses.iter().map(|r| r.token).collect();
    assert_eq!(got, ids(&want.greedy[..7]));

    let err = Generation::new(loaded.model.as_ref(), None, None, &prompt, &[], options(0, 2048));
    assert!(err.unwrap_err().to_string().contains("max_tokens"));
    let err = Generation::new(loaded.model.as_ref(), None, None, &[], &[], options(5, 2048));
    assert!(err.unwrap_err().to_string().contains("no tokens"));
}

#[test]
fn a_cached_prefix_continues_like_the_whole_prompt() {
    let (loaded, want) = fixture("mistral_f32");
    let model = loaded.model.as_ref();
    let prompt = ids(&want.prompt);
    let (prefix, rest) = prompt.split_at(6);
    // Prefill the prefix only: one token read, nothing queued after it.
    let mut head = TokenStream::new(model, prefix, None, options(1, 2048)).unwrap();
    assert!(head.next().unwrap().is_ok());
    let cache = head.into_cache();
    assert_eq!(cache[0].offset(), 6);
    let path =
        std::env::temp_dir().join(format!("mlx-lm-prefix-{}.safetensors", std::process::id()));
    save_prompt_cache(&path, &cache, &HashMap::new()).unwrap();
    for cache in [cache, load_prompt_cache(&path).unwrap()] {
        let got: Vec<u32> = TokenStream::new(model, rest, Some(cache), options(20, 2048))
            .unwrap()
            .map(|t| t.unwrap().id)
            .collect();
        assert_eq!(got, ids(&want.greedy));
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn seeded_sampling_is_reproducible_and_differs_from_greedy() {
    let (loaded, want) = fixture("llama_f32");
    let prompt = ids(&want.prompt);
    let sampled = |seed| {
        let sampler = SamplerSettings { temp: 1.0, seed: Some(seed), ..Default::default() };
        greedy_stream(&loaded, &prompt, GenerateOptions { sampler, ..options(20, 2048) })
    };
    assert_eq!(sampled(7), sampled(7));
    assert_ne!(sampled(7), sampled(8));
    assert_ne!(sampled(7), ids(&want.greedy));
}
