// Grouped quantized expert matmul for mixture-of-experts layers (mlx-rs, `kernels::grouped_qmm`).
//
// out[p, :] = x[rows[p], :] @ dequantize(w[expert(p)])^T for (token, expert) pairs sorted by
// expert. `moe_tiles` cuts the pairs into tiles of at most BM pairs of one expert; a block
// computes one tile x BN output columns: it streams that expert's weights through shared memory
// once, dequantizing BK columns at a time (affine: scale * code + bias), and multiplies them on
// the tensor cores (`mma.sync` m16n8k16, bf16/f16 in, f32 accumulation; PTX, so that no CUDA
// header beyond MLX's own is needed). Weights are read once per tile instead of once per pair,
// which is what makes many pairs (prefill) fast.
//
// Needs quantized_codes.cu before it (the packing of the codes).

namespace mlx_rs_kernels {

using mlx_rs_convert::from_float;
using mlx_rs_codes::load_codes;
using mlx_rs_codes::Pack8;

// D += A * B for one m16n8k16 tile: `a` holds A's fragment (four registers of two elements),
// `b0`, `b1` B's, `d` the four f32 accumulators (PTX ISA fragment layouts).
template <typename T>
__device__ inline void mma_16816(float* d, const uint32_t* a, uint32_t b0, uint32_t b1);
template <>
__device__ inline void mma_16816<__nv_bfloat16>(
    float* d, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ inline void mma_16816<__half>(float* d, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two adjacent elements of a 16-bit type as one register.
template <typename T>
__device__ inline uint32_t pair_at(const T* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

// The tile map: tile i covers pairs tiles[4i + 1] .. tiles[4i + 2] (at most BM), all routed to
// expert tiles[4i]; tiles past the last one are empty. Pairs must be sorted by expert; pairs
// whose expert is out of range belong to no tile. One block. `tiles` holds 4 * max_tiles values,
// max_tiles = min(pairs, ceil(pairs / BM) + NumExperts): the most tiles there can be.
template <int BM, int NumExperts>
__device__ void moe_tiles(const uint32_t* experts, int pairs, uint32_t* tiles) {
  const int max_tiles = min(pairs, (pairs + BM - 1) / BM + NumExperts);
  __shared__ int starts[NumExperts + 1];
  __shared__ int offsets[NumExperts + 1];
  for (int e = threadIdx.x; e <= NumExperts; e += blockDim.x) {
    int lo = 0;
    int hi = pairs;
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (experts[mid] < static_cast<uint32_t>(e)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    starts[e] = lo;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int total = 0;
    for (int e = 0; e < NumExperts; ++e) {
      offsets[e] = total;
      total += (starts[e + 1] - starts[e] + BM - 1) / BM;
    }
    offsets[NumExperts] = total;
  }
  __syncthreads();
  for (int e = threadIdx.x; e < NumExperts; e += blockDim.x) {
    const int end = starts[e + 1];
    int i = offsets[e];
    for (int s = starts[e]; s < end; s += BM, ++i) {
      tiles[4 * i] = e;
      tiles[4 * i + 1] = s;
      tiles[4 * i + 2] = min(s + BM, end);
      tiles[4 * i + 3] = 0;
    }
  }
  for (int i = offsets[NumExperts] + threadIdx.x; i < max_tiles; i += blockDim.x) {
    tiles[4 * i] = 0;
    tiles[4 * i + 1] = 0;
    tiles[4 * i + 2] = 0;
    tiles[4 * i + 3] = 0;
  }
}

// One block per (tile, BN columns): BM / 16 x 2 warps, each owning 16 rows x 32 columns.
template <
    typename T,
    int Bits,
    int GroupSize,
    int N,
    int K,
    int BM,
    bool GatherRows>
__device__ void grouped_qmm(
    const T* x,
    const uint32_t* rows,
    const uint32_t* tiles,
    const uint32_t* w,
    const T* scales,
    const T* biases,
    T* out,
    int num_rows,
    int num_experts) {
  constexpr int BN = 64;
  constexpr int BK = 64;
  constexpr int THREADS = BM * 4;
  constexpr int LDS = BK + 8;
  constexpr int ROW_BYTES = K * Bits / 8;
  constexpr int GROUPS = K / GroupSize;
  constexpr unsigned long long MASK = (1ull << Bits) - 1;
  static_assert(N % BN == 0 && K % BK == 0 && K % GroupSize == 0, "unsupported shape");
  static_assert(BM % 16 == 0, "BM must be a multiple of 16");

  __shared__ __align__(16) T xs[BM * LDS];
  __shared__ __align__(16) T ws[BN * LDS];
  __shared__ uint32_t tile_rows[BM];

  const uint32_t e = min(tiles[4 * blockIdx.y], static_cast<uint32_t>(num_experts - 1));
  const int start = tiles[4 * blockIdx.y + 1];
  const int count = static_cast<int>(tiles[4 * blockIdx.y + 2]) - start;
  if (count <= 0) {
    return;
  }
  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int n0 = blockIdx.x * BN;
  if (tid < BM) {
    // Clamped, so that no index value can read outside `x`.
    const uint32_t r = static_cast<uint32_t>(start + min(tid, count - 1));
    tile_rows[tid] = GatherRows ? min(rows[r], static_cast<uint32_t>(num_rows - 1)) : r;
  }
  __syncthreads();

  // Lane (g, t) = (lane / 4, lane % 4) holds the fragment elements of the PTX m16n8k16 layout:
  // A rows g and g + 8, columns 2t, 2t + 1 (+ 8); B column g, rows 2t, 2t + 1 (+ 8); D rows g and
  // g + 8, columns 2t, 2t + 1. A warp's 32 columns are four n8 tiles.
  const int wm = (warp / 2) * 16;
  const int wn = (warp % 2) * 32;
  const int g = (tid % 32) / 4;
  const int t = tid % 4;
  const bool warp_active = wm < count;

  float acc[4][4] = {};
  const unsigned char* w_expert =
      reinterpret_cast<const unsigned char*>(w) + static_cast<size_t>(e) * N * ROW_BYTES;
  const T* s_expert = scales + static_cast<size_t>(e) * N * GROUPS;
  const T* b_expert = biases + static_cast<size_t>(e) * N * GROUPS;

  for (int k0 = 0; k0 < K; k0 += BK) {
    // The tile's activations: BM x BK, 16 bytes per chunk; rows past the tile are 0.
#pragma unroll
    for (int c = tid; c < BM * BK / 8; c += THREADS) {
      const int r = c / (BK / 8);
      const int kc = (c % (BK / 8)) * 8;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (r < count) {
        v = *reinterpret_cast<const uint4*>(x + static_cast<size_t>(tile_rows[r]) * K + k0 + kc);
      }
      *reinterpret_cast<uint4*>(xs + r * LDS + kc) = v;
    }
    // The expert's weights: BN x BK, eight codes per chunk, dequantized.
#pragma unroll
    for (int c = tid; c < BN * BK / 8; c += THREADS) {
      const int n = c / (BK / 8);
      const int kc = (c % (BK / 8)) * 8;
      const int k = k0 + kc;
      const size_t row = static_cast<size_t>(n0 + n);
      const unsigned long long codes = load_codes<Bits>(w_expert + row * ROW_BYTES + k * Bits / 8);
      const float scale = static_cast<float>(s_expert[row * GROUPS + k / GroupSize]);
      const float bias = static_cast<float>(b_expert[row * GROUPS + k / GroupSize]);
      Pack8<T> vals;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float q = static_cast<float>((codes >> (Bits * j)) & MASK);
        vals.v[j] = from_float<T>(fmaf(scale, q, bias));
      }
      *reinterpret_cast<Pack8<T>*>(ws + n * LDS + kc) = vals;
    }
    __syncthreads();
    if (warp_active) {
#pragma unroll
      for (int kk = 0; kk < BK; kk += 16) {
        const T* xa = xs + (wm + g) * LDS + kk + 2 * t;
        const uint32_t a[4] = {
            pair_at(xa), pair_at(xa + 8 * LDS), pair_at(xa + 8), pair_at(xa + 8 * LDS + 8)};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const T* wb = ws + (wn + 8 * j + g) * LDS + kk + 2 * t;
          mma_16816<T>(acc[j], a, pair_at(wb), pair_at(wb + 8));
        }
      }
    }
    __syncthreads();
  }

  if (warp_active) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = wm + g + 8 * half;
      if (r < count) {
        T* o = out + static_cast<size_t>(start + r) * N + n0 + wn + 2 * t;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          o[8 * j] = from_float<T>(acc[j][2 * half]);
          o[8 * j + 1] = from_float<T>(acc[j][2 * half + 1]);
        }
      }
    }
  }
}

} // namespace mlx_rs_kernels
