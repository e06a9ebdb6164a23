// Products through cuBLAS (BatchMatMul's gemm) and the fused output projection with cross-entropy
// (kernels/native/src/addon.cc LinearXent): by chunks of rows, logits = h·wᵀ into a scratch buffer by
// cuBLAS, then a block per row computes its log-sum-exp and loss and, with gradients, overwrites its
// logits with the mean loss's dlogits; then dh = dlogits·w and dw += dlogitsᵀ·h by cuBLAS.
//
// cuBLAS is column-major: a row-major matrix [r, c] is the column-major [c, r], its transpose. So the
// row-major C = op(A)·op(B) is computed as the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: the operands swap, keep
// their transpose flags, and m and n swap.
#include <algorithm>
#include <climits>
#include <cmath>

#include "block_reduce.cuh"
#include "ops.h"

namespace ringlet {

namespace {

void need_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) throw Failure(std::string("gemm: ") + what + " does not fit cuBLAS's int");
}

__global__ void xent_rows_kernel(float* logits, const int32_t* targets, float* loss, int64_t V, int64_t first_row,
                                 float inv_rows, bool with_grad, Fault* fault) {
  float* x = logits + blockIdx.x * V;
  const int64_t row = first_row + blockIdx.x;
  const int32_t t = targets[row];
  const bool ok = t >= 0 && t < V;
  const float target_logit = ok ? x[t] : 0.0f;  // read before any thread overwrites the row
  const auto [m, s] = block_row_exp_sum(x, V);
  const float lse = m + logf(s);
  if (threadIdx.x == 0) {
    loss[row] = ok ? lse - target_logit : NAN;
    if (!ok) report_fault(fault, FAULT_XENT_TARGET, row, t, V);
  }
  if (!with_grad) return;
  // dlogits = (softmax − onehot)/rows; a row with a bad target contributes nothing.
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    const float p = ok ? expf(x[i] - lse) * inv_rows : 0.0f;
    x[i] = ok && i == t ? p - inv_rows : p;
  }
}

// Rows of logits per chunk: up to 32M floats (128 MiB), large enough for cuBLAS to run near its best.
constexpr int64_t XENT_CHUNK_FLOATS = int64_t{32} << 20;

}  // namespace

void gemm_rows(const float* a, const float* b, float* c, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
               bool trans_b, int64_t lda, int64_t ldb, int64_t ldc, int64_t stride_a, int64_t stride_b,
               int64_t stride_c, float beta) {
  if (batch == 0 || m == 0 || n == 0) return;
  need_int(batch, "batch");
  need_int(m, "m");
  need_int(n, "n");
  need_int(k, "k");
  need_int(lda, "a's row length");
  need_int(ldb, "b's row length");
  need_int(ldc, "c's row length");
  Context& x = ctx();
  const float alpha = 1.0f;
  x.begin("gemm (cuBLAS)");
  const cublasStatus_t s = x.cublas->gemm(
      x.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k, &alpha, b,
      CUDA_R_32F, (int)ldb, stride_b, a, CUDA_R_32F, (int)lda, stride_a, &beta, c, CUDA_R_32F, (int)ldc, stride_c,
      (int)batch, x.compute, CUBLAS_GEMM_DEFAULT);
  check_cublas(s, "cublasGemmStridedBatchedEx");
  x.end("gemm (cuBLAS)", cudaGetLastError());
}

void gemm(const float* a, const float* b, float* c, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
          bool trans_b, int64_t stride_a, int64_t stride_b, int64_t stride_c) {
  if (batch == 0 || m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < batch; i++) fill(c + i * stride_c, DType::f32, 0, m * n);
    return;
  }
  gemm_rows(a, b, c, batch, m, n, k, trans_a, trans_b, trans_a ? m : k, trans_b ? k : n, n, stride_a, stride_b,
            stride_c, 0.0f);
}

void linear_xent(const float* h, const float* w, const int32_t* targets, float* loss, float* dh, float* dw,
                 int64_t rows, int64_t d, int64_t V, bool with_grad) {
  if (rows == 0 || V == 0) return;
  Context& c = ctx();
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(rows, XENT_CHUNK_FLOATS / V));
  Context::Scratch logits(c, sizeof(float) * chunk * V);
  float* lg = logits.as<float>();
  const bool grads = with_grad && d > 0;
  const int threads = threads_for_row(V, 512);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    if (d > 0)
      gemm_rows(h + r0 * d, w, lg, 1, n, V, d, false, true, d, d, V, 0, 0, 0, 0.0f);
    else
      fill(lg, DType::f32, 0, n * V);
    c.launch("linearXent", dim3((unsigned)n), dim3(threads), 0, xent_rows_kernel, lg, targets, loss, V, r0,
             1.0f / (float)rows, grads, c.fault);
    if (!grads) continue;
    gemm_rows(lg, w, dh + r0 * d, 1, n, d, V, false, false, V, d, d, 0, 0, 0, 0.0f);
    gemm_rows(lg, h + r0 * d, dw, 1, V, d, n, true, false, V, d, d, 0, 0, 0, r0 == 0 ? 0.0f : 1.0f);
  }
}

}  // namespace ringlet
