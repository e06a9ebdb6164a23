// Shared by the tests that train: a small Swedish dataset prepared in seconds, and a model small enough
// that a training step takes milliseconds.
import fs from 'node:fs';
import path from 'node:path';
import { prepareDataset } from '../data/prepare.js';

export const TINY_MODEL = { preset: 'nano', d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_hidden: 64, context: 32 };

/** Prepares two ELTeC novels into `work/data` (512-token vocabulary) and returns that folder. */
export async function prepareTinyDataset(root: string, work: string): Promise<string> {
  const corpus = path.join(work, 'corpus');
  const dataset = path.join(work, 'data');
  fs.mkdirSync(corpus);
  for (const name of ['SWE11729834_Sandel.xml', 'SWE1175632_Steenhoff.xml'])
    fs.copyFileSync(path.join(root, '../shared/data/eltec/swe', name), path.join(corpus, name));
  await prepareDataset({
    inputs: [corpus],
    outDir: dataset,
    vocab: 512,
    seed: 1,
    valFraction: 0.5,
    command: ['test'],
    progress: false,
  });
  return dataset;
}
