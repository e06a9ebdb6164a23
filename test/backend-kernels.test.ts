// The wasm kernels Ringlet adds or replaces (UnsortedSegmentSum, BatchMatMul) agree with the cpu backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { setupBackend } from '../kernels/backend.js';
import { choosePlan } from '../kernels/wasm-batch-matmul.js';
import { randomInts, randomValues, relativeError, runOn } from './backend-compare.js';

async function agree(label: string, fn: () => tf.Tensor[], tolerance: number): Promise<void> {
  const expected = await runOn('cpu', fn);
  const actual = await runOn('wasm', fn);
  expected.forEach((e, i) => {
    const err = relativeError(actual[i], e);
    assert.ok(err < tolerance, `${label} output ${i}: relative error ${err} >= ${tolerance}`);
  });
}

test('UnsortedSegmentSum on wasm matches cpu: repeated, negative and unused ids, batch 1', async () => {
  const cases = [
    { xShape: [12, 3, 4], ids: [0, 2, 2, 5, 0, 0, 1, 2, 5, 5, -1, 3], numSegments: 7 },
    { xShape: [1, 5], ids: [0], numSegments: 1 },
    { xShape: [1, 5], ids: [3], numSegments: 4 },
    { xShape: [50, 16], ids: Array.from(randomInts(50, 9, 3)), numSegments: 9 },
  ];
  for (const [i, c] of cases.entries()) {
    const x = randomValues(tf.util.sizeFromShape(c.xShape), 10 + i);
    await agree(
      `case ${i}`,
      () => [tf.unsortedSegmentSum(tf.tensor(x, c.xShape), tf.tensor(c.ids, undefined, 'int32'), c.numSegments)],
      1e-6,
    );
  }
  await setupBackend('wasm');
  // Rank-2 ids (TensorFlow semantics; the cpu kernel mis-broadcasts these, so values are spelled out).
  // tf.unsortedSegmentSum's signature says rank-1 ids; the op itself passes any rank through.
  const ids2d = tf.tensor2d(
    [
      [1, 0, 1],
      [2, 1, -1],
    ],
    [2, 3],
    'int32',
  ) as tf.Tensor as tf.Tensor1D;
  const rank2 = tf.unsortedSegmentSum(tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 3, 2]), ids2d, 3);
  assert.deepEqual(rank2.arraySync(), [
    [3, 4],
    [1 + 5 + 9, 2 + 6 + 10],
    [7, 8],
  ]);
  const ints = tf.unsortedSegmentSum(
    tf.tensor2d(
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      [3, 2],
      'int32',
    ),
    [1, 1, 0],
    2,
  );
  assert.equal(ints.dtype, 'int32');
  assert.deepEqual(ints.arraySync(), [
    [5, 6],
    [4, 6],
  ]);
});

test('UnsortedSegmentSum on wasm rejects a segment id >= numSegments', async () => {
  await setupBackend('wasm');
  assert.throws(() => tf.unsortedSegmentSum(tf.ones([3, 2]), [0, 4, 1], 3), /segment id 4 at row 1 is >= numSegments 3/);
});

test('gradient of a gather-based embedding on wasm equals cpu', async () => {
  const table = randomValues(20 * 6, 1);
  const ids = [3, 7, 3, 0, 19, 7, 7, 2];
  const weights = randomValues(ids.length * 6, 2);
  await agree(
    'd embedding',
    () => {
      const lookup = (e: tf.Tensor) =>
        tf.sum(tf.mul(tf.gather(e, tf.tensor2d(ids, [2, 4], 'int32')), tf.tensor(weights, [2, 4, 6])));
      return [tf.grad(lookup)(tf.tensor2d(table, [20, 6]))];
    },
    1e-6,
  );
});

// [outer dims of a, outer dims of b, m, k, n]: each plan of the fast kernel, with broadcasting.
const MATMUL_SHAPES: [number[], number[], number, number, number][] = [
  [[], [], 64, 48, 40], // 2-D: stock when untransposed, else fold
  [[3], [], 20, 24, 16], // batched a, plain b: fold
  [[2, 3], [1], 20, 24, 16], // rank-4 a, b with batch 1: fold
  [[4], [4], 32, 24, 16], // both batched: perBatch
  [[2, 3], [2, 3], 32, 24, 16], // rank 4: perBatch over 6
  [[1], [4], 32, 24, 16], // a broadcast over b's batch: perBatch with shared a
  [[], [4], 32, 24, 16], // plain a, batched b: perBatch with shared a
  [[2], [2], 3, 4, 5], // tiny: stock
  [[2, 1], [1, 3], 32, 24, 16], // outer dims broadcast both ways: stock
];

test('each BatchMatMul plan is exercised by the shapes below', () => {
  const plans = new Set(MATMUL_SHAPES.map(([oa, ob, m, k, n]) => choosePlan(oa, ob, true, m, k, n)));
  assert.deepEqual([...plans].sort(), ['fold', 'perBatch', 'stock']);
  assert.equal(choosePlan([], [], false, 64, 48, 40), 'stock');
  assert.equal(choosePlan([], [], true, 64, 48, 40), 'fold');
});

test('BatchMatMul on wasm matches cpu in all four transpose combos', async () => {
  for (const [outerA, outerB, m, k, n] of MATMUL_SHAPES) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        const aShape = [...outerA, ...(transposeA ? [k, m] : [m, k])];
        const bShape = [...outerB, ...(transposeB ? [n, k] : [k, n])];
        const a = randomValues(tf.util.sizeFromShape(aShape), 5);
        const b = randomValues(tf.util.sizeFromShape(bShape), 6);
        const run = () => [tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), transposeA, transposeB)];
        const [expected] = await runOn('cpu', run);
        await setupBackend('wasm');
        const out = tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), transposeA, transposeB);
        const label = `a [${aShape}] b [${bShape}] tA=${transposeA} tB=${transposeB}`;
        const broadcastOuter = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
        assert.deepEqual(out.shape, [...broadcastOuter, m, n], label);
        const err = relativeError(out.dataSync(), expected);
        assert.ok(err < 1e-5, `${label}: relative error ${err}`);
        out.dispose();
      }
    }
  }
});

test('BatchMatMul fast path frees its temporaries and keeps matMul gradients right', async () => {
  await setupBackend('wasm');
  const backend = tf.backend() as BackendWasm;
  const a = tf.tensor(randomValues(4 * 32 * 24, 7), [4, 32, 24]);
  const b = tf.tensor(randomValues(4 * 16 * 24, 8), [4, 16, 24]);
  const before = backend.dataIdMap.numDataIds();
  tf.matMul(a, b, false, true).dispose();
  tf.matMul(a, a, true, false).dispose();
  assert.equal(backend.dataIdMap.numDataIds(), before);

  // tfjs 4.22's matMul gradient does not sum over broadcast batch dims ([3,20,24]x[24,40] fails
  // on every backend), so models reshape activations to 2-D before multiplying by weights.
  for (const [xShape, wShape] of [
    [
      [60, 24],
      [24, 40],
    ],
    [
      [3, 20, 24],
      [3, 24, 40],
    ],
  ]) {
    const x = randomValues(tf.util.sizeFromShape(xShape), 9);
    const w = randomValues(tf.util.sizeFromShape(wShape), 10);
    await agree(
      `matMul grads [${xShape}]x[${wShape}]`,
      () => {
        const f = (xt: tf.Tensor, wt: tf.Tensor) => tf.sum(tf.square(tf.matMul(xt, wt)));
        return tf.grads(f)([tf.tensor(x, xShape), tf.tensor(w, wShape)]);
      },
      1e-5,
    );
  }
});
