// Forward and backward of a tiny 2-layer Llama-style transformer, built from the plain tf ops the
// model uses, give the same loss and gradients on wasm (with Ringlet's kernels) as on cpu.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { randomInts, randomValues, relativeError, runOn } from './backend-compare.js';

// T * headDim is large enough that attention's batched matmuls take the per-batch fast path.
const VOCAB = 40,
  DIM = 32,
  HEADS = 2,
  HEAD_DIM = 16,
  HIDDEN = 64,
  LAYERS = 2,
  BATCH = 2,
  T = 32;

function parameterShapes(): Record<string, number[]> {
  const shapes: Record<string, number[]> = { embed: [VOCAB, DIM], finalNorm: [DIM] };
  for (let l = 0; l < LAYERS; l++) {
    Object.assign(shapes, {
      [`l${l}.attnNorm`]: [DIM],
      [`l${l}.wq`]: [DIM, DIM],
      [`l${l}.wk`]: [DIM, DIM],
      [`l${l}.wv`]: [DIM, DIM],
      [`l${l}.wo`]: [DIM, DIM],
      [`l${l}.mlpNorm`]: [DIM],
      [`l${l}.wGate`]: [DIM, HIDDEN],
      [`l${l}.wUp`]: [DIM, HIDDEN],
      [`l${l}.wDown`]: [HIDDEN, DIM],
    });
  }
  return shapes;
}

function rmsNorm(x: tf.Tensor, gain: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-5))), gain);
}

// Rotary embedding on [B,H,T,hd]: one half via tf.split, the other via tf.slice, to use both.
function rope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, useSlice: boolean): tf.Tensor {
  const half = HEAD_DIM / 2;
  const [x1, x2] = useSlice
    ? [tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, half]), tf.slice(x, [0, 0, 0, half], [-1, -1, -1, half])]
    : tf.split(x, 2, -1);
  return tf.concat([tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x1, sin), tf.mul(x2, cos))], -1);
}

function toHeads(x2d: tf.Tensor): tf.Tensor {
  return tf.transpose(tf.reshape(x2d, [BATCH, T, HEADS, HEAD_DIM]), [0, 2, 1, 3]);
}

function loss(p: Record<string, tf.Tensor>, tokens: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  const positions = tf.range(0, T).reshape([T, 1]);
  const frequencies = tf.pow(10000, tf.div(tf.range(0, HEAD_DIM / 2), -HEAD_DIM / 2)).reshape([1, HEAD_DIM / 2]);
  const angles = tf.mul(positions, frequencies);
  const [cos, sin] = [tf.cos(angles), tf.sin(angles)];
  const causal = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
  const additive = tf.where(tf.greater(causal, 0), tf.zeros([T, T]), tf.fill([T, T], -1e9));
  const mask = tf.tile(additive.reshape([1, 1, T, T]), [BATCH, 1, 1, 1]);

  let x = tf.reshape(tf.gather(p.embed, tokens), [BATCH * T, DIM]);
  for (let l = 0; l < LAYERS; l++) {
    const h = rmsNorm(x, p[`l${l}.attnNorm`]);
    const q = rope(toHeads(tf.matMul(h, p[`l${l}.wq`])), cos, sin, false);
    const k = rope(toHeads(tf.matMul(h, p[`l${l}.wk`])), cos, sin, true);
    const v = toHeads(tf.matMul(h, p[`l${l}.wv`]));
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(HEAD_DIM)), mask);
    const attended = tf.matMul(tf.softmax(scores), v);
    const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [BATCH * T, DIM]);
    x = tf.add(x, tf.matMul(merged, p[`l${l}.wo`]));
    const m = rmsNorm(x, p[`l${l}.mlpNorm`]);
    const gate = tf.matMul(m, p[`l${l}.wGate`]);
    const swiglu = tf.mul(tf.mul(gate, tf.sigmoid(gate)), tf.matMul(m, p[`l${l}.wUp`]));
    x = tf.add(x, tf.matMul(swiglu, p[`l${l}.wDown`]));
  }
  const logits = tf.matMul(rmsNorm(x, p.finalNorm), p.embed, false, true); // tied output head
  const logProbs = tf.logSoftmax(logits);
  const picked = tf.sum(tf.mul(tf.oneHot(tf.reshape(targets, [BATCH * T]), VOCAB), logProbs), -1);
  return tf.neg(tf.mean(picked));
}

test('2-layer transformer loss and all gradients on wasm match cpu (relative error < 1e-4)', async () => {
  const shapes = parameterShapes();
  const names = Object.keys(shapes);
  const initial = names.map((name, i) =>
    name.endsWith('Norm')
      ? new Float32Array(shapes[name][0]).fill(1)
      : randomValues(tf.util.sizeFromShape(shapes[name]), 100 + i).map((v) => v * 0.2),
  );
  const tokenIds = randomInts(BATCH * T, VOCAB, 7);
  const targetIds = randomInts(BATCH * T, VOCAB, 8);

  const run = () => {
    const tokens = tf.tensor2d(tokenIds, [BATCH, T], 'int32');
    const targets = tf.tensor2d(targetIds, [BATCH, T], 'int32');
    const lossOf = (...values: tf.Tensor[]) => loss(Object.fromEntries(names.map((n, i) => [n, values[i]])), tokens, targets);
    const { value, grads } = tf.valueAndGrads(lossOf)(names.map((n, i) => tf.tensor(initial[i], shapes[n])));
    return [value, ...grads];
  };
  const expected = await runOn('cpu', run);
  const actual = await runOn('wasm', run);

  assert.ok(Math.abs(expected[0][0] - Math.log(VOCAB)) < 1, `loss ${expected[0][0]} should be near ln(vocab) at init`);
  assert.ok(relativeError(actual[0], expected[0]) < 1e-4, `loss: wasm ${actual[0][0]} vs cpu ${expected[0][0]}`);
  names.forEach((name, i) => {
    const err = relativeError(actual[i + 1], expected[i + 1]);
    assert.ok(err < 1e-4, `gradient of ${name}: relative error ${err}`);
    assert.ok(
      expected[i + 1].some((g) => g !== 0),
      `gradient of ${name} is all zero`,
    );
  });
});
