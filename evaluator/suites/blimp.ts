// BLiMP (Warstadt et al. 2020): English minimal pairs, one paradigm per jsonl file, each line with
// sentence_good, sentence_bad, UID (the paradigm) and pairID. Accuracy overall and per paradigm.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { scoreMinimalPairs, type MinimalPair } from './choice.js';
import { limitPerGroup, readJsonl } from './jsonl.js';
import type { SuiteContext, SuiteResult } from './types.js';

const BlimpLine = z.looseObject({
  sentence_good: z.string().min(1),
  sentence_bad: z.string().min(1),
  UID: z.string().min(1),
  pairID: z.union([z.string(), z.number()]),
});

/** The pairs of every *.jsonl file in `dir` (files in name order), at most `limit` per paradigm. */
export async function readBlimp(dir: string, limit?: number): Promise<MinimalPair[]> {
  const names = await readdir(dir).catch((err: Error) => {
    throw new Error(`cannot read the BLiMP folder ${dir}: ${err.message}`);
  });
  const files = names.filter((n) => n.endsWith('.jsonl')).sort();
  if (files.length === 0) throw new Error(`the BLiMP folder ${dir} has no .jsonl files`);
  const pairs: MinimalPair[] = [];
  for (const file of files) {
    const rows = await readJsonl(path.join(dir, file), BlimpLine);
    const filePairs = rows.map(({ value }) => ({
      id: `${value.UID}/${value.pairID}`,
      group: value.UID,
      good: value.sentence_good,
      bad: value.sentence_bad,
    }));
    pairs.push(...limitPerGroup(filePairs, (p) => p.group, limit));
  }
  return pairs;
}

export async function runBlimp(dir: string, ctx: SuiteContext): Promise<SuiteResult> {
  return scoreMinimalPairs('blimp', await readBlimp(dir, ctx.limit), ctx);
}
