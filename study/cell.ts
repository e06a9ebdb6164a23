// One cell of the study: train to the cell's byte budget in a `ringlet train` child (resuming from the
// cell's own checkpoints after an interruption), then score the final checkpoint here on the held-out
// text of each of its languages, on BLiMP (English) or DaLAJ (Swedish), with fixed-seed samples, and,
// for a mixture of experts, with the share of each language's tokens per expert. The result is written
// last and atomically, so a result file always stands for a finished cell.
import fs from 'node:fs';
import path from 'node:path';
import { readManifest } from '../data/manifest.js';
import { DEFAULT_BLIMP_DIR, DEFAULT_DALAJ_FILE } from '../evaluator/defaults.js';
import { runSuite, type SuiteLocations } from '../evaluator/evaluate.js';
import { loadScoringModel } from '../evaluator/model.js';
import type { SuiteResult } from '../evaluator/suites/types.js';
import { setupBackend } from '../kernels/backend.js';
import { writeFileAtomic } from '../lm/atomic-write.js';
import { listCheckpoints } from '../lm/checkpoint.js';
import { activeParameterCount, parameterCount, presetConfig } from '../lm/model-config.js';
import { METRICS_FILE } from '../train/metrics-log.js';
import { TrainConfigSchema, type TrainConfig } from '../train/config.js';
import type { Cell, Plan } from './plan.js';
import type { PlanPaths } from './datasets.js';
import { datasetDir } from './datasets.js';
import { readability } from './readability.js';
import { CellResultSchema, type Benchmark, type CellResult, type HeldOut, type Language } from './results.js';
import { runRinglet } from './ringlet-child.js';

const SAMPLE_SUITES: Record<Language, string> = { eng: 'samples', swe: 'samples-sv' };
const BENCHMARKS: Record<Language, 'blimp' | 'dalaj'> = { eng: 'blimp', swe: 'dalaj' };

export function cellRunDir(paths: PlanPaths, cell: Cell): string {
  return path.join(paths.workDir, 'cells', `${cell.id.replace('/', '--')}-${cell.hash.slice(0, 12)}`);
}

export function cellResultFile(paths: PlanPaths, cell: Cell): string {
  return path.join(paths.resultsDir, 'cells', `${cell.id.replace('/', '--')}.json`);
}

/** Whether the cell's result file is there and was made by this very configuration. */
export function cellDone(paths: PlanPaths, cell: Cell): boolean {
  try {
    return JSON.parse(fs.readFileSync(cellResultFile(paths, cell), 'utf8')).hash === cell.hash;
  } catch {
    return false;
  }
}

/** The training config of a cell: its steps are the byte budget over the training split's bytes per token. */
async function trainConfig(plan: Plan, paths: PlanPaths, cell: Cell, runDir: string) {
  const data = datasetDir(paths, cell.dataset, cell.datasetSpec);
  const manifest = await readManifest(data);
  const bytesPerToken = manifest.bytes.train / manifest.tokens.train;
  const t = plan.training;
  const context = cell.model.overrides.context ?? presetConfig(cell.model.preset).context;
  const tokensPerStep = t.batch_size * context;
  const steps = Math.max(1, Math.round(cell.budgetBytes / bytesPerToken / tokensPerStep));
  const evalEvery = Math.max(1, Math.floor(steps / t.curve_points));
  const config: TrainConfig = TrainConfigSchema.parse({
    data,
    out: runDir,
    model: { preset: cell.model.preset, ...cell.model.overrides },
    optimizer: { lr: t.lr, warmup_steps: Math.min(t.warmup_steps, Math.floor(steps / 10)) },
    training: {
      batch_size: t.batch_size,
      max_steps: steps,
      eval_every: evalEvery,
      eval_windows: t.eval_windows,
      log_every: evalEvery,
      seed: cell.seed,
    },
    checkpoint: { every: evalEvery, keep_last: 2 },
  });
  return { config, bytesPerToken, tokensPerStep, steps };
}

