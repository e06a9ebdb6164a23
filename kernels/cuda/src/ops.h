// The kernels' host entry points, one per Device method (kernels/cuda/device.ts documents each). They
// enqueue work on the context's stream; the N-API layer (addon.cc) has checked every buffer's extent.
#pragma once

#include <cstdint>

#include "context.h"

namespace ringlet {

constexpr int MAX_RANK = 6;

// The operation lists, in device.ts's order; addon.cc looks names up here.
enum class BinaryOp { add, sub, mul, div, maximum, minimum, pow, equal, not_equal, less, greater };
constexpr const char* BINARY_OP_NAMES[] = {"add",     "sub", "mul",   "div",      "maximum", "minimum",
                                           "pow",     "equal", "notEqual", "less", "greater"};
enum class UnaryOp { neg, exp, log, sqrt, rsqrt, square, abs, sigmoid, tanh, relu, reciprocal };
constexpr const char* UNARY_OP_NAMES[] = {"neg",    "exp", "log",     "sqrt", "rsqrt",     "square",
                                          "abs",    "sigmoid", "tanh", "relu", "reciprocal"};
enum class ReduceOp { sum, mean, max, min, prod };
constexpr const char* REDUCE_OP_NAMES[] = {"sum", "mean", "max", "min", "prod"};

// A strided view: extents and element strides, innermost last.
struct Strided {
  int rank;
  int64_t shape[MAX_RANK];
  int64_t stride[MAX_RANK];
};

void fill(void* y, DType dtype, double value, int64_t n);
void copy_strided(const uint32_t* src, int64_t src_offset, const int64_t* src_strides, uint32_t* dst,
                  int64_t dst_offset, const int64_t* dst_strides, const int64_t* shape, int rank);
void binary(BinaryOp op, DType dtype, const void* a, const int64_t* a_strides, const void* b,
            const int64_t* b_strides, void* out, const int64_t* shape, int rank);
void unary(UnaryOp op, const float* x, float* y, int64_t n);
void cast(const void* x, DType from, void* y, DType to, int64_t n);
void add_n(const float* const* xs, int count, float* y, int64_t n);

void reduce(ReduceOp op, DType dtype, const void* x, void* y, int64_t outer, int64_t inner);
void softmax(const float* x, float* y, int64_t rows, int64_t cols);
void gather(const uint32_t* x, const int32_t* indices, uint32_t* y, int64_t outer, int64_t dim, int64_t inner,
            int64_t count);
void segment_sum(const float* x, const int32_t* ids, float* y, int64_t rows, int64_t inner, int64_t segments);

// Row-major C = alpha·op(A)·op(B) + beta·C for `batch` products, lda/ldb/ldc the row-major leading dims.
void gemm_rows(const float* a, const float* b, float* c, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
               bool trans_b, int64_t lda, int64_t ldb, int64_t ldc, int64_t stride_a, int64_t stride_b,
               int64_t stride_c, float beta);
void gemm(const float* a, const float* b, float* c, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
          bool trans_b, int64_t stride_a, int64_t stride_b, int64_t stride_c);
void linear_xent(const float* h, const float* w, const int32_t* targets, float* loss, float* dh, float* dw,
                 int64_t rows, int64_t d, int64_t V, bool with_grad);

void rmsnorm_fwd(const float* x, const float* g, float* y, float* rstd, int64_t rows, int64_t d, float eps);
void rmsnorm_bwd(const float* x, const float* g, const float* rstd, const float* dy, float* dx, float* dg,
                 int64_t rows, int64_t d);
void swiglu_fwd(const float* a, const float* b, float* y, int64_t n);
void swiglu_bwd(const float* a, const float* b, const float* dy, float* da, float* db, int64_t n);
void rope(const float* x, float* y, const float* cos_t, const float* sin_t, int64_t rows, int64_t T, int64_t heads,
          int64_t hd, float sign);

// Attention supports head sizes up to this (the kernels hold a head's row in registers).
constexpr int64_t ATTN_MAX_HD = 256;
void attn_fwd(const float* q, const float* k, const float* v, float* o, float* lse, int64_t B, int64_t T, int64_t H,
              int64_t Hkv, int64_t hd);
void attn_bwd(const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
              float* dq, float* dk, float* dv, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t hd);

// One tensor of a multi-tensor AdamW step.
struct AdamwTensor {
  const float* p;
  const float* g;
  const float* m;
  const float* v;
  float* p_out;
  float* m_out;
  float* v_out;
  int64_t n;
  float wd;
};
struct AdamwScalars {
  float lr, beta1, beta2, eps, c1, c2, gscale;
};
void adamw(const AdamwTensor* tensors, int count, const AdamwScalars& s);

}  // namespace ringlet
