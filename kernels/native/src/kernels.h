// The fused kernels' signatures, once per instruction set, and the table dispatch.cc fills at load time.
#pragma once

#define RINGLET_DECLARE_KERNELS                                                                                    \
  void rmsnorm_fwd(const float* x, const float* g, float* y, float* rstd, long rows, long d, float eps);           \
  void rmsnorm_bwd(const float* x, const float* g, const float* rstd, const float* dy, float* dx, float* dg,       \
                   long rows, long d);                                                                             \
  void swiglu_fwd(const float* a, const float* b, float* y, long n);                                               \
  void swiglu_bwd(const float* a, const float* b, const float* dy, float* da, float* db, long n);                 \
  void rope(const float* x, float* y, const float* cos_t, const float* sin_t, long rows, long T, long heads,       \
            long hd, float sign);                                                                                  \
  void attn_fwd(const float* q, const float* k, const float* v, float* o, float* lse, long B, long T, long H,      \
                long Hkv, long hd, float* scratch);                                                                \
  void attn_bwd(const float* q, const float* k, const float* v, const float* o, const float* lse,                 \
                const float* dout, float* dq, float* dk, float* dv, long B, long T, long H, long Hkv, long hd,      \
                float* scratch);                                                                                   \
  void xent_fwd(const float* logits, const int* targets, float* loss, float* lse, long rows, long V);             \
  void xent_bwd(const float* logits, const int* targets, const float* lse, const float* dloss, float* dlogits,    \
                long rows, long V);                                                                                \
  void adamw(const float* p, const float* g, const float* m, const float* v, float* po, float* mo, float* vo,     \
             long n, float lr, float beta1, float beta2, float eps, float wd, float c1, float c2, float gscale);   \
  double fma_loop(long iters, float* sink);

namespace ringlet_avx512 {
RINGLET_DECLARE_KERNELS
}
namespace ringlet_avx2 {
RINGLET_DECLARE_KERNELS
}
namespace ringlet_scalar {
RINGLET_DECLARE_KERNELS
}

struct KernelTable {
  const char* name;
  decltype(&ringlet_scalar::rmsnorm_fwd) rmsnorm_fwd;
  decltype(&ringlet_scalar::rmsnorm_bwd) rmsnorm_bwd;
  decltype(&ringlet_scalar::swiglu_fwd) swiglu_fwd;
  decltype(&ringlet_scalar::swiglu_bwd) swiglu_bwd;
  decltype(&ringlet_scalar::rope) rope;
  decltype(&ringlet_scalar::attn_fwd) attn_fwd;
  decltype(&ringlet_scalar::attn_bwd) attn_bwd;
  decltype(&ringlet_scalar::xent_fwd) xent_fwd;
  decltype(&ringlet_scalar::xent_bwd) xent_bwd;
  decltype(&ringlet_scalar::adamw) adamw;
  decltype(&ringlet_scalar::fma_loop) fma_loop;
};

// The best table this CPU supports, or the one RINGLET_SIMD (avx512, avx2, scalar) names.
const KernelTable* kernels_for(const char* name);
const KernelTable* best_kernels();
