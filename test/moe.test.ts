// The mixture of experts (lm/moe.ts): one expert is the dense model, routing gradients agree with finite
// differences, the auxiliary losses and capacity drops agree with hand computations, and an MoE preset
// trains, resumes, evaluates, generates and trains on the ring like a dense one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { readCheckpoint } from '../lm/checkpoint.js';
import { generate } from '../lm/generate.js';
import { evaluateCheckpoint } from '../evaluator/evaluate.js';
import { loadScoringModel } from '../evaluator/model.js';
import { runRouting } from '../evaluator/suites/routing.js';
import type { SuiteContext } from '../evaluator/suites/types.js';
import { exportCheckpoint } from '../export/export-checkpoint.js';
import { loadTrainConfig } from '../train/config.js';
import { computeGradients } from '../train/step.js';
import { ProgressLog } from '../train/progress.js';
import { resolveModelConfig, train } from '../train/run.js';
import { prepareTinyDataset } from './tiny-dataset.js';
import { fusedKernelsActive } from '../lm/ops.js';
import { forward, initParams, lossOn, objectiveOn, type KvCache, type Params } from '../lm/model.js';
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

const root = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-moe-'));
const dataset = path.join(work, 'data');

before(async () => {
  await setupBackend('wasm');
  await prepareTinyDataset(root, work);
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

test('training steps report the cross-entropy: bit for bit the dense loss, and leak no tensor with experts', () => {
  const [inputs, targets] = [tokens(5, 2, 16, dense.vocab), tokens(6, 2, 16, dense.vocab)];
  const batch = { inputs: inputs.dataSync() as Int32Array, targets: targets.dataSync() as Int32Array, batch: 2, context: 16 };
  const params = initParams(dense, 7);
  const plain = tf.variableGrads(() => lossOn(params, dense, inputs, targets), [...params.values()]);
  const stepped = computeGradients(params, dense, [batch]);
  assert.equal(stepped.loss, plain.value.dataSync()[0]);
  for (const [name, v] of params) assert.deepEqual(stepped.grads.get(name)!.dataSync(), plain.grads[v.name].dataSync(), name);

  const c = moe({ experts: 4, top_k: 2 });
  const moeParams = initParams(c, 7);
  const ce = tf.tidy(() => lossOn(moeParams, c, inputs, targets).dataSync()[0]);
  const objective = tf.tidy(() => objectiveOn(moeParams, c, inputs, targets).objective.dataSync()[0]);
  const before = tf.memory().numTensors;
  const m = computeGradients(moeParams, c, [batch]);
  // The reported loss is the cross-entropy without the auxiliary losses (capacity may drop a few assignments).
  assert.ok(Math.abs(m.loss - ce) < 0.05 && m.loss !== objective, `reported ${m.loss}, CE ${ce}, objective ${objective}`);
  tf.dispose([...m.grads.values()]);
  assert.equal(tf.memory().numTensors, before);
});

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

test('with a KV cache, generation steps give the full forward pass\'s logits (no capacity outside training)', () => {
  const c = moe({ experts: 4, top_k: 2, capacity_factor: 0.5 });
  const params = initParams(c, 9);
  const sequence = Array.from({ length: 10 }, (_, i) => (i * 7 + 3) % c.vocab);
  const full = forward(params, c, tf.tensor2d([sequence], [1, 10], 'int32')).arraySync();
  const cache: KvCache = { k: [], v: [], length: 0 };
  const prompt = forward(params, c, tf.tensor2d([sequence.slice(0, 6)], [1, 6], 'int32'), { cache, lastOnly: true }).arraySync();
  const rows = [prompt[0]];
  for (const token of sequence.slice(6, 9)) rows.push(forward(params, c, tf.tensor2d([[token]], [1, 1], 'int32'), { cache, lastOnly: true }).arraySync()[0]);
  rows.forEach((row, i) => assert.ok(relativeError(row, full[5 + i]) < 1e-5, `position ${5 + i}: ${relativeError(row, full[5 + i])}`));
});

// ---- End to end on the tiny Swedish dataset, with the moe-nano preset at a short context.

const MODEL = { preset: 'moe-nano', context: 32 };
const TRAINING = { batch_size: 4, eval_windows: 8, log_every: 1000, eval_every: 2 };
const configFile = (name: string, model: object, training: object = TRAINING) => {
  const file = path.join(work, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ model, training }));
  return file;
};
const quiet = (out: string) => new ProgressLog(out, { live: false });

test('a JSON config turns experts on over a preset, and bad values name the field path', () => {
  const ok = loadTrainConfig(configFile('micro-moe', { preset: 'micro', moe: { experts: 4, top_k: 1 } }), {
    data: dataset,
    out: work,
    maxSteps: 1,
  });
  assert.deepEqual(resolveModelConfig(ok, 512).moe, {
    experts: 4,
    top_k: 1,
    aux_loss_weight: 0.01,
    z_loss_weight: 0.001,
    capacity_factor: 1.25,
  });
  const bad = (moeFields: object, pattern: RegExp) =>
    assert.throws(
      () => loadTrainConfig(configFile('bad', { preset: 'micro', moe: moeFields }), { data: dataset, out: work, maxSteps: 1 }),
      pattern,
    );
  bad({ experts: 4, top_k: 3 }, /model\.moe\.top_k/);
  bad({ experts: 1, top_k: 2 }, /model\.moe\.top_k: must not exceed experts/);
  bad({ experts: 4, top_k: 1, capacity_factor: -1 }, /model\.moe\.capacity_factor/);
  bad({ experts: 4, top_k: 1, gates: 'x' }, /model\.moe.*gates/);
});

