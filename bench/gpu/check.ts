// The GPU check (issue 13 item 7), bundled by scripts/gpu-pack.sh into one .mjs that plain `node` runs with no
// node_modules, and run by scripts/gpu-check.sh on a GPU machine. Parts, each guarded (a failure is recorded
// and the next part runs) and each written to the results file as soon as it ends, so a crash keeps the rest:
//   kernels     every Device kernel against its float64 reference (bench/gpu/kernel-checks.ts)
//   golden      the whole model against test/fixtures/golden-step.json, fp32 (judged) and tf32 (reported)
//   gemm        a large GEMM's TFLOP/s per precision: the ceiling MFU is also taken against
//   throughput  presets × tokens per step × precisions on the cuda backend (bench/gpu/throughput.ts), with the
//               fused attention kernels, then with attention as the TensorFlow.js composition on cuBLAS
//               (RINGLET_ATTENTION=plain): two versions of a kernel, picked by measurement
//   peers       the PyTorch peer (bench/peers/torch_train.py) on the same cases, eager and torch.compile
// A run adds its parts to the results file it is given (the peers run in a second process, after Node's
// device memory is released). Every part starts only while the deadline allows; cases that do not fit are
// listed as skipped. The device is the CUDA addon's; RINGLET_CUDA_ADDON picks the build, and scripts/gpu-check.sh
// --dry gives the one built for the CPU emulator (kernels/cuda/emu), which is how CI proves the script and bundle.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { openCudaDevice } from '../../kernels/cuda/addon.js';
import type { Device, Precision } from '../../kernels/cuda/device.js';
import { setupBackend } from '../../kernels/backend.js';
import { writeFileAtomic } from '../../lm/atomic-write.js';
import { presetConfig } from '../../lm/model-config.js';
import { datasheetTflops } from '../../observability/mfu.js';
import { GOLDEN_FIXTURE, GOLDEN_TOLERANCES, compareGolden, runGolden, type GoldenRun } from './golden-run.js';
import { KERNEL_TOLERANCE, checkKernels, type KernelCheckSize } from './kernel-checks.js';
import { measureGemm, measureThroughput, type PeakTflops } from './throughput.js';
import { runPeers } from './peers.js';

const PARTS = ['kernels', 'golden', 'gemm', 'throughput', 'peers'] as const;
type Part = (typeof PARTS)[number];

const { values: o } = parseArgs({
  options: {
    results: { type: 'string' },
    parts: { type: 'string', default: PARTS.join(',') },
    deadline: { type: 'string' }, // seconds since the epoch; the default is --budget-s from now
    'budget-s': { type: 'string', default: '300' },
    'kernel-sizes': { type: 'string', default: 'full' },
    seed: { type: 'string' },
    fixture: { type: 'string', default: GOLDEN_FIXTURE },
    presets: { type: 'string', default: 'micro,mini,small' },
    tokens: { type: 'string', default: '32768,65536' },
    precisions: { type: 'string', default: 'tf32,bf16' },
    attention: { type: 'string', default: 'fused,plain' }, // lm/ops.ts fusedAttentionActive
    'gemm-size': { type: 'string', default: '8192' },
    warmup: { type: 'string', default: '3' },
    steps: { type: 'string', default: '10' },
    profiled: { type: 'string', default: '3' },
    'peer-device': { type: 'string', default: 'cuda' },
    'peer-modes': { type: 'string', default: 'eager,reduce-overhead,max-autotune-no-cudagraphs' },
    'peer-timeout-s': { type: 'string', default: '200' },
  },
  strict: true,
});
if (!o.results) throw new Error('--results FILE is required');
const resultsFile = o.results;
const deadline = o.deadline ? Number(o.deadline) * 1000 : Date.now() + Number(o['budget-s']) * 1000;
const list = (s: string) => s.split(',').filter(Boolean);
const numbers = (s: string) => list(s).map(Number);
const parts = list(o.parts) as Part[];
for (const p of parts) if (!PARTS.includes(p)) throw new Error(`unknown part "${p}"; expected some of ${PARTS.join(', ')}`);
const precisions = list(o.precisions) as Precision[];
const secondsLeft = () => Math.round((deadline - Date.now()) / 1000);

/** What a part found: its verdict, and its details. */
interface PartOutcome {
  status: 'ok' | 'failed' | 'error' | 'skipped';
  error?: string;
  [detail: string]: unknown;
}
type PartResult = PartOutcome & { seconds: number };
interface Results {
  schema: 'ringlet-gpu-check/1';
  device?: ReturnType<Device['info']>;
  node: string;
  tolerances: { kernels: typeof KERNEL_TOLERANCE; golden: typeof GOLDEN_TOLERANCES };
  parts: Partial<Record<Part, PartResult>>;
}

const results: Results = existsSync(resultsFile)
  ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as Results)
  : {
      schema: 'ringlet-gpu-check/1',
      node: process.version,
      tolerances: { kernels: KERNEL_TOLERANCE, golden: GOLDEN_TOLERANCES },
      parts: {},
    };

