// The golden fixture (test/fixtures/golden-step.json, bench/gpu/golden-run.ts): the CPU path that wrote it
// reproduces it, bit for bit on the same kind of CPU kernels; and the comparison the GPU check judges the
// cuda backend with flags what it must.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import {
  GOLDEN_FIXTURE,
  GOLDEN_MODEL,
  GOLDEN_TOLERANCES,
  GOLDEN_TRAINING,
  compareGolden,
  cpuPathOf,
  runGolden,
  type GoldenRun,
} from '../bench/gpu/golden-run.js';

const fixture = JSON.parse(readFileSync(GOLDEN_FIXTURE, 'utf8')) as GoldenRun & {
  cpu_path: string;
  model: unknown;
  training: unknown;
};

test('the fixture is of the stated model and training, and its loss falls over the 20 steps', () => {
  assert.deepEqual(fixture.model, GOLDEN_MODEL);
  assert.deepEqual(fixture.training, GOLDEN_TRAINING);
  assert.equal(fixture.steps.length, GOLDEN_TRAINING.steps);
  assert.equal(fixture.steps[0].loss, fixture.initial_loss);
  assert.ok(Math.abs(fixture.initial_loss - Math.log(GOLDEN_MODEL.vocab)) < 0.1, 'starts near ln(vocab)');
  assert.ok(fixture.steps.at(-1)!.loss < fixture.initial_loss - 0.5, 'the batches are learnable: the loss falls');
  assert.equal(Object.keys(fixture.first_grad_norms).length, 2 + 9 * GOLDEN_MODEL.n_layers);
});

test('the wasm path reproduces the fixture: bit for bit on the CPU kernels that wrote it, else within the fp32 tolerance', async () => {
  const backend = await setupBackend('wasm');
  const samePath = cpuPathOf(backend.description) === fixture.cpu_path;
  const run = runGolden();
  const { beyond, worst } = compareGolden(fixture, run, samePath ? GOLDEN_TOLERANCES.wasm : GOLDEN_TOLERANCES.fp32);
  assert.deepEqual(
    beyond,
    [],
    `${samePath ? 'bit for bit' : `fp32 tolerance (fixture from ${fixture.cpu_path})`}; worst ${JSON.stringify(worst)}`,
  );
  assert.equal(tf.memory().numTensors, 0, 'runGolden leaves no tensor behind');
});

test('the comparison flags a figure beyond tolerance, a missing figure and a NaN', () => {
  const copy = (): GoldenRun => JSON.parse(JSON.stringify(fixture));
  assert.equal(compareGolden(fixture, copy(), GOLDEN_TOLERANCES.wasm).matches, true);

  const off = copy();
  off.steps[7].loss *= 1 + 2e-5;
  off.checksums['layers.1.wq'].sum_sq *= 1 + 5e-6;
  const fp32 = compareGolden(fixture, off, GOLDEN_TOLERANCES.fp32);
  assert.deepEqual(
    fp32.beyond.map((d) => d.figure),
    ['steps[7].loss'],
  );
  assert.ok(fp32.worst.checksum > 4e-6 && fp32.worst.checksum < 1e-5);
  assert.equal(compareGolden(fixture, off, GOLDEN_TOLERANCES.tf32).matches, true);

  const broken = copy();
  delete broken.first_grad_norms['layers.0.w_up'];
  broken.steps[19].grad_norm = NaN;
  broken.steps.pop();
  assert.deepEqual(
    compareGolden(fixture, broken, GOLDEN_TOLERANCES.tf32).beyond.map((d) => d.figure),
    ['first_grad_norms.layers.0.w_up', 'steps[19].loss', 'steps[19].grad_norm'],
  );
});
