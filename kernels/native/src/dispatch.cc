// Picks the kernel table for the CPU at run time (cpuid through __builtin_cpu_supports).
#include <cstring>
#include "kernels.h"

#define RINGLET_TABLE(ns)                                                                                  \
  {                                                                                                        \
    #ns, ns::rmsnorm_fwd, ns::rmsnorm_bwd, ns::swiglu_fwd, ns::swiglu_bwd, ns::rope, ns::attn_fwd,         \
        ns::attn_bwd, ns::attn_decode, ns::xent_fwd, ns::xent_bwd, ns::adamw, ns::add_into, ns::fma_loop \
  }

static const KernelTable kAvx512 = RINGLET_TABLE(ringlet_avx512);
static const KernelTable kAvx2 = RINGLET_TABLE(ringlet_avx2);
static const KernelTable kScalar = RINGLET_TABLE(ringlet_scalar);

static bool has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}
static bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

const KernelTable* kernels_for(const char* name) {
  if (std::strcmp(name, "avx512") == 0) return has_avx512() ? &kAvx512 : nullptr;
  if (std::strcmp(name, "avx2") == 0) return has_avx2() ? &kAvx2 : nullptr;
  if (std::strcmp(name, "scalar") == 0) return &kScalar;
  return nullptr;
}

const KernelTable* best_kernels() { return has_avx512() ? &kAvx512 : has_avx2() ? &kAvx2 : &kScalar; }
