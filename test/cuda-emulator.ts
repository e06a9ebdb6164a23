// Shared by the tests that run the CUDA addon on the CPU emulator (kernels/cuda/emu): where its build is, the
// environment that makes kernels/cuda/addon.ts load it, and whether it is there. Without it the tests are
// skipped with the build's reason, except with CI=true, where a missing build registers a failing test.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cudaBuildStatus } from '../kernels/cuda/addon.js';

const build = path.resolve(import.meta.dirname, '..', 'kernels', 'cuda', 'build');
export const emulatedAddon = path.join(build, 'ringlet_cuda_emu.node');

/** RINGLET_CUDA_ADDON and RINGLET_CUBLAS_DIR for the emulated addon and its emulated cuBLAS. */
export const emulatorEnv = { RINGLET_CUDA_ADDON: emulatedAddon, RINGLET_CUBLAS_DIR: path.join(build, 'emu-cublas') };

/** `false` when the emulator is built, else the reason to skip; under CI, also a failing test that says why. */
export function emulatorSkip(): string | false {
  const status = cudaBuildStatus(emulatedAddon);
  const problem = !status?.emulated
    ? 'the CUDA emulator was not built (no emulated status in kernels/cuda/build/status.json; run npm install)'
    : !status.emulated.ok
      ? `the CUDA emulator did not build: ${status.emulated.detail}`
      : !existsSync(emulatedAddon)
        ? `no ${emulatedAddon}`
        : '';
  if (problem && /^(true|1)$/i.test(process.env.CI ?? ''))
    test('the CUDA emulator is built (required with CI=true)', () => {
      assert.fail(`${problem}. With CI=true the emulated CUDA addon must build and its kernels pass.`);
    });
  return problem || false;
}
