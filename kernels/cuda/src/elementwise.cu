// Elementwise kernels: fill, strided copies, binary and unary operations, casts, AddN, SwiGLU's gating,
// RoPE and the multi-tensor AdamW. Each thread computes whole elements by itself, so results never depend
// on the launch shape. Strided views are first collapsed (dimensions of extent 1 dropped, neighbours that
// are contiguous in every view merged), and index arithmetic runs in 32 bits whenever every offset fits.
#include <cmath>
#include <cstring>

#include "ops.h"

namespace ringlet {

namespace {

constexpr int THREADS = 256;

// ---- Strided views of one shape: up to two strided operands (the output of `binary` is contiguous).
template <typename I>
struct Views {
  int rank;
  I shape[MAX_RANK];
  I stride[2][MAX_RANK];
  // Offsets of the element at linear index i (row-major over `shape`) in each view.
  __device__ void offsets(I i, I* o0, I* o1) const {
    I a = 0, b = 0;
    for (int d = rank - 1; d > 0; d--) {
      const I idx = i % shape[d];
      i /= shape[d];
      a += idx * stride[0][d];
      b += idx * stride[1][d];
    }
    if (rank > 0) {
      a += i * stride[0][0];
      b += i * stride[1][0];
    }
    *o0 = a;
    *o1 = b;
  }
};

struct Collapsed {
  int rank = 0;
  int64_t shape[MAX_RANK];
  int64_t stride[2][MAX_RANK];
  int64_t total = 1;
  bool fits32 = true;  // every linear index and offset below 2^31
};

Collapsed collapse(const int64_t* shape, int rank, const int64_t* s0, const int64_t* s1) {
  if (rank < 0 || rank > MAX_RANK) throw Failure("rank must be 0.." + std::to_string(MAX_RANK));
  Collapsed c;
  int64_t ext0 = 0, ext1 = 0;
  // From the innermost dimension out; `kept` holds them innermost first until the reversal below.
  int64_t sh[MAX_RANK], st0[MAX_RANK], st1[MAX_RANK];
  int kept = 0;
  for (int d = rank - 1; d >= 0; d--) {
    if (shape[d] < 0 || s0[d] < 0 || s1[d] < 0) throw Failure("shapes and strides must be non-negative");
    c.total *= shape[d];
    if (shape[d] == 0) return Collapsed{0, {}, {}, 0, true};
    ext0 += (shape[d] - 1) * s0[d];
    ext1 += (shape[d] - 1) * s1[d];
    if (shape[d] == 1) continue;
    if (kept > 0 && s0[d] == st0[kept - 1] * sh[kept - 1] && s1[d] == st1[kept - 1] * sh[kept - 1]) {
      sh[kept - 1] *= shape[d];
      continue;
    }
    sh[kept] = shape[d];
    st0[kept] = s0[d];
    st1[kept] = s1[d];
    kept++;
  }
  c.rank = kept;
  for (int i = 0; i < kept; i++) {
    c.shape[i] = sh[kept - 1 - i];
    c.stride[0][i] = st0[kept - 1 - i];
    c.stride[1][i] = st1[kept - 1 - i];
  }
  const int64_t limit = int64_t{1} << 31;
  c.fits32 = c.total < limit && ext0 < limit && ext1 < limit;
  return c;
}

template <typename I>
Views<I> views_of(const Collapsed& c) {
  Views<I> v;
  v.rank = c.rank;
  for (int d = 0; d < MAX_RANK; d++) {
    v.shape[d] = d < c.rank ? (I)c.shape[d] : 1;
    v.stride[0][d] = d < c.rank ? (I)c.stride[0][d] : 0;
    v.stride[1][d] = d < c.rank ? (I)c.stride[1][d] : 0;
  }
  return v;
}

// ---- Fill and copies (4-byte elements of any dtype).

__global__ void fill_kernel(uint32_t* y, uint32_t bits, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = bits;
}

template <typename I>
__global__ void copy_strided_kernel(const uint32_t* src, uint32_t* dst, Views<I> v, I total) {
  for (I i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    I s, d;
    v.offsets(i, &s, &d);
    dst[d] = src[s];
  }
}

// ---- Binary operations.

template <typename T>
__device__ inline T arithmetic(BinaryOp op, T a, T b);

template <>
__device__ inline float arithmetic<float>(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    // NaN wins, as Math.max and Math.min (and TensorFlow.js's CPU kernels) have it.
    case BinaryOp::maximum: return isnan(a) || isnan(b) ? NAN : fmaxf(a, b);
    case BinaryOp::minimum: return isnan(a) || isnan(b) ? NAN : fminf(a, b);
    case BinaryOp::pow: return powf(a, b);
    default: return 0;
  }
}

// int32 division floors (TensorFlow.js divides int32 tensors with floorDiv); by zero gives 0.
template <>
__device__ inline int32_t arithmetic<int32_t>(BinaryOp op, int32_t a, int32_t b) {
  switch (op) {
    case BinaryOp::add: return (int32_t)((uint32_t)a + (uint32_t)b);
    case BinaryOp::sub: return (int32_t)((uint32_t)a - (uint32_t)b);
    case BinaryOp::mul: return (int32_t)((uint32_t)a * (uint32_t)b);
    case BinaryOp::div: {
      if (b == 0) return 0;
      const int32_t q = a / b;
      return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
    }
    case BinaryOp::maximum: return a > b ? a : b;
    case BinaryOp::minimum: return a < b ? a : b;
    case BinaryOp::pow: return (int32_t)pow((double)a, (double)b);
    default: return 0;
  }
}

template <typename T>
__device__ inline int32_t compare(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::equal: return a == b;
    case BinaryOp::not_equal: return a != b;
    case BinaryOp::less: return a < b;
    case BinaryOp::greater: return a > b;
    default: return 0;
  }
}

