// Kernels over rows: reductions along the innermost axis, softmax, RMSNorm forward and backward, and
// GatherV2. A row is reduced by one block (or one warp) in a fixed order, and a column sum over many rows
// (RMSNorm's dg) by fixed chunks of rows whose partial sums are then added in chunk order: no float atomics,
// so every run gives the same bits.
#include <algorithm>
#include <climits>
#include <cmath>

#include "block_reduce.cuh"
#include "ops.h"

namespace ringlet {

namespace {

// ---- Reductions.

template <typename T>
struct Limits;
template <>
struct Limits<float> {
  static __device__ float lowest() { return -INFINITY; }
  static __device__ float highest() { return INFINITY; }
  static __device__ bool is_nan(float v) { return isnan(v); }
};
template <>
struct Limits<int32_t> {
  static __device__ int32_t lowest() { return INT_MIN; }
  static __device__ int32_t highest() { return INT_MAX; }
  static __device__ bool is_nan(int32_t) { return false; }
};

template <typename T>
__device__ inline T identity_of(ReduceOp op) {
  switch (op) {
    case ReduceOp::max: return Limits<T>::lowest();
    case ReduceOp::min: return Limits<T>::highest();
    case ReduceOp::prod: return T(1);
    default: return T(0);
  }
}

// max and min keep a NaN, so a NaN in the data is never hidden by the reduction.
template <typename T>
__device__ inline T combine(ReduceOp op, T a, T b) {
  switch (op) {
    case ReduceOp::max: return Limits<T>::is_nan(a) || a > b ? a : b;
    case ReduceOp::min: return Limits<T>::is_nan(a) || a < b ? a : b;
    case ReduceOp::prod: return a * b;
    default: return a + b;
  }
}

// Block b reduces part (b mod parts) of row (b / parts): elements [part·part_len, (part+1)·part_len).
// With `finish`, a mean divides by `count`, the whole row's length.
template <typename T>
__global__ void reduce_kernel(ReduceOp op, const T* x, T* y, int64_t inner, int parts, int64_t part_len, bool finish,
                              int64_t count) {
  const int64_t row = blockIdx.x / parts, part = blockIdx.x % parts;
  const int64_t begin = part * part_len, end = begin + part_len < inner ? begin + part_len : inner;
  const T* xr = x + row * inner;
  T acc = identity_of<T>(op);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) acc = combine(op, acc, xr[i]);
  acc = block_reduce(acc, [op](T a, T b) { return combine(op, a, b); }, identity_of<T>(op));
  if (threadIdx.x == 0) {
    if (finish && op == ReduceOp::mean) acc = (T)(acc / (T)count);
    y[blockIdx.x] = acc;
  }
}

// A row longer than this is split into parts when there are too few rows to fill the device.
constexpr int64_t REDUCE_PART = 8192;

template <typename T>
void reduce_typed(ReduceOp op, const T* x, T* y, int64_t outer, int64_t inner) {
  Context& c = ctx();
  const int threads = threads_for_row(inner, 256);
  const int64_t parts = outer < 2 * c.sm_count ? std::min<int64_t>((inner + REDUCE_PART - 1) / REDUCE_PART, 1024) : 1;
  if (parts <= 1) {
    c.launch("reduce", dim3((unsigned)outer), dim3(threads), 0, reduce_kernel<T>, op, x, y, inner, 1, inner, true,
             inner);
    return;
  }
  // Two passes: fixed parts of each row, then each row's parts in order.
  const int64_t part_len = (inner + parts - 1) / parts;
  Context::Scratch partial(c, sizeof(T) * outer * parts);
  c.launch("reduce", dim3((unsigned)(outer * parts)), dim3(threads), 0, reduce_kernel<T>, op, x, partial.as<T>(),
           inner, (int)parts, part_len, false, inner);
  c.launch("reduce", dim3((unsigned)outer), dim3(threads_for_row(parts, 256)), 0, reduce_kernel<T>, op,
           partial.as<const T>(), y, parts, 1, parts, true, inner);
}

// ---- Softmax over rows: a block per row; max, then the sum of exponentials, then the normalised row.
__global__ void softmax_kernel(const float* x, float* y, int64_t cols) {
  const float* xr = x + blockIdx.x * cols;
  float* yr = y + blockIdx.x * cols;
  const auto [m, s] = block_row_exp_sum(xr, cols);
  const float inv = 1.0f / s;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = expf(xr[i] - m) * inv;
}

// ---- RMSNorm (kernels.inc rmsnorm_fwd, rmsnorm_bwd): a warp per row.
constexpr int WARPS_PER_BLOCK = 8;

__device__ inline float add(float a, float b) { return a + b; }

__global__ void rmsnorm_fwd_kernel(const float* x, const float* g, float* y, float* rstd, int64_t rows, int64_t d,
                                   float eps) {
  const int64_t row = (int64_t)blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  const float* xr = x + row * d;
  float ss = 0;
  for (int64_t i = lane; i < d; i += 32) ss += xr[i] * xr[i];
  ss = warp_reduce(ss, add);
  const float s = 1.0f / sqrtf(ss / (float)d + eps);
  if (lane == 0) rstd[row] = s;
  float* yr = y + row * d;
  for (int64_t i = lane; i < d; i += 32) yr[i] = xr[i] * s * g[i];
}

// dx = rstd·(g·dy) − x·rstd³/d·Σ(g·dy·x).
__global__ void rmsnorm_dx_kernel(const float* x, const float* g, const float* rstd, const float* dy, float* dx,
                                  int64_t rows, int64_t d) {
  const int64_t row = (int64_t)blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  const float *xr = x + row * d, *dyr = dy + row * d;
  float dot = 0;
  for (int64_t i = lane; i < d; i += 32) dot += g[i] * dyr[i] * xr[i];
  dot = warp_reduce(dot, add);
  const float s = rstd[row], c = dot * s * s * s / (float)d;
  float* dxr = dx + row * d;
  for (int64_t i = lane; i < d; i += 32) dxr[i] = s * g[i] * dyr[i] - xr[i] * c;
}

// partial[chunk, i] = Σ over the chunk's rows, in order, of dy·x·rstd.
__global__ void rmsnorm_dg_partial_kernel(const float* x, const float* rstd, const float* dy, float* partial,
                                          int64_t rows, int64_t d, int64_t rows_per_chunk) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= d) return;
  const int64_t begin = blockIdx.y * rows_per_chunk;
  const int64_t end = begin + rows_per_chunk < rows ? begin + rows_per_chunk : rows;
  float acc = 0;
  for (int64_t r = begin; r < end; r++) acc += dy[r * d + i] * x[r * d + i] * rstd[r];
  partial[blockIdx.y * d + i] = acc;
}

