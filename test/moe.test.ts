// The mixture of experts (lm/moe.ts): one expert is the dense model, routing gradients agree with finite
// differences, the auxiliary losses and capacity drops agree with hand computations, and an MoE preset
// trains, resumes, evaluates, generates and trains on the ring like a dense one.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { fusedKernelsActive } from '../lm/ops.js';
import { forward, initParams, lossOn, objectiveOn, type Params } from '../lm/model.js';
import {
  ModelConfigSchema,
  activeParameterCount,
  parameterCount,
  parameterShapes,
  presetConfig,
  type ModelConfig,
  type MoeConfig,
} from '../lm/model-config.js';
import { balanceLoss, dispatch, expertCapacity, mixtureOfExperts, newRouting, routerZLoss, topExperts } from '../lm/moe.js';
import { Rng } from '../lm/rng.js';
import { relativeError } from './backend-compare.js';

before(async () => {
  await setupBackend('wasm');
});

const dense: ModelConfig = { ...presetConfig('nano'), vocab: 61, d_model: 32, n_layers: 2, ffn_hidden: 48, context: 16 };
const moe = (m: Partial<MoeConfig>): ModelConfig => ({
  ...dense,
  moe: { experts: 4, top_k: 1, aux_loss_weight: 0.01, z_loss_weight: 0.001, capacity_factor: 1.25, ...m },
});

function tokens(seed: number, B: number, T: number, vocab: number): tf.Tensor2D {
  const rng = new Rng(seed);
  return tf.tensor2d(Int32Array.from({ length: B * T }, () => rng.int(vocab)), [B, T], 'int32');
}

/** Runs `f` with the native kernels on or off (RINGLET_FUSED), restoring the setting after. */
function withFused<T>(on: boolean, f: () => T): T {
  const before = process.env.RINGLET_FUSED;
  process.env.RINGLET_FUSED = on ? '1' : '0';
  try {
    return f();
  } finally {
    if (before === undefined) delete process.env.RINGLET_FUSED;
    else process.env.RINGLET_FUSED = before;
  }
}

/** The MoE model's parameters with every expert's MLP a copy of the dense layer's, and a random router. */
function expertsFromDense(c: ModelConfig, denseParams: Params, seed: number): Params {
  const rng = new Rng(seed);
  return new Map(
    parameterShapes(c).map(([name, shape]) => {
      const dense = name.replace(/experts\.\d+\./, '');
      if (name.endsWith('.router'))
        return [name, tf.variable(tf.tensor(Float32Array.from({ length: shape[0] * shape[1] }, () => rng.normal()), shape))];
      return [name, tf.variable(denseParams.get(dense)!.clone())];
    }),
  );
}

test('the MoE config is checked, and presets match the dense active parameters', () => {
  assert.throws(() => ModelConfigSchema.parse(moe({ experts: 1, top_k: 2 })), /top_k/);
  assert.throws(() => ModelConfigSchema.parse(moe({ experts: 65 })), /experts/);
  for (const name of ['nano', 'micro', 'tiny']) {
    const d = presetConfig(name);
    const m = presetConfig(`moe-${name}`);
    assert.equal(activeParameterCount(m), parameterCount(d).total + d.n_layers * d.d_model * 4, `moe-${name}: dense + routers`);
    assert.equal(parameterCount(m).total, parameterCount(d).total + d.n_layers * (d.d_model * 4 + 3 * 3 * d.d_model * d.ffn_hidden));
  }
});

