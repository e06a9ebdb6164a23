// The evaluator service's logic, apart from HTTP: submit an evaluation (run once per checkpoint weights
// and request, however many ask at the same time), compare two checkpoints, gate a checkpoint for CI, and
// evaluate every checkpoint announced on the control-plane bus. Evaluations run one at a time: scoring is
// CPU-bound and one process gets one core's worth of wasm.
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { SUBJECTS, CheckpointPublishedEvent } from '../controlplane/events.js';
import type { Bus, Subscription } from '../controlplane/bus.js';
import { checkpointMetaSchema, META_FILE, MODEL_FILE, resolveCheckpointDir } from '../lm/checkpoint.js';
import type { ServiceConfig } from './config.js';
import {
  evaluateCheckpoint,
  evaluationKey,
  EvaluationRequestSchema,
  resolveSuite,
  type EvaluationRequest,
  type SuiteLocations,
} from './evaluate.js';
import { CheckpointRefError, loadScoringModel, type ScoringModel } from './model.js';
import type { OpenAiModels } from './openai-api.js';
import { readSuiteFile } from './suites/choice.js';
import { DEFAULT_BOOTSTRAP, pairedBootstrap, type PairedComparison } from './stats.js';
import type { CheckpointRecord, EvaluationRecord, ResultStore } from './store.js';