const log = (line: string) => process.stderr.write(`[gpu-check ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** Runs one part unless the deadline has passed; records what it returned, or its error, and saves. */
async function part(name: Part, body: () => Promise<PartOutcome> | PartOutcome) {
  if (!parts.includes(name)) return;
  const started = Date.now();
  let result: PartOutcome;
  if (secondsLeft() <= 0) result = { status: 'skipped', error: 'the time budget ran out before it started' };
  else {
    log(`${name}: starting (${secondsLeft()} s left)`);
    try {
      result = await body();
    } catch (err) {
      result = { status: 'error', error: (err as Error).stack ?? String(err) };
    }
  }
  results.parts[name] = { ...result, seconds: (Date.now() - started) / 1000 };
  log(`${name}: ${result.status}${result.error ? ` (${result.error.split('\n')[0]})` : ''}`);
  await writeFileAtomic(resultsFile, JSON.stringify(results, null, 2) + '\n');
}

// ---- The device, and the cuda backend on it.
let opened: Device | null = null;
function device(): Device {
  if (opened) return opened;
  const d = openCudaDevice();
  results.device = d.info();
  return (opened = d);
}
async function useCudaBackend(precision: Precision): Promise<Device> {
  await setupBackend('cuda', { precision, device: device() });
  return device();
}

/** What MFU divides by in a precision: this GPU's datasheet peak (observability/mfu.ts), and the GEMM measured here. */
const peakTflops = (precision: Precision): PeakTflops => ({
  datasheet: datasheetTflops(results.device?.name ?? '', precision) ?? undefined,
  gemm: (results.parts.gemm?.tflops as Partial<Record<Precision, number>> | undefined)?.[precision],
});

await part('kernels', () => {
  const seed = o.seed ? Number(o.seed) : Date.now() % 1_000_000;
  const checks = checkKernels(device(), seed, o['kernel-sizes'] as KernelCheckSize);
  const failed = checks.filter((c) => !c.ok);
  const leaked = device().memory().inUseBytes;
  return {
    status: failed.length === 0 && leaked === 0 ? 'ok' : 'failed',
    seed,
    passed: checks.length - failed.length,
    failed: failed.length,
    device_bytes_in_use_after: leaked,
    checks,
  };
});

await part('golden', async () => {
  const fixture = JSON.parse(readFileSync(o.fixture, 'utf8')) as GoldenRun;
  const judged: Record<string, unknown> = {};
  let matches = true;
  for (const precision of ['fp32', 'tf32'] as const) {
    if (secondsLeft() <= 0) break;
    await useCudaBackend(precision);
    const { matches: ok, worst, beyond } = compareGolden(fixture, runGolden(), GOLDEN_TOLERANCES[precision]);
    judged[precision] = { matches: ok, worst, beyond: beyond.slice(0, 20) };
    if (precision === 'fp32') matches = ok; // the verdict; TF32 is reported against its own stated tolerance
  }
  return { status: matches ? 'ok' : 'failed', tensors_left: tf.memory().numTensors, ...judged };
});

await part('gemm', () => {
  const n = Number(o['gemm-size']);
  const tflops: Partial<Record<Precision, number>> = {};
  for (const precision of ['fp32', 'tf32', 'bf16'] as const) tflops[precision] = measureGemm(device(), n, precision, 10);
  return { status: 'ok', size: n, tflops };
});

await part('throughput', async () => {
  const cases: unknown[] = [];
  const skipped: string[] = [];
  for (const attention of list(o.attention))
    for (const precision of precisions)
      for (const preset of list(o.presets))
        for (const tokens of numbers(o.tokens)) {
          const name = `${preset} ${tokens} tokens ${precision} ${attention} attention`;
          if (secondsLeft() <= 0) {
            skipped.push(name);
            continue;
          }
          log(`throughput: ${name}`);
          if (attention === 'plain') process.env.RINGLET_ATTENTION = 'plain';
          try {
            const d = await useCudaBackend(precision);
            const peak = peakTflops(precision);
            const steps = { warmup: Number(o.warmup), timed: Number(o.steps), profiled: Number(o.profiled) };
            cases.push({ ...measureThroughput(d, { preset, tokensPerStep: tokens, precision }, steps, peak), attention });
          } catch (err) {
            log(`throughput: ${name} failed: ${(err as Error).message}`);
            cases.push({ preset, tokens_per_step: tokens, precision, attention, error: (err as Error).message });
          } finally {
            delete process.env.RINGLET_ATTENTION;
          }
        }
  const errors = cases.filter((c) => 'error' in (c as object)).length;
  return { status: errors ? 'failed' : 'ok', cases, skipped };
});

await part('peers', () => {
  const peerDevice = o['peer-device'] as 'cuda' | 'cpu';
  const { cases, skipped } = runPeers({
    device: peerDevice,
    presets: list(o.presets).map((name) => ({ name, config: presetConfig(name) })),
    tokens: numbers(o.tokens),
    precisions: peerDevice === 'cpu' ? ['fp32'] : precisions,
    modes: list(o['peer-modes']),
    warmup: Number(o.warmup),
    steps: Number(o.steps),
    deadline,
    timeoutS: Number(o['peer-timeout-s']),
    peak: peakTflops,
    log,
  });
  const errors = cases.filter((c) => 'error' in c).length;
  return { status: errors ? 'failed' : 'ok', cases, skipped };
});

process.exit(0); // the device and tfjs hold no work worth waiting for
