// kernels/lean-gradients.ts against tfjs's own Engine.gradients: bit-identical gradients on the model's
// loss, on the fused path and on the plain one, with a lower peak of live tensor bytes and nothing leaked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { initParams, lossOn } from '../lm/model.js';
import { presetConfig } from '../lm/model-config.js';

type Gradients = (
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
  allow?: boolean,
) => { value: tf.Tensor; grads: tf.Tensor[] };
const engine = tf.engine() as unknown as { gradients: Gradients; runKernelFunc: (...args: unknown[]) => unknown };

/** Runs fn, returning its result and the largest tf.memory().numBytes seen after any kernel ran. */
function withPeakBytes<T>(fn: () => T): { result: T; peak: number } {
  const original = engine.runKernelFunc;
  let peak = tf.memory().numBytes;
  engine.runKernelFunc = function (this: unknown, ...args: unknown[]) {
    const out = original.apply(this, args);
    peak = Math.max(peak, tf.memory().numBytes);
    return out;
  };
  try {
    return { result: fn(), peak };
  } finally {
    engine.runKernelFunc = original;
  }
}

for (const fused of ['1', '0']) {
  test(`lean gradients equal tfjs's bit for bit, with a lower peak (RINGLET_FUSED=${fused})`, async () => {
    process.env.RINGLET_FUSED = fused;
    try {
      await setupBackend('wasm');
      const model = { ...presetConfig('nano'), n_layers: 2, context: 32 };
      const params = initParams(model, 3);
      const vars = [...params.values()];
      const tokens = (shift: number) =>
        tf.tensor2d(
          Array.from({ length: 4 * 32 }, (_, i) => (i * 31 + shift) % model.vocab),
          [4, 32],
          'int32',
        );
      const inputs = tokens(0);
      const targets = tokens(1);
      const loss = () => lossOn(params, model, inputs, targets);
      const stock = Object.getPrototypeOf(engine).gradients as Gradients;

      const tensorsBefore = tf.memory().numTensors;
      const lean = withPeakBytes(() => engine.gradients(loss, vars, undefined, true));
      assert.notEqual(engine.gradients, stock, 'setupBackend installed the lean gradients');
      const reference = withPeakBytes(() => stock.call(engine, loss, vars, undefined, true));

      assert.equal(lean.result.value.dataSync()[0], reference.result.value.dataSync()[0]);
      lean.result.grads.forEach((g, i) => {
        const expected = reference.result.grads[i].dataSync();
        assert.deepEqual(g.dataSync(), expected, `gradient of ${[...params.keys()][i]}`);
      });
      assert.ok(lean.peak < 0.8 * reference.peak, `peak of live tensor bytes: lean ${lean.peak}, stock ${reference.peak}`);
      tf.dispose([lean.result.value, ...lean.result.grads, reference.result.value, ...reference.result.grads]);
      assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor outlives the gradients');
      tf.dispose([inputs, targets, ...vars]);
    } finally {
      delete process.env.RINGLET_FUSED;
    }
  });
}

test('a gradient of a gradient still works (the stock code runs nested gradients)', async () => {
  await setupBackend('wasm');
  const x = tf.scalar(3);
  const d2 = tf.grad((v: tf.Tensor) => tf.grad((u: tf.Tensor) => u.mul(u).mul(u))(v))(x); // d²(x³)/dx² = 6x
  assert.equal(d2.dataSync()[0], 18);
});
