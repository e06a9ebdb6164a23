// setupBackend: what each name selects, what it reports, and its errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { setupBackend, type BackendName } from '../kernels/backend.js';

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
const tfNodeInstalled = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');
const skipWithTfNode = { skip: tfNodeInstalled && 'tfjs-node is installed here' };

/** Runs fn and returns what it printed through console.warn (tfjs warnings go there). */
async function warningsDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => void warnings.push(args.join(' '));
  try {
    await fn();
  } finally {
    console.warn = original;
  }
  return warnings;
}

test('wasm is the default, SIMD and single-threaded, with Ringlet kernels, and switching is quiet', async () => {
  const warnings = await warningsDuring(async () => {
    const info = await setupBackend();
    assert.equal(info.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    // The native kernels add their own clause when the addon is built (kernels/native).
    assert.match(
      info.description,
      /^wasm \(SIMD, 1 thread\) \+ UnsortedSegmentSum kernel \+ transposed\/batched-matmul fast path \+ copy-free Identity( \+ native kernels \(.*\))?$/,
    );
    assert.ok(tf.getKernel('UnsortedSegmentSum', 'wasm'), 'UnsortedSegmentSum registered on wasm');
    const cpu = await setupBackend('cpu');
    assert.equal(cpu.name, 'cpu');
    assert.match(cpu.description, /^cpu \(plain JavaScript kernels, 1 thread\)( \+ native kernels \(.*\))?$/);
    assert.equal(tf.getBackend(), 'cpu');
    tf.tensor1d([1, 2]).dispose(); // the cpu backend's first write would print its tfjs-node banner
    assert.equal((await setupBackend('wasm')).name, 'wasm');
  });
  assert.deepEqual(warnings, []);
});

test('on wasm a clone shares its buffer and outlives the original', async () => {
  await setupBackend('wasm');
  const x = tf.tensor1d([1, 2, 3]);
  const buffers = tf.memory().numDataBuffers;
  const y = tf.clone(x);
  assert.equal(tf.memory().numDataBuffers, buffers, 'no second buffer');
  x.dispose();
  assert.deepEqual([...y.dataSync()], [1, 2, 3]);
  y.dispose();
  assert.equal(tf.memory().numDataBuffers, buffers - 1, 'freed with the last reference');
});

test('tensorflow backends name the missing package and how to install it', skipWithTfNode, async () => {
  await assert.rejects(setupBackend('tensorflow-gpu'), {
    message:
      'backend tensorflow-gpu needs @tensorflow/tfjs-node-gpu, which is not installed (it downloads libtensorflow ' +
      'at install time; install it on a machine with network access to storage.googleapis.com)',
  });
  await assert.rejects(
    setupBackend('tensorflow'),
    /^Error: backend tensorflow needs @tensorflow\/tfjs-node, which is not installed/,
  );
});

test('auto falls back to wasm without a GPU or a tfjs-node package, and says why in one line', skipWithTfNode, async () => {
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof process.stderr.write;
  let info;
  try {
    info = await setupBackend('auto');
  } finally {
    process.stderr.write = write;
  }
  assert.equal(info.name, 'wasm');
  assert.equal(info.precision, 'fp32');
  assert.match(info.description, /^wasm \(SIMD, 1 thread\) .*fast path.* \(auto; skipped /);
  // This machine has no GPU: cuda is skipped with the CUDA runtime's reason (kernels/cuda/addon.ts).
  assert.match(
    info.description,
    /\(auto; skipped cuda \(no CUDA device[^;]*\); tensorflow-gpu \(not installed\); tensorflow \(not installed\)\)$/,
  );
  const lines = written
    .join('')
    .split('\n')
    .filter((l) => l.includes('backend auto'));
  assert.equal(lines.length, 1, written.join(''));
  assert.match(lines[0], /^ringlet: backend auto chose wasm; skipped cuda \(no CUDA device/);
});

test('--backend cuda without a GPU is a clear error', async () => {
  await assert.rejects(setupBackend('cuda'), /^Error: backend cuda: no CUDA device \(.+\)/);
});

test('an unknown backend name is rejected with the valid names', async () => {
  await assert.rejects(setupBackend('webgpu' as BackendName), {
    message: 'unknown backend "webgpu"; expected one of wasm, cpu, cuda, tensorflow, tensorflow-gpu, auto',
  });
});
