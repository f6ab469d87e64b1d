// The packing of MLX's affine-quantized weights, shared by mlx-rs's quantized CUDA kernels
// (`kernels::grouped_qmm`, `kernels::gather_qmv`), prepended to their sources after
// convert.cu. Codes are a little-endian bit stream of `Bits` bits each (MLX's packing for every
// bit width), so eight codes always fill exactly `Bits` bytes.

namespace mlx_rs_codes {

// Eight `Bits`-bit codes read from `Bits` bytes at `p` (aligned to the load width used).
template <int Bits>
__device__ inline unsigned long long load_codes(const unsigned char* p) {
  if constexpr (Bits == 2) {
    return *reinterpret_cast<const unsigned short*>(p);
  } else if constexpr (Bits == 4) {
    return *reinterpret_cast<const unsigned int*>(p);
  } else if constexpr (Bits == 8) {
    uint2 v = *reinterpret_cast<const uint2*>(p);
    return static_cast<unsigned long long>(v.x) |
        (static_cast<unsigned long long>(v.y) << 32);
  } else {
    unsigned long long v = 0;
#pragma unroll
    for (int i = 0; i < Bits; ++i) {
      v |= static_cast<unsigned long long>(p[i]) << (8 * i);
    }
    return v;
  }
}

// Eight elements of a 16-bit type, loaded or stored as 16 bytes.
template <typename T>
struct alignas(16) Pack8 {
  T v[8];
};

} // namespace mlx_rs_codes
