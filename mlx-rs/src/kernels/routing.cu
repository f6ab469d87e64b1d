// Fused mixture-of-experts routing (mlx-rs, `kernels::routing`; `routing.metal` is the same
// design in Metal).
//
// One warp per token row of router logits [rows, E] (E <= 256): lane l holds experts
// l, l + 32, l + 64, ... (at most 8 per lane, in registers). The top K (K <= 16) are chosen by K
// rounds of a warp argmax over the experts not chosen yet, so the K experts are distinct and in
// range. Order: the larger key first; equal keys by the lower expert index first; NaN keys rank
// as -inf. Outputs are written in that order.
//
// - softmax_topk (Qwen3-MoE): p = softmax(x) in f32, rounded to T as MLX's precise softmax
//   returns it; the top K of p; weights p (optionally divided by their sum, in T's rounding).
// - topk_softmax (Mixtral): the top K of x; weights softmax over the K chosen, in f32, rounded to T.
// - grouped_topk (GLM-4.5): s = sigmoid(x) in f32, keys s + bias; with GROUPS > 1 groups of
//   E / GROUPS experts are rated by the sum of their two best keys and the keys of all but the
//   best KEEP groups become 0; the top K keys; weights s of the chosen (divided by their sum
//   when NORM and K > 1), times scale, in f32.
//
// gather_add: out[t, d] = sum_j scores[t, j] * y[t, j, d], accumulated in f32, one thread per
// output element.

