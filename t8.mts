import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { setupBackend } from './kernels/backend.js';
const stock = tf.getKernel(tf.BatchMatMul, 'wasm')!;
await setupBackend('wasm');
const fast = tf.getKernel(tf.BatchMatMul, 'wasm')!;
const use = (c: tf.KernelConfig) => { tf.unregisterKernel(tf.BatchMatMul, 'wasm'); tf.registerKernel(c); };
const best = (f: () => void) => { for (let i = 0; i < 3; i++) f(); let b = Infinity; for (let i = 0; i < 15; i++) { const s = performance.now(); f(); b = Math.min(b, performance.now() - s); } return b; };
for (const [B, m, k, n] of [[64, 16, 8, 16], [64, 32, 16, 32], [64, 64, 16, 64], [256, 64, 16, 64], [8, 8, 8, 8], [1, 8, 8, 8], [1, 64, 64, 64], [32, 64, 32, 64], [128, 256, 32, 256]]) {
  for (const [ta, tb] of [[false, false], [false, true], [true, false]] as const) {
    const a = tf.randomNormal(ta ? [B, k, m] : [B, m, k]), b = tf.randomNormal(tb ? [B, n, k] : [B, k, n]);
    use(stock); const s = best(() => tf.matMul(a, b, ta, tb).dispose());
    use(fast); const f = best(() => tf.matMul(a, b, ta, tb).dispose());
    console.log(`B${B} m${m} k${k} n${n} t${+ta}${+tb} per-batch-flops ${2*m*k*n} stock ${s.toFixed(3)} fast ${f.toFixed(3)} ratio ${(s / f).toFixed(2)}`);
    tf.dispose([a, b]);
  }
}
