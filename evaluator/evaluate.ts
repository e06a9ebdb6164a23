// One evaluation: a checkpoint and a list of suites in, one result out. `ringlet eval` and the evaluator
// service both call evaluateCheckpoint, so a figure from the command line and one from the API agree.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { runBlimp } from './suites/blimp.js';
import { runSuiteFile } from './suites/choice.js';
import { runDalaj } from './suites/dalaj.js';
import { runSamples } from './suites/samples.js';
import { runRouting } from './suites/routing.js';
import { runValidation } from './suites/validation.js';
import type { SuiteContext, SuiteResult } from './suites/types.js';
import { loadScoringModel, type ScoringModel } from './model.js';
import { DEFAULT_BATCH_SIZE } from './scoring.js';

export const BUILTIN_SUITES = ['val', 'blimp', 'dalaj', 'samples', 'samples-sv', 'routing'] as const;
const SUITE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** What to evaluate; the API's request body and the CLI's flags both become this. */
export const EvaluationRequestSchema = z.strictObject({
  checkpoint: z.string().min(1).max(4096),
  suites: z
    .array(z.string().min(1).max(4096))
    .min(1)
    .max(32)
    .transform((s) => [...new Set(s)].sort()),
  /** Items per group at most (per paradigm for BLiMP, windows for val, prompts for samples). */
  limit: z.int().min(1).max(1_000_000).optional(),
  batch_size: z.int().min(1).max(512).default(DEFAULT_BATCH_SIZE),
  /** Dataset folder for the val and routing suites; by default the one the checkpoint was trained on. */
  data: z.string().min(1).max(4096).optional(),
});
export type EvaluationRequest = z.output<typeof EvaluationRequestSchema>;

/** Where the data of the built-in and user suites lives. */
export interface SuiteLocations {
  blimpDir: string;
  dalajFile: string;
  /** Folder of user suite files: suite NAME is NAME.jsonl there. */
  suitesDir?: string;
  /** Whether a suite may be named by a path to a .jsonl file (the CLI: yes; the service: no). */
  allowPaths: boolean;
}

export interface EnergySettings {
  /** Power drawn while evaluating, watts (an estimate: no meter is read). */
  cpuWatts: number;
  /** Grid carbon intensity, grams CO2e per kWh. */
  gridGramsPerKwh: number;
}

export interface Energy {
  joules: number;
  kwh: number;
  co2_grams: number;
  estimated: true;
  method: string;
}

export interface EvaluationResult {
  checkpoint: { path: string; step: number; tokens_seen: number; model_sha256: string; run_dir: string | null };
  suites: Record<string, SuiteResult>;
  items: number;
  seconds: number;
  items_per_s: number;
  energy: Energy;
}

export function estimateEnergy(seconds: number, settings: EnergySettings): Energy {
  const joules = seconds * settings.cpuWatts;
  const kwh = joules / 3.6e6;
  return {
    joules,
    kwh,
    co2_grams: kwh * settings.gridGramsPerKwh,
    estimated: true,
    method: `wall time × ${settings.cpuWatts} W (configured), × ${settings.gridGramsPerKwh} gCO2e/kWh`,
  };
}

/** The key two requests share when they ask for the same evaluation of the same weights. */
export function evaluationKey(modelSha256: string, request: EvaluationRequest): string {
  const { checkpoint: _ignored, ...rest } = request;
  return createHash('sha256')
    .update(JSON.stringify({ model: modelSha256, ...rest }))
    .digest('hex');
}

