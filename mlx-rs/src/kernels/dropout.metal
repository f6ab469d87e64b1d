// Dropout's mask and scale in one pass for Metal (mlx-rs, `kernels::dropout`), the twin of
// dropout.cu: out[i] = float(bits[i]) < threshold[0] ? x[i] * scale[0] : 0 * x[i], rounded to T.

namespace mlx_rs_elementwise {

inline float drop(uint bits, float x, float threshold, float scale) {
  return static_cast<float>(bits) < threshold ? x * scale : 0.0f * x;
}

} // namespace mlx_rs_elementwise
