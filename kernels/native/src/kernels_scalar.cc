// The fused kernels compiled for scalar (see kernels.inc).
#include "kernels.h"
// baseline x86-64 (SSE2): what any 64-bit x86 CPU runs
#define RINGLET_NS ringlet_scalar
#define RINGLET_LANES 4
#include "kernels.inc"
