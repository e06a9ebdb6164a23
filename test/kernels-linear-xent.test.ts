// The fused output projection + cross-entropy (kernels/native addon.cc LinearXent) against a float64
// reference, on fresh random inputs (seed printed on failure, RINGLET_TEST_SEED replays it), with odd sizes,
// a single row, and a vocabulary large enough that the rows go through several chunks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative } from '../kernels/native.js';
import { Rng } from '../lm/rng.js';
import { nativeTestSkip } from './native-addon.js';
import { relativeError } from './backend-compare.js';

const native = loadNative();
const skip = nativeTestSkip();
const SEED = Number(process.env.RINGLET_TEST_SEED ?? Date.now() % 1_000_000);

/** Mean loss of softmax(h·wᵀ) against targets, per-row losses, and the mean's gradients, in float64. */
function reference(h: Float32Array, w: Float32Array, targets: Int32Array, rows: number, d: number, V: number) {
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
    const ref = reference(h, w, targets, rows, d, V);
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