__host__ __device__ inline bool is_comparison(BinaryOp op) {
  return op == BinaryOp::equal || op == BinaryOp::not_equal || op == BinaryOp::less || op == BinaryOp::greater;
}

template <typename T, typename I>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, void* out, Views<I> v, I total) {
  const bool cmp = is_comparison(op);
  for (I i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    I ia, ib;
    v.offsets(i, &ia, &ib);
    if (cmp)
      static_cast<int32_t*>(out)[i] = compare(op, a[ia], b[ib]);
    else
      static_cast<T*>(out)[i] = arithmetic(op, a[ia], b[ib]);
  }
}

template <typename T>
void binary_typed(BinaryOp op, const void* a, const void* b, void* out, const Collapsed& c) {
  const T* A = static_cast<const T*>(a);
  const T* B = static_cast<const T*>(b);
  if (c.fits32)
    ctx().launch("binary", dim3(blocks_for(c.total, THREADS)), dim3(THREADS), 0, binary_kernel<T, uint32_t>, op, A, B,
                 out, views_of<uint32_t>(c), (uint32_t)c.total);
  else
    ctx().launch("binary", dim3(blocks_for(c.total, THREADS)), dim3(THREADS), 0, binary_kernel<T, uint64_t>, op, A, B,
                 out, views_of<uint64_t>(c), (uint64_t)c.total);
}

// ---- Unary operations and casts.

__global__ void unary_kernel(UnaryOp op, const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float v = x[i];
    float r;
    switch (op) {
      case UnaryOp::neg: r = -v; break;
      case UnaryOp::exp: r = expf(v); break;
      case UnaryOp::log: r = logf(v); break;
      case UnaryOp::sqrt: r = sqrtf(v); break;
      case UnaryOp::rsqrt: r = 1.0f / sqrtf(v); break;
      case UnaryOp::square: r = v * v; break;
      case UnaryOp::abs: r = fabsf(v); break;
      case UnaryOp::sigmoid: r = 1.0f / (1.0f + expf(-v)); break;
      case UnaryOp::tanh: r = tanhf(v); break;
      case UnaryOp::relu: r = v > 0.0f ? v : (isnan(v) ? v : 0.0f); break;
      case UnaryOp::reciprocal: r = 1.0f / v; break;
      default: r = 0; break;
    }
    y[i] = r;
  }
}

// float32 to int32 truncates toward zero (NaN gives 0, out-of-range values saturate); to bool is x ≠ 0.
__global__ void cast_kernel(const uint32_t* x, DType from, uint32_t* y, DType to, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const uint32_t bits = x[i];
    uint32_t out = bits;
    if (from == DType::f32) {
      const float v = __uint_as_float(bits);
      if (to == DType::i32) out = (uint32_t)__float2int_rz(v);
      if (to == DType::boolean) out = v != 0.0f;
    } else {
      const int32_t v = (int32_t)bits;
      if (to == DType::f32) out = __float_as_uint((float)v);
      if (to == DType::boolean) out = v != 0;
    }
    y[i] = out;
  }
}

