// Every kernel of a Device (kernels/cuda/device.ts), forward and backward, against the float64 references
// of kernels/reference.ts, as llm.c's dev/cuda checks its kernels: fresh random inputs each run (the seed is
// recorded), realistic shapes and awkward ones (rows not a multiple of a block, T not a multiple of a tile,
// grouped-query attention, a single element), and every output poisoned with NaN before the kernel runs, so
// an element it forgets to write fails. The error is relativeError: max|actual − ref| / max|ref|.
//
// Tolerances, stated:
// - fp32 kernels: 1e-5 (float32 rounds at 6e-8; sums over thousands of terms in another order stay far below).
// - gemm in TF32: inputs keep 10 of float32's 23 mantissa bits, a relative rounding of up to u = 2^-11 each
//   (2^-10 if the hardware truncates). A product's error is then ~2u·|a·b|, and over k terms with random signs
//   the output's error grows as √k, like the output itself: relative to the largest output it stays near 2u
//   whatever k is (the worst case, every error of one sign, is 2u·√k). Held to 4u = 2^-9 ≈ 1.95e-3.
// - gemm in bf16: 7 mantissa bits, u = 2^-8; held to 4u = 2^-6 ≈ 1.56e-2.
// - exact (0): fill, copies, gather, cast, comparisons, max/min.
// - attention in TF32 and bf16 (the tensor-core kernels of kernels/cuda/src/attention_tc.cu for hd ≤ 64, the
//   fp32 kernels otherwise): every output passes through a chain of rounded operands (forward: q and k, then
//   the probabilities and v; backward: dO and v for dP, then dS and k or q, p and dO), each adding up to
//   ~u relative to the output's scale with random signs, so twice the gemm's allowance: 8u, 2^-8 ≈ 3.9e-3
//   in TF32 and 2^-5 ≈ 3.1e-2 in bf16. The emulator, which rounds operands as the tensor cores do, measured
//   at most 2.8u over 30 seeds of the small shapes (dq and dk; o and dv 1.7u). lse is held to its absolute
//   error over max(1, max|lse|): p = exp(s − lse), so an absolute error in lse is the relative error of every
//   probability, and a lone lse near 0 (T = 1) has no scale of its own.
import * as reference from '../../kernels/reference.js';
import {
  BINARY_OPS,
  REDUCE_OPS,
  UNARY_OPS,
  type Device,
  type DeviceDType,
  type DevicePtr,
  type Precision,
} from '../../kernels/cuda/device.js';
import { Rng } from '../../lm/rng.js';

export const KERNEL_TOLERANCE: Record<Precision, number> = { fp32: 1e-5, tf32: 2 ** -9, bf16: 2 ** -6 };
export const ATTENTION_TOLERANCE: Record<Precision, number> = { fp32: 1e-5, tf32: 2 ** -8, bf16: 2 ** -5 };

export interface KernelCheck {
  kernel: string; // the Device method, and the output compared: "attnBwd dk"
  shape: string; // the case, e.g. "B2 T67 H3 Hkv1 hd48"
  error: number;
  tolerance: number;
  ok: boolean;
}

/** lse's check: its largest absolute error over max(1, max|lse|) (see the tolerances above). */
function lseCheck(
  kernel: string,
  shape: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
): KernelCheck {
  let maxDiff = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Number.isFinite(actual[i]) ? Math.abs(actual[i] - expected[i]) : Infinity);
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  const error = maxDiff / scale;
  return { kernel, shape, error, tolerance, ok: error <= tolerance };
}

/** Shapes: `full` adds the realistic sizes of the presets (slow references in JavaScript: ~20 s). */
export type KernelCheckSize = 'full' | 'small';

type Outputs = Float32Array | Int32Array;

/** Device buffers for one case: uploads, NaN-poisoned outputs, downloads; all freed by `done`. */
class Buffers {
  private readonly ptrs: DevicePtr[] = [];
  constructor(readonly device: Device) {}

