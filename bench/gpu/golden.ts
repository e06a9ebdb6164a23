// Writes the golden fixture (test/fixtures/golden-step.json, bench/gpu/golden-run.ts) from the CPU path:
// wasm + native kernels. `node --import tsx bench/gpu/golden.ts --write`; without --write it prints the run.
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../../kernels/backend.js';
import { writeFileAtomic } from '../../lm/atomic-write.js';
import { GOLDEN_FIXTURE, GOLDEN_MODEL, GOLDEN_TRAINING, cpuPathOf, runGolden } from './golden-run.js';

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
