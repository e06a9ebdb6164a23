// `ringlet chaos`: runs a scenario (chaos/scenarios.ts) a number of times against a small supervised job
// and reports, per trial, the same figures for every scenario: survived, ring re-formations, process
// restarts, time to recover, windows skipped or repeated (the coordinator's audit against its own
// assignment), and the final validation loss against a fault-free run of the same job.
import fs from 'node:fs';
import path from 'node:path';
import { Rng } from '../lm/rng.js';
import { SCENARIOS, scenarioNamed, type Scenario } from './scenarios.js';
import { LinkLab } from './netns.js';
import { superviseJob, type SupervisedJob } from './supervisor.js';

export const VAL_LOSS_TOLERANCE = 1e-3; // relative: recovery changes the ring's size, and float sums their order
const STEPS = 32;
const WORKERS = 3;
const HEARTBEAT_TIMEOUT_MS = 2000;
const TRIAL_TIMEOUT_MS = 240_000;
// The same small job in every trial: the nano preset cut down so a step takes milliseconds.
const JOB_CONFIG = {
  model: { preset: 'nano', d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_hidden: 64, context: 32 },
  training: { batch_size: 4, grad_accum: 2, eval_windows: 8, eval_every: 1000, log_every: 1, max_steps: STEPS },
  optimizer: { lr: 0.01, warmup_steps: 2 },
  checkpoint: { every: 4, keep_last: 3 },
};

export interface TrialResult {
  scenario: string;
  trial: number;
  fault_step: number;
  survived: boolean;
  ring_reforms: number;
  checkpoints_skipped: number; // rank 0 could not write them (a full disk); the ring went on
  process_restarts: number;
  recover_s: number | null; // fault to the first step past those committed before it
  samples_skipped: number | null;
  samples_repeated: number | null;
  val_loss: number | null;
  val_loss_rel_diff: number | null; // against the fault-free run
  error?: string;
}

export interface ScenarioSummary {
  scenario: string;
  trials: number;
  survived: number;
  ring_reforms_mean: number;
  checkpoints_skipped_mean: number;
  process_restarts_mean: number;
  recover_s_median: number | null;
  recover_s_max: number | null;
  samples_skipped: number;
  samples_repeated: number;
  val_loss_rel_diff_max: number | null;
  within_tolerance: boolean;
}

export interface ChaosOptions {
  scenario: string; // a name, or 'all'
  trials: number;
  seed: number;
  data: string;
  work: string;
  log?: (line: string) => void;
}

function jobArgs(work: string, data: string, runDir: string): string[] {
  const config = path.join(work, 'chaos-config.json');
  if (!fs.existsSync(config)) fs.writeFileSync(config, JSON.stringify(JOB_CONFIG));
  return [
    ...['--config', config, '--data', data, '--out', runDir],
    ...['--min-workers', '2', '--max-workers', String(WORKERS), '--replace-wait', '20', '--rendezvous-timeout', '120'],
    ...['--heartbeat-interval', '250', '--heartbeat-timeout', String(HEARTBEAT_TIMEOUT_MS)],
  ];
}

const env = () => ({ ...process.env, RINGLET_TOKEN: 'chaos-token-' + process.pid });

async function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => (onTimeout(), reject(new Error(`no end within ${ms / 1000} s`))), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer!);
  }
}

function killAll(job: SupervisedJob): void {
  for (const p of [job.coordinator(), ...job.workers()]) if (p.exitCode === null) p.kill('SIGKILL');
}

/**
 * Seconds from the fault to the first step the coordinator committed past the last one it had committed
 * before the fault: the job is making new progress again. Null when that never happened.
 */
function recoverySeconds(job: SupervisedJob, faultAt: number, stepAtFault: number): number | null {
  const next = job.logs.find(
    (l) => l.seen >= faultAt && l.component === 'coordinator' && l.msg === 'step' && Number(l.step) > stepAtFault,
  );
  return next ? (next.seen - faultAt) / 1000 : null;
}

