// Data-parallel strong scaling on this machine: tokens/s of one process (train/run.ts) against 2 worker
// processes with the ring all-reduce (`ringlet train --workers 2`) on the same job: the same global batch,
// which the workers split (8 windows each of the default 16), so both runs take the same optimizer steps
// and the speedup is what a user gets from the second core. Both figures exclude process start-up: the
// single run times its loop, the distributed one from the ring's formation; both include the final
// evaluation and checkpoint. Without --data it trains on a synthetic dataset of random words (throughput
// does not depend on the text). With --peer, PyTorch DDP over Gloo (bench/peers/torch_ddp.py) runs the same
// shape, global batch and steps in the same invocation, and its speedup is printed beside Ringlet's.
// This machine's speed drifts by tens of percent within minutes (other tenants), so with --repeats the two
// runs alternate and the speedup is the median of the pairs' ratios, each pair run back to back.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadTrainConfig } from '../train/config.js';
import { train } from '../train/run.js';
import { ProgressLog } from '../train/progress.js';
import { launchLocal } from '../coordinator/launch.js';
import { presetConfig } from '../lm/model-config.js';
import { median } from './median.js';
import { peerModelArgs, runPeerScript } from './peers.js';
import { prepareSyntheticDataset } from './synthetic-data.js';

export interface ScalingOptions {
  data?: string; // a prepared dataset; without it, synthetic random words
  preset: string;
  steps: number;
  batchSize: number; // global batch: windows per optimizer step, split between the workers
  repeats: number; // pairs of runs (1 process, then 2 workers), alternating
  peer: boolean;
  peerCompile: boolean; // the peer runs its model through torch.compile
}

interface DdpPeer {
  torch_version: string;
  compiled: boolean;
  tokens_per_s_1: number;
  tokens_per_s_n: number;
  speedup: number;
  speedups: number[];
}

const WORKERS = 2;

export async function benchScaling(o: ScalingOptions) {
  if (!(o.repeats >= 1)) throw new Error(`--repeats must be at least 1, got ${o.repeats}`);
  if (o.batchSize % WORKERS !== 0) throw new Error(`--batch-size ${o.batchSize} does not split evenly over ${WORKERS} workers`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-scaling-'));
  try {
    const data = o.data ?? (await prepareSyntheticDataset(work, presetConfig(o.preset).vocab));
    const config = (name: string) => {
      const c = loadTrainConfig(undefined, {
        data,
        out: path.join(work, name),
        preset: o.preset,
        maxSteps: o.steps,
        batchSize: o.batchSize,
        evalEvery: 1e9,
        checkpointEvery: 1e9,
        logEvery: 1e9,
      });
      return { ...c, training: { ...c.training, eval_windows: 8 } };
    };
    type Run = { tokens_per_s: number; steady_tokens_per_s: number | null; val_loss: number };
    const pairs: Array<{ one: Run; two: Run }> = [];
    for (let r = 0; r < o.repeats; r++) {
      const one = await train(config(`one-${r}`), {
        resume: false,
        log: new ProgressLog(path.join(work, `one-${r}`), { live: false }),
      });
      const two = await launchLocal(config(`two-${r}`), { workers: WORKERS, resume: false });
      pairs.push({ one, two });
    }
    const speedups = pairs.map((p) => p.two.tokens_per_s / p.one.tokens_per_s);
    const steady = pairs.every((p) => p.one.steady_tokens_per_s !== null && p.two.steady_tokens_per_s !== null);
    const steadySpeedups = steady ? pairs.map((p) => p.two.steady_tokens_per_s! / p.one.steady_tokens_per_s!) : null;
    const peer = o.peer
      ? runPeerScript<DdpPeer>('torch_ddp.py', {
          ...peerModelArgs(presetConfig(o.preset), o.batchSize, o.steps, o.peerCompile),
          workers: WORKERS,
          repeats: o.repeats,
        })
      : null;
    const tokensPerS2 = median(pairs.map((p) => p.two.tokens_per_s));
    return {
      preset: o.preset,
      data: o.data ?? 'synthetic',
      steps: o.steps,
      global_batch: o.batchSize,
      workers: WORKERS,
      repeats: o.repeats,
      tokens_per_s_1: median(pairs.map((p) => p.one.tokens_per_s)),
      tokens_per_s_2: tokensPerS2,
      speedup: median(speedups),
      speedups: speedups.map((x) => Math.round(x * 1000) / 1000),
      // After warm-up, without the final evaluation and checkpoint (train/pace.ts): what a long run gets.
      steady_tokens_per_s_1: steady ? median(pairs.map((p) => p.one.steady_tokens_per_s!)) : null,
      steady_tokens_per_s_2: steady ? median(pairs.map((p) => p.two.steady_tokens_per_s!)) : null,
      steady_speedup: steadySpeedups ? median(steadySpeedups) : null,
      steady_speedups: steadySpeedups?.map((x) => Math.round(x * 1000) / 1000) ?? null,
      val_loss_1: pairs[0].one.val_loss,
      val_loss_2: pairs[0].two.val_loss,
      ...(peer
        ? {
            peer: `PyTorch ${peer.torch_version} DDP over Gloo, ${peer.compiled ? 'torch.compile' : 'eager'}, 1 thread per process`,
            peer_tokens_per_s_1: peer.tokens_per_s_1,
            peer_tokens_per_s_2: peer.tokens_per_s_n,
            peer_speedup: peer.speedup,
            peer_speedups: peer.speedups.map((x) => Math.round(x * 1000) / 1000),
            speedup_vs_peer: median(speedups) / peer.speedup,
            tokens_per_s_2_vs_peer: tokensPerS2 / peer.tokens_per_s_n,
          }
        : {}),
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
