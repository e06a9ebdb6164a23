// The fused kernels compiled for avx2 (see kernels.inc).
#include "kernels.h"
#pragma GCC target("avx2,fma")
#define RINGLET_NS ringlet_avx2
#define RINGLET_LANES 8
#include "kernels.inc"
