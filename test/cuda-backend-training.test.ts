// The cuda backend over the host device (kernels/cuda/host-device.ts: the native CPU kernels behind the
// Device interface) against the wasm path: a training step, an evaluation and generation. The host device
// runs the same native calls with the same arguments as the wasm path's kernels, so a training step and an
// evaluation must match BIT FOR BIT; generation (the tfjs path with a KV cache on both) gives the same
// greedy tokens, with logits that may differ in the last bits (exp in the softmax is not correctly rounded).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { cpuFallbackCounts, registerCudaBackend } from '../kernels/cuda/backend.js';
import { HostDevice } from '../kernels/cuda/host-device.js';
import { fusedKernelsActive } from '../kernels/native-kernels.js';
import { generate } from '../lm/generate.js';
import { forward, initParams, type Params } from '../lm/model.js';
import type { ModelConfig } from '../lm/model-config.js';
import { Rng } from '../lm/rng.js';
import { evaluate } from '../train/evaluate.js';
import { AdamW } from '../train/optimizer.js';
import { trainStep } from '../train/step.js';
import { nativeTestSkip } from './native-addon.js';

const skip = nativeTestSkip();
const SEED = Number(process.env.RINGLET_TEST_SEED ?? Date.now() % 1_000_000);

// The micro preset's shape at a test's size: vocab 256, context 16, grouped-query attention.
const CONFIG: ModelConfig = {
  vocab: 256,
  d_model: 32,
  n_layers: 2,
  n_heads: 4,
  n_kv_heads: 2,
  ffn_hidden: 88,
  context: 16,
  rope_theta: 10000,
  norm_eps: 1e-5,
};

function batchOf(rng: Rng, B: number) {
  const n = B * CONFIG.context;
  return {
    inputs: Int32Array.from({ length: n }, () => rng.int(CONFIG.vocab)),
    targets: Int32Array.from({ length: n }, () => rng.int(CONFIG.vocab)),
    batch: B,
    context: CONFIG.context,
  };
}

async function use(backend: 'wasm' | 'cuda'): Promise<void> {
  if (backend === 'wasm') await setupBackend('wasm');
  else {
    registerCudaBackend(new HostDevice());
    assert.ok(await tf.setBackend('cuda'));
  }
  assert.equal(tf.getBackend(), backend);
  assert.ok(fusedKernelsActive(), `the fused kernels run on ${backend}`);
}

const snapshot = (params: Params) => new Map([...params].map(([n, v]) => [n, Float32Array.from(v.dataSync())]));

/** Three steps of two micro-batches with clipping: losses, norms, weights and both moments. */
function train() {
  const params = initParams(CONFIG, 7);
  const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(SEED);
  const steps = [0, 1, 2].map(() => trainStep(params, CONFIG, optimizer, [batchOf(rng, 2), batchOf(rng, 2)], 3e-3, 0.5));
  const result = { steps, weights: snapshot(params), moments: snapshot(optimizer.moments()) };
  tf.dispose([...params.values(), ...optimizer.moments().values()]);
  return result;
}

function evaluation(): number {
  const params = initParams(CONFIG, 9);
  const windows = batchOf(new Rng(SEED + 1), 5);
  const loss = evaluate(params, CONFIG, windows, 2, new Uint32Array(CONFIG.vocab).fill(1)).loss;
  tf.dispose([...params.values()]);
  return loss;
}

async function generation(): Promise<{ tokens: number[]; logits: Float32Array }> {
  const previous = process.env.RINGLET_DECODER;
  process.env.RINGLET_DECODER = '0'; // wasm's tfjs path, as cuda always takes
  try {
    // Weights of a larger scale than initParams' so that the logits are far from uniform.
    const params = initParams(CONFIG, 11);
    for (const p of params.values()) if (p.shape.length === 2) p.assign(tf.tidy(() => p.mul(20)));
    const prompt = [3, 1, 4, 1, 5, 9, 2, 6];
    const { tokens } = await generate(params, CONFIG, prompt, {
      maxTokens: 12,
      seed: 1,
      stopToken: -1,
      temperature: 0,
      topK: 0,
      topP: 1,
      repetitionPenalty: 1,
    });
    const logits = tf.tidy(() => forward(params, CONFIG, tf.tensor2d([prompt], [1, prompt.length], 'int32')).dataSync());
    tf.dispose([...params.values()]);
    return { tokens, logits: Float32Array.from(logits) };
  } finally {
    if (previous === undefined) delete process.env.RINGLET_DECODER;
    else process.env.RINGLET_DECODER = previous;
  }
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function assertBitwise(actual: Float32Array, expected: Float32Array, what: string): void {
  const a = bits(actual);
  const e = bits(expected);
  const first = e.findIndex((x, i) => a[i] !== x);
  assert.equal(a.length, e.length, `${what}: length`);
  assert.equal(first, -1, `${what}: element ${first} is ${actual[first]} on cuda, ${expected[first]} on wasm (seed ${SEED})`);
}

test('a training step, an evaluation and generation on cuda (host device) match the wasm path', { skip }, async (t) => {
  await use('wasm');
  const wasm = { train: train(), evaluation: evaluation(), generation: await generation() };
  await use('cuda');
  const cuda = { train: train(), evaluation: evaluation(), generation: await generation() };

  await t.test('training: loss, grad norm, every parameter and both moments, bit for bit', () => {
    wasm.train.steps.forEach((w, i) => {
      const c = cuda.train.steps[i];
      assert.equal(c.loss, w.loss, `step ${i} loss (seed ${SEED})`);
      assert.equal(c.gradNorm, w.gradNorm, `step ${i} grad norm (seed ${SEED})`);
    });
    assert.ok(
      wasm.train.steps.some((s) => s.gradNorm > 0.5),
      'clipping was exercised',
    );
    for (const [name, w] of wasm.train.weights) assertBitwise(cuda.train.weights.get(name)!, w, `weight ${name}`);
    for (const [name, m] of wasm.train.moments) assertBitwise(cuda.train.moments.get(name)!, m, `moment ${name}`);
  });

  await t.test('evaluation loss, bit for bit', () => {
    assert.equal(cuda.evaluation, wasm.evaluation, `(seed ${SEED})`);
  });

  await t.test('generation: the same greedy tokens, logits within 1e-5', () => {
    assert.deepEqual(cuda.generation.tokens, wasm.generation.tokens);
    const { logits } = wasm.generation;
    let worst = 0;
    for (let i = 0; i < logits.length; i++) worst = Math.max(worst, Math.abs(cuda.generation.logits[i] - logits[i]));
    assert.ok(worst < 1e-5 * Math.max(...logits.map(Math.abs)), `largest logit difference ${worst}`);
  });

  await t.test('nothing ran on the CPU fallback', () => {
    assert.deepEqual(cpuFallbackCounts(), {});
  });
});
