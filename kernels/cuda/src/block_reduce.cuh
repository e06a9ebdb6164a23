// Reductions across a warp and across a block in a fixed order (butterfly shuffles, then one value per
// warp through shared memory), so every run of a kernel gives the same bits for the same launch shape.
#pragma once

namespace ringlet {

// Every lane gets f over the warp's 32 values.
template <typename T, typename F>
__device__ inline T warp_reduce(T v, F f) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = f(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Every thread gets f over the block's values; blockDim.x is a multiple of 32, at most 1024, and every
// thread of the block calls it. `identity` pads the warps' results to a whole warp.
template <typename T, typename F>
__device__ inline T block_reduce(T v, F f, T identity) {
  __shared__ T per_warp[32];
  v = warp_reduce(v, f);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();  // a previous call's readers are done with per_warp
  if (lane == 0) per_warp[warp] = v;
  __syncthreads();
  return warp_reduce(lane < warps ? per_warp[lane] : identity, f);
}

// A row's max and Σ exp(x − max), by the whole block (every thread gets both): the log-sum-exp that softmax
// and the cross-entropy rows share, in one order.
struct RowExpSum {
  float max, sum;
};
__device__ inline RowExpSum block_row_exp_sum(const float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, x[i]);
  m = block_reduce(m, [](float a, float b) { return fmaxf(a, b); }, -INFINITY);
  float s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += expf(x[i] - m);
  s = block_reduce(s, [](float a, float b) { return a + b; }, 0.0f);
  return {m, s};
}

// Threads for a block that reduces rows of `n` elements: a power of two from 32 to `most`.
inline int threads_for_row(long long n, int most) {
  int t = 32;
  while (t < most && t < n) t *= 2;
  return t;
}

}  // namespace ringlet