namespace mlx_rs_routing {

constexpr int kWarp = 32;
constexpr unsigned kFull = 0xffffffffu;

__device__ inline float neg_inf() {
  return __int_as_float(0xff800000);
}

using mlx_rs_convert::from_float;
using mlx_rs_convert::to_float;

// `v` rounded to T, as a float.
template <typename T>
__device__ inline float rounded(float v) {
  return to_float(from_float<T>(v));
}

// The selection key of a value: NaN ranks as -inf.
__device__ inline float key_of(float v) {
  return isnan(v) ? neg_inf() : v;
}

// True when (key a, expert ia) ranks before (key b, expert ib).
__device__ inline bool ranks_before(float a, int ia, float b, int ib) {
  return a > b || (a == b && ia < ib);
}

__device__ inline float warp_max(float v) {
#pragma unroll
  for (int off = kWarp / 2; off > 0; off /= 2) {
    v = fmaxf(v, __shfl_xor_sync(kFull, v, off));
  }
  return v;
}

__device__ inline float warp_sum(float v) {
#pragma unroll
  for (int off = kWarp / 2; off > 0; off /= 2) {
    v += __shfl_xor_sync(kFull, v, off);
  }
  return v;
}

// The top K of this lane's keys (expert lane + 32 s in slot s; slots of experts >= E are
// ignored): experts in `index`, the payloads of the chosen slots in `value`, the same in every
// lane.
template <int E, int K, int S>
__device__ inline void warp_topk(
    const float (&key)[S], const float (&payload)[S], int lane, int (&index)[K],
    float (&value)[K]) {
  unsigned taken = 0;
#pragma unroll
  for (int s = 0; s < S; ++s) {
    if (lane + kWarp * s >= E) {
      taken |= 1u << s;
    }
  }
#pragma unroll
  for (int r = 0; r < K; ++r) {
    float best = neg_inf();
    int best_index = E;  // ranks after every expert
    float best_payload = 0.0f;
#pragma unroll
    for (int s = 0; s < S; ++s) {
      const int e = lane + kWarp * s;
      if (!((taken >> s) & 1u) && ranks_before(key[s], e, best, best_index)) {
        best = key[s];
        best_index = e;
        best_payload = payload[s];
      }
    }
#pragma unroll
    for (int off = kWarp / 2; off > 0; off /= 2) {
      const float other = __shfl_xor_sync(kFull, best, off);
      const int other_index = __shfl_xor_sync(kFull, best_index, off);
      const float other_payload = __shfl_xor_sync(kFull, best_payload, off);
      if (ranks_before(other, other_index, best, best_index)) {
        best = other;
        best_index = other_index;
        best_payload = other_payload;
      }
    }
    // K <= E, so a free expert always exists; the clamp keeps the index in range regardless.
    best_index = min(best_index, E - 1);
    if ((best_index % kWarp) == lane) {
      taken |= 1u << (best_index / kWarp);
    }
    index[r] = best_index;
    value[r] = best_payload;
  }
}

// Lane r < K writes choice r of `row`.
template <int K, typename W>
__device__ inline void write_choice(
    const int (&index)[K], const float (&value)[K], int row, int lane, uint32_t* inds,
    W* weights) {
#pragma unroll
  for (int r = 0; r < K; ++r) {
    if (lane == r) {
      inds[row * K + r] = static_cast<uint32_t>(index[r]);
      weights[row * K + r] = from_float<W>(value[r]);
    }
  }
}

// The warp's row, or -1 past the last one; loads its logits as floats (-inf past E).
template <typename T, int E, int S>
__device__ inline int load_row(const T* logits, int rows, int lane, float (&x)[S]) {
  const int row = static_cast<int>((blockIdx.x * blockDim.x + threadIdx.x) / kWarp);
  if (row >= rows) {
    return -1;
  }
#pragma unroll
  for (int s = 0; s < S; ++s) {
    const int e = lane + kWarp * s;
    x[s] = e < E ? to_float(logits[static_cast<long>(row) * E + e]) : neg_inf();
  }
  return row;
}

template <typename T, int E, int K, bool NORM>
__device__ void softmax_topk(const T* logits, int rows, uint32_t* inds, T* weights) {
  constexpr int S = (E + kWarp - 1) / kWarp;
  const int lane = threadIdx.x % kWarp;
  float x[S];
  const int row = load_row<T, E, S>(logits, rows, lane, x);
  if (row < 0) {
    return;
  }
  float m = neg_inf();
#pragma unroll
  for (int s = 0; s < S; ++s) {
    m = fmaxf(m, x[s]);
  }
  m = warp_max(m);
  float total = 0.0f;
#pragma unroll
  for (int s = 0; s < S; ++s) {
    x[s] = lane + kWarp * s < E ? expf(x[s] - m) : 0.0f;
    total += x[s];
  }
  total = warp_sum(total);
  float key[S];
#pragma unroll
  for (int s = 0; s < S; ++s) {
    x[s] = rounded<T>(x[s] / total);
    key[s] = key_of(x[s]);
  }
  int index[K];
  float value[K];
  warp_topk<E, K, S>(key, x, lane, index, value);
  if constexpr (NORM) {
    float sum = 0.0f;
#pragma unroll
    for (int r = 0; r < K; ++r) {
      sum += value[r];
    }
    sum = rounded<T>(sum);
#pragma unroll
    for (int r = 0; r < K; ++r) {
      value[r] = value[r] / sum;
    }
  }
  write_choice<K, T>(index, value, row, lane, inds, weights);
}

template <typename T, int E, int K>
__device__ void topk_softmax(const T* logits, int rows, uint32_t* inds, T* weights) {
  constexpr int S = (E + kWarp - 1) / kWarp;
  const int lane = threadIdx.x % kWarp;
  float x[S];
  const int row = load_row<T, E, S>(logits, rows, lane, x);
  if (row < 0) {
    return;
  }
  float key[S];
#pragma unroll
  for (int s = 0; s < S; ++s) {
    key[s] = key_of(x[s]);
  }
  int index[K];
  float value[K];
  warp_topk<E, K, S>(key, x, lane, index, value);
  float m = neg_inf();
#pragma unroll
  for (int r = 0; r < K; ++r) {
    m = fmaxf(m, value[r]);
  }
  float total = 0.0f;
#pragma unroll
  for (int r = 0; r < K; ++r) {
    value[r] = expf(value[r] - m);
    total += value[r];
  }
#pragma unroll
  for (int r = 0; r < K; ++r) {
    value[r] = value[r] / total;
  }
  write_choice<K, T>(index, value, row, lane, inds, weights);
}

// `scratch` holds E floats per warp of the block (used when groups are dropped).
template <typename T, int E, int K, int GROUPS, int KEEP, bool NORM>
__device__ void grouped_topk(
    const T* logits, const float* bias, float scale, int rows, float* scratch, uint32_t* inds,
    float* weights) {
  constexpr int S = (E + kWarp - 1) / kWarp;
  const int lane = threadIdx.x % kWarp;
  float x[S];
  const int row = load_row<T, E, S>(logits, rows, lane, x);
  if (row < 0) {
    return;
  }
  float key[S];
#pragma unroll
  for (int s = 0; s < S; ++s) {
    const int e = lane + kWarp * s;
    x[s] = 1.0f / (1.0f + expf(-x[s]));
    key[s] = e < E ? x[s] + bias[e] : neg_inf();
  }
  if constexpr (GROUPS > 1 && KEEP < GROUPS) {
    constexpr int SIZE = E / GROUPS;
    float* own = scratch + (threadIdx.x / kWarp) * E;
#pragma unroll
    for (int s = 0; s < S; ++s) {
      const int e = lane + kWarp * s;
      if (e < E) {
        own[e] = key[s];
      }
    }
    __syncwarp();
    float rating = neg_inf();
    if (lane < GROUPS) {
      float first = neg_inf();
      float second = neg_inf();
      int first_at = -1;
      for (int i = 0; i < SIZE; ++i) {
        const float v = key_of(own[lane * SIZE + i]);
        if (first_at < 0 || v > first) {
          second = first;
          first = v;
          first_at = i;
        } else if (i == 1 || v > second) {
          second = v;
        }
      }
      rating = first + second;
    }
    __syncwarp();
    int rank = 0;
    for (int g = 0; g < GROUPS; ++g) {
      const float other = __shfl_sync(kFull, rating, g);
      rank += ranks_before(key_of(other), g, key_of(rating), lane) ? 1 : 0;
    }
    const int kept = rank < KEEP ? 1 : 0;
#pragma unroll
    for (int s = 0; s < S; ++s) {
      const int e = lane + kWarp * s;
      const int group = e < E ? e / SIZE : 0;
      if (!__shfl_sync(kFull, kept, group) && e < E) {
        key[s] = 0.0f;
      }
    }
  }
#pragma unroll
  for (int s = 0; s < S; ++s) {
    key[s] = key_of(key[s]);
  }
  int index[K];
  float value[K];
  warp_topk<E, K, S>(key, x, lane, index, value);
  if constexpr (NORM && K > 1) {
    float sum = 0.0f;
#pragma unroll
    for (int r = 0; r < K; ++r) {
      sum += value[r];
    }
#pragma unroll
    for (int r = 0; r < K; ++r) {
      value[r] = value[r] / sum;
    }
  }
#pragma unroll
  for (int r = 0; r < K; ++r) {
    value[r] = value[r] * scale;
  }
  write_choice<K, float>(index, value, row, lane, inds, weights);
}

template <typename T, typename U, typename O, int K>
__device__ void gather_add(const T* y, const U* scores, int rows, int dim, O* out) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<long>(rows) * dim) {
    return;
  }
  const long t = i / dim;
  const long d = i - t * dim;
  float acc = 0.0f;
#pragma unroll
  for (int j = 0; j < K; ++j) {
    acc += to_float(scores[t * K + j]) * to_float(y[(t * K + j) * dim + d]);
  }
  out[i] = from_float<O>(acc);
}

}  // namespace mlx_rs_routing
