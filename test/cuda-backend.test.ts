// The cuda backend's own TypeScript, on the host device (kernels/cuda/host-device.ts), which throws on a
// freed or unknown pointer and on any access past a buffer: reference counts and disposal (shared buffers,
// memory back to its baseline after a training step and an evaluation), empty tensors, the CPU fallback,
// and its plain kernels against tfjs's cpu backend on fuzzed shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { installLeanGradients } from '../kernels/lean-gradients.js';
import { CudaBackend, cpuFallbackCounts, cudaDevice, registerCudaBackend } from '../kernels/cuda/backend.js';
import { HostDevice } from '../kernels/cuda/host-device.js';
import { generate } from '../lm/generate.js';
import { initParams } from '../lm/model.js';
import type { ModelConfig } from '../lm/model-config.js';
import { Rng } from '../lm/rng.js';
import { evaluate } from '../train/evaluate.js';
import { AdamW } from '../train/optimizer.js';
import { trainStep } from '../train/step.js';
import { nativeTestSkip } from './native-addon.js';

const skip = nativeTestSkip();
const SEED = Number(process.env.RINGLET_TEST_SEED ?? Date.now() % 1_000_000);

const CONFIG: ModelConfig = {
  vocab: 64,
  d_model: 16,
  n_layers: 2,
  n_heads: 2,
  n_kv_heads: 1,
  ffn_hidden: 40,
  context: 8,
  rope_theta: 10000,
  norm_eps: 1e-5,
};

let device: HostDevice;

async function useCuda(): Promise<CudaBackend> {
  if (!device) {
    installLeanGradients(); // as setupBackend does for every backend
    device = new HostDevice();
    registerCudaBackend(device);
    registerCudaBackend(new HostDevice()); // idempotent: the first device stays
  }
  assert.ok(await tf.setBackend('cuda'));
  assert.equal(cudaDevice(), device);
  return tf.backend() as CudaBackend;
}

function batchOf(rng: Rng, B: number) {
  const n = B * CONFIG.context;
  const ids = () => Int32Array.from({ length: n }, () => rng.int(CONFIG.vocab));
  return { inputs: ids(), targets: ids(), batch: B, context: CONFIG.context };
}

test('Reshape and Identity share the buffer; it is freed with the last tensor on it', { skip }, async () => {
  const backend = await useCuda();
  const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
  const { allocs, frees } = device;
  const inUse = device.memory().inUseBytes;
  const y = x.reshape([3, 2]);
  const z = tf.clone(x);
  assert.equal(device.allocs, allocs, 'no allocation');
  assert.equal(backend.ptr(y), backend.ptr(x));
  assert.equal(backend.ptr(z), backend.ptr(x));
  x.dispose();
  z.dispose();
  assert.equal(device.frees, frees, 'still held by y');
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4, 5, 6]);
  y.dispose();
  assert.equal(device.frees, frees + 1);
  assert.equal(device.memory().inUseBytes, inUse - 24);
});

test('after a training step and an evaluation, tensors and device memory are back to their baseline', { skip }, async () => {
  await useCuda();
  const params = initParams(CONFIG, 3);
  const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(SEED);
  const step = () => trainStep(params, CONFIG, optimizer, [batchOf(rng, 2), batchOf(rng, 1)], 1e-3, 1);
  step(); // uploads RoPE's tables, which stay for the process
  const before = { memory: tf.memory(), device: device.memory().inUseBytes, allocs: device.allocs - device.frees };
  const { loss } = step();
  assert.ok(Number.isFinite(loss));
  evaluate(params, CONFIG, batchOf(rng, 3), 2, new Uint32Array(CONFIG.vocab).fill(1));
  assert.equal(tf.memory().numTensors, before.memory.numTensors);
  assert.equal(tf.memory().numBytes, before.memory.numBytes);
  assert.equal(device.memory().inUseBytes, before.device);
  assert.equal(device.allocs - device.frees, before.allocs);
  assert.ok(device.memory().peakBytes > before.device, 'the step allocated on the device');
  tf.dispose([...params.values(), ...optimizer.moments().values()]);
});

