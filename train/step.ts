// One optimizer step, in two halves so that data parallelism can sit between them: gradients of the
// micro-batches (summed, averaged), then clipping by global norm and the AdamW update.
import * as tf from '@tensorflow/tfjs';
import { objectiveOn, type Params } from '../lm/model.js';
import type { ModelConfig } from '../lm/model-config.js';
import type { AdamW } from './optimizer.js';
import type { Batch } from './batches.js';
import { whenGradientFinal } from '../kernels/lean-gradients.js';

/**
 * Mean cross-entropy and mean gradients of the objective (lm/model.ts objectiveOn: the cross-entropy, plus
 * the routers' auxiliary losses with experts) over the micro-batches; the caller disposes the gradients.
 */
export function computeGradients(
  params: Params,
  model: ModelConfig,
  microBatches: Batch[],
): { loss: number; grads: Map<string, tf.Tensor> } {
  const summed = new Map<string, tf.Tensor>();
  let lossSum = 0;
  for (const mb of microBatches) {
    let crossEntropy: tf.Scalar | null = null;
    const { value, grads } = tf.tidy(() => {
      const inputs = tf.tensor2d(mb.inputs, [mb.batch, mb.context], 'int32');
      const targets = tf.tensor2d(mb.targets, [mb.batch, mb.context], 'int32');
      return tf.variableGrads(() => {
        const o = objectiveOn(params, model, inputs, targets);
        crossEntropy = tf.keep(o.crossEntropy); // the objective is what variableGrads returns; this outlives it
        return o.objective;
      }, [...params.values()]);
    });
    lossSum += crossEntropy!.dataSync()[0];
    value.dispose();
    crossEntropy!.dispose();
    for (const [name, variable] of params) {
      // An expert that no token reached in this micro-batch has no gradient: zero.
      const g = grads[variable.name] ?? tf.zerosLike(variable);
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

/**
 * One flat gradient buffer for a training job's steps, on a SharedArrayBuffer so that the ring's own thread
 * reduces it where it lies. `ready[0]` says where its final part starts: each step it falls from the
 * buffer's length to 0 as the backward pass finishes gradients from the last parameter to the first, and
 * `Atomics.notify` wakes the ring, which reduces each bucket as soon as it lies in the final part.
 */
export class FlatGradients {
  readonly buffer: Float32Array;
  readonly ready = new Int32Array(new SharedArrayBuffer(4));
  private readonly offsets = new Map<number, number>(); // variable id → its first element in `buffer`
  private readonly order: tf.Variable[];
  private final: boolean[] = [];

  constructor(private readonly params: Params) {
    this.order = [...params.values()];
    let offset = 0;
    for (const p of this.order) {
      this.offsets.set(p.id, offset);
      offset += p.size;
    }
    this.buffer = new Float32Array(new SharedArrayBuffer(offset * 4));
  }

  /** Zeroes the buffer and marks nothing final: the start of a step. */
  reset(): void {
    this.buffer.fill(0);
    this.final = this.order.map(() => false);
    this.markReady(this.buffer.length);
  }

  /**
   * Adds weight × the gradients of one micro-batch and returns its loss. With `last` (no micro-batch follows
   * in this step), each parameter's share is added the moment its gradient is final, and the final part of
   * the buffer grows while the backward pass goes on; at the end the whole buffer is final.
   */
  add(model: ModelConfig, microBatch: Batch, weight: number, last: boolean): number {
    const added = new Set<number>();
    const addOne = (x: tf.Tensor, g: tf.Tensor) => {
      const offset = this.offsets.get(x.id)!;
      const values = g.dataSync() as Float32Array;
      for (let j = 0; j < values.length; j++) this.buffer[offset + j] += values[j] * weight;
      added.add(x.id);
      if (!last) return;
      this.final[this.order.findIndex((p) => p.id === x.id)] = true;
      let from = this.order.length;
      while (from > 0 && this.final[from - 1]) from--;
      this.markReady(from === this.order.length ? this.buffer.length : this.offsets.get(this.order[from].id)!);
    };
    const { loss, grads } = last
      ? whenGradientFinal(addOne, () => computeGradients(this.params, model, [microBatch]))
      : computeGradients(this.params, model, [microBatch]);
    for (const p of this.order) if (!added.has(p.id)) addOne(p, grads.get(nameOf(this.params, p))!);
    for (const g of grads.values()) g.dispose();
    if (last) this.markReady(0);
    return loss;
  }

  /** Marks the whole buffer final (a step whose gradients came some other way, or none). */
  markAllReady(): void {
    this.markReady(0);
  }

  /** One tensor per parameter, read back from the buffer; the caller disposes them. */
  tensors(): Map<string, tf.Tensor> {
    let offset = 0;
    return new Map(
      [...this.params].map(([name, p]) => [name, tf.tensor(this.buffer.subarray(offset, (offset += p.size)), p.shape)]),
    );
  }

  private markReady(from: number): void {
    if (Atomics.load(this.ready, 0) === from) return;
    Atomics.store(this.ready, 0, from);
    Atomics.notify(this.ready, 0);
  }
}

function nameOf(params: Params, v: tf.Variable): string {
  for (const [name, p] of params) if (p === v) return name;
  throw new Error(`variable ${v.name} is not a parameter`);
}

/**
 * Clips the gradients to a global norm (0: no clipping) and applies AdamW; returns the norm before clipping.
 * A gradient that is not finite (NaN or Inf anywhere, or a norm that overflows) is not applied: the step
 * is skipped (AdamW.skip) and the norm says so, so the weights never take in a NaN.
 */
export function applyGradients(optimizer: AdamW, grads: Map<string, tf.Tensor>, lr: number, gradClip: number): number {
  const gradNorm = tf.tidy(
    () =>
      tf
        .addN([...grads.values()].map((g) => g.square().sum()))
        .sqrt()
        .dataSync()[0],
  );
  if (!Number.isFinite(gradNorm)) {
    optimizer.skip();
    return gradNorm;
  }
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