// ---- AddN: y = Σ xs in list order, up to ADDN_MAX inputs per launch; longer lists continue from y.
constexpr int ADDN_MAX = 16;
struct AddNInputs {
  const float* x[ADDN_MAX];
  int count;
  bool accumulate;
};

__global__ void add_n_kernel(AddNInputs in, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float s = in.accumulate ? y[i] : in.x[0][i];
    for (int j = in.accumulate ? 0 : 1; j < in.count; j++) s += in.x[j][i];
    y[i] = s;
  }
}

// ---- SwiGLU's gating, y = silu(a)·b, and its gradient (kernels.inc swiglu_fwd, swiglu_bwd).

__device__ inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void swiglu_fwd_kernel(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = a[i] * sigmoid(a[i]) * b[i];
}

__global__ void swiglu_bwd_kernel(const float* a, const float* b, const float* dy, float* da, float* db, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float ai = a[i], s = sigmoid(ai);
    db[i] = dy[i] * ai * s;
    da[i] = dy[i] * b[i] * s * (1.0f + ai * (1.0f - s));
  }
}

// ---- RoPE on [rows, heads·hd] (kernels.inc rope): one thread per rotated pair (i, i + hd/2) of a head,
// so y may be x.
__global__ void rope_kernel(const float* x, float* y, const float* cos_t, const float* sin_t, int64_t pairs, int64_t T,
                            int64_t heads, int64_t hd, float sign) {
  const int64_t half = hd / 2;
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < pairs; t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = t % half, row_head = t / half, pos = (row_head / heads) % T;
    const int64_t at = row_head * hd + i;
    const float c = cos_t[pos * half + i], s = sign * sin_t[pos * half + i];
    const float a = x[at], b = x[at + half];
    y[at] = a * c - b * s;
    y[at + half] = a * s + b * c;
  }
}

// ---- Multi-tensor AdamW (kernels.inc adamw): one launch for every tensor; each block updates one chunk
// of one tensor, found by binary search over the tensors' first blocks.
constexpr int64_t ADAMW_CHUNK = 4 * THREADS;
struct AdamwEntry {
  AdamwTensor t;
  int64_t first_block;
};

__global__ void adamw_kernel(const AdamwEntry* table, int count, AdamwScalars s) {
  int lo = 0, hi = count - 1;  // the last tensor whose first block is at or before this one
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (table[mid].first_block <= (int64_t)blockIdx.x)
      lo = mid;
    else
      hi = mid - 1;
  }
  const AdamwTensor t = table[lo].t;
  const int64_t begin = ((int64_t)blockIdx.x - table[lo].first_block) * ADAMW_CHUNK;
  const int64_t end = begin + ADAMW_CHUNK < t.n ? begin + ADAMW_CHUNK : t.n;
  const float ic1 = 1.0f / s.c1, ic2 = 1.0f / s.c2;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float gi = t.g[i] * s.gscale;
    const float mi = s.beta1 * t.m[i] + (1.0f - s.beta1) * gi;
    const float vi = s.beta2 * t.v[i] + (1.0f - s.beta2) * gi * gi;
    const float upd = (mi * ic1) / (sqrtf(vi * ic2) + s.eps);
    const float p = t.p[i];
    t.m_out[i] = mi;
    t.v_out[i] = vi;
    t.p_out[i] = p - s.lr * (upd + t.wd * p);
  }
}

}  // namespace

void fill(void* y, DType dtype, double value, int64_t n) {
  uint32_t bits;
  if (dtype == DType::f32) {
    const float f = (float)value;
    std::memcpy(&bits, &f, 4);
  } else {
    bits = dtype == DType::boolean ? (value != 0) : (uint32_t)(int32_t)value;
  }
  ctx().launch("fill", dim3(blocks_for(n, THREADS)), dim3(THREADS), 0, fill_kernel, static_cast<uint32_t*>(y), bits, n);
}

