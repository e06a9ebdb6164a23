// The CUDA addon's own kernels (kernels/cuda/src), compiled by g++ against the CPU emulator (kernels/cuda/emu,
// build/ringlet_cuda_emu.node with the emulated cuBLAS of build/emu-cublas), run through the normal loader:
// the emulator first proves it catches the misuses it claims to; then every GPU kernel check passes
// against the float64 references, attention at each head-size template, and the golden fixture trains on
// the cuda backend in fp32 and TF32 within the GPU check's tolerances, with no CPU fallback and device
// memory freed but for RoPE's tables. Without the emulator's build the tests are skipped with the build's reason,
// except with CI=true, where a missing build fails.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  GOLDEN_FIXTURE,
  GOLDEN_MODEL,
  GOLDEN_TOLERANCES,
  compareGolden,
  runGolden,
  type GoldenRun,
} from '../bench/gpu/golden-run.js';
import { checkKernels } from '../bench/gpu/kernel-checks.js';
import { setupBackend } from '../kernels/backend.js';
import { openCudaDevice } from '../kernels/cuda/addon.js';
import { cpuFallbackCounts } from '../kernels/cuda/backend.js';
import type { Device } from '../kernels/cuda/device.js';
import * as reference from '../kernels/reference.js';
import { Rng } from '../lm/rng.js';
import { emulatorEnv, emulatorSkip } from './cuda-emulator.js';

const root = path.resolve(import.meta.dirname, '..');
const emu = path.join(root, 'kernels', 'cuda', 'emu');
// Read by kernels/cuda/addon.ts when the device is first opened.
Object.assign(process.env, emulatorEnv);
const skip = emulatorSkip();

const work = mkdtempSync(path.join(tmpdir(), 'ringlet-cuda-emu-'));
after(() => rmSync(work, { recursive: true, force: true }));

test(
  'the emulator computes shuffles, barriers and WMMA tiles as CUDA does and reports each misuse by kernel, thread and line',
  { skip },
  () => {
    const exe = path.join(work, 'selftest');
    const include = path.join(emu, 'include');
    const compiled = spawnSync(
      'g++',
      [
        '-std=c++20',
        '-O2', // as the addon's emulated build: a lane's data must outlive the warp operation it takes part in
        '-pthread',
        '-Wall',
        '-Wextra',
        '-Werror',
        '-Wno-unknown-pragmas',
        `-I${include}`,
        '-x',
        'c++',
      ].concat(
        ['selftest.cu', 'runtime.cc', 'simt.cc'].map((f) => path.join(emu, f)),
        ['-o', exe],
      ),
      { encoding: 'utf8' },
    );
    assert.equal(compiled.status, 0, compiled.stderr);
    const run = (name: string) => spawnSync(exe, [name], { encoding: 'utf8' });
    for (const name of ['shuffles', 'block_sum']) {
      const r = run(name);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.equal(r.stdout, `${name}: ok\n`);
    }
    assert.match(
      run('divergent_shuffle').stdout,
      /unspecified launch failure \[emulator: kernel divergent_shuffle, block \(\d, 0, 0\), thread \(\d+, 0, 0\): a warp operation at selftest\.cu:\d+ names lanes that have returned\]/,
    );
    assert.match(
      run('divergent_barrier').stdout,
      /kernel divergent_barrier, .*: waits at __syncthreads at selftest\.cu:\d+ while other threads wait at selftest\.cu:\d+/,
    );
    // WMMA: TF32 and bf16 tiles against float64 on the operands rounded as the hardware rounds them (TF32 ties
    // away from zero, bf16 ties to even), and each rule of load_matrix_sync the CUDA guide states.
    const wmma = run('wmma');
    assert.equal(wmma.status, 0, wmma.stdout + wmma.stderr);
    assert.equal(wmma.stdout, 'wmma_products: ok\n');
    const misuse = (how: number) => run(`wmma_misuse_${how}`).stdout;
    const at = 'at selftest\\.cu:\\d+';
    assert.match(
      misuse(0),
      new RegExp(`kernel wmma_misuse_0, .*: wmma::load_matrix_sync with a pointer that is not 256-bit aligned ${at}`),
    );
    assert.match(
      misuse(1),
      new RegExp(`kernel wmma_misuse_1, .*: wmma::load_matrix_sync with ldm 6, not a multiple of 4 elements ${at}`),
    );
    assert.match(
      misuse(2),
      new RegExp(`kernel wmma_misuse_2, .*: (returned while the lanes of its warp wait for it|a warp operation) ${at}`),
    );
    assert.match(
      misuse(3),
      new RegExp(`kernel wmma_misuse_3, .*: wmma::load_matrix_sync with another pointer, ldm or layout than lane 0's ${at}`),
    );
    assert.match(run('too_many_threads').stdout, /invalid configuration argument .*block \(2048, 1, 1\)/);
    const overrun = run('overrun');
    assert.equal(overrun.signal, 'SIGSEGV');
    assert.match(
      overrun.stderr,
      /memory fault in kernel overrun, block \(0, 0, 0\), thread \((\d+), 0, 0\): address 0x[0-9a-f]+ is \d+ bytes past the end of the device buffer of 16384 bytes/,
    );
  },
);