test('moe-nano trains, resumes exactly, logs routing, evaluates and generates; exports refuse it', async () => {
  const file = configFile('moe-nano', MODEL);
  const run = (out: string, flags: Record<string, unknown>, resume = false) =>
    train(loadTrainConfig(file, { data: dataset, out, maxSteps: 4, checkpointEvery: 2, ...flags }), { resume, log: quiet(out) });
  const straight = path.join(work, 'moe-straight');
  const resumed = path.join(work, 'moe-resumed');
  const a = await run(straight, {});
  assert.equal((await run(resumed, { untilStep: 2 })).step, 2);
  const b = await run(resumed, {}, true);
  assert.equal(b.step, 4);
  assert.equal(a.val_loss, b.val_loss);
  const [wa, wb] = [await readCheckpoint(a.checkpoint), await readCheckpoint(b.checkpoint)];
  for (const [name, t] of wa.weights) assert.deepEqual(wb.weights.get(name)!.data, t.data, `weight ${name}`);
  assert.ok(wa.weights.has('layers.3.router') && wa.weights.has('layers.3.experts.3.w_down'));
  assert.deepEqual((wa.meta.config.model as ModelConfig).moe, presetConfig('moe-nano').moe);

  // Every evaluation's record holds the routing of the validation windows' tokens.
  const evals = fs
    .readFileSync(path.join(straight, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => r.type === 'eval');
  assert.deepEqual(
    evals.map((r) => r.step),
    [2, 4],
  );
  for (const r of evals) {
    assert.equal(r.routing.tokens_per_expert.length, 4);
    for (const row of r.routing.tokens_per_expert) assert.equal(row.reduce((x: number, y: number) => x + y, 0), 8 * 32);
    assert.ok(r.routing.dropped_share >= 0 && r.routing.dropped_share < 1);
  }

  // The evaluator: val through forward(), routing through the loss; both equal the training log's figure.
  const where = { blimpDir: '', dalajFile: '', allowPaths: false };
  const energy = { cpuWatts: 10, gridGramsPerKwh: 100 };
  const e = await evaluateCheckpoint({ checkpoint: straight, suites: ['routing', 'val'], limit: 8, batch_size: 4 }, where, energy);
  const val = e.suites.val.metrics.val_loss;
  assert.ok(Math.abs(val - a.val_loss) < 1e-4, `val suite ${val} vs training ${a.val_loss}`);
  const routing = e.suites.routing;
  assert.ok(Math.abs(routing.metrics.val_loss - a.val_loss) < 1e-4);
  assert.deepEqual(routing.routing!.tokens, evals[1].routing.tokens_per_expert);
  for (let l = 0; l < 4; l++) {
    const shares = [0, 1, 2, 3].map((x) => routing.metrics[`layer${l}.expert${x}`]);
    assert.ok(Math.abs(shares.reduce((x, y) => x + y, 0) - 1) < 1e-9, `layer ${l} shares ${shares}`);
  }

  // Generation takes the TensorFlow.js path with its KV cache (the native decoder has no experts).
  const model = await loadScoringModel(straight);
  try {
    const g = await generate(model.params, model.config, model.tokenizer.encode('Det var en gång'), {
      maxTokens: 40,
      seed: 3,
      stopToken: -1,
      temperature: 1,
      topK: 0,
      topP: 1,
      repetitionPenalty: 1,
    });
    assert.equal(g.tokens.length, 40); // past the context of 32: the cache restarts from the newest half
    await assert.rejects(
      runRouting(dataset, { model: { ...model, config: dense }, batchSize: 4 } as SuiteContext),
      /suite routing needs a mixture-of-experts checkpoint/,
    );
  } finally {
    model.dispose();
  }
  for (const format of ['gguf', 'hf'] as const) {
    const out = path.join(work, `export-${format}`);
    await assert.rejects(exportCheckpoint({ checkpoint: straight, format, out }), /mixture of experts/);
    assert.equal(fs.existsSync(out), false);
  }
});

test('moe-nano on a ring of 2 workers: both ranks end with identical weights, close to one process', async () => {
  const training = { ...TRAINING, grad_accum: 2, eval_every: 4, max_steps: 4 };
  const file = configFile('moe-ring', MODEL, training);
  const single = path.join(work, 'moe-single');
  await train(loadTrainConfig(file, { data: dataset, out: single, checkpointEvery: 4 }), { resume: false, log: quiet(single) });
  const out = path.join(work, 'moe-ring');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'cli/ringlet.ts'), 'train', '--config', file, '--data', dataset, '--out', out, '--workers', '2', '--json'],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  const logs: string[] = [];
  readline.createInterface({ input: child.stderr }).on('line', (line) => logs.push(line));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, logs.slice(-20).join('\n'));
  const summary = JSON.parse(stdout.trim().split('\n').at(-1)!);
  assert.equal(summary.step, 4);
  assert.equal(summary.ranks_identical, true, 'every rank hashes its weights at each checkpoint');
  assert.ok(logs.some((l) => l.includes('"routing"')), 'rank 0 logs the routing at its evaluation');
  // Each rank's micro-batch is one of the single process's two, so capacity drops the same assignments.
  const [ring, one] = [await readCheckpoint(out), await readCheckpoint(single)];
  for (const [name, t] of one.weights) {
    const u = ring.weights.get(name)!.data;
    const worst = t.data.reduce((w, x, i) => Math.max(w, Math.abs(x - u[i])), 0);
    assert.ok(worst < 1e-5, `${name}: ring and one process differ by ${worst}`);
  }
});
