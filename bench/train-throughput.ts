// Training throughput of a preset: tokens/s and achieved GFLOP/s (6N + 12·L·d·T per token, PaLM appendix B),
// MFU against this machine's measured FMA peak (bench/peak.ts), peak RSS, time per kernel (one profiled
// step), on random tokens (throughput does not depend on the text). With --workers N, N worker threads,
// one per core, each train on their own batches and average gradients through shared memory before every
// AdamW step. With --peer, the PyTorch peer (bench/peers/torch_train.py, same architecture and batch, one
// thread) runs in the same invocation, so the ratio is measured side by side.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { initParams } from '../lm/model.js';
import { flopsPerToken, parameterCount, presetConfig, type ModelConfig, modelDimensions } from '../lm/model-config.js';
import { Rng } from '../lm/rng.js';
import { AdamW } from '../train/optimizer.js';
import { applyGradients, computeGradients, trainStep } from '../train/step.js';
import type { Batch } from '../train/batches.js';
import { measurePeak } from './peak.js';

export interface ThroughputOptions {
  preset: string;
  backend: string;
  batchSize: number;
  steps: number;
  warmupSteps: number;
  workers?: number;
  peer?: boolean;
  /** Profile one extra step for the time per kernel (default true). */
  profile?: boolean;
}

/** What worker threads share: one gradient slot per worker, and a barrier. */
export interface WorkerShared {
  rank: number;
  workers: number;
  grads: SharedArrayBuffer; // workers × parameters float32
  barrier: SharedArrayBuffer; // [arrived, generation] int32
}

interface WorkerResult {
  backend: string;
  backend_description: string;
  step_seconds: number[];
  kernel_ms?: Record<string, number>;
}

function barrierWait(shared: WorkerShared): void {
  const b = new Int32Array(shared.barrier);
  const generation = Atomics.load(b, 1);
  if (Atomics.add(b, 0, 1) === shared.workers - 1) {
    Atomics.store(b, 0, 0);
    Atomics.add(b, 1, 1);
    Atomics.notify(b, 1);
  } else {
    while (Atomics.load(b, 1) === generation) Atomics.wait(b, 1, generation, 1000);
  }
}

/** One worker's timed steps (and, on rank 0, a profiled step). */
export async function runThroughput(o: ThroughputOptions, shared?: WorkerShared): Promise<WorkerResult> {
  const backend = await setupBackend(o.backend as never);
  const model = presetConfig(o.preset);
  const params = initParams(model, 1); // the same seed in every worker: identical replicas
  const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(7 + (shared?.rank ?? 0));
  const batch = (): Batch => {
    const n = o.batchSize * model.context;
    const inputs = new Int32Array(n).map(() => rng.int(model.vocab));
    const targets = new Int32Array(n).map(() => rng.int(model.vocab));
    return { inputs, targets, batch: o.batchSize, context: model.context };
  };
  const total = parameterCount(model).total;
  const step = shared
    ? () => {
        const { grads } = computeGradients(params, model, [batch()]);
        const all = new Float32Array(shared.grads);
        let offset = shared.rank * total;
        for (const g of grads.values()) {
          all.set(g.dataSync() as Float32Array, offset);
          offset += g.size;
        }
        barrierWait(shared);
        const averaged = new Map<string, tf.Tensor>();
        offset = 0;
        for (const [name, g] of grads) {
          const sum = new Float32Array(g.size);
          for (let w = 0; w < shared.workers; w++) {
            const slot = all.subarray(w * total + offset, w * total + offset + g.size);
            for (let i = 0; i < sum.length; i++) sum[i] += slot[i];
          }
          for (let i = 0; i < sum.length; i++) sum[i] /= shared.workers;
          averaged.set(name, tf.tensor(sum, g.shape));
          offset += g.size;
          g.dispose();
        }
        barrierWait(shared); // every worker has read every slot before any writes the next step's
        applyGradients(optimizer, averaged, 1e-3, 1);
        tf.dispose([...averaged.values()]);
      }
    : () => trainStep(params, model, optimizer, [batch()], 1e-3, 1);
  for (let i = 0; i < o.warmupSteps; i++) step();
  const stepSeconds: number[] = [];
  for (let i = 0; i < o.steps; i++) {
    const started = performance.now();
    step();
    stepSeconds.push((performance.now() - started) / 1000);
  }
  let kernelMs: Record<string, number> | undefined;
  if (o.profile !== false && (shared?.rank ?? 0) === 0 && !shared) {
    const profile = await tf.profile(() => {
      step();
    });
    const sums = new Map<string, number>();
    for (const k of profile.kernels) sums.set(k.name, (sums.get(k.name) ?? 0) + Number(k.kernelTimeMs));
    kernelMs = Object.fromEntries([...sums].sort((a, b) => b[1] - a[1]).map(([n, ms]) => [n, Math.round(ms * 10) / 10]));
  }
  return { backend: backend.name, backend_description: backend.description, step_seconds: stepSeconds, kernel_ms: kernelMs };
}

