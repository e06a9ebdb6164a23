// Generation's decoder (lm/decode.ts) computes lm/model.ts's function: its logits against the TensorFlow.js
// forward pass on the whole sequence without a cache (plain tfjs ops, RINGLET_FUSED=0) for a prompt and
// then single steps, with grouped-query and multi-head attention and across the restart generation makes
// when the context is full; greedy generation gives the same tokens on both paths of lm/generate.ts; and
// both paths keep the generator's contract (abort, early return, first-token time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { decoderFor, type Decoder } from '../lm/decode.js';
import { generate, generateTokens, type GenerateOptions } from '../lm/generate.js';
import { forward, type Params } from '../lm/model.js';
import { parameterShapes, type ModelConfig } from '../lm/model-config.js';
import { fusedKernelsActive } from '../lm/ops.js';
import { Rng } from '../lm/rng.js';
import { nativeTestSkip } from './native-addon.js';

const skip = nativeTestSkip();
const SEED = Number(process.env.RINGLET_TEST_SEED ?? Date.now() % 1_000_000);
/** Largest |decoder − reference| over the reference logits' RMS. */
const TOL = 1e-4;

const base = { vocab: 53, n_layers: 2, context: 24, rope_theta: 10000, norm_eps: 1e-5 };
const GQA: ModelConfig = { ...base, d_model: 48, n_heads: 6, n_kv_heads: 2, ffn_hidden: 64 }; // head size 8, 3 heads per kv head
const MHA: ModelConfig = { ...base, d_model: 40, n_heads: 4, n_kv_heads: 4, ffn_hidden: 56 }; // head size 10

/**
 * Weights at a scale where attention is far from uniform and the logits spread (N(0, 1/fan_in) matrices,
 * gains near 1), so a wrong position, mask or head shows; initParams' 0.02 would make every score ~0.
 */
function randomParams(c: ModelConfig, seed: number): Params {
  const rng = new Rng(seed);
  const params: Params = new Map();
  for (const [name, shape] of parameterShapes(c)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const std = shape.length === 1 ? 0.1 : name === 'tok_embedding' ? 1 : 1 / Math.sqrt(shape[0]);
    for (let i = 0; i < size; i++) data[i] = (shape.length === 1 ? 1 : 0) + rng.normal() * std;
    params.set(name, tf.variable(tf.tensor(data, shape), true));
  }
  return params;
}

function withEnv<T>(name: string, value: string, fn: () => T): T {
  const before = process.env[name];
  process.env[name] = value;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}

/** The last position's logits of lm/model.ts `forward` over `tokens`, on plain tfjs ops. */
function referenceLogits(params: Params, c: ModelConfig, tokens: number[]): Float32Array {
  return withEnv('RINGLET_FUSED', '0', () => {
    assert.equal(fusedKernelsActive(), false);
    const all = tf.tidy(() => forward(params, c, tf.tensor2d(tokens, [1, tokens.length], 'int32')));
    const values = all.dataSync() as Float32Array;
    all.dispose();
    return values.slice((tokens.length - 1) * c.vocab);
  });
}

function assertClose(label: string, actual: Float32Array, expected: Float32Array): void {
  let worst = 0;
  let squares = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
    squares += expected[i] ** 2;
  }
  const error = worst / Math.sqrt(squares / expected.length);
  assert.ok(error < TOL, `${label}: max error ${error.toExponential(2)} of the logits' RMS >= ${TOL} (seed ${SEED})`);
}

function decoderOf(params: Params, c: ModelConfig): Decoder {
  const decoder = decoderFor(params, c);
  assert.ok(decoder, 'the decoder is available with the native addon');
  return decoder;
}

for (const [name, c] of [
  ['grouped-query', GQA],
  ['multi-head', MHA],
] as const)
  test(
    `decoder logits match the TensorFlow.js forward pass (${name} attention): a prompt, then single steps`,
    { skip },
    async () => {
      await setupBackend('wasm');
      const params = randomParams(c, SEED);
      const rng = new Rng(SEED + 1);
      const tokens = Array.from({ length: c.context }, () => rng.int(c.vocab));
      const decoder = decoderOf(params, c);
      const cache = decoder.newCache();
      const prompt = 9;
      assertClose(
        `prompt of ${prompt}`,
        decoder.forward(cache, tokens.slice(0, prompt)),
        referenceLogits(params, c, tokens.slice(0, prompt)),
      );
      for (let t = prompt; t < c.context; t++)
        assertClose(
          `step at position ${t}`,
          decoder.forward(cache, [tokens[t]]),
          referenceLogits(params, c, tokens.slice(0, t + 1)),
        );
      assert.equal(cache.length, c.context);
      assert.throws(() => decoder.forward(cache, [1]), /do not fit the context/);
      tf.dispose([...params.values()]);
    },
  );

test('decoder logits match across the restart generation makes when the context is full', { skip }, async () => {
  // As lm/generate.ts: once the cache is full, empty it and run the newest half of the context as a batch.
  await setupBackend('wasm');
  const c = GQA;
  const params = randomParams(c, SEED + 2);
  const rng = new Rng(SEED + 3);
  const decoder = decoderOf(params, c);
  const cache = decoder.newCache();
  const context = Array.from({ length: 5 }, () => rng.int(c.vocab));
  let pending = context.slice();
  let restarts = 0;
  for (let step = 0; step < 2 * c.context; step++) {
    if (cache.length + pending.length > c.context) {
      cache.length = 0;
      pending = context.slice(context.length - c.context / 2);
      restarts++;
    }
    const window = context.slice(context.length - (cache.length + pending.length));
    assertClose(`step ${step} (restart ${restarts})`, decoder.forward(cache, pending), referenceLogits(params, c, window));
    context.push(rng.int(c.vocab));
    pending = [context[context.length - 1]];
  }
  assert.ok(restarts >= 2, `${restarts} restarts`);
  tf.dispose([...params.values()]);
});

