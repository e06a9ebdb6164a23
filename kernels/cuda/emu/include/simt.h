// The device side of the CUDA emulator: the language's keywords, the built-in variables, barriers, warp
// shuffles, atomics and intrinsics that kernels/cuda/src uses, so that g++ compiles the same kernels for the
// CPU (kernels/cuda/build.mjs, RINGLET_CUDA_EMULATED). A launch runs its blocks one at a time; each of a
// block's threads is a fiber (its own stack) on the calling OS thread, switched at __syncthreads and the
// warp operations (simt.cc). So `__shared__` is a static variable: one copy, which the running block owns.
#pragma once

#include <math.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <source_location>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

// The running thread's coordinates: plain globals, since every fiber runs on the one OS thread and the
// scheduler sets them before it switches to a fiber.
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

// Waits until every thread of the block still running has called it; threads that returned count as
// arrived (as CUDA counts exited threads). Threads waiting at different calls are a reported error.
void __syncthreads(std::source_location where = std::source_location::current());

namespace ringlet_emu {

enum class Shuffle { xor_lane, down, index, none };

// Deposits this lane's 8 bytes, waits for every lane of `mask` (each must call with the same mask, from
// the same place) and returns the bytes of the lane that `kind` and `arg` name within groups of `width`.
uint64_t warp_exchange(unsigned mask, uint64_t bits, Shuffle kind, int arg, int width, std::source_location where);

// A warp-collective operation (WMMA's loads, stores, fills and products, include/mma.h): every lane of the
// warp, all 32, must call it from the same place. Each lane deposits `mine` and, once all have arrived,
// receives the 32 lanes' deposits in lane order (pointers into the lanes' own stacks, valid until the
// operation's closing __syncwarp, which every caller makes before it writes its results).
void warp_collective(const void* mine, const void* (&all)[32], std::source_location where);
// The running thread misused a warp-collective operation at `where`: the launch's error.
void warp_misuse(const std::string& what, std::source_location where);

template <typename T>
T shuffle(unsigned mask, T v, Shuffle kind, int arg, int width, std::source_location where) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "a shuffle moves at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = warp_exchange(mask, bits, kind, arg, width, where);
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

// Runs kernel body `body` over `grid` × `block` (simt.cc); a bad configuration or a misuse of a barrier
// or shuffle is the runtime's last error (cudaGetLastError), with the emulator's message.
void launch_blocks(const char* name, dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body);

template <typename... Params, typename... Args>
void launch(const char* name, dim3 grid, dim3 block, size_t shared_bytes, void (*kernel)(Params...), Args... args) {
  // A kernel's parameters travel in a 4 KiB constant bank on every GPU the addon targets.
  static_assert((sizeof(Params) + ... + 0) <= 4096, "kernel parameters above 4 KiB");
  launch_blocks(name, grid, block, shared_bytes, [&] { kernel(static_cast<Params>(args)...); });
}

}  // namespace ringlet_emu

template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize,
                  std::source_location where = std::source_location::current()) {
  return ringlet_emu::shuffle(mask, v, ringlet_emu::Shuffle::xor_lane, lane_mask, width, where);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize,
                   std::source_location where = std::source_location::current()) {
  return ringlet_emu::shuffle(mask, v, ringlet_emu::Shuffle::down, (int)delta, width, where);
}
template <typename T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = warpSize,
              std::source_location where = std::source_location::current()) {
  return ringlet_emu::shuffle(mask, v, ringlet_emu::Shuffle::index, src_lane, width, where);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, std::source_location where = std::source_location::current()) {
  ringlet_emu::warp_exchange(mask, 0, ringlet_emu::Shuffle::none, 0, warpSize, where);
}

// Atomics: every thread runs on one OS thread, one at a time, so a plain read-modify-write is atomic.
template <typename T>
T atomicCAS(T* address, T compare, T value) {
  const T old = *address;
  if (old == compare) *address = value;
  return old;
}
template <typename T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}

// Intrinsics, with the GPU's semantics where the C library's differ.
inline unsigned __float_as_uint(float x) {
  unsigned u;
  std::memcpy(&u, &x, 4);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
inline int __float_as_int(float x) { return (int)__float_as_uint(x); }
inline float __int_as_float(int i) { return __uint_as_float((unsigned)i); }
// cvt.rzi.s32.f32: toward zero, NaN to 0, saturating at the int range.
inline int __float2int_rz(float x) {
  if (isnan(x)) return 0;
  if (x >= 2147483648.0f) return INT32_MAX;
  if (x <= -2147483648.0f) return INT32_MIN;
  return (int)x;
}
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __fdividef(float a, float b) { return a / b; }
