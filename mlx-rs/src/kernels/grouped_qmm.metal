// Grouped quantized expert matmul for Metal (mlx-rs, `kernels::grouped_qmm`): the design of
// grouped_qmm.cu with a SIMD group of 32 threads in place of a warp and Apple's SIMD-group
// matrices in place of `mma.sync`.
//
// out[p, :] = x[rows[p], :] @ dequantize(w[expert(p)])^T for (token, expert) pairs sorted by
// expert. `moe_tiles` cuts the pairs into tiles of at most BM pairs of one expert; a thread group
// computes one tile x BN output columns, streaming that expert's weights through threadgroup
// memory once, BK columns at a time, dequantized in float32 (scale * code + bias). The products
// are 8x8 `simdgroup_matrix<float, 8, 8>` multiply-accumulates, so inputs are converted to float
// when staged and the accumulation is float32. The body declares the threadgroup arrays (kernel
// scope) and passes the thread-position attributes. Pointers are template parameters because
// MLX passes inputs of fewer than 8 elements in the `constant` address space, others in `device`.
//
// Differences from the CUDA design, both from the 32 KiB of threadgroup memory per thread group
// of Apple GPUs: BK is 32 (float32 staging of 64 columns would not fit at BM = 64), and the tile
// map's two arrays of NumExperts + 1 ints limit it to 2048 experts (grouped_qmm.rs checks).
//
// Not compiled by the Metal compiler nor run on an Apple GPU (no Apple toolchain at hand): written
// against the Metal Shading Language specification and MLX's custom-kernel wrapper
// (mlx/backend/common/metal_kernel.cpp), for GPUs with SIMD-group matrices (Apple7: M1 and
// later). Checked by reading: every threadgroup_barrier is reached by all threads of the group
// (the only early return depends on the tile alone); SIMD-group matrix calls run under
// conditions uniform in the SIMD group; every index stays inside its array for the shapes
// grouped_qmm.rs accepts. Checked on a CPU: this file, compiled as C++ against stand-ins of the
// MSL types and functions (one thread per GPU thread, real barriers), matched an independent
// float64 reference for 2 to 8 bits and group sizes 32 to 128, ragged and full tiles.
// Still to verify on a Mac: `cargo test -p mlx-rs --test kernels grouped_qmm_on_metal`.

#include <metal_simdgroup_matrix>

