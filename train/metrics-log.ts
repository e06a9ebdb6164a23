// A run's metrics.jsonl: one JSON object per line, appended as the run goes, read by people, `jq` and the
// web UI (web/server/runs.ts). A run (or each resumption of it) opens with a `start` record saying who
// runs it and where to ask how it is doing, and closes with an `end` record; between them come `step`
// and `eval` records. A process that dies leaves no `end`: readers tell that from the pid or the
// coordinator's /status named in `start`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const METRICS_FILE = 'metrics.jsonl';

export interface RunStart {
  type: 'start';
  pid: number;
  host: string;
  preset: string | null;
  dataset: string;
  parameters: number | null;
  /** Training tokens per optimizer step (global batch × context): the x axis of every curve. */
  tokens_per_step: number;
  workers: number;
  /** A distributed run's coordinator health endpoint (host:port): GET /status answers while it runs. */
  status_address: string | null;
  resumed_from_step: number;
  config: unknown;
}

export interface RunEnd {
  type: 'end';
  status: 'finished' | 'failed';
  step: number;
  /** Stopped early by a signal (the run wrote a checkpoint and can resume). */
  interrupted: boolean;
  error: string | null;
}

export class MetricsLog {
  readonly file: string;

  constructor(runDir: string) {
    fs.mkdirSync(runDir, { recursive: true });
    this.file = path.join(runDir, METRICS_FILE);
  }

  started(run: Omit<RunStart, 'type' | 'pid' | 'host'>): void {
    const start: RunStart = { type: 'start', pid: process.pid, host: os.hostname(), ...run };
    this.append({ ...start });
  }

  ended(end: Omit<RunEnd, 'type'>): void {
    const record: RunEnd = { type: 'end', ...end };
    this.append({ ...record });
  }

  /** A `step` or `eval` record (or any other typed record), stamped with the time. */
  append(record: { type: string; [field: string]: unknown }): void {
    fs.appendFileSync(this.file, `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
  }
}
