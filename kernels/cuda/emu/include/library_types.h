// The emulator's stand-in for the toolkit's library_types.h: the data types cuBLAS's declarations name
// (kernels/cuda/src/cublas_api.h), with NVIDIA's values.
#pragma once

typedef enum cudaDataType_t {
  CUDA_R_32F = 0,
  CUDA_R_16F = 2,
  CUDA_R_16BF = 14,
} cudaDataType;
