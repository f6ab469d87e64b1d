// Dropout's mask and scale in one pass (mlx-rs, `kernels::dropout`), from the random bits that
// `random::bernoulli` would compare:
// out[i] = float(bits[i]) < threshold ? x[i] * scale : 0 * x[i], rounded to T, where
// threshold[0] = keep * nextafter(2^32, inf) in float32 (as bernoulli computes it) and
// scale[0] = 1 / keep already rounded to T. This is exactly MLX's
// (bernoulli(keep) * x) * scale: the mask times x is exact, x * scale is exact in float32 for
// bfloat16 and float16, so one rounding gives the same value; 0 * x keeps -0 and NaN.
// Needs elementwise.cu before it.

namespace mlx_rs_elementwise {

__device__ inline float drop(unsigned int bits, float x, float threshold, float scale) {
  return static_cast<float>(bits) < threshold ? x * scale : 0.0f * x;
}

template <typename T>
__device__ void dropout(
    const T* x,
    const unsigned int* bits,
    const float* threshold_in,
    const float* scale_in,
    T* out,
    long long n) {
  constexpr int W = Width<T>;
  long long first = first_element<T>();
  if (first >= n) {
    return;
  }
  float threshold = threshold_in[0];
  float scale = scale_in[0];
  if (first + W <= n && aligned16(x) && aligned16(bits) && aligned16(out)) {
    Pack<T, W> v = *reinterpret_cast<const Pack<T, W>*>(x + first);
    Pack<unsigned int, W> b = *reinterpret_cast<const Pack<unsigned int, W>*>(bits + first);
    Pack<T, W> r;
#pragma unroll
    for (int j = 0; j < W; ++j) {
      r.v[j] = from_float<T>(drop(b.v[j], to_float(v.v[j]), threshold, scale));
    }
    *reinterpret_cast<Pack<T, W>*>(out + first) = r;
  } else {
    long long last = first + W < n ? first + W : n;
    for (long long i = first; i < last; ++i) {
      out[i] = from_float<T>(drop(bits[i], to_float(x[i]), threshold, scale));
    }
  }
}

} // namespace mlx_rs_elementwise
