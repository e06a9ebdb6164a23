// Data-parallel scaling on this machine: tokens/s of one process (train/run.ts) against 2 worker processes
// with the ring all-reduce (`ringlet train --workers 2`), and the speedup. Weak scaling, as data-parallel
// benchmarks usually report it: every worker trains on the same per-worker batch, so 2 workers take a global
// batch twice as large (halving each worker's batch instead would also measure how much slower the kernels
// run on half the rows). Both figures exclude process start-up: the single run times its loop, the
// distributed one from the ring's formation; both include the final evaluation and checkpoint.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadTrainConfig } from '../train/config.js';
import { train } from '../train/run.js';
import { ProgressLog } from '../train/progress.js';
import { launchLocal } from '../coordinator/launch.js';

export interface ScalingOptions {
  data: string;
  preset: string;
  steps: number;
  batchSize: number; // windows per worker per optimizer step
}

export async function benchScaling(o: ScalingOptions) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-scaling-'));
  const config = (name: string, workers: number) => {
    const c = loadTrainConfig(undefined, {
      data: o.data,
      out: path.join(work, name),
      preset: o.preset,
      maxSteps: o.steps,
      batchSize: o.batchSize * workers,
      evalEvery: 1e9,
      checkpointEvery: 1e9,
      logEvery: 1e9,
    });
    return { ...c, training: { ...c.training, eval_windows: 8 } };
  };
  try {
    const one = await train(config('one', 1), { resume: false, log: new ProgressLog(path.join(work, 'one'), { live: false }) });
    const two = await launchLocal(config('two', 2), { workers: 2, resume: false });
    return {
      preset: o.preset,
      steps: o.steps,
      batch_per_worker: o.batchSize,
      tokens_per_s_1: one.tokens_per_s,
      tokens_per_s_2: two.tokens_per_s,
      speedup: two.tokens_per_s / one.tokens_per_s,
      val_loss_1: one.val_loss,
      val_loss_2: two.val_loss,
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