let device: Device | undefined;
const emulated = (): Device => (device ??= openCudaDevice());

test('the emulated device is the addon with the emulator and its cuBLAS', { skip }, () => {
  const info = emulated().info();
  assert.equal(info.name, 'Ringlet CUDA emulator (CPU)');
  assert.equal(info.computeCapability, '9.0');
  assert.match(info.cublas, /emu-cublas\/libcublas\.so\.13/);
});

test('every GPU kernel check passes on the emulated device', { skip }, () => {
  const seed = Date.now() % 1_000_000;
  const checks = checkKernels(emulated(), seed, 'small');
  const failed = checks.filter((c) => !c.ok);
  assert.ok(checks.length > 200, `${checks.length} checks`);
  assert.deepEqual(failed, [], `seed ${seed}: ${failed.map((c) => `${c.kernel} ${c.shape}: ${c.error}`).join('; ')}`);
  assert.equal(emulated().memory().inUseBytes, 0, 'every buffer of the checks is freed');
});

test('attention at each head-size template (hd up to 32, 64, 128, 256) matches the reference', { skip }, () => {
  const d = emulated();
  const rng = new Rng(5);
  const normal = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  for (const [B, T, H, Hkv, hd] of [
    [1, 70, 2, 1, 16],
    [1, 65, 4, 2, 64],
    [1, 40, 2, 2, 100],
    [2, 33, 2, 1, 256],
  ]) {
    const ptrs: number[] = [];
    const up = (x: Float32Array) => {
      const p = d.alloc(x.length * 4);
      ptrs.push(p);
      d.upload(p, x);
      return p;
    };
    const out = (n: number) => up(new Float32Array(n).fill(NaN));
    const down = (p: number, n: number) => {
      const a = new Float32Array(n);
      d.download(p, a);
      return a;
    };
    const [q, k, v, dout] = [normal(B * T * H * hd), normal(B * T * Hkv * hd), normal(B * T * Hkv * hd), normal(B * T * H * hd)];
    const [o, lse, dq, dk, dv] = [out(q.length), out(B * H * T), out(q.length), out(k.length), out(v.length)];
    const [pq, pk, pv] = [up(q), up(k), up(v)];
    d.attnFwd(pq, pk, pv, o, lse, B, T, H, Hkv, hd);
    d.attnBwd(pq, pk, pv, o, lse, up(dout), dq, dk, dv, B, T, H, Hkv, hd);
    const want = reference.attention(q, k, v, dout, B, T, H, Hkv, hd);
    const got = {
      o: down(o, q.length),
      lse: down(lse, B * H * T),
      dq: down(dq, q.length),
      dk: down(dk, k.length),
      dv: down(dv, v.length),
    };
    for (const name of ['o', 'lse', 'dq', 'dk', 'dv'] as const) {
      const error = reference.relativeError(got[name], want[name]);
      assert.ok(error <= 1e-5, `hd${hd} ${name}: ${error}`);
    }
    ptrs.forEach((p) => d.free(p));
  }
});

test(
  'the golden fixture trains on the cuda backend over the emulated device, fp32 and TF32 within their tolerances',
  { skip },
  async () => {
    const fixture = JSON.parse(readFileSync(GOLDEN_FIXTURE, 'utf8')) as GoldenRun;
    for (const precision of ['fp32', 'tf32'] as const) {
      const backend = await setupBackend('cuda', { precision });
      assert.match(backend.description, /Ringlet CUDA emulator \(CPU\)/);
      const { beyond, worst } = compareGolden(fixture, runGolden(), GOLDEN_TOLERANCES[precision]);
      assert.deepEqual(beyond, [], `${precision}: worst ${JSON.stringify(worst)}`);
      assert.deepEqual(cpuFallbackCounts(), {}, 'no op ran on the CPU fallback');
      assert.equal(tf.memory().numTensors, 0, 'runGolden leaves no tensor behind');
      // What stays is RoPE's cos and sin tables, [context, hd/2] each, uploaded once for the process.
      const { context, d_model, n_heads } = GOLDEN_MODEL;
      assert.equal(
        emulated().memory().inUseBytes,
        2 * context * (d_model / n_heads / 2) * 4,
        'device memory holds only the RoPE tables',
      );
    }
  },
);
