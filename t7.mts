import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
await tf.setBackend('wasm');
const best = (f: () => void) => { for (let i = 0; i < 2; i++) f(); let b = Infinity; for (let i = 0; i < 9; i++) { const s = performance.now(); f(); b = Math.min(b, performance.now() - s); } return b.toFixed(2); };
function jsT(src: Float32Array, dst: Float32Array, R: number, C: number, B: number) {
  for (let i0 = 0; i0 < R; i0 += B) for (let j0 = 0; j0 < C; j0 += B) {
    const i1 = Math.min(i0 + B, R), j1 = Math.min(j0 + B, C);
    for (let i = i0; i < i1; i++) { const row = i * C; for (let j = j0; j < j1; j++) dst[j * R + i] = src[row + j]; }
  }
}
for (const [R, C] of [[2048, 512], [512, 2048], [2048, 128], [128, 2048], [1000, 300], [4096, 256], [512, 128], [128, 512]]) {
  const x = tf.randomNormal([R, C]); const src = x.dataSync() as Float32Array; const dst = new Float32Array(R * C);
  console.log(R, C, 'wasm', best(() => tf.transpose(x).dispose()), 'js8', best(() => jsT(src, dst, R, C, 8)), 'js4', best(() => jsT(src, dst, R, C, 4)), 'js16', best(() => jsT(src, dst, R, C, 16)));
  x.dispose();
}
