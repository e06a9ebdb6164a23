// Training throughput of a preset: tokens/s and achieved GFLOP/s (6N + 12·L·d·T per token, PaLM appendix B),
// MFU against this machine's measured FMA peak (bench/peak.ts), peak RSS, time per kernel (one profiled
// step), on random tokens (throughput does not depend on the text). With --workers N, N worker processes,
// one per core, each train on their own batches and average their gradients with the ring all-reduce over
// loopback gRPC (collective/) before every AdamW step, as `ringlet train --workers N` does minus the
// coordinator. With --peer, the PyTorch peer (bench/peers/torch_train.py, same architecture and batch, one
// thread) runs in the same invocation, so the ratio is measured side by side. A mixture-of-experts preset is
// followed, in the same invocation, by the dense preset of equal active parameters (moe-micro: micro), and
// cost_vs_dense_active is the dense tokens/s over the MoE's. On the cuda backend, MFU is against the GPU's
// datasheet dense peak for the precision (observability/mfu.ts), each step ends with the device idle (so
// the timings are the GPU's), and cpu_fallback_ops counts the ops per step that ran on the CPU instead.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { cpuFallbackCounts, cpuFallbacksSince, cudaDevice } from '../kernels/cuda/backend.js';
import type { Precision } from '../kernels/cuda/device.js';
import { visibleGpus, workerEnv } from '../kernels/cuda/gpus.js';
import { datasheetTflops } from '../observability/mfu.js';
import { initParams } from '../lm/model.js';
import {
  activeParameterCount,
  denseCounterpart,
  flopsPerToken,
  parameterCount,
  presetConfig,
  type ModelConfig,
  modelDimensions,
} from '../lm/model-config.js';
import { Rng } from '../lm/rng.js';
import { AdamW } from '../train/optimizer.js';
import { FlatGradients, applyGradients, computeGradients } from '../train/step.js';
import type { Batch } from '../train/batches.js';
import { median } from './median.js';
import { measurePeak } from './peak.js';
import { peerModelArgs, runPeerScript } from './peers.js';

export interface ThroughputOptions {
  preset: string;
  backend: string;
  /** The cuda backend's matrix products (default tf32). */
  precision?: Precision;
  batchSize: number;
  steps: number;
  warmupSteps: number;
  workers?: number;
  peer?: boolean;
  peerCompile?: boolean; // the peer runs its model through torch.compile
  /** Profile one extra step for the time per kernel (default true). */
  profile?: boolean;
}

/** Sums a shared gradient buffer across the workers in place, each bucket once `ready` allows it (the ring's
 * thread in a worker process). */
export type AllReduce = (buffer: Float32Array, step: number, ready: Int32Array) => Promise<{ firstChunkMs: number }>;

export interface WorkerResult {
  backend: string;
  backend_description: string;
  device?: string; // the GPU (cuda)
  precision: Precision;
  cpu_fallback_ops: number; // ops run on the CPU fallback during the timed steps
  cpu_fallback_by_op: Record<string, number>;
  step_seconds: number[];
  compute_seconds: number[]; // gradients of the step's batch (and, with a ring, flattening them)
  allreduce_seconds: number[]; // what the step waited for the all-reduce after its compute (the rest overlapped it)
  allreduce_wait_seconds: number[]; // of each all-reduce, from its first bucket being ready to the previous rank's first chunk
  apply_seconds: number[]; // clipping and the AdamW update
  peak_rss_bytes: number;
  kernel_ms?: Record<string, number>;
}