// y[i] = Σ_c partial[c, i] for c < chunks: a warp per column, lanes over the chunks, then the fixed tree.
__global__ void column_sum_kernel(const float* partial, float* y, int64_t chunks, int64_t cols) {
  const int64_t col = (int64_t)blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / 32;
  if (col >= cols) return;
  const int lane = threadIdx.x % 32;
  float acc = 0;
  for (int64_t c = lane; c < chunks; c += 32) acc += partial[c * cols + col];
  acc = warp_reduce(acc, add);
  if (lane == 0) y[col] = acc;
}

// ---- GatherV2: a block per output row (o, c) of y [outer, count, inner], threads along inner.
__global__ void gather_kernel(const uint32_t* x, const int32_t* indices, uint32_t* y, int64_t dim, int64_t inner,
                              int64_t count, Fault* fault) {
  const int64_t row = blockIdx.x, o = row / count, c = row % count;
  const int32_t idx = indices[c];
  const bool ok = idx >= 0 && idx < dim;
  if (!ok && threadIdx.x == 0) report_fault(fault, FAULT_GATHER_INDEX, c, idx, dim);
  const uint32_t* src = x + (o * dim + (ok ? idx : 0)) * inner;
  uint32_t* dst = y + row * inner;
  for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) dst[i] = ok ? src[i] : 0u;
}

}  // namespace

