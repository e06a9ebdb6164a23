import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
await tf.setBackend('wasm');
const R = 2048, C = 512;
const x = tf.randomNormal([R, C]);
const best = (f: () => void) => { for (let i = 0; i < 2; i++) f(); let b = Infinity; for (let i = 0; i < 9; i++) { const s = performance.now(); f(); b = Math.min(b, performance.now() - s); } return b.toFixed(2); };
console.log('wasm transpose', best(() => tf.transpose(x).dispose()));
const src = x.dataSync() as Float32Array; const dst = new Float32Array(R * C);
console.log('js naive', best(() => { for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) dst[j * R + i] = src[i * C + j]; }));
for (const B of [8, 16, 32, 64]) console.log('js blocked', B, best(() => {
  for (let i0 = 0; i0 < R; i0 += B) for (let j0 = 0; j0 < C; j0 += B) {
    const i1 = Math.min(i0 + B, R), j1 = Math.min(j0 + B, C);
    for (let i = i0; i < i1; i++) { const row = i * C; for (let j = j0; j < j1; j++) dst[j * R + i] = src[row + j]; }
  }
}));
const y = tf.randomNormal([64, 128, 32]);
console.log('wasm batched transpose 64x128x32', best(() => tf.transpose(y, [0, 2, 1]).dispose()));
