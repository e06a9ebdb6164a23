// float64 references for every kernel Ringlet computes with: the fused kernels of kernels/native (and of the
// CUDA device, kernels/cuda/device.ts, which mirrors them one for one) and the plain kernels of the device
// interface. Plain loops a reader can check against the maths; the kernel tests (test/kernels-*.test.ts) and
// the GPU check (bench/gpu/check.ts) judge the kernels against them with `relativeError`.

type V = ArrayLike<number>;

/** max |actual − expected| / max |expected| (elementwise relative error blows up near zero); absolute when
 *  the expected values are all zero, Infinity when actual holds a NaN or an infinity. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) {
    throw new Error(`length mismatch: ${actual.length} vs ${expected.length}`);
  }
  let maxDiff = 0;
  let maxExpected = 0;
  for (let i = 0; i < expected.length; i++) {
    if (!Number.isFinite(actual[i])) return Infinity;
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
    maxExpected = Math.max(maxExpected, Math.abs(expected[i]));
  }
  return maxExpected === 0 ? maxDiff : maxDiff / maxExpected;
}

// ---- Plain kernels.

/**
 * C = op(A)·op(B) for `batch` products, row-major, as cblas/cuBLAS strided batches: A [m, k] (or [k, m] with
 * transA), B [k, n] (or [n, k] with transB), C [m, n]; a stride of 0 shares one matrix across the batch.
 */
export function gemm(
  a: V,
  b: V,
  batch: number,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  strideA: number,
  strideB: number,
): Float64Array {
  const c = new Float64Array(batch * m * n);
  for (let i = 0; i < batch; i++)
    for (let r = 0; r < m; r++)
      for (let col = 0; col < n; col++) {
        let s = 0;
        for (let e = 0; e < k; e++)
          s += a[i * strideA + (transA ? e * m + r : r * k + e)] * b[i * strideB + (transB ? col * k + e : e * n + col)];
        c[(i * m + r) * n + col] = s;
      }
  return c;
}

/** Softmax over the last axis of [rows, cols]. */
export function softmax(x: V, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let i = 0; i < cols; i++) max = Math.max(max, x[r * cols + i]);
    let sum = 0;
    for (let i = 0; i < cols; i++) sum += y[r * cols + i] = Math.exp(x[r * cols + i] - max);
    for (let i = 0; i < cols; i++) y[r * cols + i] /= sum;
  }
  return y;
}

export type ReduceKind = 'sum' | 'mean' | 'max' | 'min' | 'prod';

/** y[o] = reduce(x[o, 0..inner)) for x [outer, inner]. */
export function reduce(op: ReduceKind, x: V, outer: number, inner: number): Float64Array {
  const y = new Float64Array(outer);
  for (let o = 0; o < outer; o++) {
    let acc = op === 'max' ? -Infinity : op === 'min' ? Infinity : op === 'prod' ? 1 : 0;
    for (let i = 0; i < inner; i++) {
      const v = x[o * inner + i];
      acc = op === 'max' ? Math.max(acc, v) : op === 'min' ? Math.min(acc, v) : op === 'prod' ? acc * v : acc + v;
    }
    y[o] = op === 'mean' ? acc / inner : acc;
  }
  return y;
}

/** GatherV2 of x viewed [outer, dim, inner] at `indices`: y [outer, count, inner]. */
export function gather(x: V, indices: ArrayLike<number>, outer: number, dim: number, inner: number): Float64Array {
  const count = indices.length;
  const y = new Float64Array(outer * count * inner);
  for (let o = 0; o < outer; o++)
    for (let c = 0; c < count; c++)
      for (let i = 0; i < inner; i++) y[(o * count + c) * inner + i] = x[(o * dim + indices[c]) * inner + i];
  return y;
}

/** UnsortedSegmentSum: y [segments, inner] sums the rows of x [rows, inner] by id; ids outside are dropped. */
export function segmentSum(x: V, ids: ArrayLike<number>, inner: number, segments: number): Float64Array {
  const y = new Float64Array(segments * inner);
  for (let r = 0; r < ids.length; r++) {
    const s = ids[r];
    if (s < 0 || s >= segments) continue;
    for (let i = 0; i < inner; i++) y[s * inner + i] += x[r * inner + i];
  }
  return y;
}

/** out[idx] = src[Σ idx·srcStrides] over every index of `shape`, row-major: strided reads (and broadcasts). */
export function gatherStrided(src: V, offset: number, strides: number[], shape: number[]): Float64Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(size);
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < size; flat++) {
    let at = offset;
    for (let d = 0; d < shape.length; d++) at += idx[d] * strides[d];
    out[flat] = src[at];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

export const UNARY: Record<string, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  square: (x) => x * x,
  abs: Math.abs,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  tanh: Math.tanh,
  relu: (x) => Math.max(0, x),
  reciprocal: (x) => 1 / x,
};

/** Elementwise binary ops; comparisons give 1 or 0. */
export const BINARY: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  maximum: Math.max,
  minimum: Math.min,
  pow: Math.pow,
  equal: (a, b) => Number(a === b),
  notEqual: (a, b) => Number(a !== b),
  less: (a, b) => Number(a < b),
  greater: (a, b) => Number(a > b),
};