void reduce(ReduceOp op, DType dtype, const void* x, void* y, int64_t outer, int64_t inner) {
  if (outer == 0) return;
  if (inner == 0) {
    // An empty row reduces to the identity (a mean to NaN, 0/0), as TensorFlow.js's CPU kernels give.
    const bool f32 = dtype == DType::f32;
    double v = 0;
    if (op == ReduceOp::max) v = f32 ? -INFINITY : INT_MIN;
    if (op == ReduceOp::min) v = f32 ? INFINITY : INT_MAX;
    if (op == ReduceOp::prod) v = 1;
    if (op == ReduceOp::mean && f32) v = NAN;
    fill(y, dtype, v, outer);
    return;
  }
  if (outer > INT32_MAX) throw Failure("reduce: too many rows");
  if (dtype == DType::f32)
    reduce_typed(op, static_cast<const float*>(x), static_cast<float*>(y), outer, inner);
  else
    reduce_typed(op, static_cast<const int32_t*>(x), static_cast<int32_t*>(y), outer, inner);
}

void softmax(const float* x, float* y, int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return;
  if (rows > INT32_MAX) throw Failure("softmax: too many rows");
  ctx().launch("softmax", dim3((unsigned)rows), dim3(threads_for_row(cols, 512)), 0, softmax_kernel, x, y, cols);
}

void rmsnorm_fwd(const float* x, const float* g, float* y, float* rstd, int64_t rows, int64_t d, float eps) {
  if (rows == 0) return;
  ctx().launch("rmsnormFwd", dim3((unsigned)((rows + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK)),
               dim3(32 * WARPS_PER_BLOCK), 0, rmsnorm_fwd_kernel, x, g, y, rstd, rows, d, eps);
}

void rmsnorm_bwd(const float* x, const float* g, const float* rstd, const float* dy, float* dx, float* dg, int64_t rows,
                 int64_t d) {
  if (d == 0) return;
  Context& c = ctx();
  if (rows == 0) {
    fill(dg, DType::f32, 0, d);
    return;
  }
  c.launch("rmsnormBwd", dim3((unsigned)((rows + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK)), dim3(32 * WARPS_PER_BLOCK),
           0, rmsnorm_dx_kernel, x, g, rstd, dy, dx, rows, d);
  // Chunks of at least 16 rows, at most 256 chunks: enough blocks to fill the device, few partials to add.
  const int64_t chunks = std::min<int64_t>(256, (rows + 15) / 16);
  const int64_t rows_per_chunk = (rows + chunks - 1) / chunks;
  Context::Scratch partial(c, sizeof(float) * chunks * d);
  c.launch("rmsnormBwd", dim3((unsigned)((d + 255) / 256), (unsigned)chunks), dim3(256), 0, rmsnorm_dg_partial_kernel,
           x, rstd, dy, partial.as<float>(), rows, d, rows_per_chunk);
  c.launch("rmsnormBwd", dim3((unsigned)((d + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK)), dim3(32 * WARPS_PER_BLOCK), 0,
           column_sum_kernel, partial.as<const float>(), dg, chunks, d);
}

void gather(const uint32_t* x, const int32_t* indices, uint32_t* y, int64_t outer, int64_t dim, int64_t inner,
            int64_t count) {
  const int64_t rows = outer * count;
  if (rows == 0 || inner == 0) return;
  if (rows > INT32_MAX) throw Failure("gather: too many rows");
  Context& c = ctx();
  c.launch("gather", dim3((unsigned)rows), dim3(threads_for_row(inner, 256)), 0, gather_kernel, x, indices, y, dim,
           inner, count, c.fault);
}

}  // namespace ringlet
