// The emulator's stand-in for CUDA's mma.h: nvcuda::wmma for the shapes and types the kernels use, m16n16k8
// with TF32 operands and m16n16k16 with bf16 operands, both with float accumulators.
//
// A fragment is one lane's share of a 16-row tile: lane l holds the tile's elements l, l + 32, l + 64, ...
// in row-major order. CUDA leaves the mapping unspecified (it differs between GPUs), so a kernel may only
// apply the same operation to every element of a fragment; any other mapping would serve as well. Loads,
// stores, fills and products are warp-collective, as on the GPU: every lane of the warp (all 32) must call
// them from the same place with the same pointer, leading dimension and layout, else the launch fails
// naming the thread and line, as a misused shuffle does. The CUDA C++ Programming Guide's rules for
// load_matrix_sync and store_matrix_sync are checked too: the pointer 256-bit (32-byte) aligned, ldm a
// multiple of 8 elements for 16-bit types and of 4 for float (16 bytes).
//
// Products accumulate in float, in order of k. TF32 operands are floats whose low 13 mantissa bits the
// tensor cores ignore: an operand not converted by __float_to_tf32 is truncated here. __float_to_tf32
// rounds to nearest, ties away from zero (cvt.rna.tf32.f32, as CUDA's mma.h implements it).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "cuda_bf16.h"
#include "simt.h"

namespace nvcuda {
namespace wmma {

struct matrix_a;
struct matrix_b;
struct accumulator;
struct row_major;
struct col_major;
namespace precision {
struct tf32;
}
enum layout_t { mem_row_major, mem_col_major };

namespace detail {

template <typename T>
struct storage {
  using type = T;
};
template <>
struct storage<precision::tf32> {
  using type = float;
};

// The tile a fragment holds: m×k for matrix_a, k×n for matrix_b, m×n for the accumulator.
template <typename Use, int m, int n, int k>
struct tile;
template <int m, int n, int k>
struct tile<matrix_a, m, n, k> {
  static constexpr int rows = m, cols = k;
};
template <int m, int n, int k>
struct tile<matrix_b, m, n, k> {
  static constexpr int rows = k, cols = n;
};
template <int m, int n, int k>
struct tile<accumulator, m, n, k> {
  static constexpr int rows = m, cols = n;
};

template <typename Use, int m, int n, int k, typename T, typename Layout>
constexpr bool supported() {
  constexpr bool tf32 = m == 16 && n == 16 && k == 8, bf16 = m == 16 && n == 16 && k == 16;
  if constexpr (std::is_same_v<Use, accumulator>) return (tf32 || bf16) && std::is_same_v<T, float> && std::is_void_v<Layout>;
  else
    return (std::is_same_v<Layout, row_major> || std::is_same_v<Layout, col_major>) &&
           ((tf32 && std::is_same_v<T, precision::tf32>) || (bf16 && std::is_same_v<T, __nv_bfloat16>));
}

inline float value(float x) { return x; }
inline float value(__nv_bfloat16 x) { return __bfloat162float(x); }
// What the tensor cores read of a TF32 operand: its top 19 bits.
inline float tf32_bits(float x) { return __uint_as_float(__float_as_uint(x) & 0xffffe000u); }

// What every lane passes to a load or store: all must agree.
struct Access {
  const void* p;
  unsigned ldm;
  bool row_major;
};

// Meets the warp, checks that every lane passes the same access (`mine` must outlive the operation's closing
// barrier: the other lanes read it until then) and that it obeys the alignment rules;
// false (and the launch's error) when it does not.
inline bool agree(const char* op, const Access& mine, size_t element_bytes, std::source_location where) {
  const void* all[32];
  ringlet_emu::warp_collective(&mine, all, where);
  const Access& first = *static_cast<const Access*>(all[0]);
  if (first.p != mine.p || first.ldm != mine.ldm || first.row_major != mine.row_major) {
    ringlet_emu::warp_misuse(std::string("wmma::") + op + " with another pointer, ldm or layout than lane 0's", where);
    return false;
  }
  if (reinterpret_cast<uintptr_t>(mine.p) % 32 != 0) {
    ringlet_emu::warp_misuse(std::string("wmma::") + op + " with a pointer that is not 256-bit aligned", where);
    return false;
  }
  if (mine.ldm * element_bytes % 16 != 0) {
    ringlet_emu::warp_misuse(std::string("wmma::") + op + " with ldm " + std::to_string(mine.ldm) + ", not a multiple of " +
                                 std::to_string(16 / element_bytes) + " elements",
                             where);
    return false;
  }
  return true;
}

inline unsigned lane() { return (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % 32; }

}  // namespace detail

template <typename Use, int m, int n, int k, typename T, typename Layout = void>
class fragment {
  static_assert(detail::supported<Use, m, n, k, T, Layout>(), "a WMMA fragment the emulator does not provide");

