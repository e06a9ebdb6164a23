// Training throughput of a preset on one process: tokens/s and achieved GFLOP/s (6N + 12·L·d·T per token),
// timed over steps after a warm-up, on random tokens (throughput does not depend on the text).
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { initParams } from '../lm/model.js';
import { flopsPerToken, parameterCount, presetConfig } from '../lm/model-config.js';
import { Rng } from '../lm/rng.js';
import { AdamW } from '../train/optimizer.js';
import { trainStep } from '../train/step.js';
import type { Batch } from '../train/batches.js';

export interface ThroughputOptions {
  preset: string;
  backend: string;
  batchSize: number;
  steps: number;
  warmupSteps: number;
}

export async function benchTrainThroughput(o: ThroughputOptions) {
  const backend = await setupBackend(o.backend as never);
  const model = presetConfig(o.preset);
  const params = initParams(model, 1);
  const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(7);
  const batch = (): Batch => {
    const n = o.batchSize * model.context;
    const inputs = new Int32Array(n).map(() => rng.int(model.vocab));
    const targets = new Int32Array(n).map(() => rng.int(model.vocab));
    return { inputs, targets, batch: o.batchSize, context: model.context };
  };
  for (let i = 0; i < o.warmupSteps; i++) trainStep(params, model, optimizer, [batch()], 1e-3, 1);
  const stepSeconds: number[] = [];
  for (let i = 0; i < o.steps; i++) {
    const b = batch();
    const started = performance.now();
    trainStep(params, model, optimizer, [b], 1e-3, 1);
    stepSeconds.push((performance.now() - started) / 1000);
  }
  const tokensPerStep = o.batchSize * model.context;
  const total = stepSeconds.reduce((a, b) => a + b, 0);
  const tokensPerS = (tokensPerStep * o.steps) / total;
  const sorted = [...stepSeconds].sort((a, b) => a - b);
  return {
    preset: o.preset,
    backend: backend.name,
    backend_description: backend.description,
    params: parameterCount(model).total,
    batch_size: o.batchSize,
    context: model.context,
    steps: o.steps,
    tokens_per_s: tokensPerS,
    gflops_per_s: (tokensPerS * flopsPerToken(model)) / 1e9,
    step_s_median: sorted[Math.floor(sorted.length / 2)],
    step_s_min: sorted[0],
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    tensors_live: tf.memory().numTensors,
  };
}