for (const fused of [true, false]) {
  test(`one expert with top-1 is the dense model: loss and every gradient (${fused ? 'fused kernels' : 'plain tfjs'})`, () => {
    withFused(fused, () => {
      if (fused && !fusedKernelsActive()) return; // no addon: the plain case covers it
      const one = moe({ experts: 1, top_k: 1, z_loss_weight: 0 }); // z-loss would pull on a lone router's logits
      const denseParams = initParams(dense, 3);
      const moeParams = expertsFromDense(one, denseParams, 4);
      const [inputs, targets] = [tokens(1, 2, 16, dense.vocab), tokens(2, 2, 16, dense.vocab)];
      const d = tf.variableGrads(() => objectiveOn(denseParams, dense, inputs, targets).objective, [...denseParams.values()]);
      const m = tf.variableGrads(() => objectiveOn(moeParams, one, inputs, targets).objective, [...moeParams.values()]);
      // The balance loss of one expert is α·1·1·1 whatever the router: the objective is CE + α.
      assert.ok(Math.abs(m.value.dataSync()[0] - 0.01 - d.value.dataSync()[0]) < 1e-6, 'objective');
      const ce = [lossOn(denseParams, dense, inputs, targets), lossOn(moeParams, one, inputs, targets)].map((t) => t.dataSync()[0]);
      assert.ok(Math.abs(ce[0] - ce[1]) <= 1e-6 * ce[0], `cross-entropy ${ce}`);
      for (const [name, v] of moeParams) {
        const g = m.grads[v.name].dataSync();
        if (name.endsWith('.router')) assert.ok(Math.max(...g.map(Math.abs)) < 1e-9, `${name} has gradient ${Math.max(...g)}`);
        else {
          const want = d.grads[denseParams.get(name.replace(/experts\.\d+\./, ''))!.name].dataSync();
          assert.ok(relativeError(g, want) < 1e-6, `${name}: relative error ${relativeError(g, want)}`);
        }
      }
    });
  });
}

test('the load-balancing and z-losses equal a hand computation', () => {
  // 4 tokens, 3 experts.
  const logits = [
    [2, 0, 0],
    [0, 1, 0],
    [1, 0, 3],
    [0.5, 0.2, 0.1],
  ];
  const probs = logits.map((row) => {
    const z = row.reduce((s, x) => s + Math.exp(x), 0);
    return row.map((x) => Math.exp(x) / z);
  });
  // top-1: experts 0, 1, 2, 0 → f = [2/4, 1/4, 1/4]; P_e the mean probability of each expert.
  const f = [0.5, 0.25, 0.25];
  const P = [0, 1, 2].map((e) => probs.reduce((s, p) => s + p[e], 0) / 4);
  const alpha = 0.01;
  const balance = alpha * 3 * (f[0] * P[0] + f[1] * P[1] + f[2] * P[2]);
  const beta = 0.001;
  const z = (beta * logits.reduce((s, row) => s + Math.log(row.reduce((a, x) => a + Math.exp(x), 0)) ** 2, 0)) / 4;

  const chosen = topExperts(probs.flat(), 4, 3, 1);
  assert.deepEqual([...chosen], [0, 1, 2, 0]);
  const counts = dispatch(chosen, 4, { experts: 3, top_k: 1, aux_loss_weight: alpha, z_loss_weight: beta, capacity_factor: 0 }, Infinity)
    .routing.tokens;
  assert.deepEqual(counts, [2, 1, 1]);
  const gotBalance = balanceLoss(tf.tensor2d(probs), counts, alpha).dataSync()[0];
  const gotZ = routerZLoss(tf.tensor2d(logits), beta).dataSync()[0];
  assert.ok(Math.abs(gotBalance - balance) < 1e-7, `balance ${gotBalance} vs ${balance}`);
  assert.ok(Math.abs(gotZ - z) < 1e-7, `z ${gotZ} vs ${z}`);
  // Top-2 counts every token's two choices: f over the 8 assignments.
  const two = topExperts(probs.flat(), 4, 3, 2);
  assert.deepEqual([...two], [0, 1, 1, 0, 2, 0, 0, 1]);
});

