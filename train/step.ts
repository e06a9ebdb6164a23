// One optimizer step, in two halves so that data parallelism can sit between them: gradients of the
// micro-batches (summed, averaged), then clipping by global norm and the AdamW update.
import * as tf from '@tensorflow/tfjs';
import { lossOn, type Params } from '../lm/model.js';
import type { ModelConfig } from '../lm/model-config.js';
import type { AdamW } from './optimizer.js';
import type { Batch } from './batches.js';

/** Mean loss and mean gradients over the micro-batches; the caller disposes the gradients. */
export function computeGradients(
  params: Params,
  model: ModelConfig,
  microBatches: Batch[],
): { loss: number; grads: Map<string, tf.Tensor> } {
  const summed = new Map<string, tf.Tensor>();
  let lossSum = 0;
  for (const mb of microBatches) {
    const { value, grads } = tf.tidy(() => {
      const inputs = tf.tensor2d(mb.inputs, [mb.batch, mb.context], 'int32');
      const targets = tf.tensor2d(mb.targets, [mb.batch, mb.context], 'int32');
      return tf.variableGrads(() => lossOn(params, model, inputs, targets), [...params.values()]);
    });
    lossSum += value.dataSync()[0];
    value.dispose();
    for (const [name, variable] of params) {
      const g = grads[variable.name];
      const prev = summed.get(name);
      summed.set(name, prev ? tf.tidy(() => prev.add(g)) : g);
      if (prev) {
        prev.dispose();
        g.dispose();
      }
    }
  }
  if (microBatches.length > 1)
    for (const [name, g] of summed) {
      summed.set(
        name,
        tf.tidy(() => g.div(microBatches.length)),
      );
      g.dispose();
    }
  return { loss: lossSum / microBatches.length, grads: summed };
}

// ---- Gradients as one flat buffer, parameter after parameter in the parameters' order: what a data-parallel
// worker hands to the ring all-reduce, which sums it in place.

/** Adds weight × each gradient into `flat` (laid out in `params` order). */
export function accumulateFlat(flat: Float32Array, params: Params, grads: Map<string, tf.Tensor>, weight: number): void {
  let offset = 0;
  for (const [name, p] of params) {
    const values = grads.get(name)!.dataSync() as Float32Array;
    for (let j = 0; j < p.size; j++) flat[offset + j] += values[j] * weight;
    offset += p.size;
  }
}

/** One tensor per parameter, read back from `flat` (laid out in `params` order); the caller disposes them. */
export function gradientsFromFlat(flat: Float32Array, params: Params): Map<string, tf.Tensor> {
  let offset = 0;
  return new Map([...params].map(([name, p]) => [name, tf.tensor(flat.subarray(offset, (offset += p.size)), p.shape)]));
}

/** Clips the gradients to a global norm (0: no clipping) and applies AdamW; returns the norm before clipping. */
export function applyGradients(optimizer: AdamW, grads: Map<string, tf.Tensor>, lr: number, gradClip: number): number {
  const gradNorm = tf.tidy(
    () =>
      tf
        .addN([...grads.values()].map((g) => g.square().sum()))
        .sqrt()
        .dataSync()[0],
  );
  const clipScale = gradClip > 0 && gradNorm > gradClip ? gradClip / gradNorm : 1;
  optimizer.apply(grads, lr, clipScale);
  return gradNorm;
}

export function trainStep(
  params: Params,
  model: ModelConfig,
  optimizer: AdamW,
  microBatches: Batch[],
  lr: number,
  gradClip: number,
): { loss: number; gradNorm: number } {
  const { loss, grads } = computeGradients(params, model, microBatches);
  const gradNorm = applyGradients(optimizer, grads, lr, gradClip);
  for (const g of grads.values()) g.dispose();
  return { loss, gradNorm };
}
