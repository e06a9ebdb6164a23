// The runs under `ringlet serve --runs DIR`: found on disk at each request (a run started after the server
// is seen at once), summarised from their files, with a distributed run's live state from its
// coordinator's /status. Only ids this index found are ever turned back into paths.
import os from 'node:os';
import path from 'node:path';
import { listCheckpoints, type CheckpointMeta } from '../../lm/checkpoint.js';
import type { CheckpointInfo, RunDetail, RunSummary, WorkerInfo } from '../api.js';
import type { Evaluations } from './evaluations.js';
import {
  checkpointMeta,
  datasetLanguage,
  findRuns,
  latestMeta,
  pidAlive,
  readMetrics,
  runStatus,
  summarize,
  type MetricsFile,
} from './run-files.js';

/** A coordinator's GET /status (coordinator/coordinator.ts). */
interface CoordinatorStatus {
  state: string;
  step: number;
  workers: Array<{ id: string; name: string; address: string; rank: number }>;
}

export class RunsIndex {
  readonly root: string;

  constructor(
    root: string,
    private readonly evaluations: Evaluations | null,
  ) {
    this.root = path.resolve(root);
  }

  async ids(): Promise<string[]> {
    return findRuns(this.root);
  }

  /** The run folder of a known id; null for anything else (so no id can name a path outside --runs). */
  async folder(id: string): Promise<string | null> {
    return (await this.ids()).includes(id) ? path.join(this.root, ...id.split('/')) : null;
  }

  async list(): Promise<RunSummary[]> {
    const ids = await this.ids();
    return Promise.all(ids.map(async (id) => (await this.read(id)).summary));
  }

  async detail(id: string): Promise<RunDetail | null> {
    if (!(await this.folder(id))) return null;
    const r = await this.read(id);
    return {
      summary: r.summary,
      config: r.metrics.start?.config ?? r.meta?.config ?? null,
      metrics: r.metrics.points,
      skipped_lines: r.metrics.skipped,
      checkpoints: await this.checkpointsOf(id, r.summary),
      workers: r.coordinator ? workersOf(r.coordinator) : null,
    };
  }

  async checkpoints(): Promise<CheckpointInfo[]> {
    const runs = await this.list();
    return (await Promise.all(runs.map((s) => this.checkpointsOf(s.id, s)))).flat();
  }

  /** The checkpoint folder of an id `RUN/step-N` this index lists; null otherwise. */
  async checkpointFolder(id: string): Promise<string | null> {
    const at = id.lastIndexOf('/');
    if (at < 0) return null;
    const run = await this.folder(id.slice(0, at));
    if (!run) return null;
    const entry = (await listCheckpoints(run)).find((e) => path.basename(e.path) === id.slice(at + 1));
    return entry?.path ?? null;
  }

  /** The summary and everything it was made from. */
  async read(
    id: string,
  ): Promise<{ summary: RunSummary; metrics: MetricsFile; meta: CheckpointMeta | null; coordinator: CoordinatorStatus | null }> {
    const dir = path.join(this.root, ...id.split('/'));
    const meta = await latestMeta(dir);
    const tokensPerStep = meta ? tokensPerStepOf(meta) : null;
    const metrics = await readMetrics(dir, tokensPerStep);
    const address = !metrics.end ? (metrics.start?.status_address ?? null) : null;
    const coordinator = address ? await probeCoordinator(address) : null;
    const status = runStatus(metrics, {
      pidAlive,
      host: os.hostname(),
      coordinatorAnswers: address ? coordinator !== null : null,
      now: Date.now(),
      reachedHorizon: meta !== null && meta.schedule_horizon_steps !== null && meta.step >= meta.schedule_horizon_steps,
    });
    const checkpoints = (await listCheckpoints(dir)).length;
    const metaData = meta?.config.training.data;
    const language = await datasetLanguage(
      resolveDataset(metrics.start?.dataset ?? (typeof metaData === 'string' ? metaData : null)),
    );
    return { summary: summarize(id, metrics, status, { meta, checkpoints, language }), metrics, meta, coordinator };
  }

  private async checkpointsOf(id: string, summary: RunSummary): Promise<CheckpointInfo[]> {
    const dir = path.join(this.root, ...id.split('/'));
    const entries = await listCheckpoints(dir);
    return Promise.all(
      entries.map(async (e) => {
        const meta = await checkpointMeta(e.path);
        return {
          id: `${id}/${path.basename(e.path)}`,
          run: id,
          step: e.step,
          created_at: meta?.created_at ?? '',
          preset: summary.preset,
          parameters: summary.parameters ?? 0,
          evaluations: this.evaluations?.of(e.path) ?? [],
        };
      }),
    );
  }
}

function tokensPerStepOf(meta: CheckpointMeta): number | null {
  const t = meta.config.training as { training?: { batch_size?: number; grad_accum?: number } } | undefined;
  const m = meta.config.model as { context?: number } | undefined;
  const b = t?.training?.batch_size;
  return b && m?.context ? b * (t?.training?.grad_accum ?? 1) * m.context : null;
}

/** A run records its dataset as given on its command line: relative to where it was started. */
function resolveDataset(dataset: string | null): string | null {
  return dataset ? path.resolve(dataset) : null;
}

async function probeCoordinator(address: string): Promise<CoordinatorStatus | null> {
  try {
    const res = await fetch(`http://${address}/status`, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) return null;
    return (await res.json()) as CoordinatorStatus;
  } catch {
    return null;
  }
}

function workersOf(status: CoordinatorStatus): WorkerInfo[] {
  return status.workers.map((w) => ({
    rank: w.rank,
    id: w.id,
    host: w.address.split(':')[0] ?? null,
    healthy: w.rank >= 0,
    step: status.step,
    last_seen_s: null,
  }));
}
