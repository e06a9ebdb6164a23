// Shared by the backend tests: run the same computation on two tfjs backends and compare.
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';

/** Runs `fn` on backend `name` inside tf.tidy and copies its tensors out as typed arrays. */
export async function runOn(name: 'cpu' | 'wasm', fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await setupBackend(name);
  const outputs = tf.tidy(fn);
  const values = outputs.map((t) => Float32Array.from(t.dataSync()));
  tf.dispose(outputs);
  return values;
}

export { relativeError } from '../kernels/reference.js';

// mulberry32: a seeded uniform generator on (0, 1), so failures reproduce.
function uniformGenerator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
}

/** Deterministic standard-normal values (Box-Muller). */
export function randomValues(count: number, seed: number): Float32Array {
  const uniform = uniformGenerator(seed);
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return Float32Array.from({ length: count }, normal);
}

/** Deterministic integers in [0, max). */
export function randomInts(count: number, max: number, seed: number): Int32Array {
  const uniform = uniformGenerator(seed);
  return Int32Array.from({ length: count }, () => Math.floor(uniform() * max));
}
