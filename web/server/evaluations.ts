// The evaluator's results for the UI: its SQLite store (the same file `ringlet evaluator` writes, shared
// through WAL), and an in-process evaluator service for submissions, so an evaluation started from the UI
// is the same one the evaluator would run and lands in the same store.
import { randomBytes } from 'node:crypto';
import { ServiceConfigSchema } from '../../evaluator/config.js';
import { EvaluationRequestSchema } from '../../evaluator/evaluate.js';
import { EvaluatorService } from '../../evaluator/service.js';
import { pairedBootstrap } from '../../evaluator/stats.js';
import { ResultStore, type EvaluationRecord } from '../../evaluator/store.js';
import type { EvaluationSummary, SuiteScore } from '../api.js';

/** The figure each suite kind is judged by. */
const HEADLINE: Record<string, string> = { validation: 'val_bpb', minimal_pair: 'accuracy', multiple_choice: 'accuracy' };

export class Evaluations {
  readonly service: EvaluatorService;

  readonly store: ResultStore;

  constructor(db: string, runsRoot: string, log: (line: string) => void) {
    this.store = new ResultStore(db);
    // The token guards the evaluator's own HTTP face, which this process does not open.
    const config = ServiceConfigSchema.parse({ token: randomBytes(24).toString('hex'), db, checkpoint_roots: [runsRoot] });
    this.service = new EvaluatorService(config, this.store, log);
  }

  /** Finished and running evaluations of one checkpoint folder, newest first. */
  of(checkpointPath: string): EvaluationSummary[] {
    return this.store.list({ checkpoint: checkpointPath, limit: 20 }).map(summary);
  }

  /** The newest finished evaluation of a checkpoint that has `suite`. */
  latest(checkpointPath: string, suite: string): EvaluationRecord | null {
    return (
      this.store.list({ checkpoint: checkpointPath, limit: 50 }).find((r) => r.status === 'done' && r.result?.suites[suite]) ??
      null
    );
  }

  async submit(body: unknown): Promise<{ id: string; state: string }> {
    const request = EvaluationRequestSchema.parse(body);
    const { id, state } = await this.service.submit(request, 'web');
    return { id, state };
  }

  /** Paired bootstrap of b against a on every suite both have finished (b − a, higher is better). */
  pairs(a: { id: string; path: string }, b: { id: string; path: string }) {
    const out = [];
    const suitesOf = (p: string) =>
      new Set(this.store.list({ checkpoint: p, limit: 50 }).flatMap((r) => Object.keys(r.result?.suites ?? {})));
    const shared = [...suitesOf(a.path)].filter((s) => suitesOf(b.path).has(s));
    for (const suite of shared) {
      const ra = this.latest(a.path, suite)?.result?.suites[suite];
      const rb = this.latest(b.path, suite)?.result?.suites[suite];
      if (!ra || !rb || ra.item_ids.length === 0) continue;
      const c = pairedBootstrap({ ids: ra.item_ids, scores: ra.item_scores }, { ids: rb.item_ids, scores: rb.item_scores });
      if (c.items === 0) continue;
      out.push({ a: a.id, b: b.id, suite, difference: c.difference, ci_low: c.ci_low, ci_high: c.ci_high });
    }
    return out;
  }

  close(): void {
    this.service.close();
    this.store.close();
  }
}

/** An accuracy's 95% interval: the paired bootstrap of its item scores against all-zero scores resamples their mean. */
function accuracyInterval(ids: string[], scores: number[]): { ci_low: number; ci_high: number } {
  const c = pairedBootstrap({ ids, scores: scores.map(() => 0) }, { ids, scores });
  return { ci_low: c.ci_low, ci_high: c.ci_high };
}

function summary(r: EvaluationRecord): EvaluationSummary {
  const suites: Record<string, SuiteScore> = {};
  for (const [name, s] of Object.entries(r.result?.suites ?? {})) {
    const metric = HEADLINE[s.kind] ?? Object.keys(s.metrics)[0] ?? '';
    const accuracy = metric === 'accuracy' && s.item_ids.length > 0;
    suites[name] = {
      metric,
      value: s.metrics[metric] ?? NaN,
      metrics: s.metrics,
      ...(accuracy ? accuracyInterval(s.item_ids, s.item_scores) : { ci_low: null, ci_high: null }),
      items: s.items,
      ...(s.groups && { groups: Object.fromEntries(Object.entries(s.groups).map(([g, v]) => [g, v.accuracy])) }),
    };
  }
  return { id: r.id, status: r.status, error: r.error, created_at: r.created_at, suites };
}
