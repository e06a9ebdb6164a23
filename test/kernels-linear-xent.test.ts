// The fused output projection + cross-entropy (kernels/native addon.cc LinearXent) against the float64
// reference (kernels/reference.ts), on fresh random inputs (seed printed on failure, RINGLET_TEST_SEED
// replays it), with odd sizes, a single row, and a vocabulary large enough that the rows go through several chunks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative } from '../kernels/native.js';
import { Rng } from '../lm/rng.js';
import { nativeTestSkip } from './native-addon.js';
import { linearCrossEntropy, relativeError } from '../kernels/reference.js';

const native = loadNative();
const skip = nativeTestSkip();
const SEED = Number(process.env.RINGLET_TEST_SEED ?? Date.now() % 1_000_000);

// (rows, d, V): small and odd; one row; V so large that a chunk holds ~59 rows, so 131 rows take three.
for (const [rows, d, V] of [
  [37, 19, 53],
  [1, 8, 17],
  [131, 5, 71_001],
] as const)
  test(`linearXent matches float64: ${rows} rows, d ${d}, vocabulary ${V}`, { skip }, () => {
    const rng = new Rng(SEED + rows);
    const h = Float32Array.from({ length: rows * d }, () => rng.normal());
    const w = Float32Array.from({ length: V * d }, () => rng.normal() * 0.5);
    const targets = Int32Array.from({ length: rows }, () => rng.int(V));
    const ref = linearCrossEntropy(h, w, targets, rows, d, V);
    const loss = new Float32Array(rows);
    const dh = new Float32Array(rows * d);
    const dw = new Float32Array(V * d).fill(Number.NaN); // overwritten, not accumulated into
    native!.linearXent(h, w, targets, loss, dh, dw, rows, d, V, true);
    for (const [name, actual, expected] of [
      ['loss', loss, ref.loss],
      ['dh', dh, ref.dh],
      ['dw', dw, ref.dw],
    ] as const) {
      const e = relativeError(actual, expected);
      assert.ok(e < 1e-5, `${name}: relative error ${e.toExponential(2)} (seed ${SEED})`);
    }
    // Without gradients: the same losses, and the gradient arrays are not needed at all.
    const lossOnly = new Float32Array(rows);
    native!.linearXent(h, w, targets, lossOnly, new Float32Array(0), new Float32Array(0), rows, d, V, false);
    assert.deepEqual(lossOnly, loss);
  });

test('linearXent rejects a target outside the vocabulary and arrays that are too short', { skip }, () => {
  const h = new Float32Array(4);
  const w = new Float32Array(8);
  const none = new Float32Array(0);
  assert.throws(
    () => native!.linearXent(h, w, Int32Array.of(0, 4), new Float32Array(2), none, none, 2, 2, 4, false),
    /target 4 at row 1 is outside the vocabulary \[0, 4\)/,
  );
  assert.throws(
    () => native!.linearXent(h, w, Int32Array.of(0, 1), new Float32Array(2), none, none, 2, 2, 4, true),
    /dh has 0 elements/,
  );
});
