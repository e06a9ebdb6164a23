// Evaluation results in SQLite (better-sqlite3: synchronous, one file, WAL journal). Two tables:
// checkpoints (lineage: the run folder, the job that published it, step, tokens seen, the weights' sha256)
// and evaluations (the request, its status, the result with per-item scores, and the energy it used).
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { EvaluationRequest, EvaluationResult } from './evaluate.js';

export type EvaluationStatus = 'running' | 'done' | 'failed';

export interface CheckpointRecord {
  path: string;
  model_sha256: string;
  run_dir: string | null;
  job: string | null;
  step: number;
  tokens_seen: number;
}

export interface EvaluationRecord {
  id: string;
  key: string;
  status: EvaluationStatus;
  source: string;
  request: EvaluationRequest;
  checkpoint: CheckpointRecord;
  result: EvaluationResult | null;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS checkpoints (
  path TEXT NOT NULL,
  model_sha256 TEXT NOT NULL,
  run_dir TEXT,
  job TEXT,
  step INTEGER NOT NULL,
  tokens_seen INTEGER NOT NULL,
  first_seen TEXT NOT NULL,
  PRIMARY KEY (path, model_sha256)
);
CREATE INDEX IF NOT EXISTS checkpoints_run ON checkpoints (run_dir, step);
CREATE TABLE IF NOT EXISTS evaluations (
  id TEXT PRIMARY KEY,
  key TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
  source TEXT NOT NULL,
  checkpoint_path TEXT NOT NULL,
  model_sha256 TEXT NOT NULL,
  request TEXT NOT NULL,
  result TEXT,
  error TEXT,
  seconds REAL,
  energy_joules REAL,
  co2_grams REAL,
  energy_estimated INTEGER,
  created_at TEXT NOT NULL,
  finished_at TEXT,
  FOREIGN KEY (checkpoint_path, model_sha256) REFERENCES checkpoints (path, model_sha256)
);
CREATE INDEX IF NOT EXISTS evaluations_key ON evaluations (key, status);
`;

/** An evaluation joined with its checkpoint (SELECT below). */
interface EvaluationRow extends CheckpointRecord {
  id: string;
  key: string;
  status: EvaluationStatus;
  source: string;
  request: string;
  result: string | null;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

const SELECT = `SELECT e.id, e.key, e.status, e.source, e.request, e.result, e.error, e.created_at, e.finished_at,
  c.path, c.model_sha256, c.run_dir, c.job, c.step, c.tokens_seen
  FROM evaluations e JOIN checkpoints c ON c.path = e.checkpoint_path AND c.model_sha256 = e.model_sha256`;

export class ResultStore {
  private readonly db: Database.Database;

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    // An evaluation still 'running' in the file was cut off by a crash or a kill: it will not finish.
    this.db
      .prepare(
        `UPDATE evaluations SET status = 'failed', error = 'interrupted: the evaluator stopped before it finished', finished_at = ? WHERE status = 'running'`,
      )
      .run(new Date().toISOString());
  }

  /** Records the checkpoint (first sighting wins, except that a job name fills in once known). */
  upsertCheckpoint(c: CheckpointRecord): void {
    this.db
      .prepare(
        `INSERT INTO checkpoints (path, model_sha256, run_dir, job, step, tokens_seen, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (path, model_sha256) DO UPDATE SET job = COALESCE(checkpoints.job, excluded.job)`,
      )
      .run(c.path, c.model_sha256, c.run_dir, c.job, c.step, c.tokens_seen, new Date().toISOString());
  }

  start(key: string, source: string, request: EvaluationRequest, checkpoint: CheckpointRecord): string {
    const id = randomUUID();
    this.db.transaction(() => {
      this.upsertCheckpoint(checkpoint);
      this.db
        .prepare(
          `INSERT INTO evaluations (id, key, status, source, checkpoint_path, model_sha256, request, created_at) VALUES (?, ?, 'running', ?, ?, ?, ?, ?)`,
        )
        .run(id, key, source, checkpoint.path, checkpoint.model_sha256, JSON.stringify(request), new Date().toISOString());
    })();
    return id;
  }

  finish(id: string, result: EvaluationResult): void {
    this.db
      .prepare(
        `UPDATE evaluations SET status = 'done', result = ?, seconds = ?, energy_joules = ?, co2_grams = ?, energy_estimated = 1, finished_at = ? WHERE id = ?`,
      )
      .run(JSON.stringify(result), result.seconds, result.energy.joules, result.energy.co2_grams, new Date().toISOString(), id);
  }

  fail(id: string, error: string): void {
    this.db
      .prepare(`UPDATE evaluations SET status = 'failed', error = ?, finished_at = ? WHERE id = ?`)
      .run(error, new Date().toISOString(), id);
  }

  get(id: string): EvaluationRecord | null {
    const row = this.db.prepare(`${SELECT} WHERE e.id = ?`).get(id) as EvaluationRow | undefined;
    return row ? toRecord(row) : null;
  }

  /** The newest finished evaluation with this key, if any. */
  done(key: string): EvaluationRecord | null {
    const row = this.db
      .prepare(`${SELECT} WHERE e.key = ? AND e.status = 'done' ORDER BY e.finished_at DESC LIMIT 1`)
      .get(key) as EvaluationRow | undefined;
    return row ? toRecord(row) : null;
  }

  /** Evaluations, newest first, optionally of one run folder or one checkpoint path. */
  list(filter: { run_dir?: string; checkpoint?: string; limit: number }): EvaluationRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.run_dir) {
      where.push('c.run_dir = ?');
      args.push(filter.run_dir);
    }
    if (filter.checkpoint) {
      where.push('c.path = ?');
      args.push(filter.checkpoint);
    }
    const sql = `${SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY e.created_at DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, filter.limit) as EvaluationRow[]).map(toRecord);
  }

  /** Whether the database answers (readiness). */
  ping(): boolean {
    return (this.db.prepare('SELECT 1 AS ok').get() as { ok: number }).ok === 1;
  }

  close(): void {
    this.db.close();
  }
}

function toRecord(row: EvaluationRow): EvaluationRecord {
  return {
    id: row.id,
    key: row.key,
    status: row.status,
    source: row.source,
    request: JSON.parse(row.request),
    checkpoint: {
      path: row.path,
      model_sha256: row.model_sha256,
      run_dir: row.run_dir,
      job: row.job,
      step: row.step,
      tokens_seen: row.tokens_seen,
    },
    result: row.result ? JSON.parse(row.result) : null,
    error: row.error,
    created_at: row.created_at,
    finished_at: row.finished_at,
  };
}