async function runTrial(
  o: ChaosOptions,
  scenario: Scenario | null,
  trial: number,
  rng: Rng,
  reference: number,
): Promise<TrialResult> {
  const runDir = path.join(o.work, `${scenario?.name ?? 'fault-free'}-${trial}`);
  fs.rmSync(runDir, { recursive: true, force: true });
  const undo = scenario?.prepare?.(runDir) ?? (() => {});
  let lab: LinkLab | null = null;
  const faultStep = 9 + rng.int(STEPS - 16); // past two checkpoints, and before the last few steps
  const result: TrialResult = {
    scenario: scenario?.name ?? 'fault-free',
    trial,
    fault_step: scenario ? faultStep : 0,
    survived: false,
    ring_reforms: 0,
    checkpoints_skipped: 0,
    process_restarts: 0,
    recover_s: null,
    samples_skipped: null,
    samples_repeated: null,
    val_loss: null,
    val_loss_rel_diff: null,
  };
  try {
    lab = scenario?.network ? LinkLab.create(WORKERS) : null;
    const job = await superviseJob({
      coordinatorArgs: jobArgs(o.work, o.data, runDir),
      workers: WORKERS,
      env: env(),
      lab: lab ?? undefined,
    });
    let faultAt = Infinity;
    let stepAtFault = 0;
    let ended = false; // a job that ends before the fault step must not leave this loop polling
    let faultError = '';
    const fault = (async () => {
      if (!scenario) return;
      while (job.step() < faultStep) {
        if (ended) return;
        await new Promise((r) => setTimeout(r, 5));
      }
      faultAt = Date.now();
      stepAtFault = job.step();
      await scenario.inject({ job, lab, runDir, rng, heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS });
    })().catch((err: Error) => void (faultError = err.message));
    const lastLogs = () =>
      job.logs
        .filter((l) => l.msg !== 'step')
        .slice(-12)
        .map((l) => JSON.stringify(l).slice(0, 400))
        .join('\n');
    const end = await withTimeout(job.done, TRIAL_TIMEOUT_MS, () => {
      killAll(job);
      o.log?.(`timed out; the last log records:\n${lastLogs()}`);
    });
    ended = true;
    // The fault's own end (a zombie's SIGCONT, a link back up, the disk freed) comes before the lab and
    // the filesystem are taken down.
    await fault;
    if (end.code !== 0) o.log?.(`the job failed; the last log records:\n${lastLogs()}\n${end.stderrTail}`);
    const s = end.summary as Record<string, number | string | undefined>;
    result.ring_reforms = Number(s.restarts ?? 0);
    result.checkpoints_skipped = Number(s.checkpoints_skipped ?? 0);
    result.process_restarts = end.coordinatorRestarts + end.workerRestarts;
    result.recover_s = Number.isFinite(faultAt) ? recoverySeconds(job, faultAt, stepAtFault) : null;
    if (faultError) result.error = `the fault could not be injected: ${faultError}`;
    else if (typeof s.error === 'string') result.error = s.error;
    else {
      result.samples_skipped = Number(s.samples_skipped);
      result.samples_repeated = Number(s.samples_repeated);
      result.val_loss = Number(s.val_loss);
      result.val_loss_rel_diff = Number.isFinite(reference) ? Math.abs(result.val_loss - reference) / reference : 0;
      result.survived = end.code === 0 && s.step === STEPS && (!scenario || Number.isFinite(faultAt));
      if (scenario && !Number.isFinite(faultAt)) result.error = `the job ended before the fault step ${faultStep}`;
    }
  } catch (err) {
    result.error = (err as Error).message;
  } finally {
    lab?.destroy();
    undo();
  }
  return result;
}

const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] : null);

