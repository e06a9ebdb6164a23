// `ringlet bench train --backend cuda` on the CUDA emulator (kernels/cuda/emu): its cuda-only figures (device,
// precision, peak_tflops, cpu_fallback_ops) from the code a GPU run takes. The emulator is no GPU the datasheet
// table knows: its peak and MFU are null, which is what a GPU missing from the table also gets.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { emulatorEnv, emulatorSkip } from './cuda-emulator.js';

const root = path.resolve(import.meta.dirname, '..');

test(
  'bench train on the cuda backend reports the device, precision, its peak and the CPU fallbacks',
  { skip: emulatorSkip() },
  () => {
    const args = ['bench', 'train', '--preset', 'nano', '--backend', 'cuda', '--precision', 'bf16'];
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(root, 'cli/ringlet.ts'),
        ...args,
        '--batch-size',
        '2',
        '--steps',
        '2',
        '--warmup-steps',
        '1',
        '--json',
      ],
      { cwd: root, encoding: 'utf8', env: { ...process.env, ...emulatorEnv } },
    );
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.equal(s.backend, 'cuda');
    assert.equal(s.device, 'Ringlet CUDA emulator (CPU)');
    assert.equal(s.precision, 'bf16');
    assert.equal(s.peak_tflops, null);
    assert.equal(s.mfu, null);
    assert.equal(s.cpu_fallback_ops, 0, 'a training step runs every op on the device');
    assert.ok(s.tokens_per_s > 0);
    assert.ok(!('peak_gflops_per_core' in s), 'no CPU peak is measured for a GPU run');
  },
);