 public:
  using element_type = T;
  using storage_element_type = typename detail::storage<T>::type;
  static constexpr int rows = detail::tile<Use, m, n, k>::rows, cols = detail::tile<Use, m, n, k>::cols;
  enum { num_elements = rows * cols / 32 };
  storage_element_type x[num_elements];
};

template <typename Use, int m, int n, int k, typename T, typename Layout, typename V>
void fill_fragment(fragment<Use, m, n, k, T, Layout>& f, const V& v,
                   std::source_location where = std::source_location::current()) {
  const void* all[32];
  ringlet_emu::warp_collective(nullptr, all, where);
  for (auto& e : f.x) e = static_cast<typename fragment<Use, m, n, k, T, Layout>::storage_element_type>(v);
  __syncwarp(~0u, where);
}

template <typename Use, int m, int n, int k, typename T, typename Layout, typename S>
void load_matrix_sync(fragment<Use, m, n, k, T, Layout>& f, const S* p, unsigned ldm,
                      std::source_location where = std::source_location::current()) {
  static_assert(!std::is_same_v<Use, accumulator>, "an accumulator's load names its layout");
  static_assert(std::is_same_v<S, typename fragment<Use, m, n, k, T, Layout>::storage_element_type>);
  constexpr bool row = std::is_same_v<Layout, row_major>;
  const detail::Access access{p, ldm, row};  // named: other lanes read it until the closing barrier
  if (detail::agree("load_matrix_sync", access, sizeof(S), where))
    for (int e = 0; e < f.num_elements; e++) {
      const int idx = (int)detail::lane() + 32 * e, r = idx / f.cols, c = idx % f.cols;
      f.x[e] = row ? p[(size_t)r * ldm + c] : p[r + (size_t)c * ldm];
    }
  __syncwarp(~0u, where);
}

template <int m, int n, int k>
void load_matrix_sync(fragment<accumulator, m, n, k, float>& f, const float* p, unsigned ldm, layout_t layout,
                      std::source_location where = std::source_location::current()) {
  const bool row = layout == mem_row_major;
  const detail::Access access{p, ldm, row};
  if (detail::agree("load_matrix_sync", access, sizeof(float), where))
    for (int e = 0; e < f.num_elements; e++) {
      const int idx = (int)detail::lane() + 32 * e, r = idx / f.cols, c = idx % f.cols;
      f.x[e] = row ? p[(size_t)r * ldm + c] : p[r + (size_t)c * ldm];
    }
  __syncwarp(~0u, where);
}

template <int m, int n, int k>
void store_matrix_sync(float* p, const fragment<accumulator, m, n, k, float>& f, unsigned ldm, layout_t layout,
                       std::source_location where = std::source_location::current()) {
  const bool row = layout == mem_row_major;
  const detail::Access access{p, ldm, row};
  if (detail::agree("store_matrix_sync", access, sizeof(float), where))
    for (int e = 0; e < f.num_elements; e++) {
      const int idx = (int)detail::lane() + 32 * e, r = idx / f.cols, c = idx % f.cols;
      (row ? p[(size_t)r * ldm + c] : p[r + (size_t)c * ldm]) = f.x[e];
    }
  __syncwarp(~0u, where);
}

// d = a·b + c, the warp's tiles. Each lane reads the fragments of all 32, then writes its own share of d
// after the closing barrier, so d may be c.
template <int m, int n, int k, typename T, typename LA, typename LB>
void mma_sync(fragment<accumulator, m, n, k, float>& d, const fragment<matrix_a, m, n, k, T, LA>& a,
              const fragment<matrix_b, m, n, k, T, LB>& b, const fragment<accumulator, m, n, k, float>& c,
              std::source_location where = std::source_location::current()) {
  using A = fragment<matrix_a, m, n, k, T, LA>;
  using B = fragment<matrix_b, m, n, k, T, LB>;
  using C = fragment<accumulator, m, n, k, float>;
  struct Operands {
    const A* a;
    const B* b;
    const C* c;
  };
  const Operands mine{&a, &b, &c};
  const void* all[32];
  ringlet_emu::warp_collective(&mine, all, where);
  const auto at = [&](int idx) { return static_cast<const Operands*>(all[idx % 32]); };
  const auto operand = [](auto x) {
    if constexpr (std::is_same_v<T, precision::tf32>) return detail::tf32_bits(x);
    else return detail::value(x);
  };
  float out[C::num_elements];
  for (int e = 0; e < C::num_elements; e++) {
    const int idx = (int)detail::lane() + 32 * e, r = idx / n, col = idx % n;
    float sum = c.x[e];
    for (int kk = 0; kk < k; kk++) {
      const int ia = r * k + kk, ib = kk * n + col;
      sum += operand(at(ia)->a->x[ia / 32]) * operand(at(ib)->b->x[ib / 32]);
    }
    out[e] = sum;
  }
  __syncwarp(~0u, where);
  std::memcpy(d.x, out, sizeof out);
}

// x with 10 mantissa bits: rounded to nearest, ties away from zero; NaN and infinity as they are.
inline float __float_to_tf32(float x) {
  const uint32_t u = __float_as_uint(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  return __uint_as_float((u + 0x1000u) & 0xffffe000u);
}

}  // namespace wmma
}  // namespace nvcuda
