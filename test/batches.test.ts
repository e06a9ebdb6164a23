import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WindowSampler, chunkBatch, fixedWindows } from '../train/batches.js';
import { learningRate } from '../train/schedule.js';
import { Rng } from '../lm/rng.js';

const tokens = Uint16Array.from({ length: 1001 }, (_, i) => i);

test('an epoch visits every window once, and targets are the inputs shifted by one', () => {
  const sampler = new WindowSampler(tokens, 10, 7);
  assert.equal(sampler.windows, 100);
  const { batch, cursor } = sampler.next(100, { epoch: 0, index: 0 });
  assert.deepEqual(cursor, { epoch: 0, index: 100 });
  const starts = new Set<number>();
  for (let b = 0; b < 100; b++) {
    starts.add(batch.inputs[b * 10]);
    for (let t = 0; t < 10; t++) assert.equal(batch.targets[b * 10 + t], tokens[tokens.indexOf(batch.inputs[b * 10]) + t + 1]);
  }
  assert.equal(starts.size, 100);
});

test('resuming from a cursor continues exactly where the uninterrupted run would be', () => {
  const straight = new WindowSampler(tokens, 10, 3).next(250, { epoch: 0, index: 0 });
  const first = new WindowSampler(tokens, 10, 3).next(130, { epoch: 0, index: 0 });
  const second = new WindowSampler(tokens, 10, 3).next(120, first.cursor);
  assert.deepEqual([...first.batch.inputs, ...second.batch.inputs], [...straight.batch.inputs]);
  assert.deepEqual(second.cursor, { epoch: 2, index: 50 });
});

test('each epoch has its own order', () => {
  const sampler = new WindowSampler(tokens, 10, 3);
  const e0 = sampler.next(100, { epoch: 0, index: 0 }).batch.inputs;
  const e1 = sampler.next(100, { epoch: 1, index: 0 }).batch.inputs;
  assert.notDeepEqual([...e0], [...e1]);
});

test('a split shorter than one window is refused with its size', () => {
  assert.throws(() => new WindowSampler(tokens.slice(0, 5), 10, 1), /has 5 tokens, fewer than one window/);
});

test('validation windows are fixed and evenly spread', () => {
  const v = fixedWindows(tokens, 10, 4);
  assert.equal(v.batch, 4);
  assert.deepEqual([v.inputs[0], v.inputs[10], v.inputs[20], v.inputs[30]], [0, 250, 500, 750]);
  assert.deepEqual(
    chunkBatch(v, 3).map((b) => b.batch),
    [3, 1],
  );
});

test('learning rate warms up linearly, then decays by cosine to the floor', () => {
  const s = { lr: 1e-3, minLr: 1e-4, warmupTokens: 1000, totalTokens: 11000 };
  assert.ok(learningRate(0, s) < 1e-5);
  assert.ok(Math.abs(learningRate(500, s) - 5e-4) < 1e-6);
  assert.ok(Math.abs(learningRate(1000, s) - 1e-3) < 1e-12);
  assert.ok(Math.abs(learningRate(6000, s) - 5.5e-4) < 1e-12);
  assert.equal(learningRate(11000, s), 1e-4);
  assert.equal(learningRate(50000, s), 1e-4);
});

test('the generator state restores the exact sequence', () => {
  const rng = new Rng(5);
  rng.next();
  const copy = new Rng(rng.state());
  assert.deepEqual([rng.nextU32(), rng.nextU32()], [copy.nextU32(), copy.nextU32()]);
});