void copy_strided(const uint32_t* src, int64_t src_offset, const int64_t* src_strides, uint32_t* dst,
                  int64_t dst_offset, const int64_t* dst_strides, const int64_t* shape, int rank) {
  const Collapsed c = collapse(shape, rank, src_strides, dst_strides);
  if (c.total == 0) return;
  const uint32_t* s = src + src_offset;
  uint32_t* d = dst + dst_offset;
  if (c.fits32)
    ctx().launch("copyStrided", dim3(blocks_for(c.total, THREADS)), dim3(THREADS), 0, copy_strided_kernel<uint32_t>, s,
                 d, views_of<uint32_t>(c), (uint32_t)c.total);
  else
    ctx().launch("copyStrided", dim3(blocks_for(c.total, THREADS)), dim3(THREADS), 0, copy_strided_kernel<uint64_t>, s,
                 d, views_of<uint64_t>(c), (uint64_t)c.total);
}

void binary(BinaryOp op, DType dtype, const void* a, const int64_t* a_strides, const void* b, const int64_t* b_strides,
            void* out, const int64_t* shape, int rank) {
  const Collapsed c = collapse(shape, rank, a_strides, b_strides);
  if (c.total == 0) return;
  // Merging may only join dimensions the contiguous output also joins, which it always does: its strides
  // are the row-major ones, so any two neighbours are contiguous in it.
  if (dtype == DType::f32)
    binary_typed<float>(op, a, b, out, c);
  else
    binary_typed<int32_t>(op, a, b, out, c);
}

void unary(UnaryOp op, const float* x, float* y, int64_t n) {
  ctx().launch("unary", dim3(blocks_for(n, THREADS)), dim3(THREADS), 0, unary_kernel, op, x, y, n);
}

void cast(const void* x, DType from, void* y, DType to, int64_t n) {
  ctx().launch("cast", dim3(blocks_for(n, THREADS)), dim3(THREADS), 0, cast_kernel, static_cast<const uint32_t*>(x),
               from, static_cast<uint32_t*>(y), to, n);
}

void add_n(const float* const* xs, int count, float* y, int64_t n) {
  if (count < 1) throw Failure("addN: no inputs");
  for (int first = 0; first < count; first += ADDN_MAX) {
    AddNInputs in{};
    in.count = count - first < ADDN_MAX ? count - first : ADDN_MAX;
    in.accumulate = first > 0;
    for (int j = 0; j < in.count; j++) in.x[j] = xs[first + j];
    ctx().launch("addN", dim3(blocks_for(n, THREADS)), dim3(THREADS), 0, add_n_kernel, in, y, n);
  }
}

void swiglu_fwd(const float* a, const float* b, float* y, int64_t n) {
  ctx().launch("swigluFwd", dim3(blocks_for(n, THREADS)), dim3(THREADS), 0, swiglu_fwd_kernel, a, b, y, n);
}

void swiglu_bwd(const float* a, const float* b, const float* dy, float* da, float* db, int64_t n) {
  ctx().launch("swigluBwd", dim3(blocks_for(n, THREADS)), dim3(THREADS), 0, swiglu_bwd_kernel, a, b, dy, da, db, n);
}

void rope(const float* x, float* y, const float* cos_t, const float* sin_t, int64_t rows, int64_t T, int64_t heads,
          int64_t hd, float sign) {
  if (T <= 0 || hd % 2 != 0) throw Failure("rope: T must be positive and hd even");
  const int64_t pairs = rows * heads * (hd / 2);
  if (pairs == 0) return;
  ctx().launch("rope", dim3(blocks_for(pairs, THREADS)), dim3(THREADS), 0, rope_kernel, x, y, cos_t, sin_t, pairs, T,
               heads, hd, sign);
}

void adamw(const AdamwTensor* tensors, int count, const AdamwScalars& s) {
  if (count == 0) return;
  std::vector<AdamwEntry> table(count);
  int64_t blocks = 0;
  for (int i = 0; i < count; i++) {
    table[i].t = tensors[i];
    table[i].first_block = blocks;
    blocks += (tensors[i].n + ADAMW_CHUNK - 1) / ADAMW_CHUNK;
  }
  if (blocks == 0) return;
  if (blocks > INT32_MAX) throw Failure("adamw: too many elements");
  Context& c = ctx();
  Context::Scratch device_table(c, sizeof(AdamwEntry) * count);
  c.upload(device_table.as<void>(), table.data(), sizeof(AdamwEntry) * count);
  c.launch("adamw", dim3((unsigned)blocks), dim3(THREADS), 0, adamw_kernel, device_table.as<const AdamwEntry>(), count,
           s);
}

}  // namespace ringlet
