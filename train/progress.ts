// What a training run tells its user: a live status line on a terminal (or a line every log_every steps
// otherwise) on stderr, and every logged step and evaluation as JSON lines in the run's metrics.jsonl.
import { MetricsLog } from './metrics-log.js';

export interface StepFigures {
  step: number;
  horizon: number | null;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens: number; // training tokens seen by this step
  tokens_per_s: number;
  gflops_per_s: number;
  step_s: number;
  elapsed_s: number;
  mfu?: number; // model FLOPs utilisation (observability/mfu.ts)
  power_w?: number;
  energy_j?: number; // the run's energy so far, PUE included
  emissions_g?: number;
  energy_estimated?: boolean; // CPU power estimated from TDP × utilisation
}

export class ProgressLog {
  private readonly live: boolean;
  private liveLineShown = false;
  /** The run's metrics.jsonl; null when the run keeps no folder. */
  readonly metrics: MetricsLog | null;

  constructor(runDir: string | null, options: { live?: boolean } = {}) {
    this.live = options.live ?? Boolean(process.stderr.isTTY);
    this.metrics = runDir ? new MetricsLog(runDir) : null;
  }

  info(message: string): void {
    this.clearLive();
    process.stderr.write(`${message}\n`);
  }

  /** An evaluation: its figures on the status line and in metrics.jsonl, `details` in metrics.jsonl only. */
  event(record: Record<string, number>, details: Record<string, unknown> = {}): void {
    this.append({ type: 'eval', ...record, ...details });
    const parts = Object.entries(record).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`);
    this.info(parts.join('  '));
  }

  step(f: StepFigures, logNow: boolean): void {
    const eta = f.horizon ? formatSeconds((f.elapsed_s / f.step) * (f.horizon - f.step)) : '?';
    const mfu = f.mfu === undefined ? '' : `  MFU ${(f.mfu * 100).toFixed(1)}%`;
    const energy = f.energy_j === undefined ? '' : `  ${formatEnergy(f.energy_j)}${f.energy_estimated ? ' (est.)' : ''}`;
    const line =
      `step ${f.step}${f.horizon ? `/${f.horizon}` : ''}  loss ${f.loss.toFixed(4)}  lr ${f.lr.toExponential(2)}  ` +
      `gnorm ${f.grad_norm.toFixed(3)}  ${Math.round(f.tokens_per_s)} tok/s  ${f.gflops_per_s.toFixed(2)} GFLOP/s${mfu}  ` +
      `ETA ${eta}${energy}`;
    if (logNow) this.append({ type: 'step', ...f });
    if (this.live) {
      process.stderr.write(`\r\x1b[2K${line}`);
      this.liveLineShown = true;
    } else if (logNow) process.stderr.write(`${line}\n`);
  }

  private clearLive(): void {
    if (this.liveLineShown) process.stderr.write('\r\x1b[2K');
    this.liveLineShown = false;
  }

  private append(record: { type: string; [field: string]: unknown }): void {
    this.metrics?.append(record);
  }
}

/** Joules as J, kJ or kWh, whichever reads best. */
export function formatEnergy(joules: number): string {
  if (joules < 1e3) return `${joules.toFixed(0)} J`;
  if (joules < 3.6e5) return `${(joules / 1e3).toFixed(1)} kJ`;
  return `${(joules / 3.6e6).toFixed(3)} kWh`;
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}
