// Causal grouped-query attention, flash-style (kernels.inc attn_fwd, attn_bwd): q, o [B·T, H·hd], k, v
// [B·T, Hkv·hd], lse [B, H, T]; query head h reads kv head h / (H / Hkv); scale 1/sqrt(hd).
//
// fp32 on the CUDA cores. A row (one query's or one key's head vector) belongs to a group of S = HD/32
// neighbouring lanes, each holding 32 of its values in registers as eight float4 chunks, interleaved
// (lane g holds chunks g, g + S, ...) so the group's loads of one shared-memory row are contiguous and
// every other group of the warp reads the same row: broadcasts, no bank conflicts. A dot product is the
// lanes' partial sums combined by butterfly shuffles. HD is the head size rounded up to a multiple of 32;
// values past hd are zeros in registers and tiles, so they add nothing.
//
// Forward: a block per (batch, head, tile of 64 queries) streams tiles of keys and values through shared
// memory with an online softmax (running max and sum per query). Backward, deterministic, no atomics: one
// kernel per (batch, head, query tile) gives dq (and D = dO·O per query, which it computes first), then one
// per (batch, kv head, tile of 64 keys) gives dk and dv, each key's lanes looping over the group's query
// heads and the query tiles that see it; probabilities are recomputed from lse.
//
// With products in TF32 or bf16 and head sizes up to 64, attention_tc.cu's tensor-core kernels run instead.
#include <cmath>

#include "attention.h"
#include "ops.h"

