import { setupBackend } from './kernels/backend.js';
import * as tf from '@tensorflow/tfjs';
for (const n of ['tensorflow', 'tensorflow-gpu', 'bogus'] as const) {
  try { await setupBackend(n as any); } catch (e) { console.log(n, '->', (e as Error).message, '| cause:', ((e as Error).cause as Error)?.message); }
}
console.log(await setupBackend('auto'));
console.log(await setupBackend('cpu'));
console.log(await setupBackend());
console.log(tf.getBackend());