/** Checks suite names before any work: each is built in, a file in suitesDir, or (CLI) a path to a .jsonl file. */
export function resolveSuite(name: string, where: SuiteLocations): { kind: 'builtin' } | { kind: 'file'; file: string } {
  if ((BUILTIN_SUITES as readonly string[]).includes(name)) return { kind: 'builtin' };
  if (name.endsWith('.jsonl') && where.allowPaths) {
    if (!existsSync(name)) throw new Error(`suite file ${name} does not exist`);
    return { kind: 'file', file: name };
  }
  if (SUITE_NAME.test(name) && where.suitesDir) {
    const file = path.join(where.suitesDir, `${name}.jsonl`);
    if (existsSync(file)) return { kind: 'file', file };
  }
  const user = where.suitesDir ? `, a NAME with ${where.suitesDir}/NAME.jsonl` : '';
  const paths = where.allowPaths ? ', or a path to a .jsonl suite file' : '';
  throw new Error(`unknown suite "${name}": expected one of ${BUILTIN_SUITES.join(', ')}${user}${paths}`);
}

function trainingDataDir(model: ScoringModel): string | undefined {
  const training = model.meta.config.training as { data?: unknown };
  return typeof training.data === 'string' ? training.data : undefined;
}

function runDirOf(model: ScoringModel): string | null {
  const parent = path.dirname(model.path);
  return path.basename(parent) === 'checkpoints' ? path.dirname(parent) : null;
}

export async function runSuite(name: string, ctx: SuiteContext, where: SuiteLocations, data?: string): Promise<SuiteResult> {
  const resolved = resolveSuite(name, where);
  if (resolved.kind === 'file') return runSuiteFile(name, resolved.file, ctx);
  switch (name) {
    case 'val':
    case 'routing': {
      const dir = data ?? trainingDataDir(ctx.model);
      if (!dir) throw new Error(`suite ${name} needs a dataset folder (--data); the checkpoint does not name one`);
      return name === 'val' ? runValidation(dir, ctx) : runRouting(dir, ctx);
    }
    case 'blimp':
      return runBlimp(where.blimpDir, ctx);
    case 'dalaj':
      return runDalaj(where.dalajFile, ctx);
    case 'samples':
      return runSamples('en', ctx);
    default:
      return runSamples('sv', ctx);
  }
}

/**
 * Scores `request.checkpoint` on each suite in turn. Suite names are checked before the model loads, so
 * a typo costs nothing. Pass `model` to reuse one already loaded (it is then not disposed).
 */
export async function evaluateCheckpoint(
  request: EvaluationRequest,
  where: SuiteLocations,
  energy: EnergySettings,
  options: { model?: ScoringModel; onSuite?: (name: string, result: SuiteResult) => void } = {},
): Promise<EvaluationResult> {
  for (const name of request.suites) resolveSuite(name, where);
  const started = performance.now();
  const model = options.model ?? (await loadScoringModel(request.checkpoint));
  try {
    const ctx: SuiteContext = { model, batchSize: request.batch_size, limit: request.limit };
    const suites: Record<string, SuiteResult> = {};
    for (const name of request.suites) {
      suites[name] = await runSuite(name, ctx, where, request.data);
      options.onSuite?.(name, suites[name]);
    }
    const seconds = (performance.now() - started) / 1000;
    const items = Object.values(suites).reduce((n, s) => n + s.items, 0);
    return {
      checkpoint: {
        path: model.path,
        step: model.meta.step,
        tokens_seen: model.meta.tokens_seen,
        model_sha256: model.modelSha256,
        run_dir: runDirOf(model),
      },
      suites,
      items,
      seconds,
      items_per_s: items / seconds,
      energy: estimateEnergy(seconds, energy),
    };
  } finally {
    if (!options.model) model.dispose();
  }
}

/** A suite's figures without the per-item arrays: what the CLI prints and the API's summaries hold. */
export function suiteSummary(result: SuiteResult): Record<string, unknown> {
  const { item_ids: _ids, item_scores: _scores, item_nats: _nats, item_bytes: _bytes, groups, suite, ...rest } = result;
  const { metrics, ...timing } = rest;
  const summary: Record<string, unknown> = { ...metrics, ...timing };
  if (groups)
    summary[suite === 'blimp' ? 'paradigms' : 'groups'] = Object.fromEntries(
      Object.entries(groups).map(([g, r]) => [g, r.accuracy]),
    );
  return summary;
}
