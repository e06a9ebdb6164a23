// The native kernels (kernels/native) against float64 references, on fresh random inputs each run (the
// seed is printed in every failure), with odd sizes and batch 1, for every instruction set this CPU has.
// The references' own gradients are checked against central differences in float64 first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectBlasCoreType, loadNative, type NativeKernels } from '../kernels/native.js';
import { Rng } from '../lm/rng.js';
import { nativeTestSkip } from './native-addon.js';
import { relativeError } from './backend-compare.js';

const native = loadNative();
const skip = nativeTestSkip();
const SEED = Number(process.env.RINGLET_TEST_SEED ?? Date.now() % 1_000_000);
const TOL = 1e-5;

type V = Float64Array;
function rand(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}
const f64 = (a: ArrayLike<number>): V => Float64Array.from(a);

// The error relative to the reference's scale (backend-compare.ts); a reference that is exactly zero (dq when
// each query sees one key) has no scale, and then it is absolute: float32 leaves ~1e-7 where float64 cancels.
function close(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol = TOL): void {
  const e = relativeError(actual, expected);
  assert.ok(e < tol, `${label}: relative error ${e.toExponential(2)} >= ${tol} (seed ${SEED})`);
}

// ---- float64 references.

function refRmsNorm(x: V, g: V, rows: number, d: number, eps: number) {
  const y = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[r * d + i] ** 2;
    const s = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = x[r * d + i] * s * g[i];
  }
  return y;
}
function refRmsNormGrad(x: V, g: V, dy: V, rows: number, d: number, eps: number) {
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
const sig = (z: number) => 1 / (1 + Math.exp(-z));
const refSwiglu = (a: V, b: V) => a.map((ai, i) => ai * sig(ai) * b[i]);
function refSwigluGrad(a: V, b: V, dy: V) {
  const da = a.map((ai, i) => dy[i] * b[i] * sig(ai) * (1 + ai * (1 - sig(ai))));
  const db = a.map((ai, i) => dy[i] * ai * sig(ai));
  return [da, db];
}
function ropeTables(T: number, hd: number, theta: number) {
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
function refRope(x: V, cos: Float32Array, sin: Float32Array, rows: number, T: number, heads: number, hd: number, sign: number) {
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
/** Causal attention with the whole T×T probability matrix, forward and backward, in float64. */
function refAttention(q: V, k: V, v: V, dout: V | null, B: number, T: number, H: number, Hkv: number, hd: number) {
  const group = H / Hkv;
  const scale = 1 / Math.sqrt(hd);
  const o = new Float64Array(q.length);
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
  return { o, dq, dk, dv };
}
/**
 * Generation's attention (attnDecode) in float64: T new rows of qkv [T, (H + 2·Hkv)·hd] at positions
 * start.., k rotated and v copied into caches [Hkv, cap, hd], then each query (rotated) over keys 0..its position.
 */
function refAttnDecode(qkv: V, cos: Float32Array, sin: Float32Array, kc0: V, vc0: V, dims: number[]) {
  const [T, start, H, Hkv, hd, cap] = dims;
  const half = hd / 2;
  const width = (H + 2 * Hkv) * hd;
  const rotate = (x: V, at: number, pos: number, out: V, to: number) => {
    for (let i = 0; i < half; i++) {
      const [c, s] = [cos[pos * half + i], sin[pos * half + i]];
      out[to + i] = x[at + i] * c - x[at + i + half] * s;
      out[to + i + half] = x[at + i] * s + x[at + i + half] * c;
    }
  };
  const kc = kc0.slice();
  const vc = vc0.slice();
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
function refXent(logits: V, targets: Int32Array, rows: number, V: number) {
  const loss = new Float64Array(rows);
  const lse = new Float64Array(rows);
  const grad = new Float64Array(rows * V); // d(mean loss)/d logits
  for (let r = 0; r < rows; r++) {
    const x = logits.subarray(r * V, (r + 1) * V);
    const m = Math.max(...x);
    const sum = x.reduce((a, c) => a + Math.exp(c - m), 0);
    lse[r] = m + Math.log(sum);
    loss[r] = lse[r] - x[targets[r]];
    for (let i = 0; i < V; i++) grad[r * V + i] = Math.exp(x[i] - m) / sum / rows;
    grad[r * V + targets[r]] -= 1 / rows;
  }
  return { loss, lse, grad };
}

/** Checks analytic gradients of Σ w·f(x) against central differences in float64 at a few coordinates. */
function numericCheck(label: string, f: (x: V) => V, x: V, w: V, analytic: V, rng: Rng): void {
  const h = 1e-6;
  for (let n = 0; n < 6; n++) {
    const i = rng.int(x.length);
    const xp = x.slice();
    const xm = x.slice();
    xp[i] += h;
    xm[i] -= h;
    const yp = f(xp);
    const ym = f(xm);
    let num = 0;
    for (let j = 0; j < w.length; j++) num += (w[j] * (yp[j] - ym[j])) / (2 * h);
    const err = Math.abs(num - analytic[i]) / Math.max(1e-3, Math.abs(num));
    assert.ok(err < 1e-5, `${label}: d/dx[${i}] numeric ${num} vs analytic ${analytic[i]} (seed ${SEED})`);
  }
}

const simdLevels = native ? ['avx512', 'avx2', 'scalar'].filter((s) => native.setSimd(s)) : [];
const best = native?.info().simd;

function forEachSimd(name: string, body: (n: NativeKernels, rng: Rng) => void): void {
  test(name, { skip }, () => {
    try {
      for (const level of simdLevels) {
        native!.setSimd(level);
        try {
          body(native!, new Rng(SEED));
        } catch (err) {
          (err as Error).message = `[${level}] ${(err as Error).message}`;
          throw err;
        }
      }
    } finally {
      if (best) native!.setSimd(best);
    }
  });
}

test('the addon loaded with OpenBLAS on one thread and a SIMD level', { skip }, () => {
  const info = native!.info();
  assert.equal(info.blasThreads, 1);
  assert.ok(simdLevels.includes('scalar'));
  assert.ok(['avx512', 'avx2', 'scalar'].includes(info.simd));
  assert.match(info.blasConfig, /OpenBLAS/);
  // OPENBLAS_CORETYPE took effect: OpenBLAS reports the core Ringlet picked for this CPU.
  const core = process.env.RINGLET_OPENBLAS_CORETYPE || detectBlasCoreType();
  if (core) assert.equal(info.blasCore.toLowerCase(), core.toLowerCase());
});

forEachSimd('RMSNorm forward and backward match float64, numerically checked', (n, rng) => {
  for (const [rows, d] of [
    [1, 37],
    [5, 131],
    [3, 16],
  ]) {
    const x = rand(rng, rows * d);
    const g = rand(rng, d, 0.5).map((v) => v + 1);
    const dy = rand(rng, rows * d);
    const y = new Float32Array(rows * d);
    const rstd = new Float32Array(rows);
    n.rmsnormFwd(x, g, y, rstd, rows, d, 1e-5);
    close(`y ${rows}x${d}`, y, refRmsNorm(f64(x), f64(g), rows, d, 1e-5));
    const dx = new Float32Array(rows * d);
    const dg = new Float32Array(d).fill(7); // overwritten, not accumulated
    n.rmsnormBwd(x, g, rstd, dy, dx, dg, rows, d);
    const [rdx, rdg] = refRmsNormGrad(f64(x), f64(g), f64(dy), rows, d, 1e-5);
    close('dx', dx, rdx);
    close('dg', dg, rdg);
    numericCheck('rmsnorm dx', (xx) => refRmsNorm(xx, f64(g), rows, d, 1e-5), f64(x), f64(dy), rdx, rng);
    numericCheck('rmsnorm dg', (gg) => refRmsNorm(f64(x), gg, rows, d, 1e-5), f64(g), f64(dy), rdg, rng);
  }
});

forEachSimd('SwiGLU forward and backward match float64, numerically checked', (n, rng) => {
  for (const size of [1, 17, 1001]) {
    const a = rand(rng, size, 3);
    const b = rand(rng, size);
    const dy = rand(rng, size);
    const y = new Float32Array(size);
    n.swigluFwd(a, b, y, size);
    close(`y ${size}`, y, refSwiglu(f64(a), f64(b)));
    const da = new Float32Array(size);
    const db = new Float32Array(size);
    n.swigluBwd(a, b, dy, da, db, size);
    const [rda, rdb] = refSwigluGrad(f64(a), f64(b), f64(dy));
    close('da', da, rda);
    close('db', db, rdb);
    numericCheck('swiglu da', (aa) => refSwiglu(aa, f64(b)), f64(a), f64(dy), rda, rng);
    numericCheck('swiglu db', (bb) => refSwiglu(f64(a), bb), f64(b), f64(dy), rdb, rng);
  }
});

forEachSimd('RoPE forward and backward match float64, numerically checked', (n, rng) => {
  for (const [B, T, heads, hd] of [
    [1, 7, 3, 10],
    [2, 13, 2, 34],
  ]) {
    const rows = B * T;
    const { cos, sin } = ropeTables(T, hd, 10000);
    const x = rand(rng, rows * heads * hd);
    const y = new Float32Array(x.length);
    n.rope(x, y, cos, sin, rows, T, heads, hd, 1);
    close('y', y, refRope(f64(x), cos, sin, rows, T, heads, hd, 1));
    const dy = rand(rng, x.length);
    const dx = new Float32Array(x.length);
    n.rope(dy, dx, cos, sin, rows, T, heads, hd, -1);
    const rdx = refRope(f64(dy), cos, sin, rows, T, heads, hd, -1);
    close('dx', dx, rdx);
    numericCheck('rope dx', (xx) => refRope(xx, cos, sin, rows, T, heads, hd, 1), f64(x), f64(dy), rdx, rng);
  }
});

forEachSimd('causal attention forward and backward match float64 (GQA, several key blocks), numerically checked', (n, rng) => {
  for (const [B, T, H, Hkv, hd] of [
    [1, 70, 2, 1, 10], // T > the 64-key block: the online softmax rescales across blocks
    [1, 150, 4, 2, 32], // three blocks, the last of 22 queries (a part-filled group of keys); whole vectors of head size
    [2, 67, 3, 1, 48], // head size padded to whole micro-tiles; a last block of 3 queries
    [2, 9, 3, 3, 7],
    [1, 1, 1, 1, 5],
  ]) {
    const q = rand(rng, B * T * H * hd);
    const k = rand(rng, B * T * Hkv * hd);
    const v = rand(rng, B * T * Hkv * hd);
    const dout = rand(rng, q.length);
    const o = new Float32Array(q.length);
    const lse = new Float32Array(B * H * T);
    n.attnFwd(q, k, v, o, lse, B, T, H, Hkv, hd);
    const ref = refAttention(f64(q), f64(k), f64(v), f64(dout), B, T, H, Hkv, hd);
    close(`o ${[B, T, H, Hkv, hd]}`, o, ref.o);
    const dq = new Float32Array(q.length);
    const dk = new Float32Array(k.length).fill(3); // overwritten, not accumulated
    const dv = new Float32Array(v.length);
    n.attnBwd(q, k, v, o, lse, dout, dq, dk, dv, B, T, H, Hkv, hd);
    close('dq', dq, ref.dq);
    close('dk', dk, ref.dk);
    close('dv', dv, ref.dv);
    if (T <= 9) {
      const fwd = (qq: V, kk: V, vv: V) => refAttention(qq, kk, vv, null, B, T, H, Hkv, hd).o;
      numericCheck('attention dq', (x) => fwd(x, f64(k), f64(v)), f64(q), f64(dout), ref.dq, rng);
      numericCheck('attention dk', (x) => fwd(f64(q), x, f64(v)), f64(k), f64(dout), ref.dk, rng);
      numericCheck('attention dv', (x) => fwd(f64(q), f64(k), x), f64(v), f64(dout), ref.dv, rng);
    }
  }
});

forEachSimd("generation's attention over a key/value cache matches float64 (GQA, a prompt and single steps)", (n, rng) => {
  for (const dims of [
    [1, 0, 1, 1, 2, 1], // the first position of a one-position cache
    [1, 37, 4, 2, 10, 40], // one step far into the cache; cap beyond the positions used
    [5, 11, 6, 2, 34, 20], // a batch continuing a cache; head size not a whole vector
    [7, 0, 3, 3, 32, 7], // a prompt that fills the cache exactly
    [1, 63, 2, 1, 64, 64],
  ]) {
    const [T, start, H, Hkv, hd, cap] = dims;
    const qkv = rand(rng, T * (H + 2 * Hkv) * hd);
    const { cos, sin } = ropeTables(cap, hd, 10000);
    // Positions before `start` hold earlier keys and values; those after the new ones must stay untouched.
    const kc = rand(rng, Hkv * cap * hd);
    const vc = rand(rng, Hkv * cap * hd);
    const ref = refAttnDecode(f64(qkv), cos, sin, f64(kc), f64(vc), dims);
    const o = new Float32Array(T * H * hd).fill(5);
    n.attnDecode(qkv, cos, sin, kc, vc, o, T, start, H, Hkv, hd, cap);
    close(`o ${dims}`, o, ref.o);
    close(`k cache ${dims}`, kc, ref.kc);
    close(`v cache ${dims}`, vc, ref.vc);
  }
  const f = (size: number) => new Float32Array(size);
  assert.throws(() => n.attnDecode(f(8), f(8), f(8), f(8), f(8), f(8), 1, 2, 1, 1, 2, 2), /do not fit a cache of 2/);
  assert.throws(() => n.attnDecode(f(5), f(8), f(8), f(8), f(8), f(8), 1, 0, 1, 1, 2, 2), /qkv has 5 elements, needs 6/);
});

test('sgemv matches float64, plain and transposed', { skip }, () => {
  const rng = new Rng(SEED);
  for (const [m, k] of [
    [1, 1],
    [37, 131],
    [200, 24],
  ])
    for (const trans of [false, true]) {
      const a = rand(rng, m * k);
      const x = rand(rng, trans ? m : k);
      const y = new Float32Array(trans ? k : m).fill(9); // overwritten
      native!.sgemv(a, x, y, m, k, trans);
      const ref = new Float64Array(y.length);
      for (let r = 0; r < m; r++)
        for (let col = 0; col < k; col++)
          if (trans) ref[col] += a[r * k + col] * x[r];
          else ref[r] += a[r * k + col] * x[col];
      close(`sgemv ${m}x${k} trans=${trans}`, y, ref);
    }
  assert.throws(
    () => native!.sgemv(new Float32Array(6), new Float32Array(1), new Float32Array(3), 2, 3, true),
    /x has 1 elements, needs 2/,
  );
});

forEachSimd('softmax cross-entropy forward and backward match float64, numerically checked', (n, rng) => {
  for (const [rows, V] of [
    [1, 11],
    [6, 257],
  ]) {
    const logits = rand(rng, rows * V, 4);
    const targets = Int32Array.from({ length: rows }, () => rng.int(V));
    const loss = new Float32Array(rows);
    const lse = new Float32Array(rows);
    n.xentFwd(logits, targets, loss, lse, rows, V);
    const ref = refXent(f64(logits), targets, rows, V);
    close('lse', lse, ref.lse);
    // loss = lse − logit[target] cancels when the target dominates, so float32 holds it to the scale of lse.
    const lseScale = Math.max(...ref.lse.map(Math.abs));
    loss.forEach((l, r) =>
      assert.ok(Math.abs(l - ref.loss[r]) <= TOL * lseScale, `loss row ${r}: ${l} vs ${ref.loss[r]} (seed ${SEED})`),
    );
    const dlogits = new Float32Array(rows * V);
    n.xentBwd(logits, targets, lse, new Float32Array(rows).fill(1 / rows), dlogits, rows, V);
    // dlogits = (softmax − onehot)/rows cancels at a dominant target: judge it on the scale of its terms, 1/rows.
    const worst = dlogits.reduce((w, g, i) => Math.max(w, Math.abs(g - ref.grad[i])), 0);
    assert.ok(worst <= TOL / rows, `dlogits: max error ${worst} > ${TOL / rows} (seed ${SEED})`);
    const mean = (x: V) => Float64Array.of(refXent(x, targets, rows, V).loss.reduce((a, c) => a + c, 0) / rows);
    numericCheck('xent dlogits', mean, f64(logits), Float64Array.of(1), ref.grad, rng);
  }
  assert.throws(
    () => n.xentFwd(new Float32Array(4), Int32Array.of(4), new Float32Array(1), new Float32Array(1), 1, 4),
    /outside the vocabulary/,
  );
});

forEachSimd('AdamW update matches float64', (n, rng) => {
  const size = 29;
  const [p, g, m] = [rand(rng, size), rand(rng, size), rand(rng, size, 0.1)];
  const v = rand(rng, size, 0.1).map(Math.abs);
  const [po, mo, vo] = [new Float32Array(size), new Float32Array(size), new Float32Array(size)];
  const [lr, b1, b2, eps, wd, c1, c2, gs] = [1e-3, 0.9, 0.95, 1e-8, 0.1, 0.19, 0.0975, 0.5];
  n.adamw(p, g, m, v, po, mo, vo, size, lr, b1, b2, eps, wd, c1, c2, gs);
  const rm = new Float64Array(size);
  const rv = new Float64Array(size);
  const rp = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const gi = g[i] * gs;
    rm[i] = b1 * m[i] + (1 - b1) * gi;
    rv[i] = b2 * v[i] + (1 - b2) * gi * gi;
    rp[i] = p[i] - lr * (rm[i] / c1 / (Math.sqrt(rv[i] / c2) + eps) + wd * p[i]);
  }
  close('m', mo, rm);
  close('v', vo, rv);
  close('p', po, rp);
});

forEachSimd('addInto rounds each sum as a float add does, bit for bit, and stops at n', (n, rng) => {
  for (const size of [1, 15, 1003]) {
    const t = rand(rng, size + 3, 1e3);
    const v = rand(rng, size + 3, 1e-3); // sums that round
    const want = Float32Array.from(t, (x, i) => (i < size ? Math.fround(x + v[i]) : x));
    n.addInto(t.subarray(0), v, size);
    assert.deepEqual(t, want, `size ${size}`);
  }
  // Views at an offset: the ring sums chunks in the middle of a bucket.
  const bucket = new Float32Array(40).fill(1);
  n.addInto(bucket.subarray(8, 24), new Float32Array(16).fill(2), 16);
  assert.deepEqual([...bucket.slice(6, 26)], [1, 1, ...new Array(16).fill(3), 1, 1]);
  // A received chunk: the floats' bytes at whatever offset gRPC's framing left them, read in place.
  for (const shift of [1, 2, 3]) {
    const size = 37;
    const t = rand(rng, size, 1e3);
    const v = rand(rng, size, 1e-3);
    const bytes = new Uint8Array(4 * size + 4);
    bytes.set(new Uint8Array(v.buffer), shift);
    const want = Float32Array.from(t, (x, i) => Math.fround(x + v[i]));
    n.addInto(t, bytes.subarray(shift, shift + 4 * size), size);
    assert.deepEqual(t, want, `bytes at offset ${shift}`);
  }
  assert.throws(() => n.addInto(new Float32Array(4), new Uint8Array(15), 4), /values has 15 bytes, needs 16/);
});

test('sgemm matches float64 for every transpose and broadcast layout', { skip }, () => {
  const rng = new Rng(SEED);
  const [batch, m, k, n] = [3, 5, 19, 7];
  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const)
    for (const [sa, sb] of [
      [m * k, k * n],
      [0, k * n],
      [m * k, 0],
    ]) {
      const a = rand(rng, sa === 0 ? m * k : batch * m * k);
      const b = rand(rng, sb === 0 ? k * n : batch * k * n);
      const c = new Float32Array(batch * m * n);
      native!.sgemm(a, b, c, batch, m, n, k, ta, tb, sa, sb);
      const ref = new Float64Array(c.length);
      for (let i = 0; i < batch; i++)
        for (let r = 0; r < m; r++)
          for (let col = 0; col < n; col++) {
            let s = 0;
            for (let e = 0; e < k; e++)
              s += a[i * sa + (ta ? e * m + r : r * k + e)] * b[i * sb + (tb ? col * k + e : e * n + col)];
            ref[(i * m + r) * n + col] = s;
          }
      close(`sgemm ta=${ta} tb=${tb} strides ${sa},${sb}`, c, ref);
    }
});

test('the addon rejects arrays too short for the sizes and wrong array types', { skip }, () => {
  const n = native!;
  assert.throws(
    () => n.sgemm(new Float32Array(5), new Float32Array(6), new Float32Array(4), 1, 2, 2, 3, false, false, 0, 0),
    RangeError,
  );
  assert.throws(() => n.swigluFwd(new Float32Array(3), new Float32Array(3), new Float32Array(2), 3), /y has 2 elements, needs 3/);
  assert.throws(
    () => n.rmsnormFwd(new Float64Array(4) as never, new Float32Array(2), new Float32Array(4), new Float32Array(2), 2, 2, 1e-5),
    /Float32Array/,
  );
  assert.throws(
    () =>
      n.attnFwd(
        new Float32Array(8),
        new Float32Array(8),
        new Float32Array(8),
        new Float32Array(8),
        new Float32Array(8),
        1,
        2,
        3,
        2,
        1,
      ),
    /multiple of kv heads/,
  );
  assert.throws(() => n.swigluFwd(new Float32Array(3), new Float32Array(3), new Float32Array(3), -1), /non-negative integer/);
});

test('the FMA microbenchmark reports a plausible rate for every thread', { skip }, () => {
  const rates = native!.fmaPeak(2, 0.05);
  assert.equal(rates.length, 2);
  for (const r of rates) assert.ok(r > 0.5 && r < 5000, `rate ${r} GFLOP/s`);
});
