// The native kernels inside TensorFlow.js: the sgemm BatchMatMul and the fused ops of lm/ops.ts match the
// plain tfjs path on the wasm and cpu backends, a whole training step matches, and without the addon
// Ringlet trains on the plain path and says so once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { fusedKernelsActive } from '../kernels/native-kernels.js';
import { initParams, lossOn } from '../lm/model.js';
import type { ModelConfig } from '../lm/model-config.js';
import { Rng } from '../lm/rng.js';
import { AdamW } from '../train/optimizer.js';
import { trainStep } from '../train/step.js';
import { nativeTestSkip } from './native-addon.js';
import { relativeError, randomValues } from './backend-compare.js';

const skip = nativeTestSkip();
const SEED = Number(process.env.RINGLET_TEST_SEED ?? Date.now() % 1_000_000);

// Odd sizes: head size 6, grouped-query attention (3 heads, 1 kv head), T = 11, vocab 37.
const CONFIG: ModelConfig = {
  vocab: 37,
  d_model: 18,
  n_layers: 2,
  n_heads: 3,
  n_kv_heads: 1,
  ffn_hidden: 40,
  context: 11,
  rope_theta: 10000,
  norm_eps: 1e-5,
};

function withFused<T>(on: boolean, fn: () => T): T {
  const before = process.env.RINGLET_FUSED;
  process.env.RINGLET_FUSED = on ? '1' : '0';
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env.RINGLET_FUSED;
    else process.env.RINGLET_FUSED = before;
  }
}

function batchOf(rng: Rng, B: number) {
  const n = B * CONFIG.context;
  return {
    inputs: Int32Array.from({ length: n }, () => rng.int(CONFIG.vocab)),
    targets: Int32Array.from({ length: n }, () => rng.int(CONFIG.vocab)),
    batch: B,
    context: CONFIG.context,
  };
}

/** Loss and every parameter's gradient, as plain arrays. */
function lossAndGrads(fused: boolean, B: number): { loss: number; grads: Map<string, Float32Array> } {
  return withFused(fused, () => {
    assert.equal(fusedKernelsActive(), fused);
    const params = initParams(CONFIG, 3);
    const b = batchOf(new Rng(SEED), B);
    const { value, grads } = tf.variableGrads(() =>
      lossOn(
        params,
        CONFIG,
        tf.tensor2d(b.inputs, [B, CONFIG.context], 'int32'),
        tf.tensor2d(b.targets, [B, CONFIG.context], 'int32'),
      ),
    );
    const out = new Map([...params].map(([name, v]) => [name, Float32Array.from(grads[v.name].dataSync())]));
    const loss = value.dataSync()[0];
    tf.dispose([value, ...Object.values(grads), ...params.values()]);
    return { loss, grads: out };
  });
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`${backend}: fused loss and gradients match the plain tfjs path (batch 1 and 3)`, { skip }, async () => {
    await setupBackend(backend);
    for (const B of [1, 3]) {
      const plain = lossAndGrads(false, B);
      const fused = lossAndGrads(true, B);
      assert.ok(Math.abs(fused.loss - plain.loss) / plain.loss < 1e-5, `loss ${fused.loss} vs ${plain.loss} (seed ${SEED})`);
      for (const [name, g] of plain.grads) {
        const err = relativeError(fused.grads.get(name)!, g);
        assert.ok(err < 1e-4, `B=${B} grad ${name}: relative error ${err} (seed ${SEED})`);
      }
    }
  });

  test(`${backend}: a whole training step (AdamW included) matches the plain path`, { skip }, async () => {
    await setupBackend(backend);
    const stepOnce = (fused: boolean) =>
      withFused(fused, () => {
        const params = initParams(CONFIG, 5);
        // Adam's first steps move each weight by ~lr·sign(g); with eps 1e-8 a gradient of 1e-9 whose sign
        // float rounding flips moves it by 2·lr. eps 1e-4 keeps such noise from deciding the comparison.
        const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-4, weightDecay: 0.1 });
        const rng = new Rng(SEED);
        const losses = [0, 1].map(() => trainStep(params, CONFIG, optimizer, [batchOf(rng, 2)], 1e-2, 1).loss);
        const weights = new Map([...params].map(([n, v]) => [n, Float32Array.from(v.dataSync())]));
        const moments = [...optimizer.moments()].map(([n, v]) => [n, Float32Array.from(v.dataSync())] as const);
        tf.dispose([...params.values(), ...optimizer.moments().values()]);
        return { losses, weights, moments };
      });
    const plain = stepOnce(false);
    const fused = stepOnce(true);
    for (let i = 0; i < 2; i++)
      assert.ok(Math.abs(fused.losses[i] - plain.losses[i]) < 1e-4, `step ${i} loss ${fused.losses[i]} vs ${plain.losses[i]}`);
    for (const [name, w] of plain.weights) {
      const err = relativeError(fused.weights.get(name)!, w);
      assert.ok(err < 1e-4, `weights ${name} after 2 steps: relative error ${err} (seed ${SEED})`);
    }
    fused.moments.forEach(([name, m], i) => {
      const err = relativeError(m, plain.moments[i][1]);
      assert.ok(err < 1e-3, `moment ${name}: relative error ${err}`);
    });
  });

  test(`${backend}: BatchMatMul through sgemm matches a float64 product (transposes, broadcast, batch 1)`, { skip }, async () => {
    await setupBackend(backend);
    const cases: Array<[number[], number[], boolean, boolean]> = [
      [[1, 5, 7], [7, 3], false, false],
      [[4, 7, 5], [7, 3], true, false],
      [[4, 5, 7], [4, 3, 7], false, true],
      [[7, 5], [2, 3, 7, 9], true, false],
      [[33, 17], [17, 19], false, false],
      // Two-way broadcasts ([2,1,…] with [1,3,…]) go to the stock kernel, which tfjs 4.22 gets wrong on
      // both backends (it sizes the output by the larger batch): not tested here.
    ];
    for (const [i, [sa, sb, ta, tb]] of cases.entries()) {
      const a = randomValues(tf.util.sizeFromShape(sa), 100 + i);
      const b = randomValues(tf.util.sizeFromShape(sb), 200 + i);
      const got = tf.tidy(() => tf.matMul(tf.tensor(a, sa), tf.tensor(b, sb), ta, tb));
      const expected = referenceMatMul(a, sa, b, sb, ta, tb);
      assert.deepEqual(got.shape, expected.shape, `case ${i} shape`);
      const err = relativeError(got.dataSync(), expected.values);
      got.dispose();
      assert.ok(err < 1e-5, `case ${i}: relative error ${err}`);
    }
  });
}

