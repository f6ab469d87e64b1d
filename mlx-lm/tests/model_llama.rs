//! Llama / Mistral against mlx-lm 0.32.0 on the fixtures of `fixtures/models/gen_llama.py`.

mod common;

#[test]
fn llama_f32_matches_mlx_lm() {
    common::check_fixture("llama_f32", 1e-4, 1e-4);
}

#[test]
fn llama_q4_bf16_matches_mlx_lm() {
    common::check_fixture("llama_q4", 2e-2, 2e-2);
}

#[test]
fn mistral_sliding_window_matches_mlx_lm() {
    common::check_fixture("mistral_f32", 1e-4, 1e-4);
}
