// `ringlet train --backend cuda` end to end on the CUDA emulator (kernels/cuda/emu): the real addon, the cuda
// backend and the CLI, with no GPU. One process trains and its summary names the device and precision; then
// `--workers` with no value on a machine of two (emulated) GPUs starts one worker per GPU, each pinned to its own
// with CUDA_VISIBLE_DEVICES, and their gradients go device → host → the gRPC ring → device, leaving every
// rank's weights bit-identical.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';
import { TINY_MODEL, prepareTinyDataset } from './tiny-dataset.js';
import { emulatorEnv, emulatorSkip } from './cuda-emulator.js';

const root = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-cuda-train-'));
const dataset = path.join(work, 'data');
const configFile = path.join(work, 'config.json');
const skip = emulatorSkip();
after(() => fs.rmSync(work, { recursive: true, force: true }));

before(async () => {
  if (skip) return;
  await prepareTinyDataset(root, work);
  fs.writeFileSync(
    configFile,
    JSON.stringify({ model: TINY_MODEL, training: { batch_size: 4, eval_windows: 8, eval_every: 4, log_every: 1 } }),
  );
});

/** Runs the CLI to its end on the emulator; the JSON summary and the JSON log records of stderr. */
function ringlet(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'cli/ringlet.ts'), ...args], {
    cwd: root,
    env: { ...process.env, ...emulatorEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const logs: Record<string, unknown>[] = [];
  child.stdout.on('data', (d) => (stdout += d));
  readline.createInterface({ input: child.stderr }).on('line', (line) => {
    stderr += `${line}\n`;
    try {
      logs.push(JSON.parse(line));
    } catch {
      /* not a log record */
    }
  });
  return new Promise<{ code: number | null; summary: Record<string, any>; logs: typeof logs; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, summary: JSON.parse(stdout.trim().split('\n').at(-1) || '{}'), logs, stderr })),
  );
}

const common = () => ['--config', configFile, '--data', dataset, '--lr', '0.01', '--warmup-steps', '2', '--max-steps', '8'];

test('ringlet train --backend cuda --precision bf16 trains on the device and its summary names it', { skip }, async () => {
  const r = await ringlet([
    'train',
    ...common(),
    '--out',
    path.join(work, 'one'),
    '--backend',
    'cuda',
    '--precision',
    'bf16',
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.summary.backend, 'cuda');
  assert.equal(r.summary.device, 'Ringlet CUDA emulator (CPU)');
  assert.equal(r.summary.precision, 'bf16');
  assert.equal(r.summary.step, 8);
  assert.ok(Number.isFinite(r.summary.val_loss) && r.summary.val_loss < r.summary.unigram_loss + 1, JSON.stringify(r.summary));
  assert.doesNotMatch(r.stderr, /has no CUDA kernel/, 'no op ran on the CPU fallback');
});

test('ringlet train --workers on two GPUs: a worker per GPU, each pinned to its own, ranks identical', { skip }, async () => {
  const r = await ringlet(
    [
      'train',
      ...common(),
      '--out',
      path.join(work, 'two'),
      '--backend',
      'cuda',
      '--checkpoint-every',
      '4',
      '--workers',
      '--json',
    ],
    { RINGLET_CUDA_EMU_DEVICES: '2' },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.summary.workers, 2);
  assert.equal(r.summary.backend, 'cuda');
  assert.equal(r.summary.ranks_identical, true, 'the ring kept the replicas bit-identical');
  const joined = r.logs.filter((l) => l.msg === 'joined');
  assert.deepEqual(
    joined.map((l) => l.device).sort(),
    ['Ringlet CUDA emulator (CPU) #0', 'Ringlet CUDA emulator (CPU) #1'],
    'each worker sees one GPU, a different one',
  );
  assert.ok(joined.every((l) => l.backend === 'cuda'));
});