test('AdamW updates every parameter in one device launch', { skip }, async () => {
  await useCuda();
  const params = initParams(CONFIG, 4);
  const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const grads = new Map([...params].map(([name, p]) => [name, tf.onesLike(p)]));
  device.takeProfile();
  optimizer.apply(grads, 1e-3);
  assert.equal(device.takeProfile().launches, 1);
  tf.dispose([...grads.values(), ...params.values(), ...optimizer.moments().values()]);
});

test('the unfused path (RINGLET_FUSED=0) trains and generates on cuda with nothing on the CPU fallback', { skip }, async () => {
  await useCuda();
  const before = cpuFallbackCounts();
  process.env.RINGLET_FUSED = '0';
  try {
    const params = initParams(CONFIG, 5);
    const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
    const { loss } = trainStep(params, CONFIG, optimizer, [batchOf(new Rng(SEED), 2)], 1e-3, 1);
    assert.ok(Number.isFinite(loss));
    const options = { maxTokens: 3, seed: 1, stopToken: -1, temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1 };
    assert.equal((await generate(params, CONFIG, [1, 2, 3], options)).tokens.length, 3);
    tf.dispose([...params.values(), ...optimizer.moments().values()]);
  } finally {
    delete process.env.RINGLET_FUSED;
  }
  assert.deepEqual(cpuFallbackCounts(), before);
});

test('empty tensors allocate nothing and go through kernels; strings are refused', { skip }, async () => {
  await useCuda();
  const allocs = device.allocs;
  const empty = tf.zeros([0, 3]);
  const results = [
    empty.add(tf.zeros([0, 3])),
    empty.sum(0),
    empty.reshape([3, 0]),
    tf.concat([empty, empty]),
    empty.transpose(),
  ];
  assert.deepEqual(results[1].shape, [3]);
  assert.deepEqual(Array.from(results[1].dataSync()), [0, 0, 0]);
  assert.equal(device.allocs, allocs + 1, 'only the sum over no rows has elements');
  assert.deepEqual(results[3].shape, [0, 3]);
  tf.dispose([empty, ...results]);
  assert.throws(() => tf.tensor(['a', 'b']), /cuda backend has no string tensors/);
});

test('a tensor made on another backend moves to cuda when a kernel reads it', { skip }, async () => {
  await setupBackend('cpu');
  const x = tf.tensor1d([1, -2, 3]);
  await useCuda();
  const y = x.mul(2);
  assert.deepEqual(Array.from(y.dataSync()), [2, -4, 6]);
  tf.dispose([x, y]);
});

test('disposing the backend frees every buffer; the host device refuses freed and out-of-bounds access', { skip }, () => {
  const own = new HostDevice();
  const backend = new CudaBackend(own);
  backend.makeTensorInfo([4], 'float32', new Float32Array(4));
  backend.makeTensorInfo([2, 2], 'int32');
  assert.equal(own.memory().inUseBytes, 32);
  backend.dispose();
  assert.equal(own.memory().inUseBytes, 0);
  const ptr = own.alloc(16);
  assert.throws(() => own.download(ptr, new Float32Array(5)), /outside the 4/);
  assert.throws(() => own.copyStrided(ptr, 0, [2], ptr, 0, [1], [3]), /reaches elements \[0, 4\]/);
  own.free(ptr);
  assert.throws(() => own.free(ptr), /not a live buffer/);
  assert.throws(() => own.alloc(0), /positive/);
});

test(
  'an op without a CUDA kernel runs on the CPU fallback: right answers, one warning per op, every run counted',
  { skip },
  async () => {
    await useCuda();
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof process.stderr.write;
    const before = cpuFallbackCounts();
    let sums: number[][];
    let top: { values: number[]; indices: number[] };
    try {
      sums = [0, 1].map(() => tf.tidy(() => Array.from(tf.cumsum(tf.tensor1d([1, 2, 3, 4])).dataSync())));
      top = tf.tidy(() => {
        const { values, indices } = tf.topk(tf.tensor1d([5, 1, 9, 3]), 2);
        assert.equal(indices.dtype, 'int32');
        return { values: Array.from(values.dataSync()), indices: Array.from(indices.dataSync()) };
      });
    } finally {
      process.stderr.write = write;
    }
    assert.deepEqual(sums, [
      [1, 3, 6, 10],
      [1, 3, 6, 10],
    ]);
    assert.deepEqual(top, { values: [9, 5], indices: [2, 0] });
    const warnings = written.filter((w) => w.includes('has no CUDA kernel'));
    assert.deepEqual(warnings, [
      'ringlet: Cumsum has no CUDA kernel; running it on the CPU (slow)\n',
      'ringlet: TopK has no CUDA kernel; running it on the CPU (slow)\n',
    ]);
    const after = cpuFallbackCounts();
    assert.equal(after.Cumsum - (before.Cumsum ?? 0), 2);
    assert.equal(after.TopK - (before.TopK ?? 0), 1);
  },
);

