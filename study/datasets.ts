// The plan's datasets: each prepared once by `ringlet data prepare` into the work folder (cached by its
// spec's hash), then described in study/results/datasets/<name>.json: size, tokenizer fertility, and the
// readability of real held-out text, which the samples' scores are read against.
import fs from 'node:fs';
import path from 'node:path';
import { readManifest, type Manifest } from '../data/manifest.js';
import { openSplit } from '../data/shards.js';
import { Tokenizer } from '../lm/tokenizer.js';
import { writeFileAtomic } from '../lm/atomic-write.js';
import { datasetHash, type DatasetSpec, type Plan } from './plan.js';
import { DatasetResultSchema, type DatasetResult, type Language } from './results.js';
import { readability } from './readability.js';
import { runRinglet } from './ringlet-child.js';

/** Excerpts of held-out text scored as the samples' reference, each about as long as a sample. */
export const REFERENCE_EXCERPTS = 24;
export const REFERENCE_WORDS = 48;

export interface PlanPaths {
  planDir: string;
  workDir: string;
  resultsDir: string;
}

export function datasetDir(paths: PlanPaths, name: string, spec: DatasetSpec): string {
  return path.join(paths.workDir, 'data', `${name}-${datasetHash(spec, paths.planDir).slice(0, 12)}`);
}

export function datasetResultFile(paths: PlanPaths, name: string): string {
  return path.join(paths.resultsDir, 'datasets', `${name}.json`);
}

/** Prepares the dataset unless its folder already holds one, and writes its result file if it is stale. */
export async function ensureDataset(paths: PlanPaths, name: string, spec: DatasetSpec): Promise<string> {
  const dir = datasetDir(paths, name, spec);
  fs.mkdirSync(path.join(paths.workDir, 'logs'), { recursive: true });
  const log = path.join(paths.workDir, 'logs', `data-${name}.log`);
  const inputs = spec.inputs.flatMap((input) => ['--input', input]);
  await runRinglet(
    [
      'data',
      'prepare',
      ...inputs,
      '--out',
      dir,
      '--vocab',
      String(spec.vocab),
      '--seed',
      String(spec.split_seed),
      '--val-fraction',
      String(spec.val_fraction),
      '--filters',
      spec.filters,
      '--spelling',
      spec.spelling,
      '--if-missing',
    ],
    log,
  );
  const hash = datasetHash(spec, paths.planDir);
  const file = datasetResultFile(paths, name);
  const existing = readJson(file);
  if (existing?.hash !== hash) {
    const result = await describeDataset(dir, name, hash, spec);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, `${JSON.stringify(result, null, 1)}\n`);
  }
  return dir;
}

function readJson(file: string): Record<string, unknown> | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

async function describeDataset(dir: string, name: string, hash: string, spec: DatasetSpec): Promise<DatasetResult> {
  const manifest = await readManifest(dir);
  const fertility = manifest.fertility.val;
  if (fertility.bytes_per_token === null || fertility.chars_per_token === null || fertility.words_per_token === null)
    throw new Error(
      `${dir}: the manifest records no fertility of the val split (prepared by an older Ringlet: delete the folder)`,
    );
  const reference = spec.languages.length === 1 ? await referenceReadability(dir, manifest, spec.languages[0]) : [];
  return DatasetResultSchema.parse({
    format_version: 1,
    name,
    hash,
    languages: spec.languages,
    vocab: manifest.tokenizer.vocab_size,
    filters: spec.filters,
    spelling: spec.spelling,
    train_tokens: manifest.tokens.train,
    train_bytes: manifest.bytes.train,
    fertility: {
      bytes_per_token: fertility.bytes_per_token,
      chars_per_token: fertility.chars_per_token,
      words_per_token: fertility.words_per_token,
    },
    filter_counts: manifest.filters,
    reference_readability: reference,
  } satisfies DatasetResult);
}

/**
 * Readability of REFERENCE_EXCERPTS excerpts of the val split's text, evenly spaced through it, each the
 * first REFERENCE_WORDS words of a paragraph: real prose, cut to a sample's length, scored the same way.
 */
async function referenceReadability(dir: string, manifest: Manifest, language: Language) {
  const tokenizer = Tokenizer.load(path.join(dir, manifest.tokenizer.file));
  const { tokens } = await openSplit(dir, 'val');
  const text = tokenizer.decode(Array.from(tokens).filter((t) => t !== tokenizer.eotId));
  const paragraphs = text.split('\n\n').filter((p) => p.split(/\s+/).length >= REFERENCE_WORDS);
  if (paragraphs.length === 0) return [];
  const step = paragraphs.length / REFERENCE_EXCERPTS;
  const excerpts = Array.from({ length: Math.min(REFERENCE_EXCERPTS, paragraphs.length) }, (_, i) =>
    paragraphs[Math.floor(i * step)].split(/\s+/).slice(0, REFERENCE_WORDS).join(' '),
  );
  return Promise.all(excerpts.map((excerpt) => readability(excerpt, language)));
}

/** The prepared folder of every dataset a plan names, preparing what is missing (one at a time: tokenizer training is memory-hungry). */
export async function ensureDatasets(plan: Plan, paths: PlanPaths, names: Iterable<string>): Promise<Map<string, string>> {
  const dirs = new Map<string, string>();
  for (const name of new Set(names)) dirs.set(name, await ensureDataset(paths, name, plan.datasets[name]));
  return dirs;
}