/** One worker's timed steps (and, alone, a profiled step). With `ring`, gradients are averaged through it. */
export async function runThroughput(
  o: ThroughputOptions,
  ring?: { rank: number; workers: number; allReduce: AllReduce },
): Promise<WorkerResult> {
  const backend = await setupBackend(o.backend as never, { precision: o.precision });
  const device = backend.name === 'cuda' ? cudaDevice() : null;
  const model = presetConfig(o.preset);
  const params = initParams(model, 1); // the same seed in every worker: identical replicas
  const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(7 + (ring?.rank ?? 0));
  const batch = (): Batch => {
    const n = o.batchSize * model.context;
    const inputs = new Int32Array(n).map(() => rng.int(model.vocab));
    const targets = new Int32Array(n).map(() => rng.int(model.vocab));
    return { inputs, targets, batch: o.batchSize, context: model.context };
  };
  const phases = { compute: [] as number[], allreduce: [] as number[], allreduceWait: [] as number[], apply: [] as number[] };
  const timed = async <T>(into: number[], phase: () => T | Promise<T>): Promise<T> => {
    const started = performance.now();
    const out = await phase();
    into.push((performance.now() - started) / 1000);
    return out;
  };
  let stepNumber = 0;
  const flat = ring ? new FlatGradients(params) : null;
  const step = async () => {
    let grads: Map<string, tf.Tensor>;
    if (ring && flat) {
      // As a worker does: the all-reduce starts with the step and takes each bucket of gradients as soon as
      // the backward pass has finished it; each worker's gradients weigh 1/workers, so the sum is the mean.
      flat.reset();
      const reduction = ring.allReduce(flat.buffer, ++stepNumber, flat.ready);
      reduction.catch(() => {});
      await timed(phases.compute, () => flat.add(model, batch(), 1 / ring.workers, true));
      const { firstChunkMs } = await timed(phases.allreduce, () => reduction);
      phases.allreduceWait.push(firstChunkMs / 1000);
      grads = flat.tensors();
    } else grads = await timed(phases.compute, () => computeGradients(params, model, [batch()]).grads);
    await timed(phases.apply, () => {
      const norm = applyGradients(optimizer, grads, 1e-3, 1);
      device?.sync(); // the update is enqueued; the step is over when the GPU has run it
      return norm;
    });
    tf.dispose([...grads.values()]);
  };
  for (let i = 0; i < o.warmupSteps; i++) await step();
  for (const times of Object.values(phases)) times.length = 0;
  const fallbacksBefore = cpuFallbackCounts();
  const stepSeconds: number[] = [];
  for (let i = 0; i < o.steps; i++) {
    const started = performance.now();
    await step();
    stepSeconds.push((performance.now() - started) / 1000);
  }
  const fallbacks = cpuFallbacksSince(fallbacksBefore);
  let kernelMs: Record<string, number> | undefined;
  // tf.profile times kernels on the host; on a GPU they are only enqueued there (bench/gpu/ times the device).
  if (o.profile !== false && !ring && !device) {
    const profile = await tf.profile(() => step());
    const sums = new Map<string, number>();
    for (const k of profile.kernels) sums.set(k.name, (sums.get(k.name) ?? 0) + Number(k.kernelTimeMs));
    kernelMs = Object.fromEntries([...sums].sort((a, b) => b[1] - a[1]).map(([n, ms]) => [n, Math.round(ms * 10) / 10]));
  }
  return {
    backend: backend.name,
    backend_description: backend.description,
    ...(backend.device ? { device: backend.device } : {}),
    precision: backend.precision,
    cpu_fallback_ops: Object.values(fallbacks).reduce((a, b) => a + b, 0),
    cpu_fallback_by_op: fallbacks,
    step_seconds: stepSeconds,
    compute_seconds: phases.compute.slice(0, o.steps),
    allreduce_seconds: phases.allreduce,
    allreduce_wait_seconds: phases.allreduceWait,
    apply_seconds: phases.apply.slice(0, o.steps),
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    kernel_ms: kernelMs,
  };
}

/** Messages between the benchmark and its worker processes (bench/train-worker.ts). */
export type WorkerMessage =
  | { address: string } // worker → parent: its collective endpoint is listening
  | { ring: string[] } // parent → worker: every rank's endpoint, in rank order
  | { result: WorkerResult }
  | { error: string };