namespace ringlet {

namespace {

constexpr int ROWS_PER_BLOCK = ATTN_ROWS_PER_BLOCK;
constexpr int CHUNKS = 8;           // float4 chunks per lane: 32 values

template <int HD>
struct Shape {
  static constexpr int S = HD / 32;                       // lanes per row
  static constexpr int THREADS = ROWS_PER_BLOCK * S;      // 64 to 512
  static constexpr int TILE = HD <= 128 ? 32 : 16;        // rows per shared tile: two tiles take 32 KiB at most
};

// The row's 32 values this lane holds: chunk c of lane g is values 4·(c·S + g) .. +3. Zeros past hd, and
// for a row that does not exist.
template <int HD>
__device__ inline void load_row(float4 (&r)[CHUNKS], const float* row, int hd, bool exists, float mul) {
  const int g = threadIdx.x % Shape<HD>::S;
#pragma unroll
  for (int c = 0; c < CHUNKS; c++) {
    const int e = 4 * (c * Shape<HD>::S + g);
    r[c].x = exists && e < hd ? row[e] * mul : 0.0f;
    r[c].y = exists && e + 1 < hd ? row[e + 1] * mul : 0.0f;
    r[c].z = exists && e + 2 < hd ? row[e + 2] * mul : 0.0f;
    r[c].w = exists && e + 3 < hd ? row[e + 3] * mul : 0.0f;
  }
}

template <int HD>
__device__ inline void store_row(const float4 (&r)[CHUNKS], float* row, int hd, float mul) {
  const int g = threadIdx.x % Shape<HD>::S;
#pragma unroll
  for (int c = 0; c < CHUNKS; c++) {
    const int e = 4 * (c * Shape<HD>::S + g);
    if (e < hd) row[e] = r[c].x * mul;
    if (e + 1 < hd) row[e + 1] = r[c].y * mul;
    if (e + 2 < hd) row[e + 2] = r[c].z * mul;
    if (e + 3 < hd) row[e + 3] = r[c].w * mul;
  }
}

// The dot product of this lane group's row with row `j` of a shared tile [rows][HD], in every lane of the group.
template <int HD>
__device__ inline float dot_tile(const float4 (&r)[CHUNKS], const float4* tile, int j) {
  constexpr int S = Shape<HD>::S;
  const int g = threadIdx.x % S;
  const float4* t = tile + j * (HD / 4);
  float a = 0, b = 0;  // two chains, for instruction-level parallelism
#pragma unroll
  for (int c = 0; c < CHUNKS; c++) {
    const float4 v = t[c * S + g];
    a = fmaf(r[c].x, v.x, a);
    b = fmaf(r[c].y, v.y, b);
    a = fmaf(r[c].z, v.z, a);
    b = fmaf(r[c].w, v.w, b);
  }
  float s = a + b;
#pragma unroll
  for (int o = 1; o < S; o <<= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  return s;
}

// acc += w · row j of a shared tile.
template <int HD>
__device__ inline void axpy_tile(float4 (&acc)[CHUNKS], float w, const float4* tile, int j) {
  constexpr int S = Shape<HD>::S;
  const int g = threadIdx.x % S;
  const float4* t = tile + j * (HD / 4);
#pragma unroll
  for (int c = 0; c < CHUNKS; c++) {
    const float4 v = t[c * S + g];
    acc[c].x = fmaf(w, v.x, acc[c].x);
    acc[c].y = fmaf(w, v.y, acc[c].y);
    acc[c].z = fmaf(w, v.z, acc[c].z);
    acc[c].w = fmaf(w, v.w, acc[c].w);
  }
}

// Rows first..first+rows-1 of head `head` of x [B·T, heads·hd] (batch b) into a shared tile [rows][HD],
// times mul; zeros past hd and past T.
template <int HD>
__device__ inline void load_tile(float4* tile, int rows, const float* x, int64_t b, int64_t first, int64_t T,
                                 int64_t heads, int64_t head, int hd, float mul) {
  float* t = reinterpret_cast<float*>(tile);
  for (int idx = threadIdx.x; idx < rows * HD; idx += blockDim.x) {
    const int r = idx / HD, e = idx % HD;
    const int64_t j = first + r;
    t[idx] = j < T && e < hd ? x[((b * T + j) * heads + head) * hd + e] * mul : 0.0f;
  }
}

template <int HD>
__global__ void __launch_bounds__(Shape<HD>::THREADS) attn_fwd_kernel(const float* q, const float* k, const float* v,
                                                                      float* o, float* lse, AttnDims d) {
  constexpr int TILE = Shape<HD>::TILE;
  __shared__ float4 sK[TILE * HD / 4], sV[TILE * HD / 4];
  const int64_t tile = blockIdx.x % d.tiles, bh = blockIdx.x / d.tiles, h = bh % d.H, b = bh / d.H;
  const int64_t kh = h / (d.H / d.Hkv);
  const int64_t i0 = tile * ROWS_PER_BLOCK, i = i0 + threadIdx.x / Shape<HD>::S;
  const bool exists = i < d.T;
  float4 qr[CHUNKS], acc[CHUNKS];
  load_row<HD>(qr, q + ((b * d.T + i) * d.H + h) * d.hd, d.hd, exists, d.scale);
#pragma unroll
  for (int c = 0; c < CHUNKS; c++) acc[c] = make_float4(0, 0, 0, 0);
  float m = -INFINITY, l = 0;
  const int64_t last_key = i0 + ROWS_PER_BLOCK - 1 < d.T - 1 ? i0 + ROWS_PER_BLOCK - 1 : d.T - 1;
  for (int64_t j0 = 0; j0 <= last_key; j0 += TILE) {
    __syncthreads();  // everyone is done with the previous tile
    load_tile<HD>(sK, TILE, k, b, j0, d.T, d.Hkv, kh, d.hd, 1.0f);
    load_tile<HD>(sV, TILE, v, b, j0, d.T, d.Hkv, kh, d.hd, 1.0f);
    __syncthreads();
    // Every lane computes (a query past T on zeros), so the shuffles see whole warps; the mask is a select.
    float s[TILE];
    float tile_max = -INFINITY;
#pragma unroll
    for (int jj = 0; jj < TILE; jj++) {
      const float dot = dot_tile<HD>(qr, sK, jj);
      s[jj] = j0 + jj <= i ? dot : -INFINITY;
      tile_max = fmaxf(tile_max, s[jj]);
    }
    // Key 0 is in the first tile and every query sees it, so m is finite from the first tile on.
    const float m_new = fmaxf(m, tile_max);
    const float corr = expf(m - m_new);
    l *= corr;
#pragma unroll
    for (int c = 0; c < CHUNKS; c++) {
      acc[c].x *= corr;
      acc[c].y *= corr;
      acc[c].z *= corr;
      acc[c].w *= corr;
    }
#pragma unroll
    for (int jj = 0; jj < TILE; jj++) {
      const float p = expf(s[jj] - m_new);
      l += p;
      axpy_tile<HD>(acc, p, sV, jj);
    }
    m = m_new;
  }
  if (!exists) return;
  store_row<HD>(acc, o + ((b * d.T + i) * d.H + h) * d.hd, d.hd, 1.0f / l);
  if (threadIdx.x % Shape<HD>::S == 0) lse[(b * d.H + h) * d.T + i] = m + logf(l);
}

// dq = scale·Σ_j ds_ij·k_j with ds = p·(dp − D), p = exp(s − lse), dp = dO·v; also writes D = dO·O.
template <int HD>
__global__ void __launch_bounds__(Shape<HD>::THREADS)
    attn_dq_kernel(const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
                   float* dq, float* D_out, AttnDims d) {
  constexpr int TILE = Shape<HD>::TILE, S = Shape<HD>::S;
  __shared__ float4 sK[TILE * HD / 4], sV[TILE * HD / 4];
  const int64_t tile = blockIdx.x % d.tiles, bh = blockIdx.x / d.tiles, h = bh % d.H, b = bh / d.H;
  const int64_t kh = h / (d.H / d.Hkv);
  const int64_t i0 = tile * ROWS_PER_BLOCK, i = i0 + threadIdx.x / S;
  const bool exists = i < d.T;
  const int64_t row = ((b * d.T + i) * d.H + h) * d.hd;
  float4 qr[CHUNKS], dor[CHUNKS], acc[CHUNKS];
  load_row<HD>(qr, q + row, d.hd, exists, d.scale);
  load_row<HD>(dor, dout + row, d.hd, exists, 1.0f);
  // D = dO·O: the output row is needed only here, so it passes through acc.
  load_row<HD>(acc, o + row, d.hd, exists, 1.0f);
  float D = 0;
#pragma unroll
  for (int c = 0; c < CHUNKS; c++)
    D += dor[c].x * acc[c].x + dor[c].y * acc[c].y + dor[c].z * acc[c].z + dor[c].w * acc[c].w;
#pragma unroll
  for (int off = 1; off < S; off <<= 1) D += __shfl_xor_sync(0xffffffffu, D, off);
  const float L = exists ? lse[(b * d.H + h) * d.T + i] : 0.0f;
  if (exists && threadIdx.x % S == 0) D_out[(b * d.H + h) * d.T + i] = D;
#pragma unroll
  for (int c = 0; c < CHUNKS; c++) acc[c] = make_float4(0, 0, 0, 0);
  const int64_t last_key = i0 + ROWS_PER_BLOCK - 1 < d.T - 1 ? i0 + ROWS_PER_BLOCK - 1 : d.T - 1;
  for (int64_t j0 = 0; j0 <= last_key; j0 += TILE) {
    __syncthreads();
    load_tile<HD>(sK, TILE, k, b, j0, d.T, d.Hkv, kh, d.hd, 1.0f);
    load_tile<HD>(sV, TILE, v, b, j0, d.T, d.Hkv, kh, d.hd, 1.0f);
    __syncthreads();
#pragma unroll 4
    for (int jj = 0; jj < TILE; jj++) {
      const float s = dot_tile<HD>(qr, sK, jj);
      const float dp = dot_tile<HD>(dor, sV, jj);
      const float p = j0 + jj <= i ? expf(s - L) : 0.0f;
      axpy_tile<HD>(acc, p * (dp - D), sK, jj);
    }
  }
  if (exists) store_row<HD>(acc, dq + row, d.hd, d.scale);
}

// dv_j = Σ_i p_ij·dO_i and dk_j = scale·Σ_i ds_ij·q_i over the group's query heads and the queries i ≥ j.
template <int HD>
__global__ void __launch_bounds__(Shape<HD>::THREADS)
    attn_dkdv_kernel(const float* q, const float* k, const float* v, const float* lse, const float* dout,
                     const float* D_in, float* dk, float* dv, AttnDims d) {
  constexpr int TILE = Shape<HD>::TILE, S = Shape<HD>::S;
  __shared__ float4 sQ[TILE * HD / 4], sDO[TILE * HD / 4];
  __shared__ float sL[TILE], sD[TILE];
  const int64_t tile = blockIdx.x % d.tiles, bk = blockIdx.x / d.tiles, kh = bk % d.Hkv, b = bk / d.Hkv;
  const int64_t group = d.H / d.Hkv;
  const int64_t j_first = tile * ROWS_PER_BLOCK, j = j_first + threadIdx.x / S;
  const bool exists = j < d.T;
  const int64_t row = ((b * d.T + j) * d.Hkv + kh) * d.hd;
  float4 kr[CHUNKS], vr[CHUNKS], dk_acc[CHUNKS], dv_acc[CHUNKS];
  load_row<HD>(kr, k + row, d.hd, exists, 1.0f);
  load_row<HD>(vr, v + row, d.hd, exists, 1.0f);
#pragma unroll
  for (int c = 0; c < CHUNKS; c++) dk_acc[c] = dv_acc[c] = make_float4(0, 0, 0, 0);
  for (int64_t h = kh * group; h < (kh + 1) * group; h++)
    for (int64_t i0 = j_first / TILE * TILE; i0 < d.T; i0 += TILE) {
      __syncthreads();
      // Queries times the scale, so s = k·sQ and dk = Σ ds·sQ carries dk's scale too.
      load_tile<HD>(sQ, TILE, q, b, i0, d.T, d.H, h, d.hd, d.scale);
      load_tile<HD>(sDO, TILE, dout, b, i0, d.T, d.H, h, d.hd, 1.0f);
      for (int r = threadIdx.x; r < TILE; r += blockDim.x) {
        const int64_t i = i0 + r;
        // A query past T gets lse = +inf: its p is 0.
        sL[r] = i < d.T ? lse[(b * d.H + h) * d.T + i] : INFINITY;
        sD[r] = i < d.T ? D_in[(b * d.H + h) * d.T + i] : 0.0f;
      }
      __syncthreads();
#pragma unroll 4
      for (int ii = 0; ii < TILE; ii++) {
        const float s = dot_tile<HD>(kr, sQ, ii);
        const float dp = dot_tile<HD>(vr, sDO, ii);
        const float p = i0 + ii >= j ? expf(s - sL[ii]) : 0.0f;
        axpy_tile<HD>(dv_acc, p, sDO, ii);
        axpy_tile<HD>(dk_acc, p * (dp - sD[ii]), sQ, ii);
      }
    }
  if (!exists) return;
  store_row<HD>(dk_acc, dk + row, d.hd, 1.0f);
  store_row<HD>(dv_acc, dv + row, d.hd, 1.0f);
}

AttnDims dims_of(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t hd) {
  if (Hkv <= 0 || H % Hkv != 0) throw Failure("attention: heads must be a multiple of kv heads");
  if (hd <= 0 || hd > ATTN_MAX_HD)
    throw Failure("attention: head size must be 1.." + std::to_string(ATTN_MAX_HD) + " on the GPU");
  const int64_t tiles = (T + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
  if (B * H * tiles > INT32_MAX) throw Failure("attention: too many blocks");
  return AttnDims{B, T, H, Hkv, (int)hd, 1.0f / sqrtf((float)hd), tiles};
}

template <int HD>
void attn_fwd_hd(const float* q, const float* k, const float* v, float* o, float* lse, const AttnDims& d) {
  ctx().launch("attnFwd", dim3((unsigned)(d.B * d.H * d.tiles)), dim3(Shape<HD>::THREADS), 0, attn_fwd_kernel<HD>, q,
               k, v, o, lse, d);
}

template <int HD>
void attn_bwd_hd(const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
                 float* dq, float* dk, float* dv, const AttnDims& d) {
  Context& c = ctx();
  Context::Scratch D(c, sizeof(float) * d.B * d.H * d.T);
  c.launch("attnBwd (dq)", dim3((unsigned)(d.B * d.H * d.tiles)), dim3(Shape<HD>::THREADS), 0, attn_dq_kernel<HD>, q,
           k, v, o, lse, dout, dq, D.as<float>(), d);
  c.launch("attnBwd (dk, dv)", dim3((unsigned)(d.B * d.Hkv * d.tiles)), dim3(Shape<HD>::THREADS), 0,
           attn_dkdv_kernel<HD>, q, k, v, lse, dout, D.as<const float>(), dk, dv, d);
}

}  // namespace

void attn_fwd(const float* q, const float* k, const float* v, float* o, float* lse, int64_t B, int64_t T, int64_t H,
              int64_t Hkv, int64_t hd) {
  const AttnDims d = dims_of(B, T, H, Hkv, hd);
  if (B == 0 || T == 0 || H == 0) return;
  if (attn_tc_takes(d.hd)) return attn_fwd_tc(q, k, v, o, lse, d);
  if (hd <= 32) return attn_fwd_hd<32>(q, k, v, o, lse, d);
  if (hd <= 64) return attn_fwd_hd<64>(q, k, v, o, lse, d);
  if (hd <= 128) return attn_fwd_hd<128>(q, k, v, o, lse, d);
  return attn_fwd_hd<256>(q, k, v, o, lse, d);
}

void attn_bwd(const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
              float* dq, float* dk, float* dv, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t hd) {
  const AttnDims d = dims_of(B, T, H, Hkv, hd);
  if (B == 0 || T == 0 || H == 0) return;
  if (attn_tc_takes(d.hd)) return attn_bwd_tc(q, k, v, o, lse, dout, dq, dk, dv, d);
  if (hd <= 32) return attn_bwd_hd<32>(q, k, v, o, lse, dout, dq, dk, dv, d);
  if (hd <= 64) return attn_bwd_hd<64>(q, k, v, o, lse, dout, dq, dk, dv, d);
  if (hd <= 128) return attn_bwd_hd<128>(q, k, v, o, lse, dout, dq, dk, dv, d);
  return attn_bwd_hd<256>(q, k, v, o, lse, dout, dq, dk, dv, d);
}

}  // namespace ringlet
