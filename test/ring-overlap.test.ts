// The ring on its own thread, overlapping the backward pass: gradients are reported the moment they are
// final, the flat buffer fills from its end, each bucket waits for its part of the buffer to be final, and
// the sums are the ones a plain all-reduce gives, bit-identical on every rank.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { RingThread } from '../collective/ring-thread.js';
import { RingError } from '../collective/endpoint.js';
import { setupBackend } from '../kernels/backend.js';
import { whenGradientFinal } from '../kernels/lean-gradients.js';
import { initParams, lossOn } from '../lm/model.js';
import { presetConfig, type ModelConfig } from '../lm/model-config.js';
import { Rng } from '../lm/rng.js';
import { FlatGradients, applyGradients, computeGradients } from '../train/step.js';
import { AdamW } from '../train/optimizer.js';
import type { Batch } from '../train/batches.js';

const JOB = 'job-overlap';
const TOKEN = 'secret-token';
const model: ModelConfig = {
  ...presetConfig('nano'),
  d_model: 32,
  n_layers: 2,
  n_heads: 4,
  n_kv_heads: 2,
  ffn_hidden: 64,
  context: 16,
  vocab: 64,
};

function batchOf(seed: number, size: number): Batch {
  const rng = new Rng(seed);
  const n = size * model.context;
  return {
    inputs: Int32Array.from({ length: n }, () => rng.int(model.vocab)),
    targets: Int32Array.from({ length: n }, () => rng.int(model.vocab)),
    batch: size,
    context: model.context,
  };
}

before(async () => {
  await setupBackend('wasm');
});

test('whenGradientFinal reports every gradient once, final, from the last layer back to the tied embedding', () => {
  const params = initParams(model, 1);
  const b = batchOf(1, 2);
  const seen: Array<[string, Float32Array]> = [];
  const names = new Map([...params].map(([name, v]) => [v.id, name]));
  const { grads } = tf.tidy(() => {
    const inputs = tf.tensor2d(b.inputs, [b.batch, b.context], 'int32');
    const targets = tf.tensor2d(b.targets, [b.batch, b.context], 'int32');
    return whenGradientFinal(
      (x, g) => seen.push([names.get(x.id)!, (g.dataSync() as Float32Array).slice()]),
      () => tf.variableGrads(() => lossOn(params, model, inputs, targets), [...params.values()]),
    );
  });
  assert.equal(seen.length, params.size);
  assert.equal(new Set(seen.map(([n]) => n)).size, params.size);
  // What the listener saw is what the backward pass returned: nothing was added after it was told.
  for (const [name, values] of seen) assert.deepEqual(values, grads[params.get(name)!.name].dataSync(), name);
  const order = seen.map(([n]) => n);
  assert.equal(order[0], 'final_norm');
  assert.equal(order.at(-1), 'tok_embedding'); // tied: read by the first op and by the output projection
  assert.ok(order.indexOf('layers.1.w_down') < order.indexOf('layers.0.w_down'));
  tf.dispose(Object.values(grads));
});

test('FlatGradients: the weighted sum of micro-batches, bit for bit, and a final part that ends whole', () => {
  const params = initParams(model, 2);
  const flat = new FlatGradients(params);
  const [b1, b2] = [batchOf(3, 2), batchOf(4, 3)];
  flat.reset();
  assert.equal(flat.ready[0], flat.buffer.length);
  const loss = flat.add(model, b1, 0.4, false) * 0.4 + flat.add(model, b2, 0.6, true) * 0.6;
  assert.equal(flat.ready[0], 0);
  const want = new Float32Array(flat.buffer.length);
  let wantLoss = 0;
  for (const [b, w] of [
    [b1, 0.4],
    [b2, 0.6],
  ] as const) {
    const g = computeGradients(params, model, [b]);
    wantLoss += g.loss * w;
    let offset = 0;
    for (const [name, p] of params) {
      const values = g.grads.get(name)!.dataSync();
      for (let j = 0; j < p.size; j++) want[offset + j] += values[j] * w;
      offset += p.size;
    }
    tf.dispose([...g.grads.values()]);
  }
  assert.deepEqual(flat.buffer, want);
  assert.equal(loss, wantLoss);
  flat.reset();
  assert.ok(flat.buffer.every((x) => x === 0));
});

test('a reduced gradient that is not finite is skipped: the weights and moments stay, the step count moves', () => {
  const params = initParams(model, 5);
  const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const before = new Map([...params].map(([n, p]) => [n, p.dataSync().slice()]));
  const { grads } = computeGradients(params, model, [batchOf(6, 2)]);
  for (const poison of [NaN, Infinity]) {
    const bad = new Map([...grads].map(([n, g]) => [n, n === 'layers.1.w_down' ? g.add(poison) : g.clone()]));
    const norm = applyGradients(optimizer, bad, 1e-2, 1);
    assert.ok(!Number.isFinite(norm), `the norm says the step was skipped (${norm})`);
    tf.dispose([...bad.values()]);
  }
  assert.equal(optimizer.step, 2);
  for (const [n, p] of params) assert.deepEqual(p.dataSync(), before.get(n), `${n} is untouched`);
  for (const v of optimizer.moments().values()) assert.ok(v.dataSync().every((x) => x === 0));
  assert.ok(Number.isFinite(applyGradients(optimizer, grads, 1e-2, 1)), 'a finite gradient is applied');
  assert.notDeepEqual(params.get('layers.1.w_down')!.dataSync(), before.get('layers.1.w_down'));
  tf.dispose([...grads.values()]);
});

