import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
await tf.setBackend('wasm');
function bench(label: string, aShape: number[], bShape: number[], ta: boolean, tb: boolean, flops: number) {
  const a = tf.randomNormal(aShape), b = tf.randomNormal(bShape);
  for (let i = 0; i < 2; i++) tf.matMul(a, b, ta, tb).dispose();
  const n = 5; const t0 = performance.now();
  for (let i = 0; i < n; i++) tf.matMul(a, b, ta, tb).dispose();
  const ms = (performance.now() - t0) / n;
  console.log(label, ta, tb, ms.toFixed(2), 'ms', (flops / ms / 1e6).toFixed(2), 'GFLOP/s');
  a.dispose(); b.dispose();
}
const M = 2048, K = 128, N = 512;
const f = 2 * M * K * N;
bench('NN', [M, K], [K, N], false, false, f);
bench('NT', [M, K], [N, K], false, true, f);
bench('TN', [K, M], [K, N], true, false, f);
bench('TT', [K, M], [N, K], true, true, f);
// batched attention-ish
const Bt = 64, T = 128, hd = 32;
const fa = 2 * Bt * T * T * hd;
bench('bNN', [Bt, T, hd], [Bt, hd, T], false, false, fa);
bench('bNT', [Bt, T, hd], [Bt, T, hd], false, true, fa);
bench('bTN', [Bt, hd, T], [Bt, hd, T], true, false, fa);
bench('bTT', [Bt, hd, T], [Bt, T, hd], true, true, fa);
const x = tf.randomNormal([2048, 512]);
for (let i = 0; i < 2; i++) tf.transpose(x).dispose();
let t0 = performance.now(); for (let i = 0; i < 5; i++) tf.transpose(x).dispose(); console.log('transpose 2048x512', ((performance.now() - t0) / 5).toFixed(2), 'ms');