// ---- The fused kernels, forward and backward (kernels/native/src/kernels.inc).

export function rmsNorm(x: V, g: V, rows: number, d: number, eps: number): Float64Array {
  const y = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[r * d + i] ** 2;
    const s = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = x[r * d + i] * s * g[i];
  }
  return y;
}

export function rmsNormGrad(x: V, g: V, dy: V, rows: number, d: number, eps: number): [Float64Array, Float64Array] {
  const dx = new Float64Array(rows * d);
  const dg = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[r * d + i] ** 2;
    const s = 1 / Math.sqrt(ss / d + eps);
    let dot = 0;
    for (let i = 0; i < d; i++) dot += g[i] * dy[r * d + i] * x[r * d + i];
    for (let i = 0; i < d; i++) {
      dx[r * d + i] = s * g[i] * dy[r * d + i] - (x[r * d + i] * dot * s ** 3) / d;
      dg[i] += dy[r * d + i] * x[r * d + i] * s;
    }
  }
  return [dx, dg];
}

const sigmoid = UNARY.sigmoid;

/** y = silu(a)·b. */
export function swiglu(a: V, b: V): Float64Array {
  return Float64Array.from(a, (ai, i) => ai * sigmoid(ai) * b[i]);
}

export function swigluGrad(a: V, b: V, dy: V): [Float64Array, Float64Array] {
  const da = Float64Array.from(a, (ai, i) => dy[i] * b[i] * sigmoid(ai) * (1 + ai * (1 - sigmoid(ai))));
  const db = Float64Array.from(a, (ai, i) => dy[i] * ai * sigmoid(ai));
  return [da, db];
}

/** cos and sin of t·θ^(−i/half), [T, hd/2] each, rounded to float32 as the kernels receive them. */
export function ropeTables(T: number, hd: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = hd / 2;
  const cos = new Float32Array(T * half);
  const sin = new Float32Array(T * half);
  for (let t = 0; t < T; t++)
    for (let i = 0; i < half; i++) {
      cos[t * half + i] = Math.cos(t * Math.pow(theta, -i / half));
      sin[t * half + i] = Math.sin(t * Math.pow(theta, -i / half));
    }
  return { cos, sin };
}

/** Rotates the two halves of each head of x [rows, heads, hd], row r at position r mod T; sign −1 is the backward. */
export function rope(x: V, cos: V, sin: V, rows: number, T: number, heads: number, hd: number, sign: number): Float64Array {
  const y = new Float64Array(x.length);
  const half = hd / 2;
  for (let r = 0; r < rows; r++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < half; i++) {
        const o = (r * heads + h) * hd + i;
        const c = cos[(r % T) * half + i];
        const s = sign * sin[(r % T) * half + i];
        y[o] = x[o] * c - x[o + half] * s;
        y[o + half] = x[o] * s + x[o + half] * c;
      }
  return y;
}

/**
 * Causal attention with the whole T×T probability matrix, q [B, T, H, hd], k and v [B, T, Hkv, hd]: the
 * output, the log-sum-exp of each row's scores [B, H, T], and with dout the gradients.
 */
export function attention(q: V, k: V, v: V, dout: V | null, B: number, T: number, H: number, Hkv: number, hd: number) {
  const group = H / Hkv;
  const scale = 1 / Math.sqrt(hd);
  const o = new Float64Array(q.length);
  const lse = new Float64Array(B * H * T);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const qi = (b: number, t: number, h: number) => ((b * T + t) * H + h) * hd;
  const ki = (b: number, t: number, h: number) => ((b * T + t) * Hkv + h) * hd;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const s = new Float64Array(i + 1);
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          for (let e = 0; e < hd; e++) dot += q[qi(b, i, h) + e] * k[ki(b, j, kh) + e];
          s[j] = dot * scale;
        }
        const m = Math.max(...s);
        const p = s.map((x) => Math.exp(x - m));
        const sum = p.reduce((a, c) => a + c, 0);
        lse[(b * H + h) * T + i] = m + Math.log(sum);
        for (let j = 0; j <= i; j++) p[j] /= sum;
        for (let j = 0; j <= i; j++) for (let e = 0; e < hd; e++) o[qi(b, i, h) + e] += p[j] * v[ki(b, j, kh) + e];
        if (!dout) continue;
        const dp = new Float64Array(i + 1);
        for (let j = 0; j <= i; j++) for (let e = 0; e < hd; e++) dp[j] += dout[qi(b, i, h) + e] * v[ki(b, j, kh) + e];
        let pdp = 0;
        for (let j = 0; j <= i; j++) pdp += p[j] * dp[j];
        for (let j = 0; j <= i; j++) {
          const ds = p[j] * (dp[j] - pdp) * scale;
          for (let e = 0; e < hd; e++) {
            dv[ki(b, j, kh) + e] += p[j] * dout[qi(b, i, h) + e];
            dq[qi(b, i, h) + e] += ds * k[ki(b, j, kh) + e];
            dk[ki(b, j, kh) + e] += ds * q[qi(b, i, h) + e];
          }
        }
      }
    }
  return { o, lse, dq, dk, dv };
}

