// The native kernels (kernels/native) against float64 references, on fresh random inputs each run (the
// seed is printed in every failure), with odd sizes and batch 1, for every instruction set this CPU has.
// The references (kernels/reference.ts)' own gradients are checked against central differences in float64 first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectBlasCoreType, loadNative, type NativeKernels } from '../kernels/native.js';
import { Rng } from '../lm/rng.js';
import { nativeTestSkip } from './native-addon.js';
import * as reference from '../kernels/reference.js';

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
  const e = reference.relativeError(actual, expected);
  assert.ok(e < tol, `${label}: relative error ${e.toExponential(2)} >= ${tol} (seed ${SEED})`);
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
    close(`y ${rows}x${d}`, y, reference.rmsNorm(f64(x), f64(g), rows, d, 1e-5));
    const dx = new Float32Array(rows * d);
    const dg = new Float32Array(d).fill(7); // overwritten, not accumulated
    n.rmsnormBwd(x, g, rstd, dy, dx, dg, rows, d);
    const [rdx, rdg] = reference.rmsNormGrad(f64(x), f64(g), f64(dy), rows, d, 1e-5);
    close('dx', dx, rdx);
    close('dg', dg, rdg);
    numericCheck('rmsnorm dx', (xx) => reference.rmsNorm(xx, f64(g), rows, d, 1e-5), f64(x), f64(dy), rdx, rng);
    numericCheck('rmsnorm dg', (gg) => reference.rmsNorm(f64(x), gg, rows, d, 1e-5), f64(g), f64(dy), rdg, rng);
  }
});

forEachSimd('SwiGLU forward and backward match float64, numerically checked', (n, rng) => {
  for (const size of [1, 17, 1001]) {
    const a = rand(rng, size, 3);
    const b = rand(rng, size);
    const dy = rand(rng, size);
    const y = new Float32Array(size);
    n.swigluFwd(a, b, y, size);
    close(`y ${size}`, y, reference.swiglu(f64(a), f64(b)));
    const da = new Float32Array(size);
    const db = new Float32Array(size);
    n.swigluBwd(a, b, dy, da, db, size);
    const [rda, rdb] = reference.swigluGrad(f64(a), f64(b), f64(dy));
    close('da', da, rda);
    close('db', db, rdb);
    numericCheck('swiglu da', (aa) => reference.swiglu(aa, f64(b)), f64(a), f64(dy), rda, rng);
    numericCheck('swiglu db', (bb) => reference.swiglu(f64(a), bb), f64(b), f64(dy), rdb, rng);
  }
});

forEachSimd('RoPE forward and backward match float64, numerically checked', (n, rng) => {
  for (const [B, T, heads, hd] of [
    [1, 7, 3, 10],
    [2, 13, 2, 34],
  ]) {
    const rows = B * T;
    const { cos, sin } = reference.ropeTables(T, hd, 10000);
    const x = rand(rng, rows * heads * hd);
    const y = new Float32Array(x.length);
    n.rope(x, y, cos, sin, rows, T, heads, hd, 1);
    close('y', y, reference.rope(f64(x), cos, sin, rows, T, heads, hd, 1));
    const dy = rand(rng, x.length);
    const dx = new Float32Array(x.length);
    n.rope(dy, dx, cos, sin, rows, T, heads, hd, -1);
    const rdx = reference.rope(f64(dy), cos, sin, rows, T, heads, hd, -1);
    close('dx', dx, rdx);
    numericCheck('rope dx', (xx) => reference.rope(xx, cos, sin, rows, T, heads, hd, 1), f64(x), f64(dy), rdx, rng);
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
    const ref = reference.attention(f64(q), f64(k), f64(v), f64(dout), B, T, H, Hkv, hd);
    close(`o ${[B, T, H, Hkv, hd]}`, o, ref.o);
    const dq = new Float32Array(q.length);
    const dk = new Float32Array(k.length).fill(3); // overwritten, not accumulated
    const dv = new Float32Array(v.length);
    n.attnBwd(q, k, v, o, lse, dout, dq, dk, dv, B, T, H, Hkv, hd);
    close('dq', dq, ref.dq);
    close('dk', dk, ref.dk);
    close('dv', dv, ref.dv);
    if (T <= 9) {
      const fwd = (qq: V, kk: V, vv: V) => reference.attention(qq, kk, vv, null, B, T, H, Hkv, hd).o;
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
    const { cos, sin } = reference.ropeTables(cap, hd, 10000);
    // Positions before `start` hold earlier keys and values; those after the new ones must stay untouched.
    const kc = rand(rng, Hkv * cap * hd);
    const vc = rand(rng, Hkv * cap * hd);
    const ref = reference.attnDecode(f64(qkv), cos, sin, f64(kc), f64(vc), dims);
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
      // y = a·x is a product [m, k]·[k, 1]; aᵀ·x is [k, m]·[m, 1], a read transposed.
      const want = trans
        ? reference.gemm(a, x, 1, k, 1, m, true, false, 0, 0)
        : reference.gemm(a, x, 1, m, 1, k, false, false, 0, 0);
      close(`sgemv ${m}x${k} trans=${trans}`, y, want);
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
    const ref = reference.crossEntropy(f64(logits), targets, rows, V);
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
    const mean = (x: V) => Float64Array.of(reference.crossEntropy(x, targets, rows, V).loss.reduce((a, c) => a + c, 0) / rows);
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
  const want = reference.adamw(p, g, m, v, { lr, beta1: b1, beta2: b2, eps, wd, c1, c2, gscale: gs });
  close('m', mo, want.m);
  close('v', vo, want.v);
  close('p', po, want.p);
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
      const want = reference.gemm(a, b, batch, m, n, k, ta, tb, sa, sb);
      close(`sgemm ta=${ta} tb=${tb} strides ${sa},${sb}`, c, want);
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
