// Quantized expert matrix-vector products for decode (mlx-rs, `kernels::gather_qmv`).
//
// out[p, n] = x[p / PairsPerRow, :] . dequantize(w[experts[p], n, :]) for a few (token, expert)
// pairs in any order; needs convert.cu and quantized_codes.cu before it. One warp per output
// element: its lanes stream the weight row in chunks of eight codes (`Bits` bytes) with the
// matching eight activations, and the warp sums in float32. A chunk lies in one quantization
// group (groups are at least 32 wide), so each chunk costs one scale and one bias:
// scale * sum(q x) + bias * sum(x). With `Glu`, the warp reads the gate and the up rows and
// writes silu(gate) * up of the rounded projections, rounded once (as `kernels::swiglu`).
// With `Dense`, `w` is one matrix and `experts` is not read (`kernels::quantized_matvec`).

namespace mlx_rs_kernels {

using mlx_rs_convert::from_float;
using mlx_rs_convert::to_float;
using mlx_rs_codes::load_codes;
using mlx_rs_codes::Pack8;

// One weight row's chunk at input column k against the activations `xf` (sum `xsum`).
template <typename T, int Bits, int GroupSize, int K>
__device__ inline float qmv_chunk(
    const unsigned char* w_row,
    const T* s_row,
    const T* b_row,
    int k,
    const float* xf,
    float xsum) {
  constexpr unsigned long long MASK = (1ull << Bits) - 1;
  const unsigned long long codes = load_codes<Bits>(w_row + k * Bits / 8);
  float dot = 0.0f;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    dot = fmaf(static_cast<float>((codes >> (Bits * j)) & MASK), xf[j], dot);
  }
  const int g = k / GroupSize;
  return fmaf(to_float(s_row[g]), dot, to_float(b_row[g]) * xsum);
}

__device__ inline float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  return v;
}

// Blocks of 256 threads (8 warps, 8 output columns) over (ceil(N / 8), pairs).
template <
    typename T,
    int Bits,
    int GroupSize,
    int N,
    int K,
    int PairsPerRow,
    bool Glu,
    bool Dense>
__device__ void gather_qmv(
    const T* x,
    const uint32_t* experts,
    const uint32_t* w,
    const T* scales,
    const T* biases,
    const uint32_t* w_up,
    const T* scales_up,
    const T* biases_up,
    T* out,
    int num_rows,
    int num_experts) {
  constexpr int ROW_BYTES = K * Bits / 8;
  constexpr int GROUPS = K / GroupSize;
  static_assert(K % 8 == 0 && K % GroupSize == 0 && GroupSize % 8 == 0, "unsupported shape");
  const int lane = threadIdx.x % 32;
  const int n = blockIdx.x * 8 + threadIdx.x / 32;
  const int p = blockIdx.y;
  if (n >= N) {
    return;
  }
  // Clamped, so that no index value can read outside the arrays. `Dense`: one matrix, row p.
  const size_t e = Dense ? 0 : min(experts[p], static_cast<uint32_t>(num_experts - 1));
  const size_t r = min(p / PairsPerRow, num_rows - 1);
  const size_t row = e * N + n;
  const T* xr = x + r * K;
  const unsigned char* w_row = reinterpret_cast<const unsigned char*>(w) + row * ROW_BYTES;
  const unsigned char* u_row = reinterpret_cast<const unsigned char*>(w_up) + row * ROW_BYTES;
  float acc = 0.0f;
  float acc_up = 0.0f;
#pragma unroll 4
  for (int k = lane * 8; k < K; k += 256) {
    const Pack8<T> xv = *reinterpret_cast<const Pack8<T>*>(xr + k);
    float xf[8];
    float xsum = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      xf[j] = to_float(xv.v[j]);
      xsum += xf[j];
    }
    acc += qmv_chunk<T, Bits, GroupSize, K>(
        w_row, scales + row * GROUPS, biases + row * GROUPS, k, xf, xsum);
    if constexpr (Glu) {
      acc_up += qmv_chunk<T, Bits, GroupSize, K>(
          u_row, scales_up + row * GROUPS, biases_up + row * GROUPS, k, xf, xsum);
    }
  }
  acc = warp_sum(acc);
  if constexpr (Glu) {
    acc_up = warp_sum(acc_up);
  }
  if (lane == 0) {
    T y = from_float<T>(acc);
    if constexpr (Glu) {
      // As `kernels::swiglu` of the rounded projections: one rounding at the end.
      const float g = to_float(y);
      y = from_float<T>(g / (1.0f + expf(-g)) * to_float(from_float<T>(acc_up)));
    }
    out[static_cast<size_t>(p) * N + n] = y;
  }
}

} // namespace mlx_rs_kernels
