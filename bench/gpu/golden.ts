// Writes the golden fixture (test/fixtures/golden-step.json, bench/gpu/golden-run.ts) from the CPU path:
// wasm + native kernels. `node --import tsx bench/gpu/golden.ts --write`; without --write it prints the run.
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../../kernels/backend.js';
import { loadNative } from '../../kernels/native.js';
import { writeFileAtomic } from '../../lm/atomic-write.js';
import { GOLDEN_MODEL, GOLDEN_TRAINING, runGolden } from './golden-run.js';

export const GOLDEN_FIXTURE = fileURLToPath(new URL('../../test/fixtures/golden-step.json', import.meta.url));

/** What computed a run: the wasm path is bit for bit only on the same kind of CPU kernels. */
export function cpuPathOf(description: string): string {
  const native = loadNative()?.info();
  return native ? `${description}; native ${native.simd}, OpenBLAS core ${native.blasCore}` : description;
}

const backend = await setupBackend('wasm');
const fixture = {
  written_by: 'node --import tsx bench/gpu/golden.ts --write',
  cpu_path: cpuPathOf(backend.description),
  model: GOLDEN_MODEL,
  training: GOLDEN_TRAINING,
  ...runGolden(),
};
const json = JSON.stringify(fixture, null, 2) + '\n';
if (process.argv.includes('--write')) await writeFileAtomic(GOLDEN_FIXTURE, json);
else process.stdout.write(json);
tf.disposeVariables();
