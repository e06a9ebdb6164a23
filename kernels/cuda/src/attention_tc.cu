// Causal grouped-query attention on the tensor cores (attention.cu's contract: q, o [B·T, H·hd], k, v
// [B·T, Hkv·hd], lse [B, H, T], scale 1/sqrt(hd)), for products in TF32 (m16n16k8) or bf16 (m16n16k16),
// with fp32 accumulation, softmax statistics and outputs. Through the portable WMMA API only: nothing
// depends on which fragment element holds which matrix element, so whatever is done per row (masks, the
// online softmax, rescaling the output) goes through shared memory as float tiles.
//
// A block has four warps and 64 rows (queries, or keys for dk/dv), 16 per warp; each warp owns its rows'
// fragments and its rows of the shared score tiles, so only the tiles of the other operand (32 keys, or 32
// queries for dk/dv) are shared by the block. Operands are converted from fp32 once, when a tile is loaded
// into shared memory (TF32: __float_to_tf32, to nearest; bf16: __float2bfloat16, to nearest even), and the
// scale is applied to q before it is rounded, as the SIMT kernels do. Head sizes up to 64: HD is hd rounded
// up to 32 or 64, with zeros past hd in every tile.
//
// For each key tile the forward pass computes S = Q·Kᵀ per warp into shared memory; two lanes per row take
// the masked row maximum and sum (online softmax, running max and sum in registers) and write P, converted,
// beside it; the output accumulators go out to shared memory, each row is multiplied by its correction, and
// they come back for O += P·V. The backward pass is two kernels, no atomics, as in attention.cu: dq per
// (batch, head, query tile) with D = dO·O computed first (S and dP = dO·Vᵀ per key tile, dS = P∘(dP − D),
// dq += dS·K); then dk, dv per (batch, kv head, key tile) from Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ over the group's
// heads and the query tiles that see the keys (dv += Pᵀ·dO, dk += dSᵀ·Q), probabilities recomputed from lse.
#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>
#include <type_traits>

#include "attention.h"
#include "context.h"

