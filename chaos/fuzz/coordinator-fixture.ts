// The job the coordinator fuzzer talks to: no dataset (the coordinator only counts windows), one or two
// workers, a heartbeat timeout short enough that workers a fuzz case joined and forgot are swept within a
// second and a half, and room for thousands of ring re-formations. The coordinator's metrics are served too:
// they are the metrics endpoint the fuzzer attacks.
import type { JobInfo } from '../../coordinator/coordinator.js';

export const JOB = {
  id: 'fuzz-job',
  batchSize: 2, // windows per step, split over the ring's ranks (train/shard.ts)
  windowsPerEpoch: 1000,
  context: 32,
  heartbeatMs: 50, // how often anchors heartbeat, the coordinator sweeps, and how soon a failed ring re-forms
};

export function jobConfigs(out: string, token: string) {
  return {
    train: {
      data: out,
      out,
      training: { batch_size: JOB.batchSize, max_steps: 1e9, log_every: 1e9 },
      // No CPU peak measurement and no power polling: neither is what the fuzzer tests.
      observability: { metrics_port: 0, cpu_peak_flops_per_core: 1e9, power_poll_s: 3600, gpu_power: 'off' },
    },
    dist: {
      job_id: JOB.id,
      token,
      min_workers: 1,
      max_workers: 2,
      rendezvous_timeout_s: 86400,
      replace_wait_s: 0,
      heartbeat_interval_ms: JOB.heartbeatMs,
      heartbeat_timeout_ms: 1500,
      max_restarts: 10_000,
    },
  };
}

export const JOB_INFO: JobInfo = {
  windowsPerEpoch: JOB.windowsPerEpoch,
  tokensPerStep: JOB.batchSize * JOB.context,
  startStep: 0,
  startCursorPosition: 0,
  restoreCheckpoint: '',
};
