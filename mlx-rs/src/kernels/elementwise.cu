// Shared helpers of the elementwise kernels (mlx-rs, `kernels::activation`, `kernels::dropout`).
//
// Every elementwise kernel reads flat arrays of `n` elements; each thread takes `Width<T>`
// consecutive elements (16 bytes of T) starting at `first_element<T>()`. When every pointer is
// 16-byte aligned and the thread's elements are all in range, it moves them with one 16-byte
// load or store per array (`Pack`); otherwise (a slice starting mid-buffer, the tail when `n`
// is not a multiple of the width) element by element.

namespace mlx_rs_elementwise {

template <typename T>
constexpr int Width = 16 / sizeof(T);

// `Width<T>` elements of type E, aligned for one 16-byte access per 16 bytes.
template <typename E, int N>
struct alignas(16) Pack {
  E v[N];
};

using mlx_rs_convert::from_float;
using mlx_rs_convert::to_float;

__device__ inline bool aligned16(const void* p) {
  return reinterpret_cast<unsigned long long>(p) % 16 == 0;
}

// The first element of this thread.
template <typename T>
__device__ inline long long first_element() {
  return (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) * Width<T>;
}

} // namespace mlx_rs_elementwise
