// Measures wasm BatchMatMul GFLOP/s with the stock kernel and with Ringlet's fast path
// (kernels/wasm-batch-matmul.ts), on shapes from tiny-LM training steps, in all transpose combos.
// Run: node --import tsx bench/matmul.ts
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { setupBackend } from '../kernels/backend.js';

interface Case {
  label: string;
  batchA: number[]; // outer (batch) dims of a
  batchB: number[]; // outer (batch) dims of b
  m: number;
  k: number;
  n: number;
}

const CASES: Case[] = [
  { label: 'x[B*T,d] W[d,4d]', batchA: [], batchB: [], m: 2048, k: 128, n: 512 },
  { label: 'x[B*T,4d] W[4d,d]', batchA: [], batchB: [], m: 2048, k: 512, n: 128 },
  { label: 'x[B,T,d] W[d,4d]', batchA: [16], batchB: [], m: 128, k: 128, n: 512 },
  { label: 'attn q.k [B*H,T,hd]', batchA: [64], batchB: [64], m: 128, k: 32, n: 128 },
  { label: 'attn p.v [B*H,T,T]', batchA: [64], batchB: [64], m: 128, k: 128, n: 32 },
];
const COMBOS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];
const REPEATS = 7;

function operandShape(outer: number[], rows: number, cols: number, transposed: boolean): number[] {
  return transposed ? [...outer, cols, rows] : [...outer, rows, cols];
}

/** Fastest of REPEATS tf.matMul calls in milliseconds, after two warm-up calls; the minimum
 *  is the figure least disturbed by other processes on the machine. */
function timeMatMul(a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean): number {
  for (let i = 0; i < 2; i++) tf.matMul(a, b, transposeA, transposeB).dispose();
  let best = Infinity;
  for (let i = 0; i < REPEATS; i++) {
    const start = performance.now();
    tf.matMul(a, b, transposeA, transposeB).dispose();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

const stock = tf.getKernel(tf.BatchMatMul, 'wasm');
if (stock === undefined) throw new Error('no stock wasm BatchMatMul kernel registered');
const info = await setupBackend('wasm');
const fast = tf.getKernel(tf.BatchMatMul, 'wasm');
if (fast === undefined || fast === stock) throw new Error('setupBackend did not install the fast BatchMatMul');
function useKernel(config: tf.KernelConfig): void {
  tf.unregisterKernel(tf.BatchMatMul, 'wasm');
  tf.registerKernel(config);
}

console.log(`backend: ${info.description}; best of ${REPEATS} calls per cell, GFLOP/s = 2*batch*m*k*n / time`);
console.log('case                    | tA tB | stock ms  GFLOP/s | fast ms  GFLOP/s | speed-up | max |diff|');
for (const c of CASES) {
  const batch = tf.util.sizeFromShape(c.batchA.length >= c.batchB.length ? c.batchA : c.batchB);
  const flops = 2 * batch * c.m * c.k * c.n;
  for (const [transposeA, transposeB] of COMBOS) {
    const a = tf.randomNormal(operandShape(c.batchA, c.m, c.k, transposeA), 0, 1, 'float32', 1);
    const b = tf.randomNormal(operandShape(c.batchB, c.k, c.n, transposeB), 0, 1, 'float32', 2);
    useKernel(stock);
    const stockMs = timeMatMul(a, b, transposeA, transposeB);
    const expected = tf.matMul(a, b, transposeA, transposeB);
    useKernel(fast);
    const fastMs = timeMatMul(a, b, transposeA, transposeB);
    const actual = tf.matMul(a, b, transposeA, transposeB);
    const diff = tf.max(tf.abs(tf.sub(expected, actual))).dataSync()[0];
    const gflops = (ms: number) => (flops / ms / 1e6).toFixed(2).padStart(7);
    console.log(
      `${c.label.padEnd(23)} | ${+transposeA}  ${+transposeB}  | ${stockMs.toFixed(1).padStart(8)} ${gflops(stockMs)} | ` +
        `${fastMs.toFixed(1).padStart(7)} ${gflops(fastMs)} | ${(stockMs / fastMs).toFixed(1).padStart(7)}x | ` +
        diff.toExponential(1),
    );
    tf.dispose([a, b, expected, actual]);
  }
}