// ---- Plain kernels on fuzzed shapes against tfjs's cpu backend.

const rng = new Rng(SEED);
const randomShape = (rank: number, max = 4) => Array.from({ length: rank }, () => 1 + rng.int(max));
const values = (shape: number[], scale = 3) =>
  Float32Array.from({ length: tf.util.sizeFromShape(shape) }, () => Math.round(rng.normal() * scale * 8) / 8);
/** A shape that broadcasts to `shape`: some leading dims dropped, some dims 1. */
const broadcastable = (shape: number[]) => shape.slice(rng.int(shape.length + 1)).map((d) => (rng.int(3) === 0 ? 1 : d));
const axesOf = (rank: number) => [...Array(rank).keys()].filter(() => rng.int(2) === 0);
const permutation = (rank: number) => Array.from(rng.shuffle(Int32Array.from([...Array(rank).keys()])));

type Case = [string, () => tf.Tensor | tf.Tensor[]];

function cases(): Case[] {
  const out: Case[] = [];
  for (let trial = 0; trial < 6; trial++) {
    const shape = randomShape(rng.int(5));
    const [a, b] = [broadcastable(shape), broadcastable(shape)];
    const [av, bv] = [values(a), values(b)];
    const binaries: Array<[string, (x: tf.Tensor, y: tf.Tensor) => tf.Tensor]> = [
      ['add', tf.add],
      ['sub', tf.sub],
      ['mul', tf.mul],
      ['div', tf.div],
      ['maximum', tf.maximum],
      ['minimum', tf.minimum],
      ['equal', tf.equal],
      ['notEqual', tf.notEqual],
      ['less', tf.less],
      ['greater', tf.greater],
    ];
    for (const [name, op] of binaries) out.push([`${name} [${a}] [${b}]`, () => op(tf.tensor(av, a), tf.tensor(bv, b))]);
    out.push([`pow [${a}] [${b}]`, () => tf.pow(tf.tensor(av, a).abs().add(0.5), tf.tensor(bv, b))]);
    out.push([
      `int32 add, mul [${a}] [${b}]`,
      () => [
        tf.add(tf.tensor(av, a, 'int32'), tf.tensor(bv, b, 'int32')),
        tf.mul(tf.tensor(av, a, 'int32'), tf.tensor(bv, b, 'int32')),
      ],
    ]);

    const xShape = randomShape(1 + rng.int(4));
    const rank = xShape.length;
    const xv = values(xShape);
    const x = () => tf.tensor(xv, xShape);
    const axes = axesOf(rank);
    const keepDims = rng.int(2) === 0;
    for (const op of ['sum', 'mean', 'max', 'min', 'prod'] as const)
      out.push([
        `${op} [${xShape}] axes [${axes}] keepDims ${keepDims}`,
        () => x()[op](axes.length ? axes : undefined, keepDims),
      ]);
    out.push([`int32 sum, max [${xShape}] axes [${axes}]`, () => [x().toInt().sum(axes), x().toInt().max(axes)]]);
    const perm = permutation(rank);
    out.push([`transpose [${xShape}] [${perm}]`, () => x().transpose(perm)]);
    const begin = xShape.map((d) => rng.int(d));
    const size = xShape.map((d, i) => 1 + rng.int(d - begin[i]));
    out.push([`slice [${xShape}] at [${begin}] of [${size}]`, () => x().slice(begin, size)]);
    const axis = rng.int(rank);
    out.push([
      `concat, stack, unstack along ${axis} of [${xShape}]`,
      () => [tf.concat([x(), x().neg(), x()], axis), tf.stack([x(), x()], axis), ...tf.unstack(x(), axis)],
    ]);
    const first = rng.int(xShape[axis] + 1);
    out.push([`split [${xShape}] along ${axis} at ${first}`, () => tf.split(x(), [first, xShape[axis] - first], axis)]);
    const indices = Array.from({ length: 1 + rng.int(5) }, () => rng.int(xShape[axis]));
    out.push([`gather [${xShape}] along ${axis} [${indices}]`, () => tf.gather(x(), tf.tensor1d(indices, 'int32'), axis)]);
    const reps = xShape.map(() => 1 + rng.int(3));
    out.push([`tile [${xShape}] by [${reps}]`, () => x().tile(reps)]);
    const at = rng.int(rank + 1);
    out.push([`expandDims, squeeze [${xShape}]`, () => [x().expandDims(at), x().expandDims(0).squeeze([0])]]);
    out.push([
      `cast [${xShape}]`,
      () => [x().toInt(), x().toBool(), x().toBool().toFloat(), x().toInt().toBool(), x().greater(0).toInt()],
    ]);
    out.push([
      `unary [${xShape}]`,
      () => [
        x().neg(),
        x().exp(),
        x().abs().add(0.1).log(),
        x().abs().sqrt(),
        x().abs().add(0.1).rsqrt(),
        x().square(),
        x().abs(),
        x().sigmoid(),
        x().tanh(),
        x().relu(),
        x().add(0.01).reciprocal(),
      ],
    ]);
    out.push([`softmax, logSoftmax [${xShape}]`, () => [tf.softmax(x()), tf.logSoftmax(x())]]);
    out.push([
      `addN, fill, onesLike, zerosLike [${xShape}]`,
      () => [
        tf.addN([x(), x().neg(), x().mul(3)]),
        tf.fill(xShape, 2.5),
        tf.onesLike(x()),
        tf.zerosLike(x().toInt()),
        tf.range(0, xShape[0] * 3, 2, 'int32'),
        tf.range(5, 1, 1),
        tf.range(0.5, 3.2, 0.7),
      ],
    ]);
    const segments = 1 + rng.int(4);
    const ids = Array.from({ length: xShape[0] }, () => rng.int(segments));
    out.push([
      `unsortedSegmentSum [${xShape}] into ${segments}`,
      () => tf.unsortedSegmentSum(x(), tf.tensor1d(ids, 'int32'), segments),
    ]);
    const [m, k, n] = randomShape(3, 6);
    const mv = [values([2, m, k]), values([k, n]), values([2, n, k])];
    out.push([
      `matMul [2,${m},${k}]·[${k},${n}], batched and transposed`,
      () => [
        tf.matMul(tf.tensor(mv[0], [2, m, k]), tf.tensor(mv[1], [k, n])),
        tf.matMul(tf.tensor(mv[0], [2, m, k]), tf.tensor(mv[2], [2, n, k]), false, true),
      ],
    ]);
  }
  return out;
}

