// The host side of a training step on the cuda backend, measured where there is no GPU: the backend runs on a
// Device whose memory is addresses only and whose kernels do nothing, so a step's time is what TensorFlow.js,
// the backend's kernels and the model's code cost on the CPU, and the calls it makes are the launches a GPU
// would get. On a GPU this runs while the device computes the previous kernels; when it is longer than the
// GPU's share of the step, the GPU waits for the host (bench/gpu/throughput.ts measures that on a GPU).
//
// Run: node --import tsx bench/gpu/host-cost.ts [--presets micro,mini,small] [--tokens 65536] [--steps 10]
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../../kernels/backend.js';
import type { Device } from '../../kernels/cuda/device.js';
import { initParams } from '../../lm/model.js';
import { presetConfig } from '../../lm/model-config.js';
import { AdamW } from '../../train/optimizer.js';
import { applyGradients, computeGradients } from '../../train/step.js';
import { median } from '../median.js';

/** A Device that hands out addresses and counts calls; every kernel is a no-op and downloads read zeros. */
function addressOnlyDevice(calls: Map<string, number>): Device {
  let next = 256;
  const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);
  return new Proxy({} as Device, {
    get: (_target, name: string) => {
      if (name === 'then') return undefined; // not a promise
      if (name === 'info')
        return () => ({ name: 'no device (host cost only)', computeCapability: '', totalMemoryBytes: 0, cublas: '' });
      if (name === 'memory') return () => ({ inUseBytes: 0, peakBytes: 0, reservedBytes: 0 });
      if (name === 'takeProfile') return () => ({ kernelMs: 0, launches: 0 });
      if (name === 'alloc')
        return (bytes: number) => {
          count('alloc');
          const ptr = next;
          next += Math.ceil(bytes / 256) * 256;
          return ptr;
        };
      return () => count(name);
    },
  });
}

const { values: o } = parseArgs({
  options: {
    presets: { type: 'string', default: 'micro,mini,small' },
    tokens: { type: 'string', default: '65536' },
    steps: { type: 'string', default: '10' },
  },
});
const calls = new Map<string, number>();
await setupBackend('cuda', { precision: 'tf32', device: addressOnlyDevice(calls) });
for (const preset of o.presets.split(',')) {
  const model = presetConfig(preset);
  const batch = Math.max(1, Math.round(Number(o.tokens) / model.context));
  const n = batch * model.context;
  const microBatch = {
    batch,
    context: model.context,
    inputs: new Int32Array(n).map((_, i) => i % model.vocab),
    targets: new Int32Array(n).map((_, i) => (i + 1) % model.vocab),
  };
  const params = initParams(model, 1);
  const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const step = () => {
    const started = performance.now();
    const { grads } = computeGradients(params, model, [microBatch]);
    applyGradients(optimizer, grads, 1e-3, 1);
    tf.dispose([...grads.values()]);
    return performance.now() - started;
  };
  for (let i = 0; i < 3; i++) step();
  calls.clear();
  const ms = Array.from({ length: Number(o.steps) }, step);
  const perStep = Object.fromEntries([...calls].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v / ms.length]));
  const launches = Object.entries(perStep)
    .filter(([k]) => !['alloc', 'free', 'upload', 'download', 'sync', 'setPrecision'].includes(k))
    .reduce((a, [, v]) => a + v, 0);
  console.log(
    JSON.stringify({
      preset,
      tokens_per_step: n,
      host_ms_median: median(ms),
      launches_per_step: launches,
      calls_per_step: perStep,
    }),
  );
  tf.dispose([...params.values(), ...optimizer.moments().values()]);
}
