// The golden step (issue 13): a tiny dense model trained 20 AdamW steps on fixed batches, recorded on the CPU
// path (wasm + native kernels) in test/fixtures/golden-step.json, so that any other backend (the cuda backend
// on a GPU, bench/gpu/check.ts) is judged against the same numbers: the first loss, every parameter's
// gradient norm in the first step, the loss and global gradient norm of each step, and a checksum of every
// parameter at the end. This module runs it on whatever tfjs backend is active and compares two runs.
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { loadNative } from '../../kernels/native.js';
import { initParams } from '../../lm/model.js';
import type { ModelConfig } from '../../lm/model-config.js';
import { Rng } from '../../lm/rng.js';
import { AdamW } from '../../train/optimizer.js';
import { applyGradients, computeGradients } from '../../train/step.js';
import type { Batch } from '../../train/batches.js';

export const GOLDEN_FIXTURE = fileURLToPath(new URL('../../test/fixtures/golden-step.json', import.meta.url));

/** What computed a run: the wasm path is bit for bit only on the same kind of CPU kernels. */
export function cpuPathOf(description: string): string {
  const native = loadNative()?.info();
  return native ? `${description}; native ${native.simd}, OpenBLAS core ${native.blasCore}` : description;
}

/** d_model 64, 2 layers, 4 query heads over 2 key/value heads (GQA), vocabulary 256, context 32. */
export const GOLDEN_MODEL: ModelConfig = {
  vocab: 256,
  d_model: 64,
  n_layers: 2,
  n_heads: 4,
  n_kv_heads: 2,
  ffn_hidden: 192, // swigluHidden(64)
  context: 32,
  rope_theta: 10000,
  norm_eps: 1e-5,
};

export const GOLDEN_TRAINING = {
  batch: 4,
  steps: 20,
  initSeed: 1,
  dataSeed: 2,
  lr: 3e-3, // constant: no schedule to disagree about
  gradClip: 1,
  adamw: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 },
};

export interface GoldenRun {
  initial_loss: number;
  /** L2 norm of each parameter's gradient in the first step, in float64 over its float32 values. */
  first_grad_norms: Record<string, number>;
  /** Each step's loss (before its update) and global gradient norm (before clipping). */
  steps: Array<{ loss: number; grad_norm: number }>;
  /** The element count, Σ x and Σ x² of every parameter after the last step, in float64. */
  checksums: Record<string, { count: number; sum: number; sum_sq: number }>;
}

/**
 * The fixed batches: each row an arithmetic progression of tokens modulo the vocabulary, a random start and
 * stride per row, and the targets the next token. Learnable in context (attention must find the stride), so
 * the loss falls within 20 steps and a wrong gradient shows.
 */
export function goldenBatches(): Batch[] {
  const { vocab, context } = GOLDEN_MODEL;
  const { batch, steps, dataSeed } = GOLDEN_TRAINING;
  const rng = new Rng(dataSeed);
  return Array.from({ length: steps }, () => {
    const inputs = new Int32Array(batch * context);
    const targets = new Int32Array(batch * context);
    for (let b = 0; b < batch; b++) {
      const start = rng.int(vocab);
      const stride = 1 + rng.int(7);
      for (let t = 0; t < context; t++) {
        inputs[b * context + t] = (start + t * stride) % vocab;
        targets[b * context + t] = (start + (t + 1) * stride) % vocab;
      }
    }
    return { inputs, targets, batch, context };
  });
}

function sumsOf(values: ArrayLike<number>): { count: number; sum: number; sum_sq: number } {
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    sumSq += values[i] * values[i];
  }
  return { count: values.length, sum, sum_sq: sumSq };
}

/** Trains the golden model on the active tfjs backend and records the run. */
export function runGolden(): GoldenRun {
  const params = initParams(GOLDEN_MODEL, GOLDEN_TRAINING.initSeed);
  const optimizer = new AdamW(params, GOLDEN_TRAINING.adamw);
  const run: GoldenRun = { initial_loss: NaN, first_grad_norms: {}, steps: [], checksums: {} };
  try {
    for (const batch of goldenBatches()) {
      const { loss, grads } = computeGradients(params, GOLDEN_MODEL, [batch]);
      if (run.steps.length === 0) {
        run.initial_loss = loss;
        for (const [name, g] of grads) run.first_grad_norms[name] = Math.sqrt(sumsOf(g.dataSync()).sum_sq);
      }
      const gradNorm = applyGradients(optimizer, grads, GOLDEN_TRAINING.lr, GOLDEN_TRAINING.gradClip);
      tf.dispose([...grads.values()]);
      run.steps.push({ loss, grad_norm: gradNorm });
    }
    for (const [name, p] of params) run.checksums[name] = sumsOf(p.dataSync());
  } finally {
    tf.dispose([...params.values(), ...optimizer.moments().values()]);
  }
  return run;
}

