// AdamW (Loshchilov & Hutter) with decoupled weight decay, applied to matrices only: norm gains and the
// embedding are not decayed. Moments live on the backend as variables; checkpoints read them as buffers.
import * as tf from '@tensorflow/tfjs';
import type { Params } from '../lm/model.js';
import { fusedAdamW } from '../lm/ops.js';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export function isDecayed(name: string, shape: number[]): boolean {
  return shape.length >= 2 && name !== 'tok_embedding';
}

export class AdamW {
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  step = 0; // updates applied so far; drives the bias correction

  constructor(
    private readonly params: Params,
    private readonly config: AdamWConfig,
  ) {
    for (const [name, p] of params) {
      this.m.set(
        name,
        tf.tidy(() => tf.variable(tf.zerosLike(p), false)),
      );
      this.v.set(
        name,
        tf.tidy(() => tf.variable(tf.zerosLike(p), false)),
      );
    }
  }

  /** Both moments of every parameter, named `m.<param>` and `v.<param>` as checkpoints store them. */
  moments(): Map<string, tf.Variable> {
    const prefixed = (prefix: string, vars: Map<string, tf.Variable>) => [...vars].map(([n, v]) => [`${prefix}${n}`, v] as const);
    return new Map([...prefixed('m.', this.m), ...prefixed('v.', this.v)]);
  }

  /** Restores the moments from a checkpoint's buffers; `step` must be set by the caller. */
  restore(buffers: Map<string, { shape: number[]; data: Float32Array }>): void {
    for (const [name, v] of this.moments()) {
      const b = buffers.get(name);
      if (!b) throw new Error(`optimizer state has no tensor "${name}"`);
      tf.tidy(() => v.assign(tf.tensor(b.data, b.shape)));
    }
  }

  /**
   * A step taken without an update (its gradient was not finite): the step count still moves, so the
   * bias correction stays a function of the step, as a checkpoint restores it.
   */
  skip(): void {
    this.step += 1;
  }

  /** One update with learning rate lr. Gradients are multiplied by gradScale first (clipping, averaging). */
  apply(grads: Map<string, tf.Tensor>, lr: number, gradScale = 1): void {
    const { beta1, beta2, eps, weightDecay } = this.config;
    this.step += 1;
    const correction1 = 1 - Math.pow(beta1, this.step);
    const correction2 = 1 - Math.pow(beta2, this.step);
    tf.tidy(() => {
      const names = [...this.params.keys()];
      const decayOf = (name: string) => (isDecayed(name, this.params.get(name)!.shape) ? weightDecay : 0);
      const fused = fusedAdamW(
        names.map((name) => ({
          p: this.params.get(name)!,
          g: grads.get(name)!,
          m: this.m.get(name)!,
          v: this.v.get(name)!,
          weightDecay: decayOf(name),
        })),
        { lr, beta1, beta2, eps, correction1, correction2, gradScale },
      );
      if (fused) {
        // One native pass per parameter, one launch for all on cuda (lm/ops.ts); the same arithmetic as below.
        names.forEach((name, i) => {
          this.params.get(name)!.assign(fused[i][0]);
          this.m.get(name)!.assign(fused[i][1]);
          this.v.get(name)!.assign(fused[i][2]);
        });
        return;
      }
      for (const [name, p] of this.params) {
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const g = grads.get(name)!.mul(gradScale);
        m.assign(m.mul(beta1).add(g.mul(1 - beta1)));
        v.assign(v.mul(beta2).add(g.square().mul(1 - beta2)));
        const update = m.div(correction1).div(v.div(correction2).sqrt().add(eps));
        const decay = isDecayed(name, p.shape) ? p.mul(weightDecay) : null;
        p.assign(p.sub((decay ? update.add(decay) : update).mul(lr)));
      }
    });
  }
}
