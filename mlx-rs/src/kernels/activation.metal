// Gated activations of feed-forward blocks for Metal (mlx-rs, `kernels::swiglu`,
// `kernels::geglu`), the twin of activation.cu: out[i] = act(gate[i]) * up[i] in float32, one
// rounding to T. Act as there: 0 silu, 1 gelu (erf), 2 gelu tanh approximation, 3 gelu fast.
// Metal has no erf: `erf_approx` is Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).

namespace mlx_rs_elementwise {

inline float erf_approx(float x) {
  float a = metal::abs(x);
  float t = 1.0f / (1.0f + 0.3275911f * a);
  float poly = t * (0.254829592f +
      t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  float y = 1.0f - poly * metal::precise::exp(-a * a);
  return x < 0.0f ? -y : y;
}

template <int Act>
inline float activate(float x) {
  if (Act == 0) {
    return x / (1.0f + metal::precise::exp(-x));
  } else if (Act == 1) {
    return 0.5f * x * (1.0f + erf_approx(x * 0.70710678118654752f));
  } else if (Act == 2) {
    float inner = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + metal::precise::tanh(inner));
  } else {
    return x / (1.0f + metal::precise::exp(-1.702f * x));
  }
}

} // namespace mlx_rs_elementwise
