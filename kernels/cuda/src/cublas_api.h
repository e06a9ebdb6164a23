// The part of cuBLAS this addon calls, declared by hand: the library is opened at run time with dlopen
// (kernels/cuda/src/cublas.cc), so no cuBLAS header or library is needed to build. The values are those of
// NVIDIA's cublas_api.h (CUDA 12 and 13); cudaDataType comes from the toolkit's library_types.h.
#pragma once

#include <library_types.h>

struct cublasContext;
typedef cublasContext* cublasHandle_t;
typedef struct CUstream_st* cudaStream_t;

enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16,
};

enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };

// fp32 inputs and accumulation, with the products' inputs rounded to TF32 or bf16 in the fast modes.
enum cublasComputeType_t {
  CUBLAS_COMPUTE_32F = 68,
  CUBLAS_COMPUTE_32F_FAST_16BF = 75,
  CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
};

enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1 };

typedef cublasStatus_t (*cublasCreate_v2_t)(cublasHandle_t* handle);
typedef cublasStatus_t (*cublasDestroy_v2_t)(cublasHandle_t handle);
typedef cublasStatus_t (*cublasSetStream_v2_t)(cublasHandle_t handle, cudaStream_t stream);
typedef cublasStatus_t (*cublasSetWorkspace_v2_t)(cublasHandle_t handle, void* workspace, size_t bytes);
typedef cublasStatus_t (*cublasGetVersion_v2_t)(cublasHandle_t handle, int* version);
typedef cublasStatus_t (*cublasGemmStridedBatchedEx_t)(
    cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, const void* alpha,
    const void* A, cudaDataType Atype, int lda, long long strideA, const void* B, cudaDataType Btype, int ldb,
    long long strideB, const void* beta, void* C, cudaDataType Ctype, int ldc, long long strideC, int batchCount,
    cublasComputeType_t computeType, cublasGemmAlgo_t algo);
