// The emulator's own test (test/cuda-emulated.test.ts compiles and runs it): correct kernels give CUDA's
// results, and each misuse the emulator claims to catch is caught with its message. `selftest CASE` runs one
// case and prints what the launch reported; `selftest overrun` writes past a buffer and must die naming it.
#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>
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

using namespace nvcuda;

// D = A·B + 1 for one 16×16 tile per warp, from shared memory: warp 0 in TF32 (m16n16k8, A [16][8] row-major,
// B column-major, D stored column-major), warp 1 in bf16 (m16n16k16, A column-major, B row-major, D
// row-major after d[256]); the operands converted as the kernels convert them.
__global__ void wmma_products(const float* a, const float* b, float* d) {
  alignas(32) __shared__ float ta[256], tb[256], tc[256];
  alignas(32) __shared__ __nv_bfloat16 ha[256], hb[256];
  for (unsigned i = threadIdx.x; i < 256; i += blockDim.x) {
    ta[i] = wmma::__float_to_tf32(a[i]);
    tb[i] = wmma::__float_to_tf32(b[i]);
    ha[i] = __float2bfloat16(a[i]);
    hb[i] = __float2bfloat16(b[i]);
    tc[i] = 1.0f;
  }
  __syncthreads();
  if (threadIdx.x / 32 == 0) {
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fb;
    wmma::load_matrix_sync(acc, tc, 16, wmma::mem_row_major);
    wmma::load_matrix_sync(fa, ta, 8);
    wmma::load_matrix_sync(fb, tb, 8);
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(d, acc, 16, wmma::mem_col_major);
  } else {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::col_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
    wmma::fill_fragment(acc, 1.0f);
    wmma::load_matrix_sync(fa, ha, 16);
    wmma::load_matrix_sync(fb, hb, 16);
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(d + 256, acc, 16, wmma::mem_row_major);
  }
}

// Misuses of a WMMA load, by `how`: 0 a pointer 16 bytes off 256-bit alignment, 1 ldm 6 floats, 2 lanes
// 16..31 returned, 3 each half of the warp with its own pointer.
__global__ void wmma_misuse(int how) {
  alignas(32) __shared__ float t[16 * 16];
  if (how == 2 && threadIdx.x % 32 >= 16) return;
  const float* p = how == 0 ? t + 4 : how == 3 ? t + threadIdx.x % 32 / 16 * 8 : t;
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  wmma::load_matrix_sync(fa, p, how == 1 ? 6 : 8);
}

// x rounded to `bits` significant bits, ties away from zero (TF32's cvt.rna) or to even (bf16's cvt.rn),
// by other means than the emulator's.
double round_to(float x, int bits, bool ties_even) {
  int e;
  const double f = std::frexp((double)x, &e), scaled = std::ldexp(f, bits);
  return std::ldexp(ties_even ? std::nearbyint(scaled) : std::round(scaled), e - bits);
}

// The conversions' ties, and a product tile in each precision against float64 on the rounded operands.
int check_wmma(float* buf) {
  const float tie = 1.0f + std::ldexp(1.0f, -11);  // halfway between two TF32 values
  if (wmma::__float_to_tf32(tie) != 1.0f + std::ldexp(1.0f, -10) || wmma::__float_to_tf32(-tie) != -(1.0f + std::ldexp(1.0f, -10)))
    return std::printf("__float_to_tf32 does not round ties away from zero\n"), 1;
  if (__bfloat162float(__float2bfloat16(1.0f + std::ldexp(1.0f, -8))) != 1.0f ||
      __bfloat162float(__float2bfloat16(1.0f + 3 * std::ldexp(1.0f, -8))) != 1.0f + std::ldexp(1.0f, -6))
    return std::printf("__float2bfloat16 does not round ties to even\n"), 1;
  float* a = buf;
  float* b = buf + 256;
  float* d = buf + 512;
  uint32_t state = 12345;
  for (int i = 0; i < 512; i++) {
    state = state * 1664525u + 1013904223u;
    buf[i] = (float)(state >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
  }
  report("wmma_products", dim3(1), dim3(64), wmma_products, (const float*)a, (const float*)b, d);
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) {
      double tf32 = 1, bf16 = 1;
      for (int k = 0; k < 8; k++) tf32 += round_to(a[r * 8 + k], 11, false) * round_to(b[k + 8 * c], 11, false);
      for (int k = 0; k < 16; k++) bf16 += round_to(a[r + 16 * k], 8, true) * round_to(b[16 * k + c], 8, true);
      if (std::fabs(d[r + 16 * c] - tf32) > 1e-5 * std::fmax(1.0, std::fabs(tf32)))
        return std::printf("tf32 D[%d][%d] = %.9g, want %.9g\n", r, c, d[r + 16 * c], tf32), 1;
      if (std::fabs(d[256 + 16 * r + c] - bf16) > 1e-5 * std::fmax(1.0, std::fabs(bf16)))
        return std::printf("bf16 D[%d][%d] = %.9g, want %.9g\n", r, c, d[256 + 16 * r + c], bf16), 1;
    }
  return 0;
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
  } else if (which == "wmma") {
    if (check_wmma(reinterpret_cast<float*>(buf))) return 1;
  } else if (which.rfind("wmma_misuse_", 0) == 0) {
    report(which.c_str(), dim3(1), dim3(64), wmma_misuse, std::stoi(which.substr(12)));
  } else if (which == "overrun") {
    report("overrun", dim3(1), dim3(32), overrun, buf, 4096 - 8);
  } else {
    return std::printf("unknown case %s\n", which.c_str()), 2;
  }
  return 0;
}
