//! Tokenizer, chat templates and streaming detokenization against Python `tokenizers`, Jinja2
//! and mlx-lm 0.32.0 (`tests/fixtures/gen_tokenizers.py`).

use mlx_lm::tokenizer::{ChatTemplateOptions, DetokenizerKind, Tokenizer};
use serde_json::Value;

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
        .unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn check_fixture(name: &str, kind: DetokenizerKind) {
    let e = &expected()[name];
    let tok = Tokenizer::from_dir(fixtures().join(name)).unwrap();
    assert_eq!(tok.vocab_size() as u64, e["vocab_size"].as_u64().unwrap());
    assert_eq!(tok.eos_token_ids(), ids(&e["eos_token_ids"]).as_slice());
    for s in e["samples"].as_array().unwrap() {
        let text = s["text"].as_str().unwrap();
        let want = ids(&s["ids"]);
        assert_eq!(tok.encode(text, false).unwrap(), want, "{name}: encode {text:?}");
        assert_eq!(tok.encode(text, true).unwrap(), ids(&s["ids_special"]), "{name}: {text:?}");
        assert_eq!(tok.decode(&want, false).unwrap(), s["decoded"].as_str().unwrap());

        // Streaming: after each token the text holds at least mlx-lm's (it may run ahead: a
        // complete character is emitted even when the next bytes are still incomplete, where
        // mlx-lm waits for them) and is a prefix of the final text.
        let mut d = tok.detokenizer();
        assert_eq!(d.kind(), kind);
        let mut pieces = String::new();
        for (i, (&id, step)) in want.iter().zip(s["stream_steps"].as_array().unwrap()).enumerate() {
            let piece = d.add_token(id).unwrap();
            pieces.push_str(&piece);
            let ours = d.text();
            let theirs = step.as_str().unwrap();
            assert!(
                ours.starts_with(theirs),
                "{name}: {text:?} after token {i}: {ours:?} vs {theirs:?}"
            );
            assert!(s["stream_final"].as_str().unwrap().starts_with(ours), "{name}: {text:?} {i}");
        }
        pieces.push_str(&d.finalize().unwrap());
        assert_eq!(pieces, s["stream_final"].as_str().unwrap(), "{name}: {text:?}");
        assert_eq!(d.text(), pieces);
        assert_eq!(d.tokens(), want.as_slice());
    }
}

#[test]
fn byte_level_bpe_matches_python() {
    check_fixture("bpe", DetokenizerKind::Bpe);
    let tok = Tokenizer::from_dir(fixtures().join("bpe")).unwrap();
    let e = &expected()["bpe"];
    assert_eq!(tok.bos_token(), Some("<|bos|>"));
    assert_eq!(tok.eos_token(), Some("<|im_end|>"));
    let im_end = e["special_ids"]["<|im_end|>"].as_u64().unwrap() as u32;
    assert!(tok.is_eos(im_end));
    assert_eq!(tok.token_to_id("<|im_end|>"), Some(im_end));
    // Special tokens are kept by decode unless skipped.
    let with = tok.encode("<|im_start|>hi<|im_end|>", false).unwrap();
    assert_eq!(with.first(), Some(&tok.token_to_id("<|im_start|>").unwrap()), "{with:?}");
    assert_eq!(with.last(), Some(&im_end), "{with:?}");
    assert_eq!(tok.decode(&with, false).unwrap(), "<|im_start|>hi<|im_end|>");
    assert_eq!(tok.decode(&with, true).unwrap(), "hi");
}

#[test]
fn sentencepiece_byte_fallback_matches_python() {
    check_fixture("spm", DetokenizerKind::Spm { trim_space: true });
}

#[test]
fn other_decoders_use_the_naive_detokenizer() {
    // WordPiece: re-decoding the current line, as mlx-lm's naive detokenizer does.
    check_fixture("wordpiece", DetokenizerKind::Naive);
    // Unigram with a Metaspace decoder.
    check_fixture("unigram", DetokenizerKind::Naive);
}

