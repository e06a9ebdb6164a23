// Real checkpoints for the evaluator tests: a small English dataset prepared from three short ELTeC
// novels, a freshly initialised model written as a checkpoint, and (on request) the same model trained
// for a few seconds. Nothing is mocked: the files are what `ringlet train` writes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { prepareDataset } from '../data/prepare.js';
import { writeCheckpoint } from '../lm/checkpoint.js';
import { initParams } from '../lm/model.js';
import { ModelConfigSchema, type ModelConfig } from '../lm/model-config.js';
import { loadTrainConfig } from '../train/config.js';
import { ProgressLog } from '../train/progress.js';
import { train } from '../train/run.js';
import { TINY_MODEL } from './tiny-dataset.js';

export const root = path.resolve(import.meta.dirname, '..');
export const NOVELS = ['ENG18872_Lyall.xml', 'ENG19011_Jerome.xml', 'ENG18951_Ward.xml'];

export interface Fixture {
  work: string;
  dataset: string;
  /** A run folder whose only checkpoint is a freshly initialised model. */
  fresh: string;
  /** Same shape as fresh, another seed: a second untrained checkpoint. */
  fresh2: string;
}

async function freshCheckpoint(work: string, dataset: string, name: string, seed: number): Promise<string> {
  const manifest = JSON.parse(fs.readFileSync(path.join(dataset, 'manifest.json'), 'utf8'));
  const model: ModelConfig = ModelConfigSchema.parse({
    vocab: manifest.tokenizer.vocab_size,
    d_model: 32,
    n_layers: 2,
    n_heads: 4,
    n_kv_heads: 2,
    ffn_hidden: 64,
    context: 32,
    rope_theta: 10000,
    norm_eps: 1e-5,
  });
  const params = initParams(model, seed);
  const weights = new Map([...params].map(([n, v]) => [n, { shape: v.shape, data: v.dataSync() as Float32Array }]));
  params.forEach((v) => v.dispose());
  const runDir = path.join(work, name);
  await writeCheckpoint(
    runDir,
    {
      step: 0,
      weights,
      optimizer: new Map(),
      meta: {
        config: { model, training: { data: dataset } },
        tokens_seen: 0,
        data_cursor: null,
        rng_state: null,
        schedule_horizon_steps: null,
        tokenizer_sha256: manifest.tokenizer.sha256,
        backend: 'wasm',
      },
      tokenizerJson: fs.readFileSync(path.join(dataset, 'tokenizer.json')),
    },
    1,
  );
  return runDir;
}

export async function makeFixture(prefix: string): Promise<Fixture> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const corpus = path.join(work, 'corpus');
  fs.mkdirSync(corpus);
  for (const name of NOVELS) fs.copyFileSync(path.join(root, '../shared/data/eltec/eng', name), path.join(corpus, name));
  const dataset = path.join(work, 'data');
  await prepareDataset({
    inputs: [corpus],
    outDir: dataset,
    vocab: 512,
    seed: 1,
    valFraction: 0.34,
    command: ['test'],
    progress: false,
  });
  return {
    work,
    dataset,
    fresh: await freshCheckpoint(work, dataset, 'fresh', 1),
    fresh2: await freshCheckpoint(work, dataset, 'fresh2', 2),
  };
}

/** Trains the tiny model on the fixture's dataset for `steps` steps; returns the run folder. */
export async function trainTiny(f: Fixture, steps: number): Promise<string> {
  const out = path.join(f.work, `trained-${steps}`);
  const configFile = path.join(f.work, 'train-config.json');
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      model: TINY_MODEL,
      optimizer: { lr: 0.01, warmup_steps: 10 },
      training: { batch_size: 16, eval_windows: 8, log_every: 1000 },
    }),
  );
  const config = loadTrainConfig(configFile, { data: f.dataset, out, maxSteps: steps, evalEvery: steps, checkpointEvery: steps });
  await train(config, { resume: false, log: new ProgressLog(out, { live: false }) });
  return out;
}