test('capacity: assignments past ceil(cf·tokens·k/E) are dropped in training, first choices first, with zero output', () => {
  const m: MoeConfig = { experts: 2, top_k: 1, aux_loss_weight: 0.01, z_loss_weight: 0.001, capacity_factor: 0.5 };
  // 8 rows, all routed to expert 0 (router column 0 large): capacity ceil(0.5·8/2) = 2, so 6 are dropped.
  const d = 4;
  const x = tf.tensor2d(Float32Array.from({ length: 8 * d }, (_, i) => 1 + (i % 5) * 0.1), [8, d]);
  const router = tf.tensor2d([5, 0, 5, 0, 5, 0, 5, 0], [d, 2]);
  const mlp = (_e: number, rows: tf.Tensor2D) => rows.mul<tf.Tensor2D>(2);
  assert.equal(expertCapacity(m, 8), 2);
  const training = newRouting(true);
  const dropped = mixtureOfExperts(x, router, m, mlp, training).out.arraySync();
  assert.deepEqual(training.layers, [{ tokens: [8, 0], dropped: 6 }]);
  dropped.forEach((row, t) => {
    if (t < 2) assert.ok(row.some((v) => v !== 0), `row ${t} is computed`);
    else assert.deepEqual(row, [0, 0, 0, 0], `row ${t} is dropped`);
  });
  // Outside training (and with capacity_factor 0) every assignment is computed; the drops are still counted.
  const evaluating = newRouting(false);
  const all = mixtureOfExperts(x, router, m, mlp, evaluating).out.arraySync();
  assert.equal(evaluating.layers[0].dropped, 6);
  assert.ok(all.every((row) => row.every((v) => v !== 0)));
  const noDrop = newRouting(true);
  mixtureOfExperts(x, router, { ...m, capacity_factor: 0 }, mlp, noDrop);
  assert.equal(noDrop.layers[0].dropped, 0);
  // Top-2 with capacity: second choices queue behind every first choice.
  const two = dispatch(Int32Array.from([0, 1, 0, 1, 1, 0]), 3, { ...m, top_k: 2, experts: 2 }, 2);
  assert.deepEqual(two.kept, [[0, 2], [4, 1]]);
  assert.equal(two.routing.dropped, 2);
});

test('routing gradients agree with central finite differences of the whole objective', () => {
  const c: ModelConfig = {
    ...dense,
    vocab: 23,
    d_model: 16,
    n_heads: 2,
    n_kv_heads: 2,
    n_layers: 1,
    ffn_hidden: 16,
    context: 8,
    moe: { experts: 4, top_k: 2, aux_loss_weight: 0.5, z_loss_weight: 0.1, capacity_factor: 0 },
  };
  withFused(false, () => {
    const params = initParams(c, 11);
    // Larger weights than the initialisation's, so the router and experts move the loss measurably.
    const rng = new Rng(5);
    for (const [name, v] of params)
      if (v.shape.length === 2) v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal() * 0.3), v.shape));
    const [inputs, targets] = [tokens(3, 2, 8, c.vocab), tokens(4, 2, 8, c.vocab)];
    // Float64 on the host: the mean cross-entropy from the logits, plus the layers' losses.
    const objective = (): number =>
      tf.tidy(() => {
        const routing = newRouting(true);
        const logits = forward(params, c, inputs, { routing }).arraySync();
        const t = targets.dataSync();
        let nats = 0;
        logits.forEach((row, i) => {
          const max = Math.max(...row);
          nats += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[t[i]];
        });
        return nats / logits.length + routing.losses.reduce((s, l) => s + l.dataSync()[0], 0) / c.n_layers;
      });
    const { grads } = tf.variableGrads(() => objectiveOn(params, c, inputs, targets).objective, [...params.values()]);
    const eps = 1e-3;
    for (const name of ['layers.0.router', 'layers.0.experts.1.w_gate', 'layers.0.experts.3.w_down']) {
      const v = params.get(name)!;
      const values = v.dataSync().slice();
      const analytic = grads[v.name].dataSync();
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < values.length; i += 3) {
        const at = (delta: number) => {
          const moved = values.slice();
          moved[i] += delta;
          v.assign(tf.tensor(moved, v.shape));
          return objective();
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        worst = Math.max(worst, Math.abs(numeric - analytic[i]));
        scale = Math.max(scale, Math.abs(analytic[i]));
      }
      v.assign(tf.tensor(values, v.shape));
      assert.ok(scale > 1e-3, `${name}: gradients too small to test (${scale})`);
      // Float32 forward passes with eps 1e-3 agree to ~1e-4 here (gradients up to ~0.25); a routing choice
      // flipped by the step, or a wrong gate gradient, is off by far more.
      assert.ok(worst <= 1e-3, `${name}: finite differences off by ${worst} (largest gradient ${scale})`);
    }
  });
});
