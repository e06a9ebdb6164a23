// A coordinator process from config to summary: reads what it must know of the dataset and model (window
// count, parameter count, the checkpoint to resume), serves the job, and returns the same summary as a
// single-process `ringlet train`, plus the distributed figures.
import path from 'node:path';
import { readManifest } from '../data/manifest.js';
import { openSplit } from '../data/shards.js';
import { Tokenizer } from '../lm/tokenizer.js';
import { flopsPerToken, parameterCount, modelDimensions } from '../lm/model-config.js';
import type { TrainConfig } from '../train/config.js';
import { resolveModelConfig, type TrainSummary } from '../train/run.js';
import type { Bus } from '../controlplane/bus.js';
import type { DistributedConfig } from './config.js';
import { Coordinator, type JobInfo } from './coordinator.js';
import { newestIntactCheckpoint } from './restore-point.js';
import { JobTelemetry, type JobTelemetrySummary } from './telemetry.js';
import type { JsonLog } from './log.js';
import { cursorPosition } from '../train/shard.js';

export interface DistributedSummary extends TrainSummary, JobTelemetrySummary {
  job_id: string;
  workers: number;
  restarts: number;
  samples_skipped: number;
  samples_repeated: number;
  ranks_identical: boolean;
  straggler_warnings: number;
  checkpoints_skipped: number;
}

/** Builds a coordinator for `train` (not yet started) and the figures its summary needs. */
export async function createCoordinator(
  train: TrainConfig,
  dist: DistributedConfig,
  options: { resume: boolean; bus?: Bus; log?: JsonLog },
): Promise<{ coordinator: Coordinator; summary: () => Promise<DistributedSummary> }> {
  train = { ...train, data: path.resolve(train.data), out: path.resolve(train.out) }; // workers may run elsewhere
  const manifest = await readManifest(train.data);
  const tokenizer = await Tokenizer.load(path.join(train.data, manifest.tokenizer.file));
  const model = resolveModelConfig(train, tokenizer.vocabSize);
  const trainTokens = (await openSplit(train.data, 'train')).tokens;
  const windowsPerEpoch = Math.floor((trainTokens.length - 1) / model.context);
  const globalBatch = train.training.batch_size * train.training.grad_accum;
  const latest = options.resume ? await newestIntactCheckpoint(train.out, { log: options.log }) : null;
  const meta = latest?.meta ?? null;
  const cursor = (meta?.data_cursor ?? { epoch: 0, index: 0 }) as { epoch: number; index: number };
  const info: JobInfo = {
    windowsPerEpoch,
    tokensPerStep: globalBatch * model.context,
    startStep: meta?.step ?? 0,
    startCursorPosition: cursorPosition(cursor, windowsPerEpoch),
    restoreCheckpoint: latest?.path ?? '',
  };
  // Serves the job's metrics (observability.metrics_port) from here; the workers serve none.
  const telemetry = await JobTelemetry.start(train.observability, {
    flopsPerToken: flopsPerToken(model),
    workers: dist.max_workers,
    carried: meta?.metrics, // energy and emissions of the run so far
    ...(train.backend === 'cuda' ? { gpu: { precision: train.precision } } : {}),
  });
  const counts = parameterCount(model);
  const coordinator = new Coordinator(train, dist, info, {
    bus: options.bus,
    log: options.log,
    telemetry,
    parameters: counts.total,
  });
  const summary = async (): Promise<DistributedSummary> => {
    const r = await coordinator.done;
    return {
      step: r.step,
      params: counts.total,
      params_non_embedding: counts.nonEmbedding,
      val_loss: r.metrics.val_loss,
      val_bpb: r.metrics.val_bpb,
      unigram_loss: r.metrics.unigram_loss,
      tokens_seen: r.step * info.tokensPerStep,
      tokens_per_s: r.tokens_per_s,
      steady_tokens_per_s: r.steady_tokens_per_s,
      gflops_per_s: (r.tokens_per_s * flopsPerToken(model)) / 1e9,
      elapsed_s: r.elapsed_s,
      checkpoint: r.checkpoint,
      backend: train.backend,
      device: telemetry.peak.device,
      precision: train.backend === 'cuda' ? train.precision : 'fp32',
      interrupted: r.interrupted,
      ...modelDimensions(model),
      job_id: coordinator.jobId,
      workers: r.workers,
      restarts: r.restarts,
      samples_skipped: r.samples_skipped,
      samples_repeated: r.samples_repeated,
      ranks_identical: r.ranks_identical,
      straggler_warnings: r.straggler_warnings,
      checkpoints_skipped: r.checkpoints_skipped,
      ...(await telemetry.close(r.tokens_per_s)),
    };
  };
  return { coordinator, summary };
}