/** Trains (or finishes training) the cell, evaluates it and writes its result file. */
export async function runCell(plan: Plan, paths: PlanPaths, cell: Cell): Promise<CellResult> {
  const runDir = cellRunDir(paths, cell);
  fs.mkdirSync(runDir, { recursive: true });
  const { config, bytesPerToken, tokensPerStep, steps } = await trainConfig(plan, paths, cell, runDir);
  const configFile = path.join(runDir, 'train-config.json');
  fs.writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
  const log = path.join(runDir, 'cell.log');
  const trained = await listCheckpoints(runDir);
  const lastStep = trained.length > 0 ? Math.max(...trained.map((c) => c.step)) : 0;
  if (lastStep < steps) await runRinglet(['train', '--config', configFile, '--resume'], log);
  const train = trainingFigures(runDir, tokensPerStep, bytesPerToken);

  await setupBackend('wasm');
  const evalStarted = Date.now();
  const model = await loadScoringModel(runDir);
  try {
    if (model.meta.step !== steps)
      throw new Error(`cell ${cell.id}: the last checkpoint is at step ${model.meta.step}, not ${steps}`);
    const where: SuiteLocations = { blimpDir: DEFAULT_BLIMP_DIR, dalajFile: DEFAULT_DALAJ_FILE, allowPaths: false };
    const suite = (name: string, limit?: number, data?: string) => runSuite(name, { model, batchSize: 16, limit }, where, data);
    const e = plan.evaluation;
    const held_out: Partial<Record<Language, HeldOut>> = {};
    const benchmarks: Benchmark[] = [];
    const samples: CellResult['samples'] = [];
    const routing: NonNullable<CellResult['routing']> = {};
    const moe = model.config.moe !== undefined;
    for (const language of cell.datasetSpec.languages) {
      const heldOutName = plan.held_out[language]!;
      const heldOutDir = datasetDir(paths, heldOutName, plan.datasets[heldOutName]);
      held_out[language] = heldOutOf(heldOutName, await suite('val', e.held_out_windows, heldOutDir));
      const name = BENCHMARKS[language];
      benchmarks.push(benchmarkOf(name, await suite(name, name === 'blimp' ? e.blimp_per_paradigm : e.dalaj_items)));
      if (e.samples)
        for (const s of (await suite(SAMPLE_SUITES[language])).samples ?? [])
          samples.push({ language, prompt: s.prompt, text: s.text, readability: await readability(s.text, language) });
      if (moe) routing[language] = (await suite('routing', e.held_out_windows, heldOutDir)).routing!;
    }
    const result = CellResultSchema.parse({
      format_version: 1,
      id: cell.id,
      hash: cell.hash,
      group: cell.group,
      dataset: cell.dataset,
      languages: cell.datasetSpec.languages,
      preset: cell.model.preset,
      overrides: cell.model.overrides,
      seed: cell.seed,
      params: { total: parameterCount(model.config).total, active: activeParameterCount(model.config) },
      budget_bytes: cell.budgetBytes,
      train: { ...train.summary, steps, val_bpb: train.finalBpb },
      curve: train.curve,
      held_out,
      benchmarks,
      samples,
      ...(moe ? { routing } : {}),
      eval_seconds: (Date.now() - evalStarted) / 1000,
      finished_at: new Date().toISOString(),
    } satisfies CellResult);
    const file = cellResultFile(paths, cell);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, `${JSON.stringify(result)}\n`);
    return result;
  } finally {
    model.dispose();
  }
}

/**
 * The learning curve and totals from the run's metrics.jsonl, which every resumption appends to. The
 * training time is the wall time of each invocation (from its start record to its last record), so it
 * counts the periodic validation and checkpoints too, and not the time between an interruption and a resume.
 */
function trainingFigures(runDir: string, tokensPerStep: number, bytesPerToken: number) {
  const records = fs
    .readFileSync(path.join(runDir, METRICS_FILE), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const byStep = new Map<number, number>();
  let seconds = 0;
  let segmentStart: number | null = null;
  records.forEach((r, i) => {
    const time = Date.parse(r.time as string);
    if (r.type === 'start') segmentStart = time;
    if (r.type === 'eval' && typeof r.val_bpb === 'number') byStep.set(r.step as number, r.val_bpb);
    const segmentEnds = i === records.length - 1 || records[i + 1].type === 'start';
    if (segmentEnds && segmentStart !== null) seconds += (time - segmentStart) / 1000;
  });
  const curve = [...byStep.entries()]
    .sort(([a], [b]) => a - b)
    .map(([step, val_bpb]) => ({ step, tokens: step * tokensPerStep, bytes: step * tokensPerStep * bytesPerToken, val_bpb }));
  if (curve.length === 0) throw new Error(`${runDir}: metrics.jsonl has no evaluations`);
  const tokens = curve[curve.length - 1].tokens;
  return {
    curve,
    finalBpb: curve[curve.length - 1].val_bpb,
    summary: { tokens, bytes: tokens * bytesPerToken, seconds, tokens_per_s: seconds > 0 ? tokens / seconds : 0 },
  };
}

function heldOutOf(dataset: string, r: SuiteResult): HeldOut {
  const windows = r.item_nats!.map((nats, i) => [nats, r.item_bytes![i]] as [number, number]);
  return { dataset, retokenized: r.metrics.retokenized === 1, bpb: r.metrics.val_bpb, windows };
}

function benchmarkOf(suite: 'blimp' | 'dalaj', r: SuiteResult): Benchmark {
  return { suite, accuracy: r.metrics.accuracy, item_ids: r.item_ids, item_scores: r.item_scores, groups: r.groups };
}
