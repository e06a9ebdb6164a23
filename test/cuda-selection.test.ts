// Choosing the cuda backend on a machine without a GPU (CI's): the CLI says so and why, in one line, instead
// of crashing; and the GPU bookkeeping of multi-worker jobs (kernels/cuda/gpus.ts) pins one worker per GPU.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { visibleGpus, workerEnv } from '../kernels/cuda/gpus.js';
import { cudaDeviceCount } from '../kernels/cuda/addon.js';

const root = path.resolve(import.meta.dirname, '..');
const cli = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'cli/ringlet.ts'), ...args], { encoding: 'utf8', cwd: root });

test('this machine has no GPU: the CUDA runtime counts 0 devices and no worker is pinned', () => {
  assert.equal(cudaDeviceCount(), 0);
  assert.deepEqual(visibleGpus(), []);
});

test('bench train --backend cuda without a GPU exits with a clear error naming the reason', () => {
  const r = cli(['bench', 'train', '--preset', 'nano', '--backend', 'cuda', '--steps', '1', '--json']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /backend cuda: no CUDA device \(.+\)/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace'); // an error message, not a crash
});

test('a bad --precision is refused before anything runs', () => {
  const r = cli(['bench', 'train', '--preset', 'nano', '--backend', 'cuda', '--precision', 'fp8']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--precision takes fp32, tf32, bf16 \(got "fp8"\)/);
});

test('workers get the GPUs CUDA_VISIBLE_DEVICES lists, else 0..n-1, round robin beyond them', () => {
  assert.deepEqual(
    visibleGpus({}, () => 4),
    ['0', '1', '2', '3'],
  );
  assert.deepEqual(
    visibleGpus({ CUDA_VISIBLE_DEVICES: '2, 5' }, () => 2),
    ['2', '5'],
  );
  assert.deepEqual(
    visibleGpus({ CUDA_VISIBLE_DEVICES: 'GPU-8f3a,GPU-11c2' }, () => 2),
    ['GPU-8f3a', 'GPU-11c2'],
  );
  assert.deepEqual(
    visibleGpus({ CUDA_VISIBLE_DEVICES: '0,1' }, () => 0),
    [],
  );
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((slot) => workerEnv({ PATH: '/bin' }, ['3', '7'], slot)),
    ['3', '7', '3', '7', '3'].map((gpu) => ({ PATH: '/bin', CUDA_VISIBLE_DEVICES: gpu })),
  );
  assert.deepEqual(workerEnv({ PATH: '/bin' }, [], 0), { PATH: '/bin' });
});
