// Gated activations of feed-forward blocks (mlx-rs, `kernels::swiglu`, `kernels::geglu`):
// out[i] = act(gate[i]) * up[i], in float32 with one rounding to T at the end.
//
// Act: 0 silu x / (1 + e^-x); 1 gelu x (1 + erf(x / sqrt 2)) / 2; 2 its tanh approximation
// x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2; 3 the fast one x / (1 + e^(-1.702 x)).
// Needs elementwise.cu before it.

namespace mlx_rs_elementwise {

template <int Act>
__device__ inline float activate(float x) {
  if constexpr (Act == 0) {
    return x / (1.0f + expf(-x));
  } else if constexpr (Act == 1) {
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  } else if constexpr (Act == 2) {
    float inner = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(inner));
  } else {
    return x / (1.0f + expf(-1.702f * x));
  }
}

template <typename T, int Act>
__device__ void gated(const T* gate, const T* up, T* out, long long n) {
  constexpr int W = Width<T>;
  long long first = first_element<T>();
  if (first >= n) {
    return;
  }
  if (first + W <= n && aligned16(gate) && aligned16(up) && aligned16(out)) {
    Pack<T, W> g = *reinterpret_cast<const Pack<T, W>*>(gate + first);
    Pack<T, W> u = *reinterpret_cast<const Pack<T, W>*>(up + first);
    Pack<T, W> r;
#pragma unroll
    for (int j = 0; j < W; ++j) {
      r.v[j] = from_float<T>(activate<Act>(to_float(g.v[j])) * to_float(u.v[j]));
    }
    *reinterpret_cast<Pack<T, W>*>(out + first) = r;
  } else {
    long long last = first + W < n ? first + W : n;
    for (long long i = first; i < last; ++i) {
      out[i] = from_float<T>(activate<Act>(to_float(gate[i])) * to_float(up[i]));
    }
  }
}

} // namespace mlx_rs_elementwise