test('the decoder is built once per parameters and again after a variable is assigned', { skip }, async () => {
  await setupBackend('wasm');
  const c = MHA;
  const params = randomParams(c, SEED + 4);
  const first = decoderOf(params, c);
  assert.equal(decoderOf(params, c), first, 'the same parameters: the same decoder, no second copy');
  const emb = params.get('tok_embedding')!;
  emb.assign(tf.tidy(() => emb.mul(2)));
  const second = decoderOf(params, c);
  assert.notEqual(second, first, 'an assigned variable: a new copy of the weights');
  assertClose('after the assign', second.forward(second.newCache(), [3, 1, 4]), referenceLogits(params, c, [3, 1, 4]));
  assert.throws(() => second.forward(second.newCache(), [c.vocab]), /not in the vocabulary/);
  tf.dispose([...params.values()]);
});

/** Greedy generation on one path: RINGLET_DECODER=0 forces the TensorFlow.js one. Counts the decoder's calls. */
async function generateOn(path: 'decoder' | 'tfjs', params: Params, c: ModelConfig, prompt: number[], o: GenerateOptions) {
  const decoder = decoderOf(params, c);
  const forwardOf = decoder.forward;
  let calls = 0;
  decoder.forward = (...args) => (calls++, forwardOf.apply(decoder, args));
  const before = process.env.RINGLET_DECODER;
  process.env.RINGLET_DECODER = path === 'tfjs' ? '0' : '1';
  try {
    return { ...(await generate(params, c, prompt, o)), decoderCalls: calls };
  } finally {
    decoder.forward = forwardOf;
    if (before === undefined) delete process.env.RINGLET_DECODER;
    else process.env.RINGLET_DECODER = before;
  }
}

const greedy = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1, maxTokens: 64, stopToken: 0 };

for (const backend of ['wasm', 'cpu'] as const)
  test(
    `greedy generation gives the same tokens on the decoder and the TensorFlow.js path (${backend}, restarts included)`,
    { skip },
    async () => {
      await setupBackend(backend);
      const c = GQA;
      // A fixed model (a near-tie between two tokens would make the paths part on rounding, so not a fresh
      // one each run) whose greedy path does not stop at once: the stop token's logit is pushed down.
      const params = randomParams(c, 12345);
      const emb = params.get('tok_embedding')!;
      emb.assign(tf.tidy(() => emb.mul(tf.tensor2d([-1, ...Array(c.vocab - 1).fill(1)], [c.vocab, 1]))));
      const prompt = [5, 17, 2, 40];
      const logged: Array<Array<[number, number]>> = [];
      const o = { ...greedy, topLogprobs: 3, onToken: (t: { top: Array<[number, number]> }) => logged.at(-1)!.push(...t.top) };
      logged.push([]);
      const tfjs = await generateOn('tfjs', params, c, prompt, o);
      logged.push([]);
      const native = await generateOn('decoder', params, c, prompt, o);
      assert.equal(tfjs.decoderCalls, 0, 'RINGLET_DECODER=0 runs the TensorFlow.js path');
      assert.equal(native.decoderCalls, native.tokens.length, 'the decoder ran every step');
      assert.equal(native.tokens.length, 64);
      assert.deepEqual(native.tokens, tfjs.tokens);
      assert.equal(native.stopped, 'max_tokens');
      // The reported log-probabilities of the top alternatives agree too.
      assert.equal(logged[1].length, logged[0].length);
      logged[1].forEach(([id, lp], i) => {
        assert.equal(id, logged[0][i][0]);
        assert.ok(Math.abs(lp - logged[0][i][1]) < 1e-3, `logprob ${lp} vs ${logged[0][i][1]}`);
      });
      tf.dispose([...params.values()]);
      await setupBackend('wasm');
    },
  );

for (const path of ['decoder', 'tfjs'] as const)
  // The TensorFlow.js path is the fallback without the addon: it runs everywhere.
  test(
    `the ${path} path keeps the generator's contract: abort, early return, first-token time`,
    { skip: path === 'decoder' && skip },
    async () => {
      await setupBackend('wasm');
      const c = MHA;
      const params = randomParams(c, SEED + 6);
      const before = process.env.RINGLET_DECODER;
      process.env.RINGLET_DECODER = path === 'tfjs' ? '0' : '1';
      try {
        const sampled = { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 3, maxTokens: 40, stopToken: -1 };
        const tensors = tf.memory().numTensors;
        const full = await generate(params, c, [1, 2, 3], sampled);
        assert.equal(full.tokens.length, 40);
        assert.ok(full.firstTokenSeconds !== null && full.firstTokenSeconds <= full.seconds);
        assert.equal(tf.memory().numTensors, tensors, 'the cache is freed');

        const controller = new AbortController();
        let seen = 0;
        const aborted = await generate(params, c, [1, 2, 3], {
          ...sampled,
          signal: controller.signal,
          onToken: () => ++seen === 5 && controller.abort(),
        });
        assert.equal(aborted.stopped, 'cancelled');
        assert.deepEqual(aborted.tokens, full.tokens.slice(0, 5), 'the same seed samples the same tokens until the abort');

        const stream = generateTokens(params, c, [1, 2, 3], sampled);
        for await (const token of stream) if (token.id === full.tokens[2]) break; // return() from the loop
        assert.equal(tf.memory().numTensors, tensors, 'a consumer that stops iterating frees the cache');
      } finally {
        if (before === undefined) delete process.env.RINGLET_DECODER;
        else process.env.RINGLET_DECODER = before;
        tf.dispose([...params.values()]);
      }
    },
  );
