// A dataset for benchmarks that need one on disk but not any particular text (throughput does not depend
// on what the tokens say): seeded random words, prepared by the real pipeline (data/prepare.ts) into
// `dir`, so training reads it exactly as it reads a corpus.
import fs from 'node:fs';
import path from 'node:path';
import { prepareDataset } from '../data/prepare.js';
import { Rng } from '../lm/rng.js';

const LETTERS = 'abcdefghijklmnopqrstuvwxyzåäö';

/** Prepares ~`megabytes` MB of random words (vocabulary `vocab`) into `dir`/data and returns that folder. */
export async function prepareSyntheticDataset(dir: string, vocab: number, megabytes = 4): Promise<string> {
  const rng = new Rng(1);
  const words = Array.from({ length: 20_000 }, () =>
    Array.from({ length: 1 + rng.int(9) }, () => LETTERS[rng.int(LETTERS.length)]).join(''),
  );
  const corpus = path.join(dir, 'corpus');
  fs.mkdirSync(corpus, { recursive: true });
  const documents = 16;
  for (let d = 0; d < documents; d++) {
    const paragraphs: string[] = [];
    for (let bytes = 0; bytes < (megabytes << 20) / documents;) {
      const sentence = Array.from({ length: 8 + rng.int(24) }, () => words[rng.int(words.length)]).join(' ');
      paragraphs.push(`${sentence[0].toUpperCase()}${sentence.slice(1)}.`);
      bytes += sentence.length + 2;
    }
    fs.writeFileSync(path.join(corpus, `doc${d}.txt`), paragraphs.join('\n\n'));
  }
  const out = path.join(dir, 'data');
  await prepareDataset({
    inputs: [corpus],
    outDir: out,
    vocab,
    seed: 1,
    valFraction: 0.125,
    command: ['bench'],
    progress: false,
  });
  return out;
}