function runWorkers(o: ThroughputOptions, workers: number): Promise<WorkerResult[]> {
  const file = fileURLToPath(new URL(`./train-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));
  // fork() passes this process's execArgv on, so from the TypeScript sources the children load tsx too.
  // On GPUs, each worker is pinned to one (round robin), as `ringlet train --workers` pins them.
  const gpus = o.backend === 'cuda' ? visibleGpus() : [];
  const children: ChildProcess[] = Array.from({ length: workers }, (_, rank) =>
    fork(file, [JSON.stringify({ options: { ...o, profile: false }, rank, workers })], {
      serialization: 'advanced',
      env: workerEnv(process.env, gpus, rank),
    }),
  );
  const message = (child: ChildProcess, rank: number) =>
    new Promise<WorkerMessage>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`bench worker ${rank} exited with status ${code}`));
      child.once('exit', onExit);
      child.once('message', (m: WorkerMessage) => {
        child.off('exit', onExit);
        if ('error' in m) reject(new Error(`bench worker ${rank}: ${m.error}`));
        else resolve(m);
      });
    });
  const run = async () => {
    const addresses = (await Promise.all(children.map(message))).map((m) => (m as { address: string }).address);
    const results = Promise.all(children.map(message));
    for (const child of children) child.send({ ring: addresses } satisfies WorkerMessage);
    return (await results).map((m) => (m as { result: WorkerResult }).result);
  };
  return run().finally(() => {
    for (const child of children) if (child.exitCode === null) child.kill();
  });
}

/** The PyTorch peer on one thread: same architecture, batch and step count. */
export function runPeer(model: ModelConfig, o: ThroughputOptions) {
  return runPeerScript<{ tokens_per_s: number; threads: number; torch_version: string; compiled: boolean; params: number }>(
    'torch_train.py',
    { ...peerModelArgs(model, o.batchSize, o.steps, Boolean(o.peerCompile)), 'warmup-steps': o.warmupSteps, threads: 1 },
  );
}

export async function benchTrainThroughput(o: ThroughputOptions) {
  const workers = o.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw new Error(`--workers must be 1..256, got ${workers}`);
  const model = presetConfig(o.preset);
  if (model.moe && o.peer) throw new Error(`--peer: the PyTorch peer has no mixture of experts (preset ${o.preset})`);
  const tokensPerStep = o.batchSize * model.context;
  const measure = async (options: ThroughputOptions) => {
    const results = workers === 1 ? [await runThroughput(options)] : await runWorkers(options, workers);
    // Workers step in lockstep (the all-reduce waits for every rank): tokens/s is the sum over workers.
    const perWorker = results.map((r) => (tokensPerStep * r.step_seconds.length) / r.step_seconds.reduce((a, b) => a + b, 0));
    return { results, tokensPerS: perWorker.reduce((a, b) => a + b, 0) };
  };
  const { results, tokensPerS } = await measure(o);
  // A mixture of experts is judged against the dense preset of equal active parameters, in the same run.
  const densePreset = denseCounterpart(o.preset);
  const dense = model.moe ? await measure({ ...o, preset: densePreset, profile: false }) : null;
  const gflops = (tokensPerS * flopsPerToken(model)) / 1e9;
  const first = results[0];
  const peak = first.backend === 'cuda' ? null : measurePeak(0.9, workers);
  const gpuPeak = peak ? null : datasheetTflops(first.device ?? '', first.precision);
  const peakGflops = peak ? peak.gflops_per_core * workers : gpuPeak === null ? null : gpuPeak * 1000 * workers;
  const peer = o.peer ? runPeer(model, o) : null;
  const peerGenerous = peer ? peer.tokens_per_s * workers : null;
  return {
    preset: o.preset,
    backend: results[0].backend,
    backend_description: results[0].backend_description,
    workers,
    params: parameterCount(model).total,
    params_active: activeParameterCount(model),
    ...modelDimensions(model),
    batch: o.batchSize,
    batch_size: o.batchSize,
    steps: o.steps,
    tokens_per_s: tokensPerS,
    gflops,
    gflops_per_s: gflops,
    device: first.device ?? 'cpu',
    // The peak MFU divides by, per worker: this CPU core's measured one, or the GPU's datasheet figure for the
    // precision (null for a GPU the table does not know).
    peak_tflops: peak ? peak.gflops_per_core / 1000 : gpuPeak,
    ...(peak ? { peak_gflops_per_core: peak.gflops_per_core, peak_simd: peak.simd } : {}),
    precision: first.precision,
    mfu: peakGflops === null ? null : gflops / peakGflops, // null: a GPU the datasheet table does not know
    cpu_fallback_ops: first.cpu_fallback_ops / first.step_seconds.length, // per step: the goal is 0
    ...(first.cpu_fallback_ops > 0 ? { cpu_fallback_by_op: first.cpu_fallback_by_op } : {}),
    step_s_median: median(results[0].step_seconds),
    step_s_min: Math.min(...results[0].step_seconds),
    // Medians over every worker's steps: gradients, the all-reduce (waiting for the slowest rank included), AdamW.
    compute_s_median: median(results.flatMap((r) => r.compute_seconds)),
    ...(workers > 1
      ? {
          allreduce_s_median: median(results.flatMap((r) => r.allreduce_seconds)),
          // The part spent before the previous rank's first chunk came: mostly that rank still computing.
          allreduce_wait_s_median: median(results.flatMap((r) => r.allreduce_wait_seconds)),
        }
      : {}),
    apply_s_median: median(results.flatMap((r) => r.apply_seconds)),
    // Per worker: the largest of the workers' own peak RSS (with one worker, this process's).
    peak_rss_bytes: Math.max(...results.map((r) => r.peak_rss_bytes)),
    ...(results[0].kernel_ms ? { kernel_ms: results[0].kernel_ms } : {}),
    ...(peer
      ? {
          peer: `PyTorch ${peer.torch_version}${peer.compiled ? ' torch.compile' : ' eager'}, ${peer.threads} thread, bench/peers/torch_train.py`,
          peer_tokens_per_s: peer.tokens_per_s,
          peer_gflops: (peer.tokens_per_s * flopsPerToken(model)) / 1e9,
          peer_generous_tokens_per_s: peerGenerous,
          ratio_vs_generous_peer: tokensPerS / peerGenerous!,
        }
      : {}),
    ...(dense
      ? {
          dense_preset: densePreset,
          dense_tokens_per_s: dense.tokensPerS,
          dense_step_s_median: median(dense.results[0].step_seconds),
          cost_vs_dense_active: dense.tokensPerS / tokensPerS, // time per token against the dense model; the goal is ≤ 1.5
        }
      : {}),
    ...(workers === 1 ? { tensors_live: tf.memory().numTensors } : {}),
  };
}
