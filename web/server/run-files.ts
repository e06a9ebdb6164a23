// What a run folder says about its run: metrics.jsonl (train/metrics-log.ts), its checkpoints and its
// dataset's manifest, read into the web API's shapes (web/api.ts). A line that is not JSON (the last one,
// half-written while the run appends) is skipped and counted, never fatal.
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { checkpointMetaSchema, listCheckpoints, META_FILE, type CheckpointMeta } from '../../lm/checkpoint.js';
import { METRICS_FILE, type RunEnd, type RunStart } from '../../train/metrics-log.js';
import { ModelConfigSchema, parameterCount } from '../../lm/model-config.js';
import type { MetricPoint, RunStatus, RunSummary } from '../api.js';

/** metrics.jsonl read as far as it is whole. */
export interface MetricsFile {
  start: RunStart | null; // the latest start record: this invocation of the run
  end: RunEnd | null; // its end record, if it came after that start
  points: MetricPoint[];
  skipped: number;
  /** The newest step record, with every field it carries (tokens/s, MFU, energy). */
  lastStep: Record<string, unknown> | null;
  lastEval: Record<string, unknown> | null;
  modified: Date | null;
}

export function parseMetrics(text: string, tokensPerStep: number | null): Omit<MetricsFile, 'modified'> {
  let start: RunStart | null = null;
  let end: RunEnd | null = null;
  let skipped = 0;
  let lastStep: Record<string, unknown> | null = null;
  let lastEval: Record<string, unknown> | null = null;
  const points: MetricPoint[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line);
    } catch {
      skipped++;
      continue;
    }
    if (r === null || typeof r !== 'object') {
      skipped++;
      continue;
    }
    if (r.type === 'start') {
      start = r as unknown as RunStart;
      end = null;
      tokensPerStep = start.tokens_per_step ?? tokensPerStep;
    } else if (r.type === 'end') end = r as unknown as RunEnd;
    else {
      const point = metricPoint(r, tokensPerStep);
      if (!point) continue;
      points.push(point);
      if (point.type === 'step') lastStep = r;
      else lastEval = r;
    }
  }
  return { start, end, points, skipped, lastStep, lastEval };
}

/** A step or eval record as a curve point; null for other records or ones without a step. */
export function metricPoint(r: Record<string, unknown>, tokensPerStep: number | null): MetricPoint | null {
  if ((r.type !== 'step' && r.type !== 'eval') || typeof r.step !== 'number') return null;
  const num = (k: string) => (typeof r[k] === 'number' && Number.isFinite(r[k]) ? (r[k] as number) : undefined);
  const tokens = num('tokens') ?? (tokensPerStep === null ? r.step : r.step * tokensPerStep);
  const point: MetricPoint = { type: r.type, step: r.step, tokens, time: String(r.time ?? '') };
  for (const k of ['loss', 'lr', 'grad_norm', 'tokens_per_s', 'mfu', 'energy_j', 'val_loss', 'val_bpb'] as const) {
    const v = num(k);
    if (v !== undefined) point[k] = v;
  }
  return point;
}

export async function readMetrics(runDir: string, tokensPerStep: number | null): Promise<MetricsFile> {
  const file = path.join(runDir, METRICS_FILE);
  const [text, info] = await Promise.all([readFile(file, 'utf8').catch(() => ''), stat(file).catch(() => null)]);
  return { ...parseMetrics(text, tokensPerStep), modified: info?.mtime ?? null };
}

/** The newest readable checkpoint's meta.json: the config of a run that has no start record. */
export async function latestMeta(runDir: string): Promise<CheckpointMeta | null> {
  for (const entry of (await listCheckpoints(runDir)).reverse()) {
    const meta = await checkpointMeta(entry.path);
    if (meta) return meta; // else half-written or damaged: try an older one
  }
  return null;
}

/** A checkpoint folder's meta.json, or null when it cannot be read or is not valid. */
export async function checkpointMeta(dir: string): Promise<CheckpointMeta | null> {
  try {
    return checkpointMetaSchema.parse(JSON.parse(await readFile(path.join(dir, META_FILE), 'utf8')));
  } catch {
    return null;
  }
}