  up(values: Float32Array | Int32Array): DevicePtr {
    const ptr = this.device.alloc(Math.max(values.length, 1) * 4);
    this.ptrs.push(ptr);
    if (values.length > 0) this.device.upload(ptr, values);
    return ptr;
  }

  /** An output of n elements, poisoned: NaN for float32, a value no kernel writes for int32 and bool. */
  out(n: number, dtype: DeviceDType = 'float32'): DevicePtr {
    const ptr = this.device.alloc(Math.max(n, 1) * 4);
    this.ptrs.push(ptr);
    // bool is int32 on the device; filled as int32, since a bool fill would store the poison as 1 (true).
    this.device.fill(ptr, dtype === 'float32' ? 'float32' : 'int32', dtype === 'float32' ? NaN : -123456789, n);
    return ptr;
  }

  down(ptr: DevicePtr, n: number, dtype: DeviceDType = 'float32'): Outputs {
    const into = dtype === 'float32' ? new Float32Array(n) : new Int32Array(n);
    this.device.download(ptr, into);
    return into;
  }

  done(): void {
    for (const ptr of this.ptrs.splice(0)) this.device.free(ptr);
  }
}

/** Runs every kernel check on `device`; the device's precision is left at fp32. */
export function checkKernels(device: Device, seed: number, size: KernelCheckSize): KernelCheck[] {
  const checks: KernelCheck[] = [];
  const rng = new Rng(seed);
  const full = size === 'full';
  const normal = (n: number, scale = 1) => Float32Array.from({ length: n }, () => rng.normal() * scale);
  const ints = (n: number, max: number) => Int32Array.from({ length: n }, () => rng.int(max));
  const record = (kernel: string, shape: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number) => {
    const error = reference.relativeError(actual, expected);
    checks.push({ kernel, shape, error, tolerance, ok: error <= tolerance });
  };
  // One case: its kernels synced (an asynchronous error names the kernel) and its buffers freed; a case that
  // throws is a failed check with the message, and the next case runs.
  const run = (name: string, body: (b: Buffers) => void) => {
    const b = new Buffers(device);
    try {
      body(b);
      device.sync();
    } catch (err) {
      checks.push({ kernel: name, shape: `threw: ${(err as Error).message}`, error: Infinity, tolerance: 0, ok: false });
    } finally {
      b.done();
    }
  };
  const fp32 = KERNEL_TOLERANCE.fp32;
  device.setPrecision('fp32');

  // ---- Memory and copies.
  run('fill and upload', (b) => {
    const n = 100_003;
    const f = b.out(n);
    device.fill(f, 'float32', 0.25, n);
    record('fill', `float32 n${n}`, b.down(f, n), new Float32Array(n).fill(0.25), 0);
    const i = b.out(n, 'int32');
    device.fill(i, 'int32', -7, n);
    record('fill', `int32 n${n}`, b.down(i, n, 'int32'), new Int32Array(n).fill(-7), 0);
    const x = normal(n);
    const at = b.out(n + 5);
    device.upload(at, x, 5 * 4);
    record('upload/download', `offset 5 n${n}`, b.down(at, n + 5).subarray(5), x, 0);
  });
  const transposes: Array<{ shape: number[]; perm: number[] }> = [
    { shape: [37, 53], perm: [1, 0] },
    { shape: [2, 3, 5, 7, 3, 2], perm: [5, 3, 1, 0, 4, 2] }, // rank 6
    { shape: [64, 1, 128], perm: [1, 0, 2] },
  ];
  for (const { shape, perm } of transposes)
    run('copyStrided transpose', (b) => {
      const n = shape.reduce((a, c) => a * c, 1);
      const x = normal(n);
      const contiguous = (dims: number[]) => dims.map((_, d) => dims.slice(d + 1).reduce((a, c) => a * c, 1));
      const srcStrides = perm.map((p) => contiguous(shape)[p]); // x read in the permuted order
      const outShape = perm.map((p) => shape[p]);
      const y = b.out(n);
      device.copyStrided(b.up(x), 0, srcStrides, y, 0, contiguous(outShape), outShape);
      const want = reference.gatherStrided(x, 0, srcStrides, outShape);
      record('copyStrided', `transpose [${shape}] by [${perm}]`, b.down(y, n), want, 0);
    });
  run('copyStrided slice and broadcast', (b) => {
    // A slice at an offset into the middle of a larger destination, and a broadcast (stride 0) read.
    const x = normal(40 * 30);
    const y = b.out(7 * 11 + 3);
    device.fill(y, 'float32', 0, 3);
    device.copyStrided(b.up(x), 30 * 5 + 2, [30, 1], y, 3, [11, 1], [7, 11]);
    record(
      'copyStrided',
      'slice [5:12, 2:13] of [40, 30]',
      b.down(y, 80).subarray(3),
      reference.gatherStrided(x, 152, [30, 1], [7, 11]),
      0,
    );
    const z = b.out(9 * 30);
    device.copyStrided(b.up(x), 0, [0, 1], z, 0, [30, 1], [9, 30]);
    record('copyStrided', 'broadcast a row to [9, 30]', b.down(z, 270), reference.gatherStrided(x, 0, [0, 1], [9, 30]), 0);
  });

  // ---- Elementwise.
  const positive = new Set(['log', 'sqrt', 'rsqrt', 'pow']);
  for (const op of UNARY_OPS)
    run('unary', (b) => {
      const n = full ? 1_000_003 : 10_007;
      const x = positive.has(op)
        ? normal(n).map((v) => Math.abs(v) + 0.1)
        : op === 'reciprocal'
          ? normal(n).map((v) => v + Math.sign(v))
          : normal(n, 3);
      const y = b.out(n);
      device.unary(op, b.up(x), y, n);
      record('unary', `${op} n${n}`, b.down(y, n), Float64Array.from(x, reference.UNARY[op]), fp32);
    });
  run('unary in place', (b) => {
    const x = normal(1001);
    const p = b.up(x);
    device.unary('exp', p, p, 1001);
    record('unary', 'exp in place n1001', b.down(p, 1001), Float64Array.from(x, Math.exp), fp32);
  });
  const comparison = new Set(['equal', 'notEqual', 'less', 'greater']);
  for (const op of BINARY_OPS)
    for (const dtype of ['float32', 'int32'] as const) {
      if (dtype === 'int32' && (op === 'div' || op === 'pow')) continue;
      run('binary', (b) => {
        // a [rows, cols] against b broadcast along rows ([cols], stride 0) or a scalar; comparisons with ties.
        const [rows, cols] = full ? [1000, 513] : [37, 53];
        const draw = (n: number) =>
          dtype === 'int32' ? ints(n, 7).map((v) => v - 3) : comparison.has(op) ? normal(n).map(Math.round) : normal(n);
        let a = draw(rows * cols);
        let bb = draw(cols);
        if (op === 'pow') [a, bb] = [a.map((v) => Math.abs(v) + 0.5), bb.map((v) => v * 2)];
        if (op === 'div') bb = bb.map((v) => v + Math.sign(v));
        const outType: DeviceDType = comparison.has(op) ? 'bool' : dtype;
        const y = b.out(rows * cols, outType);
        device.binary(op, dtype, b.up(a), [cols, 1], b.up(bb), [0, 1], y, [rows, cols]);
        const want = Float64Array.from(a, (v, i) => reference.BINARY[op](v, bb[i % cols]));
        const exact = dtype === 'int32' || comparison.has(op) || op === 'maximum' || op === 'minimum';
        record(
          'binary',
          `${op} ${dtype} [${rows}, ${cols}] by [${cols}]`,
          b.down(y, rows * cols, outType),
          want,
          exact ? 0 : fp32,
        );
      });
    }
  run('addN', (b) => {
    const n = 30_011;
    const xs = [normal(n), normal(n), normal(n, 1e-3)];
    const y = b.out(n);
    device.addN(
      xs.map((x) => b.up(x)),
      y,
      n,
    );
    record(
      'addN',
      `3 × n${n}`,
      b.down(y, n),
      Float64Array.from(xs[0], (v, i) => v + xs[1][i] + xs[2][i]),
      fp32,
    );
  });
  run('cast', (b) => {
    const n = 10_007;
    const x = normal(n, 5);
    const asInt = b.out(n, 'int32');
    device.cast(b.up(x), 'float32', asInt, 'int32', n);
    record('cast', 'float32 → int32 (toward zero)', b.down(asInt, n, 'int32'), Float64Array.from(x, Math.trunc), 0);
    const i = ints(n, 5);
    const asFloat = b.out(n);
    device.cast(b.up(i), 'int32', asFloat, 'float32', n);
    record('cast', 'int32 → float32', b.down(asFloat, n), i, 0);
    const asBool = b.out(n, 'bool');
    device.cast(b.up(i), 'int32', asBool, 'bool', n);
    record(
      'cast',
      'int32 → bool',
      b.down(asBool, n, 'bool'),
      Float64Array.from(i, (v) => Number(v !== 0)),
      0,
    );
  });

  // ---- Reductions, softmax, gather, segment sums.
  for (const op of REDUCE_OPS)
    for (const [outer, inner] of full
      ? [
          [1, 1],
          [1000, 3],
          [37, 1000],
          [5, 70_001],
        ]
      : [
          [1, 1],
          [37, 1000],
          [3, 4099],
        ])
      run('reduce', (b) => {
        if (op === 'prod' && inner > 1000) return; // a product of thousands of values over- or underflows
        const x = op === 'prod' ? normal(outer * inner, 0.01).map((v) => 1 + v) : normal(outer * inner);
        const y = b.out(outer);
        device.reduce(op, 'float32', b.up(x), y, outer, inner);
        record(
          'reduce',
          `${op} [${outer}, ${inner}]`,
          b.down(y, outer),
          reference.reduce(op, x, outer, inner),
          op === 'max' || op === 'min' ? 0 : fp32,
        );
      });
  run('reduce int32', (b) => {
    const [outer, inner] = [13, 1001];
    const x = ints(outer * inner, 2); // an accuracy: the sum of Equal's 0/1 as int32
    const y = b.out(outer, 'int32');
    device.reduce('sum', 'int32', b.up(x), y, outer, inner);
    record('reduce', `sum int32 [${outer}, ${inner}]`, b.down(y, outer, 'int32'), reference.reduce('sum', x, outer, inner), 0);
  });
  for (const [rows, cols] of full
    ? [
        [1, 1],
        [37, 257],
        [512, 8192],
        [3, 10_001],
      ]
    : [
        [1, 1],
        [37, 257],
        [3, 4099],
      ])
    run('softmax', (b) => {
      const x = normal(rows * cols, 4);
      const y = b.out(rows * cols);
      device.softmax(b.up(x), y, rows, cols);
      record('softmax', `[${rows}, ${cols}]`, b.down(y, rows * cols), reference.softmax(x, rows, cols), fp32);
    });
  for (const [outer, dim, inner, count] of [
    [1, 8192, 512, 1031], // an embedding lookup
    [3, 17, 5, 40],
    [1, 1, 1, 1],
  ])
    run('gather', (b) => {
      const x = normal(outer * dim * inner);
      const idx = ints(count, dim);
      const y = b.out(outer * count * inner);
      device.gather(b.up(x), b.up(idx), y, outer, dim, inner, count);
      record(
        'gather',
        `[${outer}, ${dim}, ${inner}] at ${count}`,
        b.down(y, outer * count * inner),
        reference.gather(x, idx, outer, dim, inner),
        0,
      );
    });
  for (const [rows, inner, segments] of [
    [full ? 32_768 : 1031, 64, 300], // the embedding gradient of a batch's tokens
    [7, 3, 1],
  ])
    run('unsortedSegmentSum', (b) => {
      const x = normal(rows * inner);
      const ids = ints(rows, segments + 2).map((s) => s - 1); // some -1 and `segments`: dropped
      const y = b.out(segments * inner);
      device.unsortedSegmentSum(b.up(x), b.up(ids), y, rows, inner, segments);
      record(
        'unsortedSegmentSum',
        `[${rows}, ${inner}] into ${segments}`,
        b.down(y, segments * inner),
        reference.segmentSum(x, ids, inner, segments),
        fp32,
      );
    });

  // ---- Matrix products, in each precision.
  const gemmCases: number[][] = [
    [3, 5, 7, 19], // batch, m, n, k
    [1, 1, 1, 1],
    [2, 37, 53, 131],
    ...(full
      ? [
          [1, 200, 150, 2048],
          [8, 256, 256, 64],
        ]
      : [[1, 64, 48, 512]]),
  ];
  for (const precision of ['fp32', 'tf32', 'bf16'] as const) {
    device.setPrecision(precision);
    for (const [batch, m, n, k] of gemmCases)
      for (const [transA, transB] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const)
        for (const [shareA, shareB] of [
          [false, false],
          [true, false],
          [false, true],
        ] as const)
          run('gemm', (b) => {
            if (batch === 1 && (shareA || shareB)) return;
            const [strideA, strideB] = [shareA ? 0 : m * k, shareB ? 0 : k * n];
            const a = normal(shareA ? m * k : batch * m * k);
            const bm = normal(shareB ? k * n : batch * k * n);
            const c = b.out(batch * m * n);
            device.gemm(b.up(a), b.up(bm), c, batch, m, n, k, transA, transB, strideA, strideB, m * n);
            const want = reference.gemm(a, bm, batch, m, n, k, transA, transB, strideA, strideB);
            const layout = `${transA ? 'Aᵀ' : 'A'}${transB ? 'Bᵀ' : 'B'}${shareA ? ' shared A' : ''}${shareB ? ' shared B' : ''}`;
            record(
              `gemm ${precision}`,
              `${batch}×[${m}, ${n}, ${k}] ${layout}`,
              b.down(c, batch * m * n),
              want,
              KERNEL_TOLERANCE[precision],
            );
          });
  }
  device.setPrecision('fp32');

  // ---- The fused kernels, forward and backward.
  for (const [rows, d] of full
    ? [
        [1, 37],
        [1000, 256],
        [4097, 512],
      ]
    : [
        [1, 37],
        [131, 64],
      ])
    run('rmsnorm', (b) => {
      const x = normal(rows * d);
      const g = normal(d, 0.5).map((v) => v + 1);
      const dy = normal(rows * d);
      const [y, rstd, dx, dg] = [b.out(rows * d), b.out(rows), b.out(rows * d), b.out(d)];
      const [px, pg] = [b.up(x), b.up(g)];
      device.rmsnormFwd(px, pg, y, rstd, rows, d, 1e-5);
      device.rmsnormBwd(px, pg, rstd, b.up(dy), dx, dg, rows, d);
      const [rdx, rdg] = reference.rmsNormGrad(x, g, dy, rows, d, 1e-5);
      record('rmsnormFwd y', `[${rows}, ${d}]`, b.down(y, rows * d), reference.rmsNorm(x, g, rows, d, 1e-5), fp32);
      record('rmsnormBwd dx', `[${rows}, ${d}]`, b.down(dx, rows * d), rdx, fp32);
      record('rmsnormBwd dg', `[${rows}, ${d}]`, b.down(dg, d), rdg, fp32);
    });
  for (const n of full ? [1, 1001, 4096 * 1408 + 3] : [1, 1001, 70_001])
    run('swiglu', (b) => {
      const [a, bb, dy] = [normal(n, 3), normal(n), normal(n)];
      const [y, da, db] = [b.out(n), b.out(n), b.out(n)];
      const [pa, pb] = [b.up(a), b.up(bb)];
      device.swigluFwd(pa, pb, y, n);
      device.swigluBwd(pa, pb, b.up(dy), da, db, n);
      const [rda, rdb] = reference.swigluGrad(a, bb, dy);
      record('swigluFwd y', `n${n}`, b.down(y, n), reference.swiglu(a, bb), fp32);
      record('swigluBwd da', `n${n}`, b.down(da, n), rda, fp32);
      record('swigluBwd db', `n${n}`, b.down(db, n), rdb, fp32);
    });
  for (const [B, T, heads, hd] of full
    ? [
        [2, 13, 2, 34],
        [8, 256, 8, 64],
      ]
    : [
        [2, 13, 2, 34],
        [1, 7, 3, 10],
      ])
    run('rope', (b) => {
      const rows = B * T;
      const { cos, sin } = reference.ropeTables(T, hd, 10000);
      const x = normal(rows * heads * hd);
      const [pc, ps] = [b.up(cos), b.up(sin)];
      for (const sign of [1, -1]) {
        const y = b.out(x.length);
        device.rope(b.up(x), y, pc, ps, rows, T, heads, hd, sign);
        record(
          sign > 0 ? 'rope forward' : 'rope backward',
          `B${B} T${T} heads${heads} hd${hd}`,
          b.down(y, x.length),
          reference.rope(x, cos, sin, rows, T, heads, hd, sign),
          fp32,
        );
      }
    });
  // Attention in each precision: hd ≤ 64 runs on the tensor cores in TF32 and bf16 (T not a multiple of their
  // 64-row blocks or 32-row tiles, GQA, many batch-heads), hd 100 on the fp32 kernels whatever the precision.
  const attentionShapes = full
    ? [
        [1, 1, 1, 1, 8],
        [1, 70, 2, 1, 10],
        [2, 67, 3, 1, 48],
        [1, 150, 4, 2, 32],
        [3, 33, 8, 2, 32],
        [1, 40, 2, 2, 100],
        [2, 256, 8, 4, 64], // small: T 256, 8 heads over 4
        [1, 128, 4, 4, 32], // micro
      ]
    : [
        [1, 1, 1, 1, 8],
        [1, 70, 2, 1, 10],
        [2, 67, 3, 1, 48],
        [3, 33, 8, 2, 32],
        [1, 100, 4, 1, 64],
        [1, 40, 2, 2, 100],
      ];
  for (const precision of ['fp32', 'tf32', 'bf16'] as const)
    for (const [B, T, H, Hkv, hd] of attentionShapes)
      run('attention', (b) => {
        device.setPrecision(precision);
        const [q, k, v] = [normal(B * T * H * hd), normal(B * T * Hkv * hd), normal(B * T * Hkv * hd)];
        const dout = normal(q.length);
        const [o, lse, dq, dk, dv] = [b.out(q.length), b.out(B * H * T), b.out(q.length), b.out(k.length), b.out(v.length)];
        const [pq, pk, pv] = [b.up(q), b.up(k), b.up(v)];
        device.attnFwd(pq, pk, pv, o, lse, B, T, H, Hkv, hd);
        device.attnBwd(pq, pk, pv, o, lse, b.up(dout), dq, dk, dv, B, T, H, Hkv, hd);
        const want = reference.attention(q, k, v, dout, B, T, H, Hkv, hd);
        const shape = `B${B} T${T} H${H} Hkv${Hkv} hd${hd}`;
        const tag = precision === 'fp32' ? '' : ` ${precision}`;
        const tolerance = ATTENTION_TOLERANCE[precision];
        const gotLse = b.down(lse, B * H * T);
        record(`attnFwd${tag} o`, shape, b.down(o, q.length), want.o, tolerance);
        if (precision === 'fp32') record('attnFwd lse', shape, gotLse, want.lse, tolerance);
        else checks.push(lseCheck(`attnFwd${tag} lse`, shape, gotLse, want.lse, tolerance));
        record(`attnBwd${tag} dv`, shape, b.down(dv, v.length), want.dv, tolerance);
        // At T = 1 the exact dq and dk are 0 (p = 1, so dP = D): what a rounded run gives there is its absolute
        // error, which a relative tolerance does not bound; fp32 checks them.
        if (T === 1 && precision !== 'fp32') return;
        record(`attnBwd${tag} dq`, shape, b.down(dq, q.length), want.dq, tolerance);
        record(`attnBwd${tag} dk`, shape, b.down(dk, k.length), want.dk, tolerance);
      });
  device.setPrecision('fp32');
  for (const [rows, d, V] of full
    ? [
        [1, 8, 17],
        [37, 19, 53],
        [131, 5, 71_001],
        [256, 128, 8192],
      ]
    : [
        [1, 8, 17],
        [37, 19, 53],
        [31, 5, 5003],
      ])
    run('linearXent', (b) => {
      const h = normal(rows * d);
      const w = normal(V * d, 0.5);
      const targets = ints(rows, V);
      const [loss, dh, dw, lossOnly] = [b.out(rows), b.out(rows * d), b.out(V * d), b.out(rows)];
      const [ph, pw, pt] = [b.up(h), b.up(w), b.up(targets)];
      device.linearXent(ph, pw, pt, loss, dh, dw, rows, d, V, true);
      device.linearXent(ph, pw, pt, lossOnly, 0, 0, rows, d, V, false);
      const want = reference.linearCrossEntropy(h, w, targets, rows, d, V);
      const shape = `rows${rows} d${d} V${V}`;
      record('linearXent loss', shape, b.down(loss, rows), want.loss, fp32);
      record('linearXent loss (no gradients)', shape, b.down(lossOnly, rows), want.loss, fp32);
      record('linearXent dh', shape, b.down(dh, rows * d), want.dh, fp32);
      record('linearXent dw', shape, b.down(dw, V * d), want.dw, fp32);
    });
  run('adamw', (b) => {
    // One launch over tensors of odd sizes, each with its own weight decay; the last in place.
    const scalars = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, c1: 0.19, c2: 0.0975, gscale: 0.5 };
    const sizes = full ? [1, 1003, 4_194_307] : [1, 1003, 70_001];
    const tensors = sizes.map((n, i) => {
      const [p, g, m] = [normal(n), normal(n), normal(n, 0.1)];
      const v = normal(n, 0.1).map(Math.abs);
      const [pp, pm, pv] = [b.up(p), b.up(m), b.up(v)];
      const inPlace = i === sizes.length - 1;
      const outs = inPlace ? { pOut: pp, mOut: pm, vOut: pv } : { pOut: b.out(n), mOut: b.out(n), vOut: b.out(n) };
      return {
        host: { p, g, m, v, wd: i === 0 ? 0 : 0.1 },
        args: { p: pp, g: b.up(g), m: pm, v: pv, ...outs, n, wd: i === 0 ? 0 : 0.1 },
      };
    });
    device.adamw(
      tensors.map((t) => t.args),
      scalars.lr,
      scalars.beta1,
      scalars.beta2,
      scalars.eps,
      scalars.c1,
      scalars.c2,
      scalars.gscale,
    );
    for (const { host, args } of tensors) {
      const want = reference.adamw(host.p, host.g, host.m, host.v, { ...scalars, wd: host.wd });
      const shape = `n${args.n} wd${args.wd}${args.pOut === args.p ? ' in place' : ''}`;
      record('adamw p', shape, b.down(args.pOut, args.n), want.p, fp32);
      record('adamw m', shape, b.down(args.mOut, args.n), want.m, fp32);
      record('adamw v', shape, b.down(args.vOut, args.n), want.v, fp32);
    }
  });
  return checks;
}
