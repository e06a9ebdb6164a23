// The GPU check end to end on this machine's CPU: scripts/gpu-pack.sh builds the pack (the esbuild bundle of
// bench/gpu/check.ts, the xz-compressed Node, the addons), and scripts/gpu-check.sh --dry runs every part from
// it on the CUDA addon built for the CPU emulator (kernels/cuda/emu, with its emulated cuBLAS), the PyTorch peer
// on the CPU. What runs on a GPU is the same bundle, script and addon sources built by nvcc; this proves they
// run, write results.json as stated, and that the kernel checks cover every kernel of the Device interface.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { peerOrder } from '../bench/gpu/peers.js';
import { presetConfig } from '../lm/model-config.js';

const root = path.resolve(import.meta.dirname, '..');
const venvPython = path.join(root, '.venv', 'bin', 'python');

// Every kernel method of kernels/cuda/device.ts: each must have at least one check.
const DEVICE_KERNELS = [
  'fill',
  'copyStrided',
  'binary',
  'unary',
  'cast',
  'reduce',
  'addN',
  'softmax',
  'gather',
  'unsortedSegmentSum',
  'gemm',
  'rmsnormFwd',
  'rmsnormBwd',
  'swigluFwd',
  'swigluBwd',
  'rope',
  'attnFwd',
  'attnBwd',
  'linearXent',
  'adamw',
];

test(
  'gpu-pack and gpu-check --dry: every part runs from the pack and passes on the emulated CUDA device',
  { timeout: 300_000 },
  () => {
    const work = mkdtempSync(path.join(tmpdir(), 'ringlet-gpu-check-'));
    try {
      const pack = path.join(work, 'pack');
      const packed = spawnSync('bash', [path.join(root, 'scripts/gpu-pack.sh'), pack], { encoding: 'utf8' });
      assert.equal(packed.status, 0, packed.stderr);
      const files = readdirSync(pack);
      for (const f of ['check.mjs', 'report.mjs', 'node.xz', 'ringlet_cuda.node', 'ringlet_cuda_emu.node', 'emu-cublas'])
        assert.ok(files.includes(f), `the pack has ${f}`);
      const bytes = Number(spawnSync('du', ['-sb', pack], { encoding: 'utf8' }).stdout.split('\t')[0]);
      assert.ok(bytes < 40 * 2 ** 20, `the pack is ${bytes} bytes`);
      assert.ok(
        statSync(path.join(pack, 'check.mjs')).size < 10 * 2 ** 20,
        'the bundle holds TensorFlow.js, not the wasm binaries',
      );

      const out = path.join(work, 'out');
      const run = spawnSync('bash', [path.join(root, 'scripts/gpu-check.sh'), out, '--dry'], {
        encoding: 'utf8',
        env: {
          ...process.env,
          RINGLET_GPU_PACK: pack,
          ...(existsSync(venvPython) ? { RINGLET_PEER_PYTHON: venvPython } : {}),
        },
      });
      const log = readFileSync(path.join(out, 'gpu-check.log'), 'utf8');
      assert.equal(run.status, 0, log.slice(-3000));
      assert.match(log, /node v20\./);
      assert.match(log, /kernels +ok/);
      // The Markdown for bench/README.md: the goals' verdicts, then a table per part.
      const report = readFileSync(path.join(out, 'report.md'), 'utf8');
      assert.match(report, /^\*\*Ringlet CUDA emulator \(CPU\)\*\*/);
      assert.match(report, /\| every kernel within tolerance \| \d+ passed, 0 failed \| met \|/);
      assert.match(
        report,
        /\| the whole model matches the golden fixture \(fp32\) \| worst relative deviation: loss .* \| met \|/,
      );
      assert.match(report, /\| nano \| 512 \| tf32 \| plain \| [\d,]+ \|/);
      assert.match(report, /PyTorch peer/);

      const results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
      assert.equal(results.schema, 'ringlet-gpu-check/1');
      assert.equal(results.device.name, 'Ringlet CUDA emulator (CPU)');
      assert.deepEqual(Object.keys(results.parts), ['kernels', 'golden', 'gemm', 'throughput', 'peers']);
      for (const [name, part] of Object.entries<{ status: string }>(results.parts)) assert.equal(part.status, 'ok', name);

      const { kernels, golden, gemm, throughput, peers } = results.parts;
      assert.equal(kernels.failed, 0);
      assert.ok(kernels.passed > 200, `${kernels.passed} checks`);
      assert.equal(kernels.device_bytes_in_use_after, 0, 'every buffer of the checks is freed');
      for (const name of DEVICE_KERNELS)
        assert.ok(
          kernels.checks.some((c: { kernel: string }) => c.kernel.startsWith(name)),
          `a check of ${name}`,
        );
      for (const precision of ['fp32', 'tf32', 'bf16'])
        assert.ok(kernels.checks.some((c: { kernel: string }) => c.kernel === `gemm ${precision}`));
      // fp32 is the verdict: the emulated device sums in other orders than the CPU path that wrote the fixture.
      assert.equal(golden.fp32.matches, true, JSON.stringify(golden.fp32.worst));
      assert.ok(golden.fp32.worst.loss > 0, 'a device that is not the CPU path, so not bit-identical');
      assert.equal(golden.tensors_left, 0);
      assert.ok(gemm.tflops.fp32 > 0 && gemm.tflops.bf16 > 0);

      assert.deepEqual(
        throughput.cases.map((c: { preset: string; tokens_per_step: number; attention: string }) => [
          c.preset,
          c.tokens_per_step,
          c.attention,
        ]),
        [
          ['nano', 256, 'fused'],
          ['nano', 512, 'fused'],
          ['nano', 256, 'plain'],
          ['nano', 512, 'plain'],
        ],
      );
      for (const c of throughput.cases) {
        assert.ok(c.tokens_per_s > 0 && c.tflops > 0 && c.mfu_vs_gemm > 0);
        assert.ok(c.gpu_idle_share >= 0 && c.gpu_idle_share < 1);
        assert.ok(c.peak_memory_bytes > 0 && c.launches_per_step > 0);
        assert.equal(c.cpu_fallback_ops_per_step, 0, JSON.stringify(c.cpu_fallback_by_op));
        assert.ok(Number.isFinite(c.last_loss));
      }
      assert.deepEqual(throughput.skipped, []);
      assert.equal(peers.cases.length, 2);
      for (const c of peers.cases) assert.ok(c.tokens_per_s_median > 0 && c.device === 'cpu' && c.attention === 'sdpa');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  },
);

test("the peers' order puts the largest batch first, eager before each compile mode, larger presets first", () => {
  const order = peerOrder({
    presets: ['micro', 'small'].map((name) => ({ name, config: presetConfig(name) })),
    tokens: [32768, 65536],
    precisions: ['tf32', 'bf16'],
    modes: ['eager', 'reduce-overhead'],
  }).map((c) => `${c.preset} ${c.tokens} ${c.precision} ${c.mode}`);
  assert.deepEqual(order.slice(0, 6), [
    'small 65536 tf32 eager',
    'small 65536 bf16 eager',
    'micro 65536 tf32 eager',
    'micro 65536 bf16 eager',
    'small 65536 tf32 reduce-overhead',
    'small 65536 bf16 reduce-overhead',
  ]);
  assert.equal(order.length, 16);
  assert.equal(order[8], 'small 32768 tf32 eager');
});
