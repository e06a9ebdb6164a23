// Training throughput of a preset on the cuda backend, as the GPU check measures it: warm-up steps, then the
// median of timed steps (each ends with device.sync, so it is the GPU's time), tokens/s, TFLOP/s (6N + 12·L·d·T
// per token, lm/model-config.ts) and MFU against the datasheet peak and a GEMM measured in the same run; then
// profiled steps for the share of the step the GPU sits idle (1 − kernel time from the device's events ÷ wall
// time); peak device memory; ops that ran on the CPU fallback. bench/train-throughput.ts measures the same
// step (train/step.ts) for `ringlet bench train`, on the backend setupBackend opens; this one takes the
// Device it is given (the addon's, or the host's in CI) and reads its events and memory.
import * as tf from '@tensorflow/tfjs';
import { cpuFallbackCounts, cpuFallbacksSince } from '../../kernels/cuda/backend.js';
import type { Device, Precision } from '../../kernels/cuda/device.js';
import { initParams } from '../../lm/model.js';
import { flopsPerToken, parameterCount, presetConfig } from '../../lm/model-config.js';
import { Rng } from '../../lm/rng.js';
import { AdamW } from '../../train/optimizer.js';
import { applyGradients, computeGradients } from '../../train/step.js';
import { median } from '../median.js';

export interface ThroughputCase {
  preset: string;
  tokensPerStep: number; // batch = tokensPerStep / context
  precision: Precision;
}

export interface StepCounts {
  warmup: number;
  timed: number;
  profiled: number;
}

/** TFLOP/s a precision's products can reach: the datasheet's dense figure and the large GEMM measured here. */
export interface PeakTflops {
  datasheet?: number;
  gemm?: number;
}

/** Trains `c.preset` on the active cuda backend (device `device`, set to `c.precision`) and measures it. */
export function measureThroughput(device: Device, c: ThroughputCase, steps: StepCounts, peak: PeakTflops) {
  const model = presetConfig(c.preset);
  const batch = Math.max(1, Math.round(c.tokensPerStep / model.context));
  const tokens = batch * model.context;
  device.setPrecision(c.precision);
  const params = initParams(model, 1);
  const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(7);
  let loss = NaN;
  const step = () => {
    const inputs = new Int32Array(tokens).map(() => rng.int(model.vocab));
    const targets = new Int32Array(tokens).map(() => rng.int(model.vocab));
    const started = performance.now();
    const out = computeGradients(params, model, [{ inputs, targets, batch, context: model.context }]);
    applyGradients(optimizer, out.grads, 1e-3, 1);
    tf.dispose([...out.grads.values()]);
    device.sync(); // the update is enqueued: the step is over when the GPU has run it
    loss = out.loss;
    return (performance.now() - started) / 1000;
  };
  try {
    for (let i = 0; i < steps.warmup; i++) step();
    device.resetPeak();
    const fallbacksBefore = cpuFallbackCounts();
    const stepSeconds = Array.from({ length: steps.timed }, step);
    const fallbacks = cpuFallbacksSince(fallbacksBefore);
    const memory = device.memory();
    device.setProfiling(true);
    device.takeProfile();
    let profiledSeconds = 0;
    for (let i = 0; i < steps.profiled; i++) profiledSeconds += step();
    const profile = device.takeProfile();
    device.setProfiling(false);
    const stepS = median(stepSeconds);
    const tokensPerS = tokens / stepS;
    const tflops = (tokensPerS * flopsPerToken(model)) / 1e12;
    const kernelS = profile.kernelMs / 1000;
    return {
      preset: c.preset,
      precision: c.precision,
      params: parameterCount(model).total,
      batch,
      tokens_per_step: tokens,
      steps: steps.timed,
      warmup_steps: steps.warmup,
      step_s_median: stepS,
      step_s_min: Math.min(...stepSeconds),
      tokens_per_s: tokensPerS,
      tflops,
      ...(peak.datasheet ? { peak_tflops: peak.datasheet, mfu: tflops / peak.datasheet } : {}),
      ...(peak.gemm ? { gemm_tflops: peak.gemm, mfu_vs_gemm: tflops / peak.gemm } : {}),
      peak_memory_bytes: memory.peakBytes,
      reserved_memory_bytes: memory.reservedBytes,
      // From the profiled steps (the device's events around each launch; their cost is in the wall time too).
      profiled_steps: steps.profiled,
      kernel_s_per_step: kernelS / Math.max(1, steps.profiled),
      launches_per_step: profile.launches / Math.max(1, steps.profiled),
      gpu_idle_share: profiledSeconds > 0 ? Math.max(0, 1 - kernelS / profiledSeconds) : null,
      host_overhead_s_per_step: Math.max(0, profiledSeconds - kernelS) / Math.max(1, steps.profiled),
      cpu_fallback_ops_per_step: Object.values(fallbacks).reduce((a, b) => a + b, 0) / Math.max(1, steps.timed),
      cpu_fallback_by_op: fallbacks,
      last_loss: loss,
    };
  } finally {
    tf.dispose([...params.values(), ...optimizer.moments().values()]);
  }
}

/**
 * TFLOP/s of one C = A·B of size n³ (A, B filled with small constants) in `precision`: `repeats` products
 * enqueued back to back after one warm-up, timed to the last one's end.
 */
export function measureGemm(device: Device, n: number, precision: Precision, repeats: number): number {
  const bytes = n * n * 4;
  const [a, b, c] = [device.alloc(bytes), device.alloc(bytes), device.alloc(bytes)];
  try {
    device.fill(a, 'float32', 0.01, n * n);
    device.fill(b, 'float32', 0.02, n * n);
    device.setPrecision(precision);
    device.gemm(a, b, c, 1, n, n, n, false, false, 0, 0, 0);
    device.sync();
    const started = performance.now();
    for (let i = 0; i < repeats; i++) device.gemm(a, b, c, 1, n, n, n, false, false, 0, 0, 0);
    device.sync();
    return (2 * n ** 3 * repeats) / ((performance.now() - started) / 1000) / 1e12;
  } finally {
    for (const p of [a, b, c]) device.free(p);
  }
}
