//! `config.json` / `generation_config.json` parsing: quantization with overrides, EOS ids, errors.

use mlx_lm::config::{
    self, ModelConfig, ModuleQuantization, PackedWeightInfo, QuantMode, QuantParams,
};

fn parse(text: &str) -> mlx_rs::Result<ModelConfig> {
    ModelConfig::from_json_str(text, "config.json")
}

fn p(group_size: i32, bits: i32, mode: QuantMode) -> QuantParams {
    QuantParams { group_size, bits, mode }
}

#[test]
fn quantization_with_overrides() {
    let c = parse(
        r#"{"model_type": "qwen3_moe", "hidden_size": 64,
            "quantization": {"group_size": 64, "bits": 4, "mode": "affine",
              "model.layers.0.mlp.gate": {"group_size": 64, "bits": 8},
              "model.layers.1.mlp.switch_mlp.up_proj": {"bits": 4, "mode": "mxfp4"},
              "model.embed_tokens": true,
              "lm_head": false},
            "quantization_config": {"group_size": 64, "bits": 4}}"#,
    )
    .unwrap();
    assert_eq!(c.model_type, "qwen3_moe");
    let q = c.quantization.as_ref().unwrap();
    assert_eq!(q.default, p(64, 4, QuantMode::Affine));
    assert_eq!(q.overrides.len(), 4);
    assert_eq!(q.quantization_for("model.layers.0.mlp.gate"), Some(p(64, 8, QuantMode::Affine)));
    // A missing group size takes the mode's default (mxfp4: 32).
    assert_eq!(
        q.quantization_for("model.layers.1.mlp.switch_mlp.up_proj"),
        Some(p(32, 4, QuantMode::Mxfp4))
    );
    assert_eq!(q.quantization_for("model.embed_tokens"), Some(p(64, 4, QuantMode::Affine)));
    assert_eq!(q.quantization_for("lm_head"), None);
    assert_eq!(q.overrides["lm_head"], ModuleQuantization::Skip);
    assert_eq!(q.quantization_for("model.layers.5.self_attn.q_proj"), Some(q.default));

    // mlx-lm's rule for modules without an entry: quantized only when the checkpoint has
    // scales, with the parameters its shapes give.
    assert_eq!(q.resolve("model.layers.5.self_attn.q_proj", None).unwrap(), None);
    let packed = PackedWeightInfo {
        in_dims: 256,
        packed_dims: 256 * 3 / 32,
        scale_groups: 4,
        scales_u8: false,
    };
    assert_eq!(
        q.resolve("model.layers.5.self_attn.q_proj", Some(packed)).unwrap(),
        Some(p(64, 3, QuantMode::Affine))
    );
    assert_eq!(q.resolve("lm_head", Some(packed)).unwrap(), None);
    assert_eq!(
        q.resolve("model.layers.0.mlp.gate", None).unwrap(),
        Some(p(64, 8, QuantMode::Affine))
    );

    #[derive(serde::Deserialize)]
    struct Args {
        hidden_size: i32,
        #[serde(default)]
        rope_theta: Option<f64>,
    }
    let args: Args = c.parse_as().unwrap();
    assert_eq!((args.hidden_size, args.rope_theta), (64, None));
}

#[test]
fn infer_modes_from_packed_shapes() {
    let info = |in_dims, bits, group, u8s| PackedWeightInfo {
        in_dims,
        packed_dims: in_dims * bits / 32,
        scale_groups: in_dims / group,
        scales_u8: u8s,
    };
    assert_eq!(
        config::infer_quant_params("a", info(512, 4, 16, true)).unwrap(),
        p(16, 4, QuantMode::Nvfp4)
    );
    assert_eq!(
        config::infer_quant_params("a", info(512, 4, 32, true)).unwrap(),
        p(32, 4, QuantMode::Mxfp4)
    );
    assert_eq!(
        config::infer_quant_params("a", info(512, 8, 32, true)).unwrap(),
        p(32, 8, QuantMode::Mxfp8)
    );
    assert_eq!(
        config::infer_quant_params("a", info(512, 6, 128, false)).unwrap(),
        p(128, 6, QuantMode::Affine)
    );
    let e = config::infer_quant_params("layers.0.x", info(512, 8, 64, true)).unwrap_err();
    assert!(e.to_string().contains("layers.0.x"), "{e}");
}

