import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { forward, initParams, lossOn, type KvCache } from '../lm/model.js';
import { PRESETS, parameterCount, presetConfig, ModelConfigSchema, type ModelConfig } from '../lm/model-config.js';
import { Rng } from '../lm/rng.js';

before(async () => {
  await setupBackend('wasm');
});

const small = (overrides: Partial<ModelConfig> = {}): ModelConfig => ({
  ...presetConfig('nano'),
  vocab: 97,
  context: 16,
  n_layers: 2,
  ...overrides,
});

function randomTokens(rng: Rng, B: number, T: number, vocab: number): tf.Tensor2D {
  return tf.tensor2d(
    Int32Array.from({ length: B * T }, () => rng.int(vocab)),
    [B, T],
    'int32',
  );
}

test('presets span about 0.5M to about 30M parameters and the count matches the tensors created', () => {
  const totals = Object.values(PRESETS).map((c) => parameterCount(c).total);
  assert.ok(Math.min(...totals) >= 400_000 && Math.min(...totals) <= 600_000, `smallest ${Math.min(...totals)}`);
  assert.ok(Math.max(...totals) >= 25_000_000 && Math.max(...totals) <= 32_000_000, `largest ${Math.max(...totals)}`);
  const c = presetConfig('nano');
  const params = initParams(c, 1);
  const created = [...params.values()].reduce((sum, v) => sum + v.size, 0);
  assert.equal(created, parameterCount(c).total);
  assert.equal(parameterCount(c).nonEmbedding, created - c.vocab * c.d_model);
  params.forEach((v) => v.dispose());
});

test('the loss of a fresh model is close to ln(vocab) and initialisation is seeded', () => {
  const c = small();
  const a = initParams(c, 3);
  const b = initParams(c, 3);
  assert.deepEqual(a.get('layers.1.wo')!.dataSync(), b.get('layers.1.wo')!.dataSync());
  const rng = new Rng(1);
  const loss = lossOn(a, c, randomTokens(rng, 2, 16, c.vocab), randomTokens(rng, 2, 16, c.vocab)).dataSync()[0];
  assert.ok(Math.abs(loss - Math.log(c.vocab)) < 0.1, `loss ${loss} vs ln V ${Math.log(c.vocab)}`);
});

test('residual projections start with a smaller spread than the other matrices', () => {
  const c = small({ n_layers: 4 });
  const params = initParams(c, 5);
  const std = (name: string) => {
    const d = params.get(name)!.dataSync() as Float32Array;
    return Math.sqrt(d.reduce((s, x) => s + x * x, 0) / d.length);
  };
  assert.ok(Math.abs(std('layers.0.wq') - 0.02) < 0.002);
  assert.ok(Math.abs(std('layers.0.w_down') - 0.02 / Math.sqrt(8)) < 0.001);
});

test('attention is causal: changing a later token leaves earlier logits unchanged', () => {
  const c = small();
  const params = initParams(c, 2);
  const tokens = Array.from({ length: 10 }, (_, i) => (i * 7) % c.vocab);
  const changed = tokens.slice();
  changed[7] = (changed[7] + 1) % c.vocab;
  const a = forward(params, c, tf.tensor2d([tokens], [1, 10], 'int32')).arraySync();
  const b = forward(params, c, tf.tensor2d([changed], [1, 10], 'int32')).arraySync();
  for (let t = 0; t < 7; t++) assert.deepEqual(a[t], b[t], `position ${t}`);
  assert.notDeepEqual(a[7], b[7]);
});

for (const kvHeads of [4, 2, 1]) {
  test(`decoding with the KV cache matches a full forward pass (n_kv_heads=${kvHeads})`, () => {
    const c = small({ n_kv_heads: kvHeads });
    const params = initParams(c, 4);
    const tokens = Array.from({ length: 9 }, (_, i) => (i * 13 + 5) % c.vocab);
    const full = forward(params, c, tf.tensor2d([tokens], [1, 9], 'int32')).arraySync();
    const cache: KvCache = { k: [], v: [], length: 0 };
    const prefill = forward(params, c, tf.tensor2d([tokens.slice(0, 6)], [1, 6], 'int32'), { cache, lastOnly: true }).arraySync();
    assertClose(prefill[0], full[5]);
    for (let t = 6; t < 9; t++) {
      const step = forward(params, c, tf.tensor2d([[tokens[t]]], [1, 1], 'int32'), { cache, lastOnly: true }).arraySync();
      assertClose(step[0], full[t]);
    }
    assert.equal(cache.length, 9);
  });
}

test('the model config schema names the field and the rule it breaks', () => {
  const bad = ModelConfigSchema.safeParse({ ...presetConfig('nano'), n_heads: 3 });
  assert.equal(bad.success, false);
  assert.deepEqual(bad.error!.issues[0].path, ['d_model']);
  assert.match(bad.error!.issues[0].message, /divisible by n_heads/);
  const gqa = ModelConfigSchema.safeParse({ ...presetConfig('nano'), n_kv_heads: 3 });
  assert.match(gqa.error!.issues[0].message, /must divide n_heads/);
});

function assertClose(a: number[], b: number[], tol = 1e-4) {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst < tol, `max abs difference ${worst}`);
}
