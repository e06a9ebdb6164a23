// Minimal pairs and multiple choice, the two item kinds every data-driven suite reduces to, and the
// documented jsonl format a user writes to add a suite without code (docs/evaluator.md, "Suite files").
import { z } from 'zod';
import { scoreSequences, sumFrom, withDocumentStart } from '../scoring.js';
import { limitPerGroup, readJsonl, SuiteFileError } from './jsonl.js';
import { groupAccuracies, mean, timed, type SuiteContext, type SuiteResult } from './types.js';

export interface MinimalPair {
  id: string;
  group: string;
  good: string;
  bad: string;
}

export interface MultipleChoice {
  id: string;
  group: string;
  context: string;
  choices: string[];
  answer: number;
}

/**
 * Right (1) when the whole good sentence, read as the start of a document, has a higher log-probability
 * than the whole bad one; wrong (0) otherwise, ties included. That is `accuracy`, the usual BLiMP rule.
 * `accuracy_per_token` compares mean log-probability per token instead: where the two sentences differ in
 * length (DaLAJ's omitted or extra words) the plain sum favours the shorter one, and an untrained model,
 * which spends about log(vocab) nats on every token, then lands below 50% on the sum and at 50% per token.
 */
export async function scoreMinimalPairs(
  suite: string,
  pairs: MinimalPair[],
  ctx: SuiteContext,
  extra: Pick<SuiteResult, 'skipped'> = {},
): Promise<SuiteResult> {
  const started = performance.now();
  const { tokenizer } = ctx.model;
  const sequences = pairs.flatMap((p) => [
    withDocumentStart(tokenizer.eotId, tokenizer.encode(p.good)),
    withDocumentStart(tokenizer.eotId, tokenizer.encode(p.bad)),
  ]);
  const scored = await scoreSequences(ctx.model, sequences, { batchSize: ctx.batchSize });
  const scores = pairs.map((_, i) => (sumFrom(scored[2 * i].logprobs) > sumFrom(scored[2 * i + 1].logprobs) ? 1 : 0));
  const perToken = (s: (typeof scored)[number]) => sumFrom(s.logprobs) / s.logprobs.length;
  const perTokenScores = pairs.map((_, i) => (perToken(scored[2 * i]) > perToken(scored[2 * i + 1]) ? 1 : 0));
  return timed(started, {
    suite,
    kind: 'minimal_pair',
    metrics: { accuracy: mean(scores), accuracy_per_token: mean(perTokenScores) },
    items: pairs.length,
    groups: groupAccuracies(
      pairs.map((p) => p.group),
      scores,
    ),
    item_ids: pairs.map((p) => p.id),
    item_scores: scores,
    ...extra,
  });
}

/**
 * Each choice is scored as a continuation of the context: the sum of its tokens' log-probabilities given the
 * context (encoded apart, so the boundary is exact, as lm-evaluation-harness does). `accuracy` takes the
 * choice with the highest sum; `accuracy_norm` divides each sum by the choice's UTF-8 bytes first.
 */
export async function scoreMultipleChoice(suite: string, items: MultipleChoice[], ctx: SuiteContext): Promise<SuiteResult> {
  const started = performance.now();
  const { tokenizer } = ctx.model;
  const sequences: number[][] = [];
  const from: number[] = [];
  for (const item of items) {
    const context = withDocumentStart(tokenizer.eotId, tokenizer.encode(item.context));
    for (const choice of item.choices) {
      sequences.push([...context, ...tokenizer.encode(choice)]);
      from.push(context.length - 1);
    }
  }
  const scored = await scoreSequences(ctx.model, sequences, { batchSize: ctx.batchSize });
  const scores: number[] = [];
  const normScores: number[] = [];
  let at = 0;
  for (const item of items) {
    const sums = item.choices.map((_, j) => sumFrom(scored[at + j].logprobs, from[at + j]));
    const norm = item.choices.map((c, j) => sums[j] / Math.max(1, Buffer.byteLength(c)));
    scores.push(argmax(sums) === item.answer ? 1 : 0);
    normScores.push(argmax(norm) === item.answer ? 1 : 0);
    at += item.choices.length;
  }
  return timed(started, {
    suite,
    kind: 'multiple_choice',
    metrics: { accuracy: mean(scores), accuracy_norm: mean(normScores) },
    items: items.length,
    groups: groupAccuracies(
      items.map((i) => i.group),
      scores,
    ),
    item_ids: items.map((i) => i.id),
    item_scores: scores,
  });
}

function argmax(values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

// The suite file format: one object per line, all lines of one type.
const text = z.string().min(1, 'must not be empty').max(10_000);
const common = { id: z.string().min(1).max(200).optional(), group: z.string().min(1).max(200).optional() };
export const MinimalPairLine = z.strictObject({ type: z.literal('minimal_pair'), good: text, bad: text, ...common });
export const MultipleChoiceLine = z
  .strictObject({
    type: z.literal('multiple_choice'),
    context: z.string().max(10_000),
    choices: z.array(text).min(2).max(26),
    answer: z.int().nonnegative(),
    ...common,
  })
  .refine((l) => l.answer < l.choices.length, { message: 'answer must index one of the choices', path: ['answer'] });
export const SuiteLine = z.discriminatedUnion('type', [MinimalPairLine, MultipleChoiceLine]);

type SuiteItems = { type: 'minimal_pair'; items: MinimalPair[] } | { type: 'multiple_choice'; items: MultipleChoice[] };

/** The items of a user's suite file, checked line by line (SuiteFileError names every bad line). */
export async function readSuiteFile(file: string): Promise<SuiteItems> {
  const rows = await readJsonl(file, SuiteLine);
  const type = rows[0].value.type;
  const problems: Array<{ line: number; error: string }> = [];
  const ids = new Map<string, number>();
  for (const r of rows) {
    if (r.value.type !== type)
      problems.push({ line: r.line, error: `type is ${r.value.type}, but line ${rows[0].line} made this a ${type} suite` });
    const id = r.value.id ?? `line-${r.line}`;
    if (ids.has(id)) problems.push({ line: r.line, error: `id "${id}" is already used on line ${ids.get(id)}` });
    ids.set(id, r.line);
  }
  if (problems.length > 0) throw new SuiteFileError(file, problems);
  const identity = (r: (typeof rows)[number]) => ({ id: r.value.id ?? `line-${r.line}`, group: r.value.group ?? 'all' });
  if (type === 'minimal_pair')
    return {
      type,
      items: rows.map((r) => {
        const v = r.value as z.infer<typeof MinimalPairLine>;
        return { ...identity(r), good: v.good, bad: v.bad };
      }),
    };
  return {
    type,
    items: rows.map((r) => {
      const v = r.value as z.infer<typeof MultipleChoiceLine>;
      return { ...identity(r), context: v.context, choices: v.choices, answer: v.answer };
    }),
  };
}

/** Runs a user's suite file: minimal pairs or multiple choice, named by the file. */
export async function runSuiteFile(suite: string, file: string, ctx: SuiteContext): Promise<SuiteResult> {
  const suiteItems = await readSuiteFile(file);
  if (suiteItems.type === 'minimal_pair')
    return scoreMinimalPairs(
      suite,
      limitPerGroup(suiteItems.items, (p) => p.group, ctx.limit),
      ctx,
    );
  return scoreMultipleChoice(
    suite,
    limitPerGroup(suiteItems.items, (i) => i.group, ctx.limit),
    ctx,
  );
}
