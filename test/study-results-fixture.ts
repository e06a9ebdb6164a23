// Synthetic but schema-valid study results for all four groups of study/plan.yml (lang, filters, spelling,
// moe), drawn from seeded random numbers, with known true bits per byte per model and language.
import { Rng } from '../lm/rng.js';
import type { CellResult, DatasetResult, HeldOut, Language, Readability } from '../study/results.js';

const HASH = 'a'.repeat(64);
const readable: Readability = { words: 40, dictionary_share: 0.8, repetition_rate: 0.1, distinct_1: 0.7, distinct_2: 0.9 };

/** `tokenizer` seeds the windows' byte counts: cells of one dataset cut the same text into the same windows. */
function heldOut(rng: Rng, tokenizer: string, dataset: string, retokenized: boolean, bpb: number, windows = 40): HeldOut {
  const cut = new Rng([...tokenizer, ...dataset].reduce((h, ch) => h * 31 + ch.charCodeAt(0), 7) >>> 0);
  const w = Array.from({ length: windows }, () => {
    const bytes = Math.round(900 + 200 * cut.next());
    return [bpb * Math.LN2 * bytes * (1 + 0.08 * rng.normal()), bytes] as [number, number];
  });
  const bits = w.reduce((s, [n]) => s + n, 0) / Math.LN2;
  return { dataset, retokenized, bpb: bits / w.reduce((s, [, b]) => s + b, 0), windows: w };
}

function benchmark(rng: Rng, suite: 'blimp' | 'dalaj', accuracy: number, items: number) {
  const item_ids = Array.from({ length: items }, (_, i) => `${suite}-${i}`);
  const item_scores = item_ids.map((): number => (rng.next() < accuracy ? 1 : 0));
  return { suite, accuracy: item_scores.reduce((s, x) => s + x, 0) / items, item_ids, item_scores };
}

interface CellSpec {
  group: string;
  dataset: string;
  languages: Language[];
  model: string;
  preset: string;
  overrides?: Record<string, unknown>;
  params: { total: number; active: number };
  /** True bits per byte per held-out language. */
  bpb: Partial<Record<Language, number>>;
  retokenized: boolean;
  routing?: boolean;
}

function cell(spec: CellSpec, seed: number): CellResult {
  const rng = new Rng(seed * 1000 + spec.dataset.length * 31 + spec.model.length);
  const langs = Object.keys(spec.bpb) as Language[];
  return {
    format_version: 1,
    id: `${spec.group}/${spec.dataset}-${spec.model}-s${seed}`,
    hash: HASH,
    group: spec.group,
    dataset: spec.dataset,
    languages: spec.languages,
    preset: spec.preset,
    overrides: spec.overrides ?? {},
    seed,
    params: spec.params,
    budget_bytes: 1e6,
    train: { steps: 100, tokens: 250000 + seed, bytes: 1e6, seconds: 600 + 10 * seed, tokens_per_s: 400, val_bpb: 2 },
    curve: [1, 2, 3].map((i) => ({ step: i * 30, tokens: i * 80000, bytes: i * 3e5, val_bpb: 3 - i / 5 + rng.next() / 20 })),
    held_out: Object.fromEntries(langs.map((l) => [l, heldOut(rng, spec.dataset, l, spec.retokenized, spec.bpb[l]!)])),
    benchmarks: langs.map((l) => (l === 'eng' ? benchmark(rng, 'blimp', 0.6, 120) : benchmark(rng, 'dalaj', 0.55, 80))),
    samples: langs.map((language) => ({ language, prompt: 'Det var', text: 'en gång en katt', readability: readable })),
    ...(spec.routing && {
      routing: {
        eng: {
          tokens: [
            [300, 100, 50, 50],
            [125, 125, 125, 125],
          ],
          dropped: 3,
        },
        swe: {
          tokens: [
            [50, 50, 100, 300],
            [125, 125, 125, 125],
          ],
          dropped: 1,
        },
      },
    }),
    eval_seconds: 60,
    finished_at: '2025-01-01T00:00:00Z',
  };
}

function dataset(name: string, languages: Language[], extra: Partial<DatasetResult> = {}): DatasetResult {
  return {
    format_version: 1,
    name,
    hash: HASH,
    languages,
    vocab: 4096,
    filters: 'on',
    spelling: 'none',
    train_tokens: 1000000,
    train_bytes: 4000000,
    fertility: { bytes_per_token: 3.5 + name.length / 100, chars_per_token: 3.4, words_per_token: 0.7 },
    filter_counts: { short: 10, near_duplicate: 2 },
    reference_readability: [readable, { ...readable, dictionary_share: 0.9 }],
    ...extra,
  };
}

const NANO = { total: 500_000, active: 500_000 };
const MICRO = { total: 1_300_000, active: 1_300_000 };

export const SPECS: CellSpec[] = [
  ...(['eng', 'swe'] as const).flatMap((l) =>
    [
      ['nano', NANO, 2.2],
      ['micro', MICRO, 2.0],
    ].map(([model, params, bpb]) => ({
      group: 'lang',
      dataset: l,
      languages: [l],
      model: model as string,
      preset: model as string,
      params: params as typeof NANO,
      // Swedish costs 0.3 bits per byte more: a difference the report's intervals must find.
      bpb: { [l]: (bpb as number) + (l === 'swe' ? 0.3 : 0) },
      retokenized: false,
    })),
  ),
  {
    group: 'filters',
    dataset: 'swe-nofilter',
    languages: ['swe'],
    model: 'micro',
    preset: 'micro',
    params: MICRO,
    bpb: { swe: 2.35 },
    retokenized: true,
  },
  {
    group: 'spelling',
    dataset: 'swe-1906',
    languages: ['swe'],
    model: 'micro',
    preset: 'micro',
    params: MICRO,
    bpb: { swe: 2.25 },
    retokenized: true,
  },
  ...[
    { model: 'dense-active', preset: 'micro', params: MICRO, bpb: 2.1 },
    { model: 'moe', preset: 'moe-micro', params: { total: 3_000_000, active: 1_300_000 }, bpb: 2.0, routing: true },
    {
      model: 'dense-total',
      preset: 'micro',
      overrides: { ffn_hidden: 1408 },
      params: { total: 3_000_000, active: 3_000_000 },
      bpb: 1.95,
    },
  ].map((m) => ({
    group: 'moe',
    dataset: 'mix',
    languages: ['eng', 'swe'] as Language[],
    ...m,
    bpb: { eng: m.bpb, swe: m.bpb + 0.2 },
    retokenized: true,
  })),
];

export function studyResults(): { cells: CellResult[]; datasets: DatasetResult[] } {
  return {
    cells: SPECS.flatMap((s) => [1, 2].map((seed) => cell(s, seed))),
    datasets: [
      dataset('eng', ['eng']),
      dataset('swe', ['swe']),
      dataset('swe-nofilter', ['swe'], { filters: 'off', filter_counts: {} }),
      dataset('swe-1906', ['swe'], { spelling: 'sv-1906' }),
      dataset('mix', ['eng', 'swe'], { vocab: 8192 }),
    ],
  };
}
