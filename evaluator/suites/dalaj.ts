// DaLAJ-GED (SuperLim 2): Swedish learner sentences labelled correct/incorrect. Each incorrect sentence
// carries exactly one error, with its span (meta.error_span, half-open character offsets) and correction
// (meta.confusion_pair). Its minimal-pair partner is the correct sentence in the same file that the span's
// correction turns it into. The file's detokenisation moved spaces around insertions ("typer av" can come
// out as "typerav"), so sentences are matched with whitespace removed, and the pair is always made of two
// sentences as they stand in the file. An incorrect sentence whose corrected form is not in the file (its
// correction lies in another split) cannot form a pair; those are counted as skipped.
// Accuracy overall and per error label (M morphology, S syntax, O orthography, L lexis, P punctuation).
import { z } from 'zod';
import { scoreMinimalPairs, type MinimalPair } from './choice.js';
import { limitPerGroup, readJsonl, SuiteFileError } from './jsonl.js';
import type { SuiteContext, SuiteResult } from './types.js';

const span = z.object({ start: z.int().nonnegative().nullable(), stop: z.int().nonnegative().nullable() });
const DalajLine = z.looseObject({
  sentence: z.string().min(1),
  label: z.enum(['correct', 'incorrect']),
  meta: z.looseObject({
    error_span: span.nullable().optional(),
    confusion_pair: z.object({ incorrect_span: z.string().nullable(), correction: z.string().nullable() }).nullable().optional(),
    error_label: z.string().nullable().optional(),
  }),
});

const squeeze = (s: string) => s.replace(/\s+/gu, '');

export interface DalajPairs {
  pairs: MinimalPair[];
  skipped: number;
}

export async function readDalaj(file: string, limit?: number): Promise<DalajPairs> {
  const rows = await readJsonl(file, DalajLine);
  const correct = new Map<string, string>();
  for (const { value } of rows)
    if (value.label === 'correct' && !correct.has(squeeze(value.sentence))) correct.set(squeeze(value.sentence), value.sentence);
  const pairs: MinimalPair[] = [];
  let skipped = 0;
  const bad: Array<{ line: number; error: string }> = [];
  for (const { line, value } of rows) {
    if (value.label !== 'incorrect') continue;
    const s = value.meta.error_span;
    const c = value.meta.confusion_pair;
    if (
      !s ||
      s.start === null ||
      s.stop === null ||
      !c ||
      c.correction === null ||
      s.stop < s.start ||
      s.stop > value.sentence.length
    ) {
      bad.push({
        line,
        error: 'an incorrect sentence needs meta.error_span {start, stop} within the sentence and meta.confusion_pair',
      });
      continue;
    }
    const corrected = value.sentence.slice(0, s.start) + c.correction + value.sentence.slice(s.stop);
    const good = correct.get(squeeze(corrected));
    if (good === undefined || good === value.sentence) {
      skipped++;
      continue;
    }
    const label = (value.meta.error_label ?? '').split(',')[0].trim() || 'unlabelled';
    pairs.push({ id: `line-${line}`, group: label, good, bad: value.sentence });
  }
  if (bad.length > 0) throw new SuiteFileError(file, bad);
  if (pairs.length === 0) throw new Error(`${file}: no incorrect sentence has its correction in the file, so there are no pairs`);
  return { pairs: limitPerGroup(pairs, (p) => p.group, limit), skipped };
}

export async function runDalaj(file: string, ctx: SuiteContext): Promise<SuiteResult> {
  const { pairs, skipped } = await readDalaj(file, ctx.limit);
  return scoreMinimalPairs('dalaj', pairs, ctx, {
    skipped: skipped > 0 ? { items: skipped, reason: 'the corrected sentence is not in the file' } : undefined,
  });
}
