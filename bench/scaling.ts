// Data-parallel scaling on this machine: the same training job (preset, global batch, steps) on one process
// (train/run.ts) and on 2 worker processes with the ring all-reduce (`ringlet train --workers 2`), tokens/s
// of each and the speedup. Both figures exclude process start-up: the single run times its loop, the
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
  batchSize: number; // global batch: windows per optimizer step
}

export async function benchScaling(o: ScalingOptions) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-scaling-'));
  const config = (name: string) =>
    loadTrainConfig(undefined, {
      data: o.data,
      out: path.join(work, name),
      preset: o.preset,
      maxSteps: o.steps,
      batchSize: o.batchSize,
      evalEvery: 1e9,
      checkpointEvery: 1e9,
      logEvery: 1e9,
    });
  try {
    const one = await train(
      { ...config('one'), training: { ...config('one').training, eval_windows: 8 } },
      {
        resume: false,
        log: new ProgressLog(path.join(work, 'one'), { live: false }),
      },
    );
    const twoConfig = config('two');
    const two = await launchLocal(
      { ...twoConfig, training: { ...twoConfig.training, eval_windows: 8 } },
      { workers: 2, resume: false },
    );
    return {
      preset: o.preset,
      steps: o.steps,
      global_batch: o.batchSize,
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