namespace ringlet {

namespace {

using namespace nvcuda;

constexpr int WARPS = 4;
constexpr int THREADS = 32 * WARPS;
constexpr int ROWS = 16 * WARPS;  // a block's queries (forward, dq) or keys (dk, dv)
constexpr int TILE = 32;          // keys (forward, dq) or queries (dk, dv) per shared tile
static_assert(ROWS == ATTN_ROWS_PER_BLOCK, "AttnDims::tiles counts blocks of ATTN_ROWS_PER_BLOCK rows");

template <typename Op>
struct Mma;

// TF32: float operands with 10 mantissa bits; ldm a multiple of 4 floats.
template <>
struct Mma<float> {
  static constexpr int K = 8, PAD = 4;
  using A = wmma::fragment<wmma::matrix_a, 16, 16, K, wmma::precision::tf32, wmma::row_major>;
  using BRow = wmma::fragment<wmma::matrix_b, 16, 16, K, wmma::precision::tf32, wmma::row_major>;
  using BCol = wmma::fragment<wmma::matrix_b, 16, 16, K, wmma::precision::tf32, wmma::col_major>;
  using Acc = wmma::fragment<wmma::accumulator, 16, 16, K, float>;
  static __device__ float from(float x) { return wmma::__float_to_tf32(x); }
  static constexpr const char* FWD = "attnFwd (TF32 tensor cores)";
  static constexpr const char* DQ = "attnBwd dq (TF32 tensor cores)";
  static constexpr const char* DKDV = "attnBwd dk, dv (TF32 tensor cores)";
};

// bf16 operands; ldm a multiple of 8.
template <>
struct Mma<__nv_bfloat16> {
  static constexpr int K = 16, PAD = 8;
  using A = wmma::fragment<wmma::matrix_a, 16, 16, K, __nv_bfloat16, wmma::row_major>;
  using BRow = wmma::fragment<wmma::matrix_b, 16, 16, K, __nv_bfloat16, wmma::row_major>;
  using BCol = wmma::fragment<wmma::matrix_b, 16, 16, K, __nv_bfloat16, wmma::col_major>;
  using Acc = wmma::fragment<wmma::accumulator, 16, 16, K, float>;
  static __device__ __nv_bfloat16 from(float x) { return __float2bfloat16(x); }
  static constexpr const char* FWD = "attnFwd (bf16 tensor cores)";
  static constexpr const char* DQ = "attnBwd dq (bf16 tensor cores)";
  static constexpr const char* DKDV = "attnBwd dk, dv (bf16 tensor cores)";
};

// Shared-memory tiles, row-major. The padding keeps every ldm a multiple of 16 bytes and every fragment's
// first element 32-byte aligned (WMMA's rules), and moves successive rows to other banks.
template <int HD, typename Op>
struct Tiles {
  static constexpr int LD = HD + Mma<Op>::PAD;   // operand tiles [rows][LD]
  static constexpr int LDS = TILE + 4;           // float score tiles [ROWS][LDS]
  static constexpr int LDP = TILE + Mma<Op>::PAD;  // operand probability tiles [ROWS][LDP]
  static constexpr int LDO = HD + 4;             // float output tiles [ROWS][LDO]
  // TF32 operands are floats: P and dS overwrite S and dP in place (each lane converts its own elements).
  static constexpr bool IN_PLACE = std::is_same_v<Op, float>;
  static constexpr int OPERAND = TILE * LD * sizeof(Op), SCORES = ROWS * LDS * 4,
                       PROBS = IN_PLACE ? 0 : ROWS * LDP * sizeof(Op), OUT = ROWS * LDO * 4,
                       STAGE = ROWS * LD * sizeof(Op), STATS = 2 * TILE * 4;
  static_assert(OPERAND % 32 == 0 && SCORES % 32 == 0 && PROBS % 32 == 0 && STATS % 32 == 0, "32-byte aligned tiles");
  static constexpr int max(int a, int b) { return a > b ? a : b; }
  // Forward: K, V, S (P), O; the queries are staged where O goes.
  static constexpr int FWD = 2 * OPERAND + SCORES + PROBS + OUT;
  // dq: K, V, S, dP (dS); Q, dO and then dq are staged over all of them.
  static constexpr int DQ = max(max(2 * OPERAND + 2 * SCORES + PROBS, STAGE), OUT);
  // dk, dv: Q, dO, lse and D, Sᵀ (Pᵀ), dPᵀ (dSᵀ); K, V and then dk, dv are staged over all of them.
  static constexpr int DKDV = max(max(2 * OPERAND + STATS + 2 * (SCORES + PROBS), STAGE), OUT);
  static_assert(STAGE <= OUT && FWD <= 48 * 1024 && DQ <= 48 * 1024 && DKDV <= 48 * 1024, "static shared memory");
};

// Rows first..first+rows-1 of head `head` of x [B·T, heads·hd] (batch b), times mul, as operands into a
// tile [rows][LD]; zeros past hd and past T.
template <int HD, typename Op>
__device__ inline void load_tile(Op* tile, int rows, const float* x, int64_t b, int64_t first, int64_t T,
                                 int64_t heads, int64_t head, int hd, float mul) {
  for (int idx = threadIdx.x; idx < rows * HD; idx += blockDim.x) {
    const int r = idx / HD, e = idx % HD;
    const int64_t j = first + r;
    tile[r * Tiles<HD, Op>::LD + e] =
        Mma<Op>::from(j < T && e < hd ? x[((b * T + j) * heads + head) * hd + e] * mul : 0.0f);
  }
}

// The warp's 16 rows of an operand tile as matrix_a fragments along the head dimension.
template <int HD, typename Op>
__device__ inline void load_rows(typename Mma<Op>::A (&f)[HD / Mma<Op>::K], const Op* rows) {
#pragma unroll
  for (int kk = 0; kk < HD / Mma<Op>::K; kk++) wmma::load_matrix_sync(f[kk], rows + kk * Mma<Op>::K, Tiles<HD, Op>::LD);
}

// out (the warp's 16 rows of a float score tile) = rows · tileᵀ, the tile [TILE][LD].
template <int HD, typename Op>
__device__ inline void scores(const typename Mma<Op>::A (&rows)[HD / Mma<Op>::K], const Op* tile, float* out) {
  using M = Mma<Op>;
#pragma unroll
  for (int n = 0; n < TILE / 16; n++) {
    typename M::Acc s;
    wmma::fill_fragment(s, 0.0f);
#pragma unroll
    for (int kk = 0; kk < HD / M::K; kk++) {
      typename M::BCol t;
      wmma::load_matrix_sync(t, tile + n * 16 * Tiles<HD, Op>::LD + kk * M::K, Tiles<HD, Op>::LD);
      wmma::mma_sync(s, rows[kk], t, s);
    }
    wmma::store_matrix_sync(out + n * 16, s, Tiles<HD, Op>::LDS, wmma::mem_row_major);
  }
}

// acc (16 × HD) += p · tile: p the warp's 16 rows of an operand probability tile [ROWS][LDP], the tile
// [TILE][LD].
template <int HD, typename Op>
__device__ inline void accumulate(typename Mma<Op>::Acc (&acc)[HD / 16], const Op* p, const Op* tile) {
  using M = Mma<Op>;
#pragma unroll
  for (int kk = 0; kk < TILE / M::K; kk++) {
    typename M::A a;
    wmma::load_matrix_sync(a, p + kk * M::K, Tiles<HD, Op>::LDP);
#pragma unroll
    for (int n = 0; n < HD / 16; n++) {
      typename M::BRow t;
      wmma::load_matrix_sync(t, tile + kk * M::K * Tiles<HD, Op>::LD + n * 16, Tiles<HD, Op>::LD);
      wmma::mma_sync(acc[n], a, t, acc[n]);
    }
  }
}

template <int HD, typename Op>
__device__ inline void zero(typename Mma<Op>::Acc (&acc)[HD / 16]) {
#pragma unroll
  for (int n = 0; n < HD / 16; n++) wmma::fill_fragment(acc[n], 0.0f);
}

// The warp's 16 rows of accumulators to a float tile [ROWS][LDO] in shared memory.
template <int HD, typename Op>
__device__ inline void store_rows(float* rows, const typename Mma<Op>::Acc (&acc)[HD / 16]) {
#pragma unroll
  for (int n = 0; n < HD / 16; n++)
    wmma::store_matrix_sync(rows + n * 16, acc[n], Tiles<HD, Op>::LDO, wmma::mem_row_major);
}

// This lane's half of its row of a float tile [ROWS][LDO], times mul, into row `at` of x (hd values).
template <int HD>
__device__ inline void write_half_row(const float* half_row, float* x, int hd, float mul) {
  const int first = threadIdx.x % 2 * (HD / 2);
  for (int c = 0; c < HD / 2; c++)
    if (first + c < hd) x[first + c] = half_row[c] * mul;
}

template <int HD, typename Op>
__global__ void __launch_bounds__(THREADS) attn_fwd_tc_kernel(const float* q, const float* k, const float* v, float* o,
                                                              float* lse, AttnDims d) {
  using M = Mma<Op>;
  using L = Tiles<HD, Op>;
  alignas(128) __shared__ unsigned char smem[L::FWD];
  Op* sK = reinterpret_cast<Op*>(smem);
  Op* sV = reinterpret_cast<Op*>(smem + L::OPERAND);
  float* sS = reinterpret_cast<float*>(smem + 2 * L::OPERAND);
  Op* sP = L::IN_PLACE ? reinterpret_cast<Op*>(sS) : reinterpret_cast<Op*>(smem + 2 * L::OPERAND + L::SCORES);
  float* sO = reinterpret_cast<float*>(smem + 2 * L::OPERAND + L::SCORES + L::PROBS);

  const int64_t tile = blockIdx.x % d.tiles, bh = blockIdx.x / d.tiles, h = bh % d.H, b = bh / d.H;
  const int64_t kh = h / (d.H / d.Hkv);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
  const int64_t i0 = tile * ROWS, warp_first = i0 + 16 * warp, i = warp_first + r;  // i: this lane's query

  // The queries, times the scale, staged where O goes; the loop's first barrier frees it.
  Op* stage = reinterpret_cast<Op*>(sO);
  load_tile<HD, Op>(stage, ROWS, q, b, i0, d.T, d.H, h, d.hd, d.scale);
  __syncthreads();
  typename M::A qf[HD / M::K];
  load_rows<HD, Op>(qf, stage + 16 * warp * L::LD);
  typename M::Acc acc[HD / 16];
  zero<HD, Op>(acc);

  // Two lanes per row, each with half of its columns.
  float* s_row = sS + (16 * warp + r) * L::LDS + half * (TILE / 2);
  Op* p_row = sP + (16 * warp + r) * L::LDP + half * (TILE / 2);
  float* o_rows = sO + 16 * warp * L::LDO;
  float* o_row = o_rows + r * L::LDO + half * (HD / 2);
  float m = -INFINITY, l = 0;
  const int64_t last_key = i0 + ROWS - 1 < d.T - 1 ? i0 + ROWS - 1 : d.T - 1;
  for (int64_t j0 = 0; j0 <= last_key; j0 += TILE) {
    __syncthreads();  // everyone is done with the previous tile
    load_tile<HD, Op>(sK, TILE, k, b, j0, d.T, d.Hkv, kh, d.hd, 1.0f);
    load_tile<HD, Op>(sV, TILE, v, b, j0, d.T, d.Hkv, kh, d.hd, 1.0f);
    __syncthreads();
    if (j0 > warp_first + 15) continue;  // every key of the tile is after the warp's queries
    scores<HD, Op>(qf, sK, sS + 16 * warp * L::LDS);
    __syncwarp();
    // Key 0 is in the first tile and every row sees it (rows past T too), so m is finite from then on.
    float tile_max = -INFINITY;
    for (int c = 0; c < TILE / 2; c++) {
      const int64_t j = j0 + half * (TILE / 2) + c;
      if (j > i || j >= d.T) s_row[c] = -INFINITY;
      tile_max = fmaxf(tile_max, s_row[c]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float m_new = fmaxf(m, tile_max), corr = expf(m - m_new);
    float sum = 0;
    for (int c = 0; c < TILE / 2; c++) {
      const float p = expf(s_row[c] - m_new);
      sum += p;
      p_row[c] = M::from(p);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * corr + sum;
    m = m_new;
    // O's rows times their corrections, through shared memory.
    store_rows<HD, Op>(o_rows, acc);
    __syncwarp();
    for (int c = 0; c < HD / 2; c++) o_row[c] *= corr;
    __syncwarp();
#pragma unroll
    for (int n = 0; n < HD / 16; n++) wmma::load_matrix_sync(acc[n], o_rows + n * 16, L::LDO, wmma::mem_row_major);
    accumulate<HD, Op>(acc, sP + 16 * warp * L::LDP, sV);
  }
  store_rows<HD, Op>(o_rows, acc);
  __syncwarp();
  if (i >= d.T) return;
  write_half_row<HD>(o_row, o + ((b * d.T + i) * d.H + h) * d.hd, d.hd, 1.0f / l);
  if (half == 0) lse[(b * d.H + h) * d.T + i] = m + logf(l);
}

// dq = scale·Σ_j ds_ij·k_j with ds = p·(dp − D), p = exp(s − lse), dp = dO·v; also writes D = dO·O.
template <int HD, typename Op>
__global__ void __launch_bounds__(THREADS)
    attn_dq_tc_kernel(const float* q, const float* k, const float* v, const float* o, const float* lse,
                      const float* dout, float* dq, float* D_out, AttnDims d) {
  using M = Mma<Op>;
  using L = Tiles<HD, Op>;
  alignas(128) __shared__ unsigned char smem[L::DQ];
  Op* sK = reinterpret_cast<Op*>(smem);
  Op* sV = reinterpret_cast<Op*>(smem + L::OPERAND);
  float* sS = reinterpret_cast<float*>(smem + 2 * L::OPERAND);
  float* sdP = reinterpret_cast<float*>(smem + 2 * L::OPERAND + L::SCORES);
  Op* sdS = L::IN_PLACE ? reinterpret_cast<Op*>(sdP) : reinterpret_cast<Op*>(smem + 2 * L::OPERAND + 2 * L::SCORES);

  const int64_t tile = blockIdx.x % d.tiles, bh = blockIdx.x / d.tiles, h = bh % d.H, b = bh / d.H;
  const int64_t kh = h / (d.H / d.Hkv);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
  const int64_t i0 = tile * ROWS, warp_first = i0 + 16 * warp, i = warp_first + r;
  const int64_t row = ((b * d.T + i) * d.H + h) * d.hd;

  // Q (times the scale) and dO, staged in turn over all the tiles.
  Op* stage = reinterpret_cast<Op*>(smem);
  typename M::A qf[HD / M::K], dof[HD / M::K];
  load_tile<HD, Op>(stage, ROWS, q, b, i0, d.T, d.H, h, d.hd, d.scale);
  __syncthreads();
  load_rows<HD, Op>(qf, stage + 16 * warp * L::LD);
  __syncthreads();
  load_tile<HD, Op>(stage, ROWS, dout, b, i0, d.T, d.H, h, d.hd, 1.0f);
  __syncthreads();
  load_rows<HD, Op>(dof, stage + 16 * warp * L::LD);

  // D = dO·O in fp32, two lanes per row; a row past T gets D = 0 and lse = 0 (its q and dO are zeros).
  float D = 0;
  if (i < d.T)
    for (int e = half * (HD / 2); e < (half + 1) * (HD / 2) && e < d.hd; e++) D += dout[row + e] * o[row + e];
  D += __shfl_xor_sync(0xffffffffu, D, 1);
  const float L_i = i < d.T ? lse[(b * d.H + h) * d.T + i] : 0.0f;
  if (i < d.T && half == 0) D_out[(b * d.H + h) * d.T + i] = D;

  typename M::Acc acc[HD / 16];
  zero<HD, Op>(acc);
  const float* s_row = sS + (16 * warp + r) * L::LDS + half * (TILE / 2);
  const float* dp_row = sdP + (16 * warp + r) * L::LDS + half * (TILE / 2);
  Op* ds_row = sdS + (16 * warp + r) * L::LDP + half * (TILE / 2);
  const int64_t last_key = i0 + ROWS - 1 < d.T - 1 ? i0 + ROWS - 1 : d.T - 1;
  for (int64_t j0 = 0; j0 <= last_key; j0 += TILE) {
    __syncthreads();  // everyone is done with the previous tile (the first time, with the staging)
    load_tile<HD, Op>(sK, TILE, k, b, j0, d.T, d.Hkv, kh, d.hd, 1.0f);
    load_tile<HD, Op>(sV, TILE, v, b, j0, d.T, d.Hkv, kh, d.hd, 1.0f);
    __syncthreads();
    if (j0 > warp_first + 15) continue;
    scores<HD, Op>(qf, sK, sS + 16 * warp * L::LDS);
    scores<HD, Op>(dof, sV, sdP + 16 * warp * L::LDS);
    __syncwarp();
    for (int c = 0; c < TILE / 2; c++) {
      const int64_t j = j0 + half * (TILE / 2) + c;
      const float p = j <= i && j < d.T ? expf(s_row[c] - L_i) : 0.0f;
      ds_row[c] = M::from(p * (dp_row[c] - D));
    }
    __syncwarp();
    accumulate<HD, Op>(acc, sdS + 16 * warp * L::LDP, sK);
  }
  __syncthreads();  // every warp is done with the tiles: dq is staged over them
  float* out_rows = reinterpret_cast<float*>(smem) + 16 * warp * L::LDO;
  store_rows<HD, Op>(out_rows, acc);
  __syncwarp();
  if (i < d.T) write_half_row<HD>(out_rows + r * L::LDO + half * (HD / 2), dq + row, d.hd, d.scale);
}

// dv_j = Σ_i p_ij·dO_i and dk_j = scale·Σ_i ds_ij·q_i over the group's query heads and the queries i ≥ j.
template <int HD, typename Op>
__global__ void __launch_bounds__(THREADS)
    attn_dkdv_tc_kernel(const float* q, const float* k, const float* v, const float* lse, const float* dout,
                        const float* D_in, float* dk, float* dv, AttnDims d) {
  using M = Mma<Op>;
  using L = Tiles<HD, Op>;
  alignas(128) __shared__ unsigned char smem[L::DKDV];
  Op* sQ = reinterpret_cast<Op*>(smem);
  Op* sDO = reinterpret_cast<Op*>(smem + L::OPERAND);
  float* sL = reinterpret_cast<float*>(smem + 2 * L::OPERAND);
  float* sD = sL + TILE;
  unsigned char* scores_at = smem + 2 * L::OPERAND + L::STATS;
  float* sS = reinterpret_cast<float*>(scores_at);
  float* sdP = reinterpret_cast<float*>(scores_at + L::SCORES);
  Op* sP = L::IN_PLACE ? reinterpret_cast<Op*>(sS) : reinterpret_cast<Op*>(scores_at + 2 * L::SCORES);
  Op* sdS = L::IN_PLACE ? reinterpret_cast<Op*>(sdP) : reinterpret_cast<Op*>(scores_at + 2 * L::SCORES + L::PROBS);

  const int64_t tile = blockIdx.x % d.tiles, bk = blockIdx.x / d.tiles, kh = bk % d.Hkv, b = bk / d.Hkv;
  const int64_t group = d.H / d.Hkv;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
  const int64_t j_first = tile * ROWS, warp_first = j_first + 16 * warp, j = warp_first + r;  // j: this lane's key

  Op* stage = reinterpret_cast<Op*>(smem);
  typename M::A kf[HD / M::K], vf[HD / M::K];
  load_tile<HD, Op>(stage, ROWS, k, b, j_first, d.T, d.Hkv, kh, d.hd, 1.0f);
  __syncthreads();
  load_rows<HD, Op>(kf, stage + 16 * warp * L::LD);
  __syncthreads();
  load_tile<HD, Op>(stage, ROWS, v, b, j_first, d.T, d.Hkv, kh, d.hd, 1.0f);
  __syncthreads();
  load_rows<HD, Op>(vf, stage + 16 * warp * L::LD);

  typename M::Acc dk_acc[HD / 16], dv_acc[HD / 16];
  zero<HD, Op>(dk_acc);
  zero<HD, Op>(dv_acc);
  const int at = (16 * warp + r) * L::LDS + half * (TILE / 2), p_at = (16 * warp + r) * L::LDP + half * (TILE / 2);
  for (int64_t h = kh * group; h < (kh + 1) * group; h++)
    for (int64_t i0 = j_first; i0 < d.T; i0 += TILE) {
      __syncthreads();
      // Queries times the scale, so s = k·sQ and dk = Σ ds·sQ carries dk's scale too.
      load_tile<HD, Op>(sQ, TILE, q, b, i0, d.T, d.H, h, d.hd, d.scale);
      load_tile<HD, Op>(sDO, TILE, dout, b, i0, d.T, d.H, h, d.hd, 1.0f);
      for (int c = threadIdx.x; c < TILE; c += blockDim.x) {
        const int64_t i = i0 + c;
        sL[c] = i < d.T ? lse[(b * d.H + h) * d.T + i] : INFINITY;
        sD[c] = i < d.T ? D_in[(b * d.H + h) * d.T + i] : 0.0f;
      }
      __syncthreads();
      if (warp_first > i0 + TILE - 1) continue;  // every key of the warp is after the tile's queries
      scores<HD, Op>(kf, sQ, sS + 16 * warp * L::LDS);   // Sᵀ = K·Qᵀ
      scores<HD, Op>(vf, sDO, sdP + 16 * warp * L::LDS);  // dPᵀ = V·dOᵀ
      __syncwarp();
      for (int c = 0; c < TILE / 2; c++) {
        const int col = half * (TILE / 2) + c;
        const int64_t i = i0 + col;
        const float p = i >= j && i < d.T ? expf(sS[at + c] - sL[col]) : 0.0f;
        const float ds = p * (sdP[at + c] - sD[col]);
        sP[p_at + c] = M::from(p);
        sdS[p_at + c] = M::from(ds);
      }
      __syncwarp();
      accumulate<HD, Op>(dv_acc, sP + 16 * warp * L::LDP, sDO);
      accumulate<HD, Op>(dk_acc, sdS + 16 * warp * L::LDP, sQ);
    }
  __syncthreads();  // every warp is done with the tiles: dk, then dv, are staged over them
  float* out_rows = reinterpret_cast<float*>(smem) + 16 * warp * L::LDO;
  const float* out_row = out_rows + r * L::LDO + half * (HD / 2);
  const int64_t row = ((b * d.T + j) * d.Hkv + kh) * d.hd;
  store_rows<HD, Op>(out_rows, dk_acc);
  __syncwarp();
  if (j < d.T) write_half_row<HD>(out_row, dk + row, d.hd, 1.0f);
  __syncwarp();
  store_rows<HD, Op>(out_rows, dv_acc);
  __syncwarp();
  if (j < d.T) write_half_row<HD>(out_row, dv + row, d.hd, 1.0f);
}

template <typename Op, int HD>
void fwd(const float* q, const float* k, const float* v, float* o, float* lse, const AttnDims& d) {
  ctx().launch(Mma<Op>::FWD, dim3((unsigned)(d.B * d.H * d.tiles)), dim3(THREADS), 0, attn_fwd_tc_kernel<HD, Op>, q, k,
               v, o, lse, d);
}

template <typename Op, int HD>
void bwd(const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout, float* dq,
         float* dk, float* dv, const AttnDims& d) {
  Context& c = ctx();
  Context::Scratch D(c, sizeof(float) * d.B * d.H * d.T);
  c.launch(Mma<Op>::DQ, dim3((unsigned)(d.B * d.H * d.tiles)), dim3(THREADS), 0, attn_dq_tc_kernel<HD, Op>, q, k, v, o,
           lse, dout, dq, D.as<float>(), d);
  c.launch(Mma<Op>::DKDV, dim3((unsigned)(d.B * d.Hkv * d.tiles)), dim3(THREADS), 0, attn_dkdv_tc_kernel<HD, Op>, q,
           k, v, lse, dout, D.as<const float>(), dk, dv, d);
}

bool bf16() { return ctx().compute == CUBLAS_COMPUTE_32F_FAST_16BF; }

}  // namespace

bool attn_tc_takes(int hd) {
  const cublasComputeType_t c = ctx().compute;
  return hd <= 64 && (c == CUBLAS_COMPUTE_32F_FAST_TF32 || c == CUBLAS_COMPUTE_32F_FAST_16BF);
}

void attn_fwd_tc(const float* q, const float* k, const float* v, float* o, float* lse, const AttnDims& d) {
  if (bf16()) return d.hd <= 32 ? fwd<__nv_bfloat16, 32>(q, k, v, o, lse, d) : fwd<__nv_bfloat16, 64>(q, k, v, o, lse, d);
  return d.hd <= 32 ? fwd<float, 32>(q, k, v, o, lse, d) : fwd<float, 64>(q, k, v, o, lse, d);
}

void attn_bwd_tc(const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
                 float* dq, float* dk, float* dv, const AttnDims& d) {
  if (bf16())
    return d.hd <= 32 ? bwd<__nv_bfloat16, 32>(q, k, v, o, lse, dout, dq, dk, dv, d)
                      : bwd<__nv_bfloat16, 64>(q, k, v, o, lse, dout, dq, dk, dv, d);
  return d.hd <= 32 ? bwd<float, 32>(q, k, v, o, lse, dout, dq, dk, dv, d)
                    : bwd<float, 64>(q, k, v, o, lse, dout, dq, dk, dv, d);
}

}  // namespace ringlet
