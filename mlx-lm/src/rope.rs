//! mlx-lm's `initialize_rope`: the rotary embedding a config's `rope_scaling` asks for.

use mlx_rs::nn::{Llama3RopeScaling, RoPE, llama3_rope_frequencies};
use mlx_rs::{Error, Result};
use serde_json::{Map, Value};

/// The rotary embedding over `dims` features for `rope_scaling` (`None`, or a `type` /
/// `rope_type` of `default`, `linear` or `llama3`); other scalings are an error naming them.
pub fn initialize_rope(
    dims: i32,
    base: f32,
    traditional: bool,
    scaling: Option<&Map<String, Value>>,
) -> Result<RoPE> {
    let Some(scaling) = scaling else {
        return RoPE::new(dims, traditional, base, 1.0);
    };
    let rope_type = ["type", "rope_type"]
        .iter()
        .find_map(|k| scaling.get(*k).and_then(Value::as_str))
        .unwrap_or("default");
    let number = |key: &str| -> Result<Option<f32>> {
        match scaling.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(|x| Some(x as f32)).ok_or_else(|| {
                Error::invalid("rope_scaling", format!("`{key}` must be a number, got {v}"))
            }),
        }
    };
    let factor = || {
        number("factor")?.ok_or_else(|| {
            Error::invalid("rope_scaling", format!("`{rope_type}` scaling needs a `factor`"))
        })
    };
    match rope_type {
        "default" => RoPE::new(dims, traditional, base, 1.0),
        "linear" => RoPE::new(dims, traditional, base, 1.0 / factor()?),
        "llama3" => {
            let mut params = Llama3RopeScaling::new(factor()?);
            if let Some(x) = number("low_freq_factor")? {
                params.low_freq_factor = x;
            }
            if let Some(x) = number("high_freq_factor")? {
                params.high_freq_factor = x;
            }
            if let Some(x) = number("original_max_position_embeddings")? {
                params.original_max_position_embeddings = x;
            }
            let freqs = llama3_rope_frequencies(dims, base, params)?;
            RoPE::with_frequencies(dims, traditional, freqs, 1.0)
        }
        other => Err(Error::invalid(
            "rope_scaling",
            format!("unsupported rope type `{other}` (supported: default, linear, llama3)"),
        )),
    }
}
