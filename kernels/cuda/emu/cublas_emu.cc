// The emulator's cuBLAS (kernels/cuda/build.mjs builds it into build/emu-cublas/libcublas.so.13, beside an
// empty libcublasLt.so.13): exactly the functions kernels/cuda/src/cublas.cc opens, with the signatures of
// kernels/cuda/src/cublas_api.h. The strided batched GEMM is a plain column-major loop with cuBLAS's
// argument checks; its compute types round the products' inputs as the tensor cores do (TF32: 10 mantissa
// bits, bf16: 7, to nearest even) and accumulate in float32 in order. beta = 0 never reads C.
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../src/cublas_api.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

namespace {

// x rounded to nearest even at `dropped` low mantissa bits; NaN and infinity stay as they are.
float round_mantissa(float x, int dropped) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  const uint32_t half = (1u << (dropped - 1)) - 1 + ((u >> dropped) & 1);
  u = (u + half) & ~((1u << dropped) - 1);
  std::memcpy(&x, &u, 4);
  return x;
}

// The depth of one tile of the product: its terms are summed, then the tiles' sums, as a GPU's tiled
// kernel does (one float32 sum over all of k would drift further than cuBLAS does over long products).
constexpr int K_TILE = 32;

// op(X) as a dense column-major [rows, cols] matrix, its inputs rounded for the compute type.
std::vector<float> operand(const float* x, int ld, bool trans, int rows, int cols, int dropped) {
  std::vector<float> out((size_t)rows * cols);
  for (int c = 0; c < cols; c++)
    for (int r = 0; r < rows; r++) {
      const float v = trans ? x[c + (size_t)r * ld] : x[r + (size_t)c * ld];
      out[r + (size_t)c * rows] = dropped ? round_mantissa(v, dropped) : v;
    }
  return out;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}

__attribute__((visibility("default"))) cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

__attribute__((visibility("default"))) cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

__attribute__((visibility("default"))) cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace,
                                                                            size_t bytes) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes > 0 && !workspace) return CUBLAS_STATUS_INVALID_VALUE;
  handle->workspace = workspace;
  handle->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}

__attribute__((visibility("default"))) cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int* version) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!version) return CUBLAS_STATUS_INVALID_VALUE;
  *version = 130000;
  return CUBLAS_STATUS_SUCCESS;
}

__attribute__((visibility("default"))) cublasStatus_t cublasGemmStridedBatchedEx(
    cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, const void* alpha,
    const void* A, cudaDataType Atype, int lda, long long strideA, const void* B, cudaDataType Btype, int ldb,
    long long strideB, const void* beta, void* C, cudaDataType Ctype, int ldc, long long strideC, int batchCount,
    cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  const bool ta = transa == CUBLAS_OP_T, tb = transb == CUBLAS_OP_T;
  const auto at_least = [](int ld, int rows) { return ld >= (rows > 1 ? rows : 1); };
  if ((transa != CUBLAS_OP_N && !ta) || (transb != CUBLAS_OP_N && !tb) || m < 0 || n < 0 || k < 0 ||
      batchCount < 0 || !alpha || !beta || !at_least(lda, ta ? k : m) || !at_least(ldb, tb ? n : k) ||
      !at_least(ldc, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (Atype != CUDA_R_32F || Btype != CUDA_R_32F || Ctype != CUDA_R_32F || algo != CUBLAS_GEMM_DEFAULT)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  int dropped;
  switch (computeType) {
    case CUBLAS_COMPUTE_32F: dropped = 0; break;
    case CUBLAS_COMPUTE_32F_FAST_TF32: dropped = 13; break;
    case CUBLAS_COMPUTE_32F_FAST_16BF: dropped = 16; break;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  const float a_scale = *static_cast<const float*>(alpha), b_scale = *static_cast<const float*>(beta);
  for (int batch = 0; batch < batchCount; batch++) {
    const float* a = static_cast<const float*>(A) + batch * strideA;
    const float* b = static_cast<const float*>(B) + batch * strideB;
    float* c = static_cast<float*>(C) + batch * strideC;
    // op(A) [m, k] transposed to [k, m] columns (a row of op(A) contiguous), op(B) [k, n].
    const std::vector<float> at = operand(a, lda, !ta, k, m, dropped), bt = operand(b, ldb, tb, k, n, dropped);
    for (int j = 0; j < n; j++)
      for (int i = 0; i < m; i++) {
        const float *x = &at[(size_t)i * k], *y = &bt[(size_t)j * k];
        float acc = 0;
        for (int l0 = 0; l0 < k; l0 += K_TILE) {
          float part = 0;
          for (int l = l0; l < l0 + K_TILE && l < k; l++) part += x[l] * y[l];
          acc += part;
        }
        float& out = c[i + (size_t)j * ldc];
        out = b_scale == 0.0f ? a_scale * acc : a_scale * acc + b_scale * out;
      }
  }
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"

// The signatures are those the addon calls through.
static_assert(std::is_same_v<decltype(&cublasCreate_v2), cublasCreate_v2_t>);
static_assert(std::is_same_v<decltype(&cublasDestroy_v2), cublasDestroy_v2_t>);
static_assert(std::is_same_v<decltype(&cublasSetStream_v2), cublasSetStream_v2_t>);
static_assert(std::is_same_v<decltype(&cublasSetWorkspace_v2), cublasSetWorkspace_v2_t>);
static_assert(std::is_same_v<decltype(&cublasGetVersion_v2), cublasGetVersion_v2_t>);
static_assert(std::is_same_v<decltype(&cublasGemmStridedBatchedEx), cublasGemmStridedBatchedEx_t>);