function runWorkers(o: ThroughputOptions, workers: number): Promise<WorkerResult[]> {
  const model = presetConfig(o.preset);
  const total = parameterCount(model).total;
  const grads = new SharedArrayBuffer(workers * total * 4);
  const barrier = new SharedArrayBuffer(8);
  const isTs = import.meta.url.endsWith('.ts');
  const file = new URL(`./train-worker.${isTs ? 'ts' : 'js'}`, import.meta.url);
  return Promise.all(
    Array.from(
      { length: workers },
      (_, rank) =>
        new Promise<WorkerResult>((resolve, reject) => {
          const workerData = { options: { ...o, profile: false }, shared: { rank, workers, grads, barrier } };
          // From the TypeScript sources (tsx), the worker registers tsx's loader before importing the file.
          const w = isTs
            ? new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(file.href)}); })`, {
                eval: true,
                workerData,
              })
            : new Worker(file, { workerData });
          w.once('message', resolve);
          w.once('error', reject);
          w.once('exit', (code) => code !== 0 && reject(new Error(`worker ${rank} exited with status ${code}`)));
        }),
    ),
  );
}

function peerScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.join(here, 'peers', 'torch_train.py'),
    path.join(here, '..', '..', 'bench', 'peers', 'torch_train.py'),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`PyTorch peer script not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** The PyTorch peer on one thread: same architecture, batch and step count. */
export function runPeer(model: ModelConfig, batchSize: number, steps: number, warmupSteps: number) {
  const python = process.env.RINGLET_PEER_PYTHON ?? '/usr/bin/python3'; // Debian's python3-torch
  const dims = {
    'd-model': model.d_model,
    'n-layers': model.n_layers,
    'n-heads': model.n_heads,
    'n-kv-heads': model.n_kv_heads,
    'ffn-hidden': model.ffn_hidden,
    context: model.context,
    vocab: model.vocab,
    batch: batchSize,
    steps,
    'warmup-steps': warmupSteps,
    threads: 1,
  };
  const args = [
    peerScript(),
    ...Object.entries(dims).flatMap(([k, v]) => [`--${k}`, String(v)]),
    '--rope-theta',
    String(model.rope_theta),
  ];
  const child = spawnSync(python, args, { encoding: 'utf8', timeout: 1_800_000, env: { ...process.env, OMP_NUM_THREADS: '1' } });
  if (child.status !== 0)
    throw new Error(
      `PyTorch peer failed (${python} ${args.join(' ')}): ${child.error?.message ?? child.stderr.trim().split('\n').at(-1)}`,
    );
  return JSON.parse(child.stdout.trim().split('\n').at(-1)!) as {
    tokens_per_s: number;
    threads: number;
    torch_version: string;
    params: number;
  };
}

export async function benchTrainThroughput(o: ThroughputOptions) {
  const workers = o.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw new Error(`--workers must be 1..256, got ${workers}`);
  const model = presetConfig(o.preset);
  const peak = measurePeak(0.9, workers);
  const results = workers === 1 ? [await runThroughput(o)] : await runWorkers(o, workers);
  const tokensPerStep = o.batchSize * model.context;
  // Workers step in lockstep (the gradient exchange is a barrier): tokens/s is the sum over workers.
  const perWorker = results.map((r) => (tokensPerStep * r.step_seconds.length) / r.step_seconds.reduce((a, b) => a + b, 0));
  const tokensPerS = perWorker.reduce((a, b) => a + b, 0);
  const gflops = (tokensPerS * flopsPerToken(model)) / 1e9;
  const peakGflops = peak.gflops_per_core * workers;
  const sorted = [...results[0].step_seconds].sort((a, b) => a - b);
  const peer = o.peer ? runPeer(model, o.batchSize, o.steps, o.warmupSteps) : null;
  const peerGenerous = peer ? peer.tokens_per_s * workers : null;
  return {
    preset: o.preset,
    backend: results[0].backend,
    backend_description: results[0].backend_description,
    workers,
    params: parameterCount(model).total,
    ...modelDimensions(model),
    batch: o.batchSize,
    batch_size: o.batchSize,
    steps: o.steps,
    tokens_per_s: tokensPerS,
    gflops,
    gflops_per_s: gflops,
    peak_gflops_per_core: peak.gflops_per_core,
    peak_simd: peak.simd,
    mfu: gflops / peakGflops,
    step_s_median: sorted[Math.floor(sorted.length / 2)],
    step_s_min: sorted[0],
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    ...(results[0].kernel_ms ? { kernel_ms: results[0].kernel_ms } : {}),
    ...(peer
      ? {
          peer: `PyTorch ${peer.torch_version}, ${peer.threads} thread, bench/peers/torch_train.py`,
          peer_tokens_per_s: peer.tokens_per_s,
          peer_gflops: (peer.tokens_per_s * flopsPerToken(model)) / 1e9,
          peer_generous_tokens_per_s: peerGenerous,
          ratio_vs_generous_peer: tokensPerS / peerGenerous!,
        }
      : {}),
    ...(workers === 1 ? { tensors_live: tf.memory().numTensors } : {}),
  };
}
