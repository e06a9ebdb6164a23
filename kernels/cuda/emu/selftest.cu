// The emulator's own test (test/cuda-emulated.test.ts compiles and runs it): correct kernels give CUDA's
// results, and each misuse the emulator claims to catch is caught with its message. `selftest CASE` runs one
// case and prints what the launch reported; `selftest overrun` writes past a buffer and must die naming it.
#include <cstdio>
#include <cstring>
#include <string>

#include "cuda_runtime.h"

namespace {

__global__ void shuffles(int* out) {
  const int lane = threadIdx.x % 32;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, lane * 10, 3) + 1000 * __shfl_down_sync(0xffffffffu, lane, 2, 8);
}

__global__ void block_sum(const int* x, int* y) {
  __shared__ int part[1024];
  part[threadIdx.x] = x[blockIdx.x * blockDim.x + threadIdx.x];
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    __syncthreads();
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
  }
  if (threadIdx.x == 0) y[blockIdx.x] = part[0];
}

// Lanes 16..31 skip the shuffle their lanes 0..15 wait for.
__global__ void divergent_shuffle(int* out) {
  int v = threadIdx.x;
  if (threadIdx.x % 32 < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

__global__ void divergent_barrier(int* out) {
  if (threadIdx.x < 32)
    __syncthreads();
  else
    __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void overrun(int* out, int n) { out[threadIdx.x + n] = 1; }

// Launches `kernel` and prints "ok" or the launch's error.
template <typename... P, typename... A>
void report(const char* name, dim3 grid, dim3 block, void (*kernel)(P...), A... args) {
  ringlet_emu::launch(name, grid, block, 0, kernel, args...);
  const cudaError_t e = cudaGetLastError();
  std::printf("%s: %s\n", name, e == cudaSuccess ? "ok" : cudaGetErrorString(e));
}

}  // namespace

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "";
  int* buf = nullptr;
  cudaMalloc(&buf, 4096 * sizeof(int));
  if (which == "shuffles") {
    report("shuffles", dim3(1), dim3(64), shuffles, buf);
    for (int t = 0; t < 64; t++) {
      const int lane = t % 32, down = lane % 8 + 2 < 8 ? lane + 2 : lane;
      if (buf[t] != (lane ^ 3) * 10 + 1000 * down) return std::printf("lane %d got %d\n", t, buf[t]), 1;
    }
  } else if (which == "block_sum") {
    for (int i = 0; i < 4096; i++) buf[i] = i;
    int* y = nullptr;
    cudaMalloc(&y, 4 * sizeof(int));
    report("block_sum", dim3(4), dim3(1024), block_sum, (const int*)buf, y);
    for (int b = 0; b < 4; b++)
      if (y[b] != 1024 * 1024 * b + 1023 * 512) return std::printf("block %d got %d\n", b, y[b]), 1;
  } else if (which == "divergent_shuffle") {
    report("divergent_shuffle", dim3(2), dim3(64), divergent_shuffle, buf);
  } else if (which == "divergent_barrier") {
    report("divergent_barrier", dim3(1), dim3(64), divergent_barrier, buf);
  } else if (which == "too_many_threads") {
    report("too_many_threads", dim3(1), dim3(2048), shuffles, buf);
  } else if (which == "overrun") {
    report("overrun", dim3(1), dim3(32), overrun, buf, 4096 - 8);
  } else {
    return std::printf("unknown case %s\n", which.c_str()), 2;
  }
  return 0;
}
