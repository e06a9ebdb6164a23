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
  void attn_decode(const float* qkv, const float* cos_t, const float* sin_t, float* kc, float* vc, float* o,     \
                   long T, long start, long H, long Hkv, long hd, long cap, float* scratch);                      \
  void xent_fwd(const float* logits, const int* targets, float* loss, float* lse, long rows, long V);             \
  void xent_bwd(const float* logits, const int* targets, const float* lse, const float* dloss, float* dlogits,    \
                long rows, long V);                                                                                \
  void adamw(const float* p, const float* g, const float* m, const float* v, float* po, float* mo, float* vo,     \
             long n, float lr, float beta1, float beta2, float eps, float wd, float c1, float c2, float gscale);   \
  void add_into(float* t, const unsigned char* v, long n);                                                                \
  double fma_loop(long iters, float* sink);

// Attention works on tiles of ATT_BLOCK queries × ATT_BLOCK keys (equal, so a query block's diagonal tile
// starts at its first query); scratch rows are padded to ATT_HD_ALIGN floats (a multiple of every SIMD
// level's micro-tile width) and T to whole blocks, so micro-tiles never run past a scratch row or tile;
// the last, part-filled group of key rows read in place is copied to ATT_TAIL_ROWS rows (at least every
// level's rows per micro-tile) instead of reading past the tensor.
constexpr long ATT_BLOCK = 64;
constexpr long ATT_HD_ALIGN = 32;
constexpr long ATT_TAIL_ROWS = 8;
inline long att_round_up(long x, long m) { return (x + m - 1) / m * m; }
// Floats of scratch attn_fwd and attn_bwd need (the backward's, the larger): per (batch, kv head) K's rows
// and the dK and dV accumulators [Tp, hdp]; per query block Q and dO transposed [hd, ATT_BLOCK], their
// rows and the dQ accumulator [ATT_BLOCK, hdp], two transposed tiles [ATT_BLOCK, ATT_BLOCK], two values
// per query, and a ragged group of key rows [ATT_TAIL_ROWS, hd].
inline long attn_scratch_floats(long T, long hd) {
  const long Tp = att_round_up(T, ATT_BLOCK), hdp = att_round_up(hd, ATT_HD_ALIGN);
  return 3 * Tp * hdp + 2 * hd * ATT_BLOCK + 3 * ATT_BLOCK * hdp + 2 * ATT_BLOCK * ATT_BLOCK + 2 * ATT_BLOCK +
         ATT_TAIL_ROWS * hd;
}

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
  decltype(&ringlet_scalar::attn_decode) attn_decode;
  decltype(&ringlet_scalar::xent_fwd) xent_fwd;
  decltype(&ringlet_scalar::xent_bwd) xent_bwd;
  decltype(&ringlet_scalar::adamw) adamw;
  decltype(&ringlet_scalar::add_into) add_into;
  decltype(&ringlet_scalar::fma_loop) fma_loop;
};

// The best table this CPU supports, or the one RINGLET_SIMD (avx512, avx2, scalar) names.
const KernelTable* kernels_for(const char* name);
const KernelTable* best_kernels();