/** Run folders under `root` (a folder with metrics.jsonl or checkpoints/), as ids relative to it. */
export async function findRuns(root: string, depth = 3): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, rel: string, left: number): Promise<void> => {
    if (existsSync(path.join(dir, METRICS_FILE)) || existsSync(path.join(dir, 'checkpoints'))) {
      found.push(rel);
      return;
    }
    if (left === 0) return;
    const names = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const d of names)
      if (d.isDirectory() && !d.name.startsWith('.'))
        await walk(path.join(dir, d.name), rel ? `${rel}/${d.name}` : d.name, left - 1);
  };
  await walk(root, '', depth);
  return found.filter((id) => id !== '').sort();
}

/** How a run stands, from its files, its process, and (for a distributed run) whether its coordinator answers. */
export function runStatus(
  m: MetricsFile,
  checks: {
    pidAlive: (pid: number) => boolean;
    host: string;
    coordinatorAnswers: boolean | null;
    now: number;
    reachedHorizon: boolean; // the newest checkpoint is at the schedule's last step
  },
): RunStatus {
  if (m.end) return m.end.status;
  if (!m.start) {
    // A run from before start records: running while it writes, finished once its checkpoints reach the horizon.
    if (m.modified && checks.now - m.modified.getTime() < 60_000) return 'running';
    return checks.reachedHorizon ? 'finished' : 'unknown';
  }
  if (checks.coordinatorAnswers !== null) return checks.coordinatorAnswers ? 'running' : 'failed';
  if (m.start.host === checks.host) return checks.pidAlive(m.start.pid) ? 'running' : 'failed';
  // Another machine's process: believe it while it keeps writing.
  return m.modified && checks.now - m.modified.getTime() < 5 * 60_000 ? 'running' : 'unknown';
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The language of a dataset: its source folder's name when it is a language code (ELTeC's eng, swe …). */
export async function datasetLanguage(dataset: string | null): Promise<string | null> {
  if (!dataset) return null;
  try {
    const manifest = JSON.parse(await readFile(path.join(dataset, 'manifest.json'), 'utf8'));
    const input = manifest?.sources?.inputs?.[0];
    const name = typeof input === 'string' ? path.basename(input) : '';
    return /^[a-z]{2,3}$/.test(name) ? name : null;
  } catch {
    return null;
  }
}

export function summarize(
  id: string,
  m: MetricsFile,
  status: RunStatus,
  extra: { meta: CheckpointMeta | null; checkpoints: number; language: string | null },
): RunSummary {
  const num = (r: Record<string, unknown> | null, k: string) =>
    r && typeof r[k] === 'number' && Number.isFinite(r[k]) ? (r[k] as number) : null;
  const config = (m.start?.config ?? extra.meta?.config.training ?? null) as {
    data?: string;
    model?: { preset?: string };
  } | null;
  const lastPoint = m.points.at(-1);
  return {
    id,
    status,
    error: m.end?.error ?? (status === 'failed' && !m.end ? 'the process ended without finishing (killed or crashed)' : null),
    preset: m.start?.preset ?? config?.model?.preset ?? null,
    dataset: m.start?.dataset ?? config?.data ?? null,
    language: extra.language,
    parameters: m.start?.parameters ?? parametersOf(extra.meta),
    step: lastPoint?.step ?? extra.meta?.step ?? null,
    horizon: num(m.lastStep, 'horizon') ?? extra.meta?.schedule_horizon_steps ?? null,
    tokens: lastPoint?.tokens ?? extra.meta?.tokens_seen ?? null,
    loss: num(m.lastStep, 'loss'),
    val_loss: num(m.lastEval, 'val_loss') ?? extra.meta?.metrics?.val_loss ?? null,
    val_bpb: num(m.lastEval, 'val_bpb') ?? extra.meta?.metrics?.val_bpb ?? null,
    tokens_per_s: num(m.lastStep, 'tokens_per_s'),
    mfu: num(m.lastStep, 'mfu'),
    energy_j: num(m.lastStep, 'energy_j') ?? extra.meta?.metrics?.energy_j ?? null,
    emissions_g: num(m.lastStep, 'emissions_g') ?? extra.meta?.metrics?.emissions_g ?? null,
    workers: m.start?.workers ?? null,
    started_at: (m.start as { time?: string } | null)?.time ?? m.points[0]?.time ?? null,
    updated_at: m.modified?.toISOString() ?? null,
    checkpoints: extra.checkpoints,
  };
}

function parametersOf(meta: CheckpointMeta | null): number | null {
  const model = ModelConfigSchema.safeParse(meta?.config.model);
  return model.success ? parameterCount(model.data).total : null;
}