const threads: RingThread[] = [];
after(async () => Promise.all(threads.map((t) => t.stop())));

async function ringOf(n: number, o: { bucketBytes: number; chunkBytes: number }): Promise<RingThread[]> {
  const ts = await Promise.all(
    Array.from({ length: n }, () =>
      RingThread.start({ jobId: JOB, token: TOKEN, maxChunkBytes: 1 << 20, maxQueuedBytes: 64 << 20 }),
    ),
  );
  threads.push(...ts);
  ts.forEach((t, rank) =>
    t.form({
      jobId: JOB,
      token: TOKEN,
      epoch: 1,
      rank,
      worldSize: n,
      next: ts[(rank + 1) % n].address,
      fromRank: (rank - 1 + n) % n,
      fromAddress: ts[(rank - 1 + n) % n].address, // each sender names itself and is checked against it
      timeoutMs: 10_000,
      ...o,
    }),
  );
  return ts;
}

const shared = (values: Float32Array) => {
  const b = new Float32Array(new SharedArrayBuffer(values.byteLength));
  b.set(values);
  return b;
};

test('ring thread: buckets wait for their part of the buffer to be final, then sum bit-identically', async () => {
  const n = 3;
  const ts = await ringOf(n, { bucketBytes: 4096, chunkBytes: 1024 });
  const length = 5000; // 5 buckets of 1024 floats, the last one short
  const rng = new Rng(9);
  const inputs = Array.from({ length: n }, () => Float32Array.from({ length }, () => rng.next() * 2 - 1));
  const buffers = inputs.map(shared);
  const ready = buffers.map(() => new Int32Array(new SharedArrayBuffer(4)).fill(length));
  let finished = 0;
  const sums = ts.map((t, r) => t.allReduce(buffers[r], 1, ready[r]).then((s) => (finished++, s)));
  // The final part grows from the end, as a backward pass makes it: nothing can finish until it is whole.
  for (const from of [4000, 2500, 1024, 1]) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(finished, 0, `all-reduce finished with the final part starting at ${from}`);
    for (const r of ready) (Atomics.store(r, 0, from), Atomics.notify(r, 0));
  }
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(finished, 0);
  // The buckets already final went while the "backward pass" went on; the first one still waits.
  const exactAt = (j: number) => inputs.reduce((s, b) => s + b[j], 0);
  assert.ok(Math.abs(buffers[0][length - 1] - exactAt(length - 1)) < 1e-5, 'the last bucket was reduced early');
  assert.equal(buffers[0][0], inputs[0][0], 'the first bucket was reduced before it was final');
  for (const r of ready) (Atomics.store(r, 0, 0), Atomics.notify(r, 0));
  const stats = await Promise.all(sums);
  assert.equal(stats[0].buckets, 5);
  for (let j = 0; j < length; j++) {
    assert.ok(Math.abs(buffers[0][j] - exactAt(j)) < 1e-5, `element ${j}`);
    for (let r = 1; r < n; r++) assert.equal(buffers[r][j], buffers[0][j], `rank ${r} differs at ${j}`);
  }
});

test('ring thread: abort rejects the all-reduce in flight with a RingError; a new ring epoch trains again', async () => {
  const ts = await ringOf(2, { bucketBytes: 4096, chunkBytes: 1024 });
  const buffers = [shared(new Float32Array(2048).fill(1)), shared(new Float32Array(2048).fill(2))];
  const ready = new Int32Array(new SharedArrayBuffer(4)).fill(2048); // never final: the ring waits
  const pending = ts[0].allReduce(buffers[0], 1, ready);
  ts[0].abort('the coordinator re-forms the ring');
  assert.equal(ts[0].aborted, true);
  await assert.rejects(pending, (err: Error) => err instanceof RingError && /re-forms the ring/.test(err.message));
  ts.forEach((t, rank) =>
    t.form({
      jobId: JOB,
      token: TOKEN,
      epoch: 2,
      rank,
      worldSize: 2,
      next: ts[1 - rank].address,
      fromRank: 1 - rank,
      fromAddress: ts[1 - rank].address,
      bucketBytes: 4096,
      chunkBytes: 1024,
    }),
  );
  assert.equal(ts[0].aborted, false);
  await Promise.all(ts.map((t, r) => t.allReduce(buffers[r], 1)));
  assert.ok(buffers.every((b) => b.every((x) => x === 3)));
  assert.throws(() => ts[0].allReduce(new Float32Array(4), 2), /SharedArrayBuffers only/);
});