async function runAll(backend: 'cpu' | 'cuda', list: Case[]) {
  if (backend === 'cuda') await useCuda();
  else await setupBackend('cpu');
  return list.map(([, fn]) =>
    tf.tidy(() => {
      const result = fn();
      return (Array.isArray(result) ? result : [result]).map((t) => ({
        shape: t.shape,
        dtype: t.dtype,
        values: Array.from(t.dataSync() as Float32Array),
      }));
    }),
  );
}

test('plain kernels on cuda match the cpu backend on fuzzed shapes, with nothing on the CPU fallback', { skip }, async () => {
  const list = cases();
  const expected = await runAll('cpu', list);
  const before = cpuFallbackCounts();
  const actual = await runAll('cuda', list);
  assert.deepEqual(cpuFallbackCounts(), before, 'no fallback ran');
  list.forEach(([name], i) =>
    expected[i].forEach((e, j) => {
      const a = actual[i][j];
      const what = `${name}, output ${j} (seed ${SEED})`;
      assert.deepEqual([a.shape, a.dtype], [e.shape, e.dtype], what);
      const scale = Math.max(1, ...e.values.map((v) => (Number.isFinite(v) ? Math.abs(v) : 0)));
      e.values.forEach((v, at) => {
        const close = Object.is(a.values[at], v) || Math.abs(a.values[at] - v) <= 2e-6 * scale;
        assert.ok(close, `${what}: element ${at} is ${a.values[at]}, cpu gives ${v}`);
      });
    }),
  );
});