/**
 * Generation's attention (attnDecode) in float64: T new rows of qkv [T, (H + 2·Hkv)·hd] at positions
 * start.., k rotated and v copied into caches [Hkv, cap, hd], then each query (rotated) over keys 0..its
 * position. dims: [T, start, H, Hkv, hd, cap].
 */
export function attnDecode(qkv: V, cos: V, sin: V, kc0: V, vc0: V, dims: number[]) {
  const [T, start, H, Hkv, hd, cap] = dims;
  const half = hd / 2;
  const width = (H + 2 * Hkv) * hd;
  const rotate = (x: V, at: number, pos: number, out: Float64Array, to: number) => {
    for (let i = 0; i < half; i++) {
      const [c, s] = [cos[pos * half + i], sin[pos * half + i]];
      out[to + i] = x[at + i] * c - x[at + i + half] * s;
      out[to + i + half] = x[at + i] * s + x[at + i + half] * c;
    }
  };
  const kc = Float64Array.from(kc0);
  const vc = Float64Array.from(vc0);
  for (let i = 0; i < T; i++)
    for (let g = 0; g < Hkv; g++) {
      rotate(qkv, i * width + (H + g) * hd, start + i, kc, (g * cap + start + i) * hd);
      for (let e = 0; e < hd; e++) vc[(g * cap + start + i) * hd + e] = qkv[i * width + (H + Hkv + g) * hd + e];
    }
  const o = new Float64Array(T * H * hd);
  const q = new Float64Array(hd);
  for (let i = 0; i < T; i++)
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / Hkv));
      rotate(qkv, i * width + h * hd, start + i, q, 0);
      const s = new Float64Array(start + i + 1);
      for (let j = 0; j < s.length; j++) {
        for (let e = 0; e < hd; e++) s[j] += q[e] * kc[(g * cap + j) * hd + e];
        s[j] /= Math.sqrt(hd);
      }
      const m = Math.max(...s);
      const p = s.map((x) => Math.exp(x - m));
      const sum = p.reduce((a, b) => a + b, 0);
      for (let j = 0; j < s.length; j++)
        for (let e = 0; e < hd; e++) o[(i * H + h) * hd + e] += (p[j] / sum) * vc[(g * cap + j) * hd + e];
    }
  return { o, kc, vc };
}

/** Softmax cross-entropy of logits [rows, V]: per-row loss and log-sum-exp, and d(mean loss)/d logits. */
export function crossEntropy(logits: V, targets: ArrayLike<number>, rows: number, V: number) {
  const loss = new Float64Array(rows);
  const lse = new Float64Array(rows);
  const grad = new Float64Array(rows * V);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let i = 0; i < V; i++) m = Math.max(m, logits[r * V + i]);
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(logits[r * V + i] - m);
    lse[r] = m + Math.log(sum);
    loss[r] = lse[r] - logits[r * V + targets[r]];
    for (let i = 0; i < V; i++) grad[r * V + i] = Math.exp(logits[r * V + i] - m) / sum / rows;
    grad[r * V + targets[r]] -= 1 / rows;
  }
  return { loss, lse, grad };
}

/** The output projection h·wᵀ (h [rows, d], w [V, d]) and cross-entropy: per-row losses, and the mean loss's gradients. */
export function linearCrossEntropy(h: V, w: V, targets: ArrayLike<number>, rows: number, d: number, V: number) {
  const loss = new Float64Array(rows);
  const dh = new Float64Array(rows * d);
  const dw = new Float64Array(V * d);
  const logits = new Float64Array(V);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += h[r * d + i] * w[v * d + i];
      logits[v] = s;
      max = Math.max(max, s);
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[v] - max);
    const lse = max + Math.log(sum);
    loss[r] = lse - logits[targets[r]];
    for (let v = 0; v < V; v++) {
      const g = (Math.exp(logits[v] - lse) - (v === targets[r] ? 1 : 0)) / rows;
      if (g === 0) continue;
      for (let i = 0; i < d; i++) {
        dh[r * d + i] += g * w[v * d + i];
        dw[v * d + i] += g * h[r * d + i];
      }
    }
  }
  return { loss, dh, dw };
}

export interface AdamWScalars {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  wd: number;
  c1: number; // 1 − β1^step
  c2: number; // 1 − β2^step
  gscale: number; // gradients are multiplied by it first (clipping)
}

/** One AdamW update with decoupled weight decay: the new p, m and v. */
export function adamw(p: V, g: V, m: V, v: V, s: AdamWScalars) {
  const n = p.length;
  const [po, mo, vo] = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
  for (let i = 0; i < n; i++) {
    const gi = g[i] * s.gscale;
    mo[i] = s.beta1 * m[i] + (1 - s.beta1) * gi;
    vo[i] = s.beta2 * v[i] + (1 - s.beta2) * gi * gi;
    po[i] = p[i] - s.lr * (mo[i] / s.c1 / (Math.sqrt(vo[i] / s.c2) + s.eps) + s.wd * p[i]);
  }
  return { p: po, m: mo, v: vo };
}