/** An error with the HTTP status it maps to. */
export class ServiceError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A request body checked with its schema; a 400 naming every bad field otherwise. */
export function parseRequest<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (!parsed.success)
    throw new ServiceError(
      400,
      `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

const BootstrapSchema = z
  .strictObject({
    samples: z.int().min(100).max(100_000).default(DEFAULT_BOOTSTRAP.samples),
    confidence: z.number().gt(0.5).lt(1).default(DEFAULT_BOOTSTRAP.confidence),
    seed: z
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(DEFAULT_BOOTSTRAP.seed),
  })
  .prefault({});

const sharedShape = EvaluationRequestSchema.omit({ checkpoint: true }).shape;

export const SubmitSchema = EvaluationRequestSchema.extend({
  /** Answer only when the evaluation has finished (200 with the result) instead of at once (202). */
  wait: z.boolean().default(false),
});

export const CompareSchema = z.strictObject({
  baseline: z.string().min(1).max(4096),
  candidate: z.string().min(1).max(4096),
  ...sharedShape,
  bootstrap: BootstrapSchema,
});

export const ThresholdSchema = z
  .strictObject({
    suite: z.string().min(1).max(200),
    metric: z.string().min(1).max(100),
    min: z.number().optional(),
    max: z.number().optional(),
  })
  .refine((t) => t.min !== undefined || t.max !== undefined, { message: 'give min, max or both' });

export const GateSchema = z
  .strictObject({
    checkpoint: z.string().min(1).max(4096),
    ...sharedShape,
    thresholds: z.array(ThresholdSchema).max(100).default([]),
    /** A checkpoint the candidate must not be significantly worse than, suite by suite. */
    baseline: z.string().min(1).max(4096).optional(),
    /** How far below the baseline (in mean item score) the candidate may be before the gate fails. */
    max_regression: z.number().min(0).default(0),
    bootstrap: BootstrapSchema,
  })
  .refine((g) => g.thresholds.length > 0 || g.baseline !== undefined, { message: 'give thresholds, a baseline, or both' });

export interface GateCheck {
  check: string;
  pass: boolean;
  value?: number;
  min?: number;
  max?: number;
  comparison?: PairedComparison;
}

export interface GateAnswer {
  pass: boolean;
  /** 0 to pass, 1 to fail: what a CI step exits with. */
  exit_code: 0 | 1;
  checks: GateCheck[];
  evaluation_id: string;
  baseline_evaluation_id?: string;
}

/** A checkpoint folder's meta.json, or null when it is unreadable or invalid. */
async function readCheckpointMeta(dir: string) {
  const meta = checkpointMetaSchema.safeParse(
    await readFile(path.join(dir, META_FILE), 'utf8')
      .then(JSON.parse)
      .catch(() => null),
  );
  return meta.success ? meta.data : null;
}

/** Lineage from a checkpoint-published event, recorded with the checkpoint. */
interface Lineage {
  job?: string;
}

export class EvaluatorService {
  private readonly inFlight = new Map<string, { id: string; finished: Promise<EvaluationRecord> }>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly models = new Map<string, ScoringModel>();
  private subscription: Subscription | null = null;
  readonly where: SuiteLocations;
  /** Evaluations started and not yet settled, for draining on shutdown. */
  private running = 0;
  /** Checkpoint events dropped since the start: unsigned, wrongly signed or malformed. None is evaluated. */
  ignoredEvents = 0;

  constructor(
    readonly config: ServiceConfig,
    readonly store: ResultStore,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.where = { blimpDir: config.blimp_dir, dalajFile: config.dalaj_file, suitesDir: config.suites_dir, allowPaths: false };
  }

  /** A checkpoint reference as an absolute path inside one of the configured roots (symlinks resolved). */
  async resolveRef(ref: string): Promise<string> {
    const roots = await Promise.all(this.config.checkpoint_roots.map((r) => realpath(r).catch(() => path.resolve(r))));
    const candidate = path.resolve(roots[0], ref);
    const real = await realpath(candidate).catch(() => null);
    if (real === null) throw new ServiceError(404, `unknown checkpoint ${ref}: no such file or folder`);
    if (!roots.some((root) => real === root || real.startsWith(root + path.sep)))
      throw new ServiceError(
        403,
        `checkpoint ${ref} is outside the checkpoint roots (${this.config.checkpoint_roots.join(', ')})`,
      );
    return real;
  }

  /** Identifies a checkpoint from its meta.json alone (no weights read), refusing one still being written. */
  async describe(ref: string, lineage: Lineage = {}): Promise<CheckpointRecord> {
    const absolute = await this.resolveRef(ref);
    if (absolute.split(path.sep).some((part) => part.startsWith('.tmp-')))
      throw new ServiceError(409, `checkpoint ${ref} is still being written (a .tmp-* folder); wait for it to be published`);
    let dir: string;
    try {
      dir = await resolveCheckpointDir(absolute);
    } catch (err) {
      throw new ServiceError(404, `unknown checkpoint ${ref}: ${(err as Error).message}`);
    }
    const meta = await readCheckpointMeta(dir);
    if (!meta) throw new ServiceError(422, `checkpoint ${ref}: ${META_FILE} is unreadable or invalid`);
    const parent = path.dirname(dir);
    return {
      path: dir,
      model_sha256: meta.files[MODEL_FILE].sha256,
      run_dir: path.basename(parent) === 'checkpoints' ? path.dirname(parent) : null,
      job: lineage.job ?? null,
      step: meta.step,
      tokens_seen: meta.tokens_seen,
    };
  }

  /**
   * Starts (or joins, or answers from the store) the evaluation of `request`. `finished` settles when the
   * evaluation has a result; two requests for the same weights and settings share one run.
   */
  async submit(
    request: EvaluationRequest,
    source: string,
    lineage: Lineage = {},
  ): Promise<{ id: string; state: 'started' | 'joined' | 'stored'; finished: Promise<EvaluationRecord> }> {
    for (const name of request.suites) {
      try {
        // User suite files are checked up front, so a bad line is the submitter's 400, not a failed run.
        const suite = resolveSuite(name, this.where);
        if (suite.kind === 'file') await readSuiteFile(suite.file);
      } catch (err) {
        throw new ServiceError(400, (err as Error).message);
      }
    }
    const checkpoint = await this.describe(request.checkpoint, lineage);
    const key = evaluationKey(checkpoint.model_sha256, request);
    const stored = this.store.done(key);
    if (stored) return { id: stored.id, state: 'stored', finished: Promise.resolve(stored) };
    const pending = this.inFlight.get(key);
    if (pending) return { id: pending.id, state: 'joined', finished: pending.finished };

    const id = this.store.start(key, source, request, checkpoint);
    this.running++;
    const finished = this.enqueue(async () => {
      this.log(`evaluation ${id}: ${checkpoint.path} on ${request.suites.join(',')} (${source})`);
      try {
        const result = await evaluateCheckpoint({ ...request, checkpoint: checkpoint.path }, this.where, {
          cpuWatts: this.config.cpu_watts,
          gridGramsPerKwh: this.config.grid_g_per_kwh,
        });
        if (result.checkpoint.model_sha256 !== checkpoint.model_sha256)
          throw new Error(`checkpoint ${checkpoint.path} changed while it was being evaluated`);
        this.store.finish(id, result);
        this.log(`evaluation ${id}: done in ${result.seconds.toFixed(1)} s (${result.items_per_s.toFixed(1)} items/s)`);
      } catch (err) {
        this.store.fail(id, (err as Error).message);
        this.log(`evaluation ${id}: failed: ${(err as Error).message}`);
      }
      return this.store.get(id)!;
    });
    this.inFlight.set(key, { id, finished });
    void finished.finally(() => {
      this.inFlight.delete(key);
      this.running--;
    });
    return { id, state: 'started', finished };
  }

  /** Runs `request` to completion and throws if it failed (for compare and gate). */
  private async evaluated(request: EvaluationRequest): Promise<EvaluationRecord> {
    const record = await (await this.submit(request, 'api')).finished;
    if (record.status !== 'done' || !record.result)
      throw new ServiceError(422, `evaluation of ${request.checkpoint} failed: ${record.error}`);
    return record;
  }

  async compare(body: z.output<typeof CompareSchema>) {
    const { baseline, candidate, bootstrap, ...shared } = body;
    const [b, c] = [
      await this.evaluated(EvaluationRequestSchema.parse({ ...shared, checkpoint: baseline })),
      await this.evaluated(EvaluationRequestSchema.parse({ ...shared, checkpoint: candidate })),
    ];
    const suites: Record<string, unknown> = {};
    for (const name of shared.suites) {
      const bs = b.result!.suites[name];
      const cs = c.result!.suites[name];
      suites[name] = {
        metrics: Object.fromEntries(
          Object.keys(cs.metrics).map((m) => [m, { baseline: bs.metrics[m], candidate: cs.metrics[m] }]),
        ),
        comparison: pairedBootstrap(
          { ids: bs.item_ids, scores: bs.item_scores },
          { ids: cs.item_ids, scores: cs.item_scores },
          bootstrap,
        ),
      };
    }
    return {
      baseline: { evaluation_id: b.id, checkpoint: b.checkpoint },
      candidate: { evaluation_id: c.id, checkpoint: c.checkpoint },
      suites,
    };
  }

  async gate(body: z.output<typeof GateSchema>): Promise<GateAnswer> {
    const { checkpoint, thresholds, baseline, max_regression, bootstrap, ...shared } = body;
    for (const t of thresholds)
      if (!shared.suites.includes(t.suite))
        throw new ServiceError(400, `threshold on suite "${t.suite}", which is not among the suites`);
    const c = await this.evaluated(EvaluationRequestSchema.parse({ ...shared, checkpoint }));
    const checks: GateCheck[] = [];
    for (const t of thresholds) {
      const value = c.result!.suites[t.suite].metrics[t.metric];
      if (value === undefined)
        throw new ServiceError(
          400,
          `suite ${t.suite} reports no metric "${t.metric}" (it has ${Object.keys(c.result!.suites[t.suite].metrics).join(', ')})`,
        );
      const pass = (t.min === undefined || value >= t.min) && (t.max === undefined || value <= t.max);
      checks.push({ check: `${t.suite}.${t.metric}`, pass, value, min: t.min, max: t.max });
    }
    let baselineId: string | undefined;
    if (baseline !== undefined) {
      const b = await this.evaluated(EvaluationRequestSchema.parse({ ...shared, checkpoint: baseline }));
      baselineId = b.id;
      for (const name of shared.suites) {
        const bs = b.result!.suites[name];
        const cs = c.result!.suites[name];
        const comparison = pairedBootstrap(
          { ids: bs.item_ids, scores: bs.item_scores },
          { ids: cs.item_ids, scores: cs.item_scores },
          bootstrap,
        );
        // Fails only when the candidate is worse beyond doubt: the whole interval lies below −max_regression.
        checks.push({ check: `${name} vs baseline`, pass: comparison.ci_high >= -max_regression, comparison });
      }
    }
    const pass = checks.every((ch) => ch.pass);
    return { pass, exit_code: pass ? 0 : 1, checks, evaluation_id: c.id, baseline_evaluation_id: baselineId };
  }

  /** Evaluates every checkpoint published on `bus` with the configured auto suites. */
  async subscribe(bus: Bus): Promise<void> {
    this.subscription = await bus.subscribe(
      SUBJECTS.checkpointPublished,
      CheckpointPublishedEvent,
      async (event) => {
        try {
          const request = EvaluationRequestSchema.parse({
            checkpoint: event.checkpoint,
            suites: this.config.auto_suites,
            limit: this.config.auto_limit,
          });
          const { id, state } = await this.submit(request, `event:${event.job}`, { job: event.job });
          this.log(`checkpoint published by ${event.job} at step ${event.step}: evaluation ${id} (${state})`);
        } catch (err) {
          this.log(`checkpoint published by ${event.job} at step ${event.step}: not evaluated: ${(err as Error).message}`);
        }
      },
      (err) => {
        this.ignoredEvents++;
        this.log(`ignored a checkpoint event (${this.ignoredEvents} so far): ${err.message}`);
      },
    );
  }

  /**
   * The models of the OpenAI routes (openai-api.ts): the served checkpoint, listed as "ringlet" (its
   * `serve` reference is accepted too); none without `serve`, or while it cannot be read.
   */
  readonly openAiModels: OpenAiModels = {
    list: async () => {
      const served = this.config.serve;
      if (!served) return [];
      const checkpoint = await this.describe(served).catch(() => null);
      const meta = checkpoint && (await readCheckpointMeta(checkpoint.path));
      return meta ? [{ id: 'ringlet', created: Math.floor(Date.parse(meta.created_at) / 1000) }] : [];
    },
    load: (id) => this.servedModel(id),
  };

  /** The served model for /v1/completions, loaded once and kept. */
  async servedModel(name: string): Promise<ScoringModel> {
    const served = this.config.serve;
    if (!served) throw new ServiceError(404, 'this evaluator serves no model for completions (start it with --serve CHECKPOINT)');
    if (name !== 'ringlet' && name !== served)
      throw new ServiceError(404, `model "${name}" is not served here; use "ringlet" or "${served}"`);
    const cached = this.models.get(served);
    if (cached) return cached;
    const absolute = await this.resolveRef(served);
    try {
      const model = await loadScoringModel(absolute);
      this.models.set(served, model);
      return model;
    } catch (err) {
      if (err instanceof CheckpointRefError) throw new ServiceError(404, err.message);
      throw err;
    }
  }

  /** Serialises CPU-bound work (evaluations and completions) so they do not interleave. */
  enqueue<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work, work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  get busy(): number {
    return this.running;
  }

  /** Stops taking events and waits up to `seconds` for running evaluations; true if they all finished. */
  async drain(seconds: number): Promise<boolean> {
    await this.subscription?.unsubscribe();
    const all = Promise.allSettled([...this.inFlight.values()].map((f) => f.finished)).then(() => true);
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), seconds * 1000).unref());
    return Promise.race([all, timeout]);
  }

  close(): void {
    for (const m of this.models.values()) m.dispose();
    this.models.clear();
  }
}