export function summarize(scenario: string, trials: TrialResult[]): ScenarioSummary {
  const recover = trials.map((t) => t.recover_s).filter((x): x is number => x !== null);
  const diffs = trials.map((t) => t.val_loss_rel_diff).filter((x): x is number => x !== null);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return {
    scenario,
    trials: trials.length,
    survived: trials.filter((t) => t.survived).length,
    ring_reforms_mean: mean(trials.map((t) => t.ring_reforms)),
    checkpoints_skipped_mean: mean(trials.map((t) => t.checkpoints_skipped)),
    process_restarts_mean: mean(trials.map((t) => t.process_restarts)),
    recover_s_median: median(recover),
    recover_s_max: recover.length ? Math.max(...recover) : null,
    samples_skipped: trials.reduce((a, t) => a + (t.samples_skipped ?? 0), 0),
    samples_repeated: trials.reduce((a, t) => a + (t.samples_repeated ?? 0), 0),
    val_loss_rel_diff_max: diffs.length ? Math.max(...diffs) : null,
    within_tolerance: diffs.length === trials.length && diffs.every((d) => d <= VAL_LOSS_TOLERANCE),
  };
}

export async function runChaos(o: ChaosOptions) {
  const log = o.log ?? (() => {});
  const scenarios = o.scenario === 'all' ? SCENARIOS : [scenarioNamed(o.scenario)];
  for (const s of scenarios) {
    const why = s.unavailable?.();
    if (why) throw new Error(`scenario ${s.name} cannot run here: ${why}`);
  }
  fs.mkdirSync(o.work, { recursive: true });
  const rng = new Rng(o.seed);
  const baseline = await runTrial(o, null, 0, rng, NaN);
  if (!baseline.survived || baseline.val_loss === null)
    throw new Error(`the fault-free run failed: ${baseline.error ?? 'no summary'}`);
  log(`fault-free: val_loss ${baseline.val_loss}`);
  const results: TrialResult[] = [];
  for (const s of scenarios)
    for (let trial = 1; trial <= o.trials; trial++) {
      const r = await runTrial(o, s, trial, rng, baseline.val_loss);
      results.push(r);
      log(
        `${s.name} #${trial}: ${r.survived ? 'survived' : 'FAILED'} fault at step ${r.fault_step}, ` +
          `${r.ring_reforms} re-formations, ${r.checkpoints_skipped} checkpoints skipped, ${r.process_restarts} restarts, recovered in ${r.recover_s ?? '-'} s, ` +
          `skipped ${r.samples_skipped} repeated ${r.samples_repeated}, val_loss ${r.val_loss}` +
          (r.error ? ` (${r.error})` : ''),
      );
    }
  const summaries = scenarios.map((s) =>
    summarize(
      s.name,
      results.filter((r) => r.scenario === s.name),
    ),
  );
  return {
    seed: o.seed,
    steps: STEPS,
    workers: WORKERS,
    val_loss_tolerance: VAL_LOSS_TOLERANCE,
    fault_free_val_loss: baseline.val_loss,
    scenarios: summaries,
    trials: results,
  };
}

/** The results table of docs/reliability.md. */
export function chaosTable(summaries: ScenarioSummary[]): string {
  const f = (x: number | null, digits = 2) => (x === null ? '-' : x.toFixed(digits));
  const rows = summaries.map(
    (s) =>
      `| ${s.scenario} | ${s.trials} | ${((100 * s.survived) / s.trials).toFixed(0)}% | ${f(s.ring_reforms_mean, 1)} | ${f(s.checkpoints_skipped_mean, 1)} | ` +
      `${f(s.process_restarts_mean, 1)} | ${f(s.recover_s_median)} / ${f(s.recover_s_max)} | ${s.samples_skipped} | ` +
      `${s.samples_repeated} | ${s.val_loss_rel_diff_max === null ? '-' : s.val_loss_rel_diff_max.toExponential(1)} |`,
  );
  return [
    '| scenario | trials | survived | ring re-formations (mean) | checkpoints skipped (mean) | process restarts (mean) | recover s (median / max) | samples skipped | samples repeated | val loss vs fault-free (max rel.) |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}
