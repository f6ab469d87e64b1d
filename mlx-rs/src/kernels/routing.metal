// Fused mixture-of-experts routing in Metal (mlx-rs, `kernels::routing`): the design of
// `routing.cu`, line for line, with a SIMD group of 32 threads in place of a warp. The body
// passes the row (thread_position_in_grid.x / 32) and the lane (thread_index_in_simdgroup).
// Pointers are template parameters because MLX passes small inputs in the `constant` address
// space and the others in `device`.

namespace mlx_rs_routing {

constant constexpr int kWarp = 32;

template <typename T>
inline float rounded(float v) {
  return static_cast<float>(static_cast<T>(v));
}

inline float key_of(float v) {
  return isnan(v) ? -INFINITY : v;
}

inline bool ranks_before(float a, int ia, float b, int ib) {
  return a > b || (a == b && ia < ib);
}

inline float warp_max(float v) {
  for (ushort off = kWarp / 2; off > 0; off /= 2) {
    v = metal::max(v, simd_shuffle_xor(v, off));
  }
  return v;
}

inline float warp_sum(float v) {
  for (ushort off = kWarp / 2; off > 0; off /= 2) {
    v += simd_shuffle_xor(v, off);
  }
  return v;
}

template <int E, int K, int S>
inline void warp_topk(
    thread const float (&key)[S], thread const float (&payload)[S], int lane,
    thread int (&index)[K], thread float (&value)[K]) {
  uint taken = 0;
  for (int s = 0; s < S; ++s) {
    if (lane + kWarp * s >= E) {
      taken |= 1u << s;
    }
  }
  for (int r = 0; r < K; ++r) {
    float best = -INFINITY;
    int best_index = E;
    float best_payload = 0.0f;
    for (int s = 0; s < S; ++s) {
      const int e = lane + kWarp * s;
      if (!((taken >> s) & 1u) && ranks_before(key[s], e, best, best_index)) {
        best = key[s];
        best_index = e;
        best_payload = payload[s];
      }
    }
    for (ushort off = kWarp / 2; off > 0; off /= 2) {
      const float other = simd_shuffle_xor(best, off);
      const int other_index = simd_shuffle_xor(best_index, off);
      const float other_payload = simd_shuffle_xor(best_payload, off);
      if (ranks_before(other, other_index, best, best_index)) {
        best = other;
        best_index = other_index;
        best_payload = other_payload;
      }
    }
    best_index = metal::min(best_index, E - 1);
    if ((best_index % kWarp) == lane) {
      taken |= 1u << (best_index / kWarp);
    }
    index[r] = best_index;
    value[r] = best_payload;
  }
}

template <typename W, int K, typename I, typename P>
inline void write_choice(
    thread const int (&index)[K], thread const float (&value)[K], int row, int lane, I inds,
    P weights) {
  for (int r = 0; r < K; ++r) {
    if (lane == r) {
      inds[row * K + r] = static_cast<uint32_t>(index[r]);
      weights[row * K + r] = static_cast<W>(value[r]);
    }
  }
}

template <int E, int S, typename L>
inline void load_row(L logits, int row, int lane, thread float (&x)[S]) {
  for (int s = 0; s < S; ++s) {
    const int e = lane + kWarp * s;
    x[s] = e < E ? static_cast<float>(logits[static_cast<long>(row) * E + e]) : -INFINITY;
  }
}

template <typename T, int E, int K, bool NORM, typename L, typename I, typename P>
void softmax_topk(L logits, int rows, I inds, P weights, uint row_in, uint lane_in) {
  constexpr int S = (E + kWarp - 1) / kWarp;
  const int row = static_cast<int>(row_in);
  const int lane = static_cast<int>(lane_in);
  if (row >= rows) {
    return;
  }
  float x[S];
  load_row<E, S>(logits, row, lane, x);
  float m = -INFINITY;
  for (int s = 0; s < S; ++s) {
    m = metal::max(m, x[s]);
  }
  m = warp_max(m);
  float total = 0.0f;
  for (int s = 0; s < S; ++s) {
    x[s] = lane + kWarp * s < E ? metal::exp(x[s] - m) : 0.0f;
    total += x[s];
  }
  total = warp_sum(total);
  float key[S];
  for (int s = 0; s < S; ++s) {
    x[s] = rounded<T>(x[s] / total);
    key[s] = key_of(x[s]);
  }
  int index[K];
  float value[K];
  warp_topk<E, K, S>(key, x, lane, index, value);
  if (NORM) {
    float sum = 0.0f;
    for (int r = 0; r < K; ++r) {
      sum += value[r];
    }
    sum = rounded<T>(sum);
    for (int r = 0; r < K; ++r) {
      value[r] = value[r] / sum;
    }
  }
  write_choice<T, K>(index, value, row, lane, inds, weights);
}

template <typename T, int E, int K, typename L, typename I, typename P>
void topk_softmax(L logits, int rows, I inds, P weights, uint row_in, uint lane_in) {
  constexpr int S = (E + kWarp - 1) / kWarp;
  const int row = static_cast<int>(row_in);
  const int lane = static_cast<int>(lane_in);
  if (row >= rows) {
    return;
  }
  float x[S];
  load_row<E, S>(logits, row, lane, x);
  float key[S];
  for (int s = 0; s < S; ++s) {
    key[s] = key_of(x[s]);
  }
  int index[K];
  float value[K];
  warp_topk<E, K, S>(key, x, lane, index, value);
  float m = -INFINITY;
  for (int r = 0; r < K; ++r) {
    m = metal::max(m, value[r]);
  }
  float total = 0.0f;
  for (int r = 0; r < K; ++r) {
    value[r] = metal::exp(value[r] - m);
    total += value[r];
  }
  for (int r = 0; r < K; ++r) {
    value[r] = value[r] / total;
  }
  write_choice<T, K>(index, value, row, lane, inds, weights);
}

// `own` is this SIMD group's E floats of threadgroup memory.
template <
    typename T, int E, int K, int GROUPS, int KEEP, bool NORM, typename L, typename B,
    typename I, typename P>
void grouped_topk(
    L logits, B bias, float scale, int rows, threadgroup float* own, I inds, P weights,
    uint row_in, uint lane_in) {
  constexpr int S = (E + kWarp - 1) / kWarp;
  const int row = static_cast<int>(row_in);
  const int lane = static_cast<int>(lane_in);
  if (row >= rows) {
    return;
  }
  float x[S];
  load_row<E, S>(logits, row, lane, x);
  float key[S];
  for (int s = 0; s < S; ++s) {
    const int e = lane + kWarp * s;
    x[s] = 1.0f / (1.0f + metal::exp(-x[s]));
    key[s] = e < E ? x[s] + bias[e] : -INFINITY;
  }
  if (GROUPS > 1 && KEEP < GROUPS) {
    constexpr int SIZE = E / GROUPS;
    for (int s = 0; s < S; ++s) {
      const int e = lane + kWarp * s;
      if (e < E) {
        own[e] = key[s];
      }
    }
    simdgroup_barrier(mem_flags::mem_threadgroup);
    float rating = -INFINITY;
    if (lane < GROUPS) {
      float first = -INFINITY;
      float second = -INFINITY;
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
    int rank = 0;
    for (int g = 0; g < GROUPS; ++g) {
      const float other = simd_shuffle(rating, static_cast<ushort>(g));
      rank += ranks_before(key_of(other), g, key_of(rating), lane) ? 1 : 0;
    }
    const int kept = rank < KEEP ? 1 : 0;
    for (int s = 0; s < S; ++s) {
      const int e = lane + kWarp * s;
      const int group = e < E ? e / SIZE : 0;
      if (!simd_shuffle(kept, static_cast<ushort>(group)) && e < E) {
        key[s] = 0.0f;
      }
    }
  }
  for (int s = 0; s < S; ++s) {
    key[s] = key_of(key[s]);
  }
  int index[K];
  float value[K];
  warp_topk<E, K, S>(key, x, lane, index, value);
  if (NORM && K > 1) {
    float sum = 0.0f;
    for (int r = 0; r < K; ++r) {
      sum += value[r];
    }
    for (int r = 0; r < K; ++r) {
      value[r] = value[r] / sum;
    }
  }
  for (int r = 0; r < K; ++r) {
    value[r] = value[r] * scale;
  }
  write_choice<float, K>(index, value, row, lane, inds, weights);
}

template <typename T, typename U, typename O, int K, typename Y, typename C, typename Out>
void gather_add(Y y, C scores, int rows, int dim, Out out, uint i_in) {
  const long i = static_cast<long>(i_in);
  if (i >= static_cast<long>(rows) * dim) {
    return;
  }
  const long t = i / dim;
  const long d = i - t * dim;
  float acc = 0.0f;
  for (int j = 0; j < K; ++j) {
    acc += static_cast<float>(scores[t * K + j]) * static_cast<float>(y[(t * K + j) * dim + d]);
  }
  out[i] = static_cast<O>(acc);
}

}  // namespace mlx_rs_routing
