// The fused kernels compiled for avx512 (see kernels.inc).
#include "kernels.h"
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
#define RINGLET_NS ringlet_avx512
#define RINGLET_LANES 16
#include "kernels.inc"
