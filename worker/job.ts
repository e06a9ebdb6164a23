// What a worker holds for a job: the data, model shape and tokenizer it loads once per job config, and
// the training state an assignment restores (seeded weights, or the checkpoint the coordinator names).
import fs from 'node:fs';
import path from 'node:path';
import { setupBackend } from '../kernels/backend.js';
import { readManifest } from '../data/manifest.js';
import { openSplit } from '../data/shards.js';
import { Tokenizer } from '../lm/tokenizer.js';
import { initParams, paramsFromTensors, type Params } from '../lm/model.js';
import type { ModelConfig } from '../lm/model-config.js';
import { checkCompatible, readCheckpoint } from '../lm/checkpoint.js';
import type { TrainConfig } from '../train/config.js';
import { resolveModelConfig } from '../train/run.js';
import { AdamW } from '../train/optimizer.js';
import { WindowSampler, fixedWindows, type Batch, type DataCursor } from '../train/batches.js';
import { unigramLoss } from '../train/evaluate.js';
import type { DistributedConfig } from '../coordinator/config.js';
import type { Assignment } from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { checkRestorePath } from './confine.js';
import { checkModelFits } from './job-check.js';
import type { WorkerLimits } from './limits.js';

/** Everything a worker loads once per job config: backend, data, model shape. */
export interface Job {
  train: TrainConfig;
  dist: DistributedConfig;
  model: ModelConfig;
  sampler: WindowSampler;
  validation: Batch;
  byteLengths: Uint32Array;
  unigram: number;
  tokenizerSha256: string;
  tokenizerJson: Buffer;
  backend: string;
  /** What computes: the GPU's name on the cuda backend, else "cpu". */
  device: string;
}

export interface TrainingState {
  params: Params;
  optimizer: AdamW;
  step: number;
  tokensSeen: number;
  cursor: DataCursor;
  horizonSteps: number | null;
}

/** Loads the job's data and model shape; `previous` is kept when only the distributed settings changed. */
export async function loadJob(
  train: TrainConfig,
  dist: DistributedConfig,
  limits: WorkerLimits,
  previous: Job | null,
): Promise<Job> {
  if (previous && JSON.stringify(previous.train) === JSON.stringify(train)) return { ...previous, dist };
  const backend = await setupBackend(train.backend, { precision: train.precision });
  const manifest = await readManifest(train.data);
  const tokenizerPath = path.join(train.data, manifest.tokenizer.file);
  const tokenizer = await Tokenizer.load(tokenizerPath);
  const model = resolveModelConfig(train, tokenizer.vocabSize);
  checkModelFits(model, train.training.batch_size, limits);
  const trainTokens = (await openSplit(train.data, 'train')).tokens;
  const valTokens = (await openSplit(train.data, 'val')).tokens;
  return {
    train,
    dist,
    model,
    sampler: new WindowSampler(trainTokens, model.context, train.training.seed),
    validation: fixedWindows(valTokens, model.context, train.training.eval_windows),
    byteLengths: tokenizer.byteLengths(),
    unigram: unigramLoss(trainTokens, valTokens, model.vocab),
    tokenizerSha256: tokenizer.sha256,
    tokenizerJson: fs.readFileSync(tokenizerPath),
    backend: backend.name,
    device: backend.device ?? 'cpu',
  };
}

export function disposeState(s: TrainingState): void {
  for (const v of s.params.values()) v.dispose();
  for (const v of s.optimizer.moments().values()) v.dispose();
}

/** The state assignment `a` starts from: the seeded initial weights, or the checkpoint it names. */
export async function restoreState(job: Job, a: Assignment): Promise<TrainingState> {
  const { model, train } = job;
  const o = train.optimizer;
  const adamw = (params: Params) =>
    new AdamW(params, { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weight_decay });
  if (!a.restoreCheckpoint) {
    const params = initParams(model, train.training.seed);
    return {
      params,
      optimizer: adamw(params),
      step: 0,
      tokensSeen: 0,
      cursor: { epoch: 0, index: 0 },
      horizonSteps: train.training.max_steps ?? null,
    };
  }
  await checkRestorePath(a.restoreCheckpoint, train.out);
  const ckpt = await readCheckpoint(a.restoreCheckpoint, { withOptimizer: true });
  checkCompatible(ckpt.meta, { modelConfig: model, tokenizerSha256: job.tokenizerSha256 });
  if (ckpt.meta.step !== a.startStep)
    throw new Error(`checkpoint ${a.restoreCheckpoint} is at step ${ckpt.meta.step}, not ${a.startStep}`);
  const params = paramsFromTensors(model, ckpt.weights);
  const optimizer = adamw(params);
  optimizer.restore(ckpt.optimizer!);
  optimizer.step = ckpt.meta.step;
  const c = ckpt.meta.data_cursor as unknown as DataCursor;
  return {
    params,
    optimizer,
    step: ckpt.meta.step,
    tokensSeen: ckpt.meta.tokens_seen,
    cursor: { epoch: c.epoch, index: c.index },
    horizonSteps: train.training.max_steps ?? ckpt.meta.schedule_horizon_steps,
  };
}