namespace mlx_rs_kernels {

// Output columns per thread group, input columns per step, and the row stride of the staged
// tiles in floats (4 floats of padding against bank conflicts).
constant constexpr int kColumns = 64;
constant constexpr int kDepth = 32;
constant constexpr int kStride = kDepth + 4;

// Eight `Bits`-bit codes starting at byte `byte` of the packed words `w` (MLX's little-endian
// bit stream: byte b is bits 8 (b % 4) .. of word b / 4). For 4 and 8 bits the eight codes are
// one or two whole words, because `byte` is then a multiple of 4.
template <int Bits, typename W>
inline ulong load_codes(W w, ulong byte) {
  if (Bits == 4) {
    return static_cast<ulong>(w[byte / 4]);
  }
  if (Bits == 8) {
    return static_cast<ulong>(w[byte / 4]) | (static_cast<ulong>(w[byte / 4 + 1]) << 32);
  }
  ulong v = 0;
  for (int i = 0; i < Bits; ++i) {
    const ulong b = byte + i;
    const uint word = static_cast<uint>(w[b / 4]);
    v |= static_cast<ulong>((word >> (8 * (b % 4))) & 0xffu) << (8 * i);
  }
  return v;
}

// The tile map, as in grouped_qmm.cu: tile i covers pairs tiles[4i + 1] .. tiles[4i + 2] (at
// most BM), all routed to expert tiles[4i]; tiles past the last one are empty. `starts` and
// `offsets` are NumExperts + 1 ints of threadgroup memory each; one thread group of `threads`.
template <int BM, int NumExperts, typename E, typename Tiles>
void moe_tiles(
    E experts, int pairs, Tiles tiles, threadgroup int* starts, threadgroup int* offsets,
    uint tid_in, uint threads_in) {
  const int tid = static_cast<int>(tid_in);
  const int threads = static_cast<int>(threads_in);
  const int max_tiles = metal::min(pairs, (pairs + BM - 1) / BM + NumExperts);
  for (int e = tid; e <= NumExperts; e += threads) {
    int lo = 0;
    int hi = pairs;
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (static_cast<uint>(experts[mid]) < static_cast<uint>(e)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    starts[e] = lo;
  }
  metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
  if (tid == 0) {
    int total = 0;
    for (int e = 0; e < NumExperts; ++e) {
      offsets[e] = total;
      total += (starts[e + 1] - starts[e] + BM - 1) / BM;
    }
    offsets[NumExperts] = total;
  }
  metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
  for (int e = tid; e < NumExperts; e += threads) {
    const int end = starts[e + 1];
    int i = offsets[e];
    for (int s = starts[e]; s < end; s += BM, ++i) {
      tiles[4 * i] = static_cast<uint>(e);
      tiles[4 * i + 1] = static_cast<uint>(s);
      tiles[4 * i + 2] = static_cast<uint>(metal::min(s + BM, end));
      tiles[4 * i + 3] = 0;
    }
  }
  for (int i = offsets[NumExperts] + tid; i < max_tiles; i += threads) {
    tiles[4 * i] = 0;
    tiles[4 * i + 1] = 0;
    tiles[4 * i + 2] = 0;
    tiles[4 * i + 3] = 0;
  }
}

// One thread group per (tile, kColumns columns), grid position `block` = (column block, tile):
// BM / 16 x 2 SIMD groups, each owning 16 rows x 32 columns (2 x 4 matrices of 8 x 8). Staged in
// threadgroup memory: `xs` BM x kStride and `ws` kColumns x kStride floats, `staged` 64 floats
// per SIMD group (BM * 8), `tile_rows` BM.
template <
    typename T, int Bits, int GroupSize, int N, int K, int BM, bool GatherRows, typename X,
    typename R, typename Tiles, typename W, typename S, typename B, typename O>
void grouped_qmm(
    X x, R rows, Tiles tiles, W w, S scales, B biases, O out, int num_rows, int num_experts,
    threadgroup float* xs, threadgroup float* ws, threadgroup float* staged,
    threadgroup uint* tile_rows, uint3 block, uint tid_in, uint sg_in, uint lane_in) {
  constexpr int THREADS = BM * 4;
  constexpr int ROW_BYTES = K * Bits / 8;
  constexpr int GROUPS = K / GroupSize;
  constexpr uint MASK = (1u << Bits) - 1u;
  static_assert(N % kColumns == 0 && K % kDepth == 0 && K % GroupSize == 0, "unsupported shape");
  static_assert(BM % 16 == 0, "BM must be a multiple of 16");

  const uint e = metal::min(static_cast<uint>(tiles[4 * block.y]),
                            static_cast<uint>(num_experts - 1));
  const int start = static_cast<int>(tiles[4 * block.y + 1]);
  const int count = static_cast<int>(tiles[4 * block.y + 2]) - start;
  if (count <= 0) {
    return;
  }
  const int tid = static_cast<int>(tid_in);
  const int sg = static_cast<int>(sg_in);
  const int lane = static_cast<int>(lane_in);
  const int n0 = static_cast<int>(block.x) * kColumns;
  if (tid < BM) {
    // Clamped, so that no index value can read outside `x`.
    const uint r = static_cast<uint>(start + metal::min(tid, count - 1));
    tile_rows[tid] =
        GatherRows ? metal::min(static_cast<uint>(rows[r]), static_cast<uint>(num_rows - 1)) : r;
  }
  metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);

  const int wm = (sg / 2) * 16;
  const int wn = (sg % 2) * 32;
  const bool sg_active = wm < count;

  metal::simdgroup_matrix<float, 8, 8> acc[2][4];
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 4; ++j) {
      acc[i][j] = metal::make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    }
  }
  // The first weight row of this thread group's columns, counted over all experts.
  const ulong row0 = static_cast<ulong>(e) * N + n0;

  for (int k0 = 0; k0 < K; k0 += kDepth) {
    // The tile's activations: BM x kDepth; rows past the tile are 0.
    for (int c = tid; c < BM * kDepth; c += THREADS) {
      const int r = c / kDepth;
      const int kc = c % kDepth;
      xs[r * kStride + kc] =
          r < count ? static_cast<float>(x[static_cast<ulong>(tile_rows[r]) * K + k0 + kc]) : 0.0f;
    }
    // The expert's weights: kColumns x kDepth, eight codes per step, dequantized.
    for (int c = tid; c < kColumns * kDepth / 8; c += THREADS) {
      const int n = c / (kDepth / 8);
      const int kc = (c % (kDepth / 8)) * 8;
      const int k = k0 + kc;
      const ulong row = row0 + n;
      const ulong codes = load_codes<Bits>(w, row * ROW_BYTES + k * Bits / 8);
      const float scale = static_cast<float>(scales[row * GROUPS + k / GroupSize]);
      const float bias = static_cast<float>(biases[row * GROUPS + k / GroupSize]);
      for (int j = 0; j < 8; ++j) {
        const float q = static_cast<float>(static_cast<uint>(codes >> (Bits * j)) & MASK);
        ws[n * kStride + kc + j] = metal::fma(scale, q, bias);
      }
    }
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    if (sg_active) {
      for (int kk = 0; kk < kDepth; kk += 8) {
        // A: rows wm + 8i .. of the activations, columns kk ..; B (k x n) is the transpose of
        // the staged weights (n x k), loaded with transpose_matrix = true.
        metal::simdgroup_matrix<float, 8, 8> a[2];
        metal::simdgroup_load(a[0], xs + wm * kStride + kk, kStride);
        metal::simdgroup_load(a[1], xs + (wm + 8) * kStride + kk, kStride);
        for (int j = 0; j < 4; ++j) {
          metal::simdgroup_matrix<float, 8, 8> b;
          metal::simdgroup_load(b, ws + (wn + 8 * j) * kStride + kk, kStride, ulong2(0, 0), true);
          metal::simdgroup_multiply_accumulate(acc[0][j], a[0], b, acc[0][j]);
          metal::simdgroup_multiply_accumulate(acc[1][j], a[1], b, acc[1][j]);
        }
      }
    }
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
  }

  if (sg_active) {
    // Each 8 x 8 result goes through this SIMD group's 64 staged floats, so that rows past the
    // tile are not written.
    threadgroup float* own = staged + sg * 64;
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 4; ++j) {
        metal::simdgroup_store(acc[i][j], own, 8);
        metal::simdgroup_barrier(metal::mem_flags::mem_threadgroup);
        for (int v = lane; v < 64; v += 32) {
          const int r = wm + 8 * i + v / 8;
          if (r < count) {
            out[static_cast<ulong>(start + r) * N + n0 + wn + 8 * j + v % 8] =
                static_cast<T>(own[v]);
          }
        }
        metal::simdgroup_barrier(metal::mem_flags::mem_threadgroup);
      }
    }
  }
}

} // namespace mlx_rs_kernels