#[test]
fn emoji_appears_with_its_last_byte_token() {
    let tok = Tokenizer::from_dir(fixtures().join("spm")).unwrap();
    let ids = tok.encode("\u{1F600}", false).unwrap();
    let mut d = tok.detokenizer();
    let pieces: Vec<String> = ids.iter().map(|&i| d.add_token(i).unwrap()).collect();
    // "▁" then the four byte tokens of U+1F600.
    assert_eq!(pieces.len(), 5, "{pieces:?}");
    assert_eq!(pieces[..4].concat(), "");
    assert_eq!(pieces[4], "\u{1F600}");
    // An unfinished character at the end is flushed as U+FFFD.
    let mut d = tok.detokenizer();
    for &i in &ids[..3] {
        assert_eq!(d.add_token(i).unwrap(), "");
    }
    assert_eq!(d.finalize().unwrap(), "\u{FFFD}");
    // Ids beyond the vocabulary add nothing instead of failing.
    let mut d = tok.detokenizer();
    assert_eq!(d.add_token(1_000_000).unwrap(), "");
}

#[test]
fn chat_templates_match_jinja2() {
    let e = expected();
    for name in ["bpe", "spm"] {
        let tok = Tokenizer::from_dir(fixtures().join(name)).unwrap();
        assert!(tok.has_chat_template());
        for c in e[name]["chats"].as_array().unwrap() {
            let options = ChatTemplateOptions {
                add_generation_prompt: c["add_generation_prompt"].as_bool().unwrap(),
                tools: c.get("tools").filter(|t| !t.is_null()).cloned(),
                template_name: Some(c["template"].as_str().unwrap().to_string()),
                ..Default::default()
            };
            let got = tok.apply_chat_template(&c["messages"], &options);
            match (&c["result"].get("ok"), got) {
                (Some(want), Ok(got)) => assert_eq!(got, want.as_str().unwrap(), "{name} {c}"),
                (None, Err(err)) => {
                    let want = c["result"]["err"].as_str().unwrap();
                    assert!(err.to_string().contains(want), "{name}: {err} vs {want}");
                }
                (_, got) => panic!("{name} {c}: got {got:?}"),
            }
        }
    }
    let tok = Tokenizer::from_dir(fixtures().join("spm")).unwrap();
    assert_eq!(tok.chat_template_names(), ["default", "tool_use"]);
    assert!(tok.chat_template(Some("nope")).unwrap_err().to_string().contains("default, tool_use"));
}

#[test]
fn chat_prompt_tokens() {
    let tok = Tokenizer::from_dir(fixtures().join("bpe")).unwrap();
    let messages = serde_json::json!([{"role": "user", "content": "Hello!"}]);
    let opts = ChatTemplateOptions { add_generation_prompt: true, ..Default::default() };
    let text = tok.apply_chat_template(&messages, &opts).unwrap();
    let ids = tok.encode_chat(&messages, &opts).unwrap();
    assert_eq!(ids, tok.encode(&text, false).unwrap());
    assert_eq!(ids[0], tok.token_to_id("<|bos|>").unwrap());
    assert_eq!(tok.decode(&ids, false).unwrap(), text);
    // A raw prompt gets BOS once.
    let bos = tok.token_to_id("<|bos|>").unwrap();
    assert_eq!(tok.encode_prompt("Hello").unwrap()[0], bos);
    assert_eq!(
        tok.encode_prompt("<|bos|>Hello").unwrap(),
        tok.encode("<|bos|>Hello", false).unwrap()
    );
    assert_eq!(tok.encode_prompt("<|bos|>Hello").unwrap().iter().filter(|&&i| i == bos).count(), 1);
}

#[test]
fn missing_files_are_errors() {
    let e = Tokenizer::from_dir(fixtures().join("does-not-exist")).unwrap_err().to_string();
    assert!(e.contains("tokenizer.json"), "{e}");
}

#[test]
fn template_constructs_match_jinja2() {
    // Python methods (pycompat), slicing, namespace, loop controls, tests, tojson(indent).
    for s in expected()["snippets"].as_array().unwrap() {
        let ctx =
            serde_json::json!({"messages": s["messages"], "tools": s["tools"], "documents": null});
        let src = s["template"].as_str().unwrap();
        let got = mlx_lm::tokenizer::render_chat_template(src, &ctx)
            .unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(got, s["result"].as_str().unwrap(), "{src}");
    }
}