#[test]
fn legacy_quantization_config() {
    let c = parse(r#"{"model_type": "gpt_oss", "quantization_config": {"quant_method": "mxfp4"}}"#)
        .unwrap();
    assert_eq!(c.quantization.unwrap().default, p(32, 4, QuantMode::Mxfp4));
    let c = parse(
        r#"{"model_type": "x", "text_config": {"quantization_config":
            {"quant_method": "fp8", "scale_fmt": "ue8m0", "weight_block_size": [32, 32]}}}"#,
    )
    .unwrap();
    assert_eq!(c.quantization.unwrap().default, p(32, 8, QuantMode::Mxfp8));
    let c = parse(r#"{"model_type": "x", "quantization_config": {"group_size": 32, "bits": 8}}"#)
        .unwrap();
    assert_eq!(c.quantization.unwrap().default, p(32, 8, QuantMode::Affine));
    assert_eq!(parse(r#"{"model_type": "x"}"#).unwrap().quantization, None);
    let e = parse(r#"{"model_type": "x", "quantization_config": {"quant_method": "awq"}}"#)
        .unwrap_err();
    assert!(e.to_string().contains("quant_method") && e.to_string().contains("awq"), "{e}");
}

#[test]
fn errors_name_file_and_key() {
    let cases = [
        (r#"{"hidden_size": 3}"#, "`model_type` is missing"),
        (r#"{"model_type": 3}"#, "`model_type` must be a string"),
        (
            r#"{"model_type": "x", "quantization": {"bits": 4}}"#,
            "`quantization.group_size` is missing",
        ),
        (
            r#"{"model_type": "x", "quantization": {"group_size": 64, "bits": "4"}}"#,
            "`quantization.bits` must be a positive integer",
        ),
        (
            r#"{"model_type": "x", "quantization": {"group_size": 64, "bits": 4, "mode": "int3"}}"#,
            "`quantization.mode` unknown mode",
        ),
        (
            r#"{"model_type": "x", "quantization": {"group_size": 64, "bits": 4, "a.b": {"bits": 0}}}"#,
            "`quantization.a.b.bits`",
        ),
        (r#"{"model_type": "x", "eos_token_id": "2"}"#, "`eos_token_id` must be a token id"),
        (r#"{"model_type": "x",}"#, "invalid JSON"),
        ("[1]", "must be a JSON object"),
    ];
    for (text, want) in cases {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains(want), "{text}: {e}");
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Args {
        hidden_size: i32,
    }
    let e = parse(r#"{"model_type": "x", "hidden_size": "big"}"#)
        .unwrap()
        .parse_as::<Args>()
        .unwrap_err();
    assert!(e.to_string().contains("config.json") && e.to_string().contains("invalid type"), "{e}");
}

#[test]
fn eos_ids_from_files() {
    let dir = std::env::temp_dir().join(format!("mlx-lm-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), r#"{"model_type": "llama", "eos_token_id": 2}"#)
        .unwrap();
    assert_eq!(ModelConfig::load(&dir).unwrap().eos_token_ids, [2]);
    // generation_config.json wins when it names EOS ids (int or list).
    std::fs::write(dir.join("generation_config.json"), r#"{"eos_token_id": [128001, 128009]}"#)
        .unwrap();
    assert_eq!(ModelConfig::load(&dir).unwrap().eos_token_ids, [128001, 128009]);
    assert_eq!(
        config::generation_eos_ids(dir.join("generation_config.json")).unwrap(),
        [128001, 128009]
    );
    std::fs::write(dir.join("generation_config.json"), "{not json").unwrap();
    assert_eq!(ModelConfig::load(&dir).unwrap().eos_token_ids, [2]);
    std::fs::remove_file(dir.join("config.json")).unwrap();
    let e = ModelConfig::load(&dir).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
