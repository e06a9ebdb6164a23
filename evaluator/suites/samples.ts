// Story samples from fixed prompts with fixed seeds, and two measures of their variety: distinct-n (distinct
// word n-grams over all n-grams, pooled over the samples; Li et al. 2016) and the repetition rate (the share
// of word 3-grams in a sample that already occurred earlier in the same sample; 0 for no loops).
import { generate } from '../../lm/generate.js';
import { distinctShare, ngrams, repeatedShare } from '../ngrams.js';
import { timed, type SuiteContext, type SuiteResult } from './types.js';

export const SAMPLE_PROMPTS: Record<'en' | 'sv', string[]> = {
  en: [
    'Once upon a time',
    'It was a dark and stormy night, and',
    'The old house at the end of the lane',
    'She opened the letter and read',
    'When the ship came into the harbour,',
    'My dear friend,',
  ],
  sv: [
    'Det var en gång',
    'Det var en mörk och stormig natt, och',
    'Det gamla huset vid slutet av vägen',
    'Hon öppnade brevet och läste',
    'När skeppet kom in i hamnen,',
    'Min kära vän,',
  ],
};

export const SAMPLE_SETTINGS = { maxTokens: 64, temperature: 0.8, topK: 50, topP: 0.95, repetitionPenalty: 1 };

function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
}

export function distinctN(texts: string[], n: number): number {
  return distinctShare(texts.flatMap((t) => ngrams(words(t), n)));
}

export function repetitionRate(text: string, n = 3): number {
  return repeatedShare(ngrams(words(text), n));
}

export async function runSamples(lang: 'en' | 'sv', ctx: SuiteContext): Promise<SuiteResult> {
  const started = performance.now();
  const { model } = ctx;
  const prompts = SAMPLE_PROMPTS[lang].slice(0, ctx.limit ?? undefined);
  const samples: Array<{ prompt: string; text: string }> = [];
  for (const [i, prompt] of prompts.entries()) {
    const result = await generate(model.params, model.config, model.tokenizer.encode(prompt), {
      ...SAMPLE_SETTINGS,
      seed: 1000 + i,
      stopToken: model.tokenizer.eotId,
    });
    samples.push({ prompt, text: model.tokenizer.decode(result.tokens) });
  }
  const texts = samples.map((s) => s.text);
  const rates = texts.map((t) => repetitionRate(t));
  return timed(started, {
    suite: lang === 'en' ? 'samples' : 'samples-sv',
    kind: 'samples',
    metrics: {
      distinct_1: distinctN(texts, 1),
      distinct_2: distinctN(texts, 2),
      repetition_rate: rates.reduce((a, b) => a + b, 0) / Math.max(1, rates.length),
    },
    items: samples.length,
    item_ids: prompts.map((_, i) => `prompt-${i}`),
    item_scores: rates.map((r) => 1 - r),
    samples,
  });
}