/** Relative tolerances of a run against the fixture, per kind of figure; 0 is bit for bit. */
export interface GoldenTolerance {
  loss: number; // the initial loss and each step's loss
  gradNorm: number; // the first step's per-parameter norms and each step's global norm
  checksum: number; // Σ x and Σ x² of each parameter at the end
}

/**
 * The tolerances a backend is held to. wasm: the fixture's own path, bit for bit on the kind of CPU kernels
 * that wrote it (golden.ts records them). fp32: float32 sums in another order (the cuda backend's fp32
 * products and blocked attention, another CPU's SIMD kernels); measured here, the plain tfjs kernels
 * (RINGLET_NATIVE=0) and OpenBLAS's Haswell sgemm deviate from the fixture by at most 1.5e-6 over the 20
 * steps, so 1e-5 leaves a margin of 7. tf32: products whose inputs keep 10 of float32's 23 mantissa bits
 * (rounding 2^-11 ≈ 4.9e-4 relative per input), which 20 AdamW steps carry into the weights: stated, and
 * reported by the GPU check beside the fp32 verdict.
 */
export const GOLDEN_TOLERANCES: Record<'wasm' | 'fp32' | 'tf32', GoldenTolerance> = {
  wasm: { loss: 0, gradNorm: 0, checksum: 0 },
  fp32: { loss: 1e-5, gradNorm: 1e-5, checksum: 1e-5 },
  tf32: { loss: 2e-3, gradNorm: 2e-2, checksum: 1e-2 },
};

export interface GoldenDeviation {
  figure: string; // e.g. "steps[3].loss", "first_grad_norms.layers.0.wq", "checksums.final_norm.sum_sq"
  expected: number;
  actual: number;
  relative: number;
}

/**
 * Every figure of `actual` against `expected`: the largest relative deviation of each kind, and the figures
 * beyond `tol` (none: the run matches). A figure that is missing or not finite is beyond any tolerance.
 */
export function compareGolden(expected: GoldenRun, actual: GoldenRun, tol: GoldenTolerance) {
  const beyond: GoldenDeviation[] = [];
  const worst = { loss: 0, gradNorm: 0, checksum: 0 };
  const judge = (kind: keyof GoldenTolerance, figure: string, e: number, a: number | undefined, scale = Math.abs(e)) => {
    const relative = a === undefined || !Number.isFinite(a) ? Infinity : scale === 0 ? Math.abs(a) : Math.abs(a - e) / scale;
    worst[kind] = Math.max(worst[kind], relative);
    if (relative > tol[kind]) beyond.push({ figure, expected: e, actual: a ?? NaN, relative });
  };
  judge('loss', 'initial_loss', expected.initial_loss, actual.initial_loss);
  for (const [name, norm] of Object.entries(expected.first_grad_norms))
    judge('gradNorm', `first_grad_norms.${name}`, norm, actual.first_grad_norms[name]);
  expected.steps.forEach((s, i) => {
    judge('loss', `steps[${i}].loss`, s.loss, actual.steps[i]?.loss);
    judge('gradNorm', `steps[${i}].grad_norm`, s.grad_norm, actual.steps[i]?.grad_norm);
  });
  for (const [name, c] of Object.entries(expected.checksums)) {
    const a = actual.checksums[name];
    judge('checksum', `checksums.${name}.sum_sq`, c.sum_sq, a?.sum_sq);
    // Σ x of n values cancels; it is judged on the scale of the bound |Σ x| ≤ sqrt(n·Σ x²).
    judge('checksum', `checksums.${name}.sum`, c.sum, a?.sum, Math.sqrt(c.count * c.sum_sq));
  }
  return { matches: beyond.length === 0, worst, beyond };
}
