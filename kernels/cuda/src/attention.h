// What the two attention implementations share: the call's dimensions and the query (or key) tile of a
// block, and the tensor-core kernels' entry points (attention_tc.cu), which attention.cu dispatches to.
#pragma once

#include <cstdint>

namespace ringlet {

// Queries (forward, dq) or keys (dk, dv) per block, in both implementations.
constexpr int ATTN_ROWS_PER_BLOCK = 64;

struct AttnDims {
  int64_t B, T, H, Hkv;
  int hd;
  float scale;
  int64_t tiles;  // row tiles of ATTN_ROWS_PER_BLOCK per sequence
};

// Whether the tensor-core kernels take a call: the device computes products in TF32 or bf16
// (Context::compute, set by setPrecision) and the head size is at most 64.
bool attn_tc_takes(int hd);
void attn_fwd_tc(const float* q, const float* k, const float* v, float* o, float* lse, const AttnDims& d);
void attn_bwd_tc(const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
                 float* dq, float* dk, float* dv, const AttnDims& d);

}  // namespace ringlet