function referenceMatMul(a: Float32Array, sa: number[], b: Float32Array, sb: number[], ta: boolean, tb: boolean) {
  const [m, k] = ta ? [sa.at(-1)!, sa.at(-2)!] : [sa.at(-2)!, sa.at(-1)!];
  const n = tb ? sb.at(-2)! : sb.at(-1)!;
  const outer = tf.backend_util.assertAndGetBroadcastShape(sa.slice(0, -2), sb.slice(0, -2));
  const batch = tf.util.sizeFromShape(outer);
  const values = new Float64Array(batch * m * n);
  const index = (shape: number[], i: number) => {
    // the batch index within an operand whose outer dims broadcast against `outer`
    const own = shape.slice(0, -2);
    let idx = 0;
    let rem = i;
    const strides = outer.map((_, d) => tf.util.sizeFromShape(outer.slice(d + 1)));
    const coords = strides.map((s) => {
      const c = Math.floor(rem / s);
      rem -= c * s;
      return c;
    });
    const offset = outer.length - own.length;
    own.forEach((dim, d) => (idx = idx * dim + (dim === 1 ? 0 : coords[d + offset])));
    return idx;
  };
  for (let i = 0; i < batch; i++) {
    const ia = index(sa, i) * m * k;
    const ib = index(sb, i) * k * n;
    for (let r = 0; r < m; r++)
      for (let c = 0; c < n; c++) {
        let s = 0;
        for (let e = 0; e < k; e++) s += a[ia + (ta ? e * m + r : r * k + e)] * b[ib + (tb ? c * k + e : e * n + c)];
        values[(i * m + r) * n + c] = s;
      }
  }
  return { shape: [...outer, m, n], values };
}

test('without the addon, training runs on the plain path and says so once', () => {
  const script = `
    import { setupBackend } from './kernels/backend.js';
    import { fusedKernelsActive } from './kernels/native-kernels.js';
    const a = await setupBackend('wasm');
    await setupBackend('cpu');
    console.log(JSON.stringify({ description: a.description, fused: fusedKernelsActive() }));`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, RINGLET_NATIVE: '0' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout.trim().split('\n').at(-1)!);
  assert.equal(out.fused, false);
  assert.match(out.description, /native kernels unavailable/);
  const warnings = child.stderr.split('\n').filter((l) => l.includes('native kernels unavailable'));
  assert.equal(warnings.length, 1, child.stderr);
  assert.match(warnings[0], /RINGLET_NATIVE=0/);
});
