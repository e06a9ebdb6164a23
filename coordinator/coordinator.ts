// The coordinator of a distributed job: rendezvous, ranks and ring order, the job's state machine, step
// reports and stragglers, checkpoint barriers, and recovery when a worker goes away. It computes nothing
// itself; workers train and rank 0 writes checkpoints.
//
// States: pending (waiting for workers) -> running <-> checkpointing -> finished, with recovering (a worker
// was lost: abort the step in flight, wait for a replacement or go on with the survivors, everyone
// restores the last consistent checkpoint) and failed. Every change is published on the control-plane bus.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import {
  CoordinatorServiceService,
  type CheckpointBarrierRequest,
  type CheckpointBarrierResponse,
  type ReportStepRequest,
  WatchResponse,
} from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { plaintextTokenWarning, serverCredentials, statusError } from '../collective/auth.js';
import { GRPC_SERVER_KEEPALIVE, shutdownGrpcServer } from '../collective/session-keepalive.js';
import { InProcessBus, type Bus } from '../controlplane/bus.js';
import { JobEvents, type JobState } from './job-events.js';
import { coordinatorService } from './service.js';
import type { TrainConfig } from '../train/config.js';
import type { DistributedConfig } from './config.js';
import { CheckpointBarriers, type Barrier } from './barriers.js';
import { DataLog } from './data-log.js';
import { StepReports, stragglers, type CompleteStep } from './step-reports.js';
import { isIntact, newestIntactCheckpoint } from './restore-point.js';
import { HealthServer } from './health.js';
import { MetricsLog } from '../train/metrics-log.js';
import { jsonLog, type JsonLog } from './log.js';
import type { JobTelemetry } from './telemetry.js';
import { machineId } from '../observability/power.js';
import { SteadyPace } from '../train/pace.js';
import { TimeLimitHorizon } from '../train/horizon.js';

/** How a worker's meter names its sources (observability/power.ts energySources). */
const ENERGY_SOURCE = /^(none|(estimated|nvidia-smi|rapl)(\+(estimated|nvidia-smi|rapl))*)$/;

/** What the coordinator must know of the data and model; see coordinator/job-info.ts. */
export interface JobInfo {
  windowsPerEpoch: number;
  tokensPerStep: number; // global batch windows x context
  startStep: number; // of the checkpoint the job starts from (0: fresh)
  startCursorPosition: number; // absolute window position of that checkpoint's data cursor
  restoreCheckpoint: string; // '' for a fresh start
}

export interface JobResult {
  step: number;
  checkpoint: string;
  metrics: Record<string, number>;
  workers: number;
  restarts: number;
  samples_skipped: number;
  samples_repeated: number;
  ranks_identical: boolean;
  tokens_per_s: number;
  steady_tokens_per_s: number | null; // from the end of the 5th step to the last (train/pace.ts)
  elapsed_s: number;
  interrupted: boolean;
  straggler_warnings: number;
  checkpoints_skipped: number; // rank 0 could not write them; training went on
}

interface WorkerEntry {
  id: string;
  name: string;
  address: string;
  host: string; // its machine ('' when it did not say: taken as the coordinator's)
  lastSeen: number;
  watch: grpc.ServerWritableStream<unknown, WatchResponse> | null;
}

export class Coordinator {
  readonly jobId: string;
  address = '';
  httpAddress = '';
  private readonly server = new grpc.Server(GRPC_SERVER_KEEPALIVE); // drops sessions a peer broke (collective/session-keepalive.ts)
  private readonly health = new HealthServer({
    ready: () => this.state === 'running' || this.state === 'checkpointing',
    status: () => ({
      job: this.jobId,
      state: this.state,
      ring_epoch: this.epoch,
      step: this.maxReported,
      workers: [...this.workers.values()].map((w) => ({
        id: w.id,
        name: w.name,
        address: w.address,
        rank: this.ring.indexOf(w.id),
      })),
      restarts: this.restarts,
      host: os.hostname(),
    }),
  });
  private readonly workers = new Map<string, WorkerEntry>();
  private state: JobState = 'pending';
  // Ring epochs start from the clock, so a restarted coordinator's epochs are newer than any a worker or a
  // chunk in flight still carries from before (workers also forget old epochs when they rejoin).
  private epoch = Math.max(0, Math.floor(Date.now() / 1000) - 1_700_000_000);
  private ring: string[] = [];
  private restore: { path: string; step: number };
  private restarts = 0;
  private maxReported = 0;
  private stopAfter = 0;
  private stopReason = '';
  private horizon: { steps: number; from: number } | null = null;
  private horizonEstimate: TimeLimitHorizon | null = null;
  private readonly reports: StepReports; // of the current ring epoch
  private nonfiniteInARow = 0; // committed steps skipped because the reduced gradient was not finite
  private lastCommit = 0; // when the latest step was committed (or the ring formed)
  private readonly steadyPace: SteadyPace;
  private readonly barriers = new CheckpointBarriers();
  private readonly dataLog: DataLog;
  private ranksIdentical = true;
  private stragglerWarnings = 0;
  private checkpointsSkipped = 0;
  private checkingRestore = false; // reading the restore point back before a ring re-forms on it // barriers that completed without a checkpoint (rank 0 could not write it)
  private started = 0; // when the ring first formed
  private lastStepLogged = 0;
  private timers: NodeJS.Timeout[] = [];
  private reformTimer: NodeJS.Timeout | null = null;
  private closed = false; // after close(), streams ending are no news
  private finishResolve!: (r: JobResult) => void;
  private finishReject!: (e: Error) => void;
  /** Settles when the job finishes (or fails). */
  readonly done: Promise<JobResult>;
  private readonly log: JsonLog;
  private readonly events: JobEvents;
  private readonly telemetry: JobTelemetry | null;
  private readonly metricsLog: MetricsLog; // the run's metrics.jsonl, as a one-process run writes it
  private readonly parameters: number | null;

  constructor(
    private readonly train: TrainConfig,
    private readonly dist: DistributedConfig,
    private readonly info: JobInfo,
    options: { bus?: Bus; log?: JsonLog; telemetry?: JobTelemetry; parameters?: number } = {},
  ) {
    this.jobId = dist.job_id;
    this.telemetry = options.telemetry ?? null;
    this.parameters = options.parameters ?? null;
    this.metricsLog = new MetricsLog(train.out);
    this.log = options.log ?? jsonLog('coordinator', { job: this.jobId });
    this.events = new JobEvents(options.bus ?? new InProcessBus(), this.jobId, this.log);
    this.restore = { path: info.restoreCheckpoint, step: info.startStep };
    this.maxReported = info.startStep;
    this.steadyPace = new SteadyPace(info.startStep, info.tokensPerStep);
    // Every step takes the next global batch of the data order from where the job's first cursor stood.
    this.reports = new StepReports({
      firstStep: info.startStep,
      firstPosition: info.startCursorPosition,
      globalBatch: train.training.batch_size * train.training.grad_accum,
      windowsPerEpoch: info.windowsPerEpoch,
    });
    this.dataLog = new DataLog(path.join(train.out, 'data-log.jsonl'), info.windowsPerEpoch, (err) =>
      this.log('warn', 'cannot write the data log; its lines wait in memory', { error: err.message }),
    );
    this.done = new Promise((resolve, reject) => {
      this.finishResolve = resolve;
      this.finishReject = reject;
    });
    this.done.catch(() => {}); // callers that care await it; an unobserved failure must not crash the process
    this.server.addService(
      CoordinatorServiceService,
      coordinatorService(
        {
          join: (req) => this.join(req),
          watch: (call) => this.watch(call),
          heartbeat: (req) => this.heartbeat(req),
          leave: (req) => {
            this.known(req.jobId, req.workerId);
            this.lost(req.workerId, `left: ${req.reason || 'no reason given'}`);
          },
          reportStep: (req) => this.reportStep(req),
          checkpointBarrier: (req, reply) => this.checkpointBarrier(req, reply),
        },
        this.dist.token,
      ),
    );
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.train.out, { recursive: true });
    const { host, port, http_port } = this.dist;
    const bound = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${host}:${port}`, serverCredentials(this.dist.tls), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.address = `${host}:${bound}`;
    this.httpAddress = await this.health.listen(host, http_port);
    this.log('info', 'listening', {
      address: this.address,
      http: this.httpAddress,
      metrics: this.telemetry?.metricsUrl ?? null,
      restore: this.restore.path || null,
    });
    this.metricsLog.started({
      preset: this.train.model.preset,
      dataset: this.train.data,
      parameters: this.parameters,
      tokens_per_step: this.info.tokensPerStep,
      workers: this.dist.max_workers,
      status_address: this.httpAddress,
      resumed_from_step: this.info.startStep,
      config: this.train,
    });
    const plaintext = await plaintextTokenWarning("the coordinator's gRPC port", this.address, this.dist.tls);
    if (plaintext) this.log('warn', plaintext, { address: this.address });
    await this.publishState('pending');
    this.timers.push(
      setTimeout(() => this.rendezvousTimeout(), this.dist.rendezvous_timeout_s * 1000),
      setInterval(() => this.sweep(), this.dist.heartbeat_interval_ms),
    );
  }

  /** Ends the job after the step in flight, with a final checkpoint (SIGTERM). */
  requestStop(reason: string): void {
    if (this.state === 'pending') return this.fail(`stopped before the ring formed: ${reason}`);
    if (!this.stopAfter) {
      this.stopAfter = this.maxReported + 1;
      this.stopReason = reason;
      this.log('info', 'stopping after the step in flight', { reason, stop_after_step: this.stopAfter });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    if (this.reformTimer) clearTimeout(this.reformTimer);
    for (const w of this.workers.values()) w.watch?.end();
    // tryShutdown waits for every call in flight: a rank waiting at a barrier would hold it forever.
    this.barriers.abortAll('the coordinator is shutting down');
    await shutdownGrpcServer(this.server, 2000); // its calls answer at once; barriers were just aborted
    await this.health.close();
    await this.telemetry?.close();
  }

  // --- gRPC handlers --------------------------------------------------------------------------------------

  private known(jobId: string, workerId: string): WorkerEntry {
    if (jobId !== this.jobId)
      throw statusError(grpc.status.NOT_FOUND, `unknown job "${jobId}" (this coordinator runs "${this.jobId}")`);
    const w = this.workers.get(workerId);
    if (!w) throw statusError(grpc.status.NOT_FOUND, `unknown worker "${workerId}" (it may have been dropped; join again)`);
    w.lastSeen = Date.now();
    return w;
  }

  private join(req: { jobId: string; collectiveAddress: string; workerName: string; host: string }) {
    if (req.jobId && req.jobId !== this.jobId)
      throw statusError(grpc.status.NOT_FOUND, `unknown job "${req.jobId}" (this coordinator runs "${this.jobId}")`);
    if (this.state === 'finished' || this.state === 'failed')
      throw statusError(grpc.status.FAILED_PRECONDITION, `job ${this.jobId} is ${this.state}`);
    if (req.host.length > 255)
      throw statusError(grpc.status.INVALID_ARGUMENT, `host id of ${req.host.length} characters (at most 255)`);
    if (!/^[^\s:]+:\d{1,5}$/.test(req.collectiveAddress))
      throw statusError(grpc.status.INVALID_ARGUMENT, `collective address "${req.collectiveAddress}" is not host:port`);
    for (const w of this.workers.values())
      if (w.address === req.collectiveAddress)
        throw statusError(grpc.status.ALREADY_EXISTS, `a worker at ${req.collectiveAddress} has already joined (${w.id})`);
    if (this.workers.size >= this.dist.max_workers)
      throw statusError(grpc.status.RESOURCE_EXHAUSTED, `job ${this.jobId} has its maximum of ${this.dist.max_workers} workers`);
    const id = randomUUID();
    this.workers.set(id, {
      id,
      name: req.workerName.slice(0, 200),
      address: req.collectiveAddress,
      host: req.host,
      lastSeen: Date.now(),
      watch: null,
    });
    this.log('info', 'worker joined', {
      worker: id,
      name: req.workerName,
      address: req.collectiveAddress,
      host: req.host || null,
      workers: this.workers.size,
    });
    return {
      jobId: this.jobId,
      workerId: id,
      // Workers must not inherit metrics_port: the coordinator serves the whole job's metrics.
      trainConfigJson: JSON.stringify({
        ...this.train,
        observability: { ...this.train.observability, metrics_port: undefined },
      }),
      distributedConfigJson: JSON.stringify({ ...this.dist, token: undefined, tls: undefined }),
      heartbeatIntervalMs: this.dist.heartbeat_interval_ms,
    };
  }

  private watch(call: grpc.ServerWritableStream<{ jobId: string; workerId: string }, WatchResponse>): void {
    const w = this.known(call.request.jobId, call.request.workerId);
    if (w.watch) throw statusError(grpc.status.ALREADY_EXISTS, `worker ${w.id} already watches`);
    w.watch = call as grpc.ServerWritableStream<unknown, WatchResponse>;
    // The stream's end is how a worker's death reaches us at once, even if its process hangs no more.
    call.on('cancelled', () => this.lost(w.id, 'its connection closed'));
    call.on('error', () => this.lost(w.id, 'its connection failed'));
    try {
      if (this.state === 'pending' && this.watching().length >= this.dist.max_workers) this.formRing('rendezvous complete');
      else if (this.state === 'recovering') this.maybeReform();
    } catch (err) {
      this.fail(`cannot form the ring: ${(err as Error).message}`);
    }
  }

  private heartbeat(req: { jobId: string; workerId: string; ringEpoch: number; step: number; ringError: string }) {
    const w = this.known(req.jobId, req.workerId);
    if (req.ringError && req.ringEpoch === this.epoch && this.ring.includes(w.id) && this.state !== 'recovering') {
      this.log('warn', 'ring failed at a worker', { worker: w.id, ring_epoch: req.ringEpoch, error: req.ringError });
      this.abortRing(`ring error at ${w.name}: ${req.ringError}`);
      // A peer that died is usually what failed the ring: give its closed Watch stream a moment to arrive, so
      // the new ring does not include it; then re-form as after any loss, waiting up to replace_wait_s for a
      // replacement (re-forming at once here went on without the replacement a launcher was already starting).
      this.reformTimer ??= setTimeout(
        () => {
          this.reformTimer = null;
          this.maybeReform();
        },
        Math.min(1000, this.dist.heartbeat_interval_ms),
      );
    }
    return { ringEpoch: this.epoch };
  }

  private reportStep(req: ReportStepRequest) {
    const w = this.known(req.jobId, req.workerId);
    this.current(req.ringEpoch, req.rank, w);
    this.hostEnergy(w, req);
    this.checkTimes(req);
    const problem = this.reports.problem(req);
    if (problem) this.refuseReport(w, req.rank, problem);
    const complete = this.reports.add(req);
    if (req.step > this.maxReported) this.maxReported = req.step;
    if (complete) this.stepComplete(complete);
    this.decideSchedule(req.step);
    if (!this.stopAfter && this.timeUp()) this.requestStop(`time limit of ${this.train.training.time_limit} s`);
    const energy = this.telemetry?.runEnergy();
    return {
      stopAfterStep: this.stopAfter,
      horizonSteps: this.horizon?.steps ?? 0,
      horizonFromStep: this.horizon?.from ?? 0,
      runEnergyJ: energy?.run_energy_j ?? 0,
      runEmissionsG: energy?.run_emissions_g ?? 0,
    };
  }

  /**
   * A worker whose report is not its next step with exactly its windows (coordinator/step-reports.ts) is
   * dropped: its weights cannot be trusted to match the others', and the data log records only what the
   * coordinator computed.
   */
  private refuseReport(w: WorkerEntry, rank: number, problem: string): never {
    this.log('error', 'step report refused', { worker: w.id, rank, problem });
    setImmediate(() => this.lost(w.id, `sent a step report that is not its assignment (${problem})`));
    throw statusError(grpc.status.INVALID_ARGUMENT, `rank ${rank} ${problem}`);
  }

  /**
   * A report's times go into the job's metrics, whose histograms throw on what is not finite: the commit of
   * the step stopped half-way and the last rank to report it got INTERNAL. (Loss and grad norm may be
   * anything: a step whose reduced gradient is not finite is reported with them, and skipped.)
   */
  private checkTimes(req: ReportStepRequest): void {
    for (const [name, ms] of [
      ['compute_ms', req.computeMs],
      ['allreduce_ms', req.allreduceMs],
    ] as const)
      if (!(Number.isFinite(ms) && ms >= 0))
        throw statusError(grpc.status.INVALID_ARGUMENT, `${name} ${ms} is not a finite, non-negative number`);
  }

  /** A metering worker's figure for its machine (docs/observability.md, "Workers on other machines"). */
  private hostEnergy(w: WorkerEntry, req: { hostEnergyJ: number; hostEnergySource: string }): void {
    if (!(Number.isFinite(req.hostEnergyJ) && req.hostEnergyJ >= 0))
      throw statusError(grpc.status.INVALID_ARGUMENT, `host energy ${req.hostEnergyJ} J is not a finite, non-negative number`);
    // The source labels the job's energy series: any other string would add series without end.
    if (req.hostEnergySource !== '' && !ENERGY_SOURCE.test(req.hostEnergySource))
      throw statusError(
        grpc.status.INVALID_ARGUMENT,
        `host energy source "${req.hostEnergySource}" is not rapl, nvidia-smi or estimated (joined by "+"), or none`,
      );
    if (req.hostEnergyJ > 0 && w.host !== '')
      this.telemetry?.hostEnergy(w.id, w.host, req.hostEnergyJ, req.hostEnergySource || 'unknown');
  }

  private current(epoch: number, rank: number, w: WorkerEntry): void {
    if (epoch !== this.epoch)
      throw statusError(
        grpc.status.FAILED_PRECONDITION,
        `stale ring epoch ${epoch} (now ${this.epoch}); wait for the new assignment`,
      );
    if (this.ring[rank] !== w.id)
      throw statusError(grpc.status.PERMISSION_DENIED, `worker ${w.id} is not rank ${rank} of ring epoch ${epoch}`);
  }

  private stepComplete({ step, reports: all, firstArrival }: CompleteStep): void {
    for (const r of all) this.dataLog.commit(step, r.rank, this.reports.windows(step, r.rank));
    if (this.nonfiniteStep(step, all[0].gradNorm)) return;
    for (const s of stragglers(all, this.dist.straggler_factor)) {
      this.stragglerWarnings += 1;
      this.log('warn', 'straggler', { step, rank: s.rank, compute_ms: s.computeMs, median_ms: s.medianMs });
    }
    const now = Date.now();
    const tokensPerS = ((step - this.info.startStep) * this.info.tokensPerStep) / Math.max(1e-3, (now - this.started) / 1000);
    const observed = this.telemetry?.step({
      step,
      tokens: this.info.tokensPerStep,
      samples: this.train.training.batch_size * this.train.training.grad_accum,
      step_s: (now - this.lastCommit) / 1000,
      tokens_per_s: tokensPerS,
      loss: all.reduce((s, r) => s + r.loss, 0),
      lr: all[0].lr,
      grad_norm: all[0].gradNorm,
      straggler_lag_s: (now - firstArrival) / 1000,
      allreduce_bytes: all[0].allreduceBytes,
      allreduce_s: Math.max(...all.map((r) => r.allreduceMs)) / 1000,
      ranks: all.length,
    });
    this.lastCommit = now;
    this.steadyPace.stepEnded(step);
    if (step - this.lastStepLogged >= this.train.training.log_every || step === this.stopAfter) {
      this.lastStepLogged = step;
      this.metricsLog.append({
        type: 'step',
        step,
        horizon: this.horizon?.steps ?? null,
        tokens: step * this.info.tokensPerStep,
        loss: all.reduce((s, r) => s + r.loss, 0),
        lr: all[0].lr,
        grad_norm: all[0].gradNorm,
        tokens_per_s: tokensPerS,
        ...(observed && {
          mfu: observed.mfu,
          energy_j: observed.energy.run_energy_j,
          emissions_g: observed.energy.run_emissions_g,
        }),
        workers: all.length,
      });
      this.log('info', 'step', {
        step,
        loss: all.reduce((s, r) => s + r.loss, 0),
        lr: all[0].lr,
        grad_norm: all[0].gradNorm,
        tokens_per_s: tokensPerS,
        rank_compute_ms: Object.fromEntries(all.map((r) => [r.rank, Math.round(r.computeMs)])),
        allreduce_ms: Math.round(Math.max(...all.map((r) => r.allreduceMs))),
      });
    }
  }

  /**
   * Every rank skips a step whose reduced gradient is not finite (they hold the same sum, bit for bit, so
   * they agree without a word); the coordinator counts them and ends the job after max_nonfinite_steps in
   * a row, since a run that keeps producing them will not recover on its own. True when the job failed.
   */
  private nonfiniteStep(step: number, gradNorm: number): boolean {
    if (Number.isFinite(gradNorm)) {
      this.nonfiniteInARow = 0;
      return false;
    }
    this.nonfiniteInARow += 1;
    this.telemetry?.metrics.skippedSteps.inc();
    const limit = this.train.training.max_nonfinite_steps;
    this.log('warn', 'step skipped: the reduced gradient is not finite', {
      step,
      grad_norm: gradNorm,
      in_a_row: this.nonfiniteInARow,
    });
    if (this.nonfiniteInARow < limit) return false;
    this.fail(`the reduced gradient was not finite for ${limit} steps in a row (at step ${step}); lower the learning rate`);
    return true;
  }

  /** With only a time limit, fixes the schedule's horizon from the pace of the first steps (train/horizon.ts). */
  private decideSchedule(step: number): void {
    const t = this.train.training;
    if (t.max_steps !== undefined || this.horizon || t.time_limit === undefined) return;
    this.horizonEstimate ??= new TimeLimitHorizon(this.info.startStep, t.time_limit, 2);
    const steps = this.horizonEstimate.stepEnded(step, this.started);
    if (steps === null) return;
    // Ranks may be one step past the highest report; from two steps ahead every rank still gets it in time.
    this.horizon = { steps, from: this.maxReported + 2 };
    this.log('info', 'schedule horizon fixed', { horizon_steps: this.horizon.steps, from_step: this.horizon.from });
  }

  private timeUp(): boolean {
    const limit = this.train.training.time_limit;
    return limit !== undefined && this.started > 0 && (Date.now() - this.started) / 1000 >= limit;
  }

  private checkpointBarrier(req: CheckpointBarrierRequest, reply: grpc.sendUnaryData<CheckpointBarrierResponse>): void {
    const w = this.known(req.jobId, req.workerId);
    this.current(req.ringEpoch, req.rank, w);
    this.hostEnergy(w, req);
    // A rank reports a step before it checkpoints it (worker/train-assignment.ts). A barrier for any other
    // step would wait for ranks that never come, or, in a ring of one, make a step never taken the restore point.
    const reported = this.reports.lastReported(req.rank);
    if (req.step !== reported)
      throw statusError(
        grpc.status.FAILED_PRECONDITION,
        `rank ${req.rank} came to the barrier of step ${req.step}, but its last reported step is ${reported}`,
      );
    if (req.rank === 0 && req.checkpoint === '' && req.writeError === '')
      throw statusError(
        grpc.status.INVALID_ARGUMENT,
        'rank 0 must name the checkpoint it wrote, or why it could not (its barrier would never complete)',
      );
    const b = this.barriers.arrive(req, reply, this.ring.length);
    if (req.rank !== 0 && this.state === 'running') void this.publishState('checkpointing');
    if (!b) return;
    if (b.writeError) return this.checkpointNotWritten(b);
    this.telemetry?.metrics.checkpointDuration.observe((Date.now() - b.started) / 1000);
    const hashes = new Set(b.ranks.values());
    if (hashes.size > 1) {
      this.ranksIdentical = false;
      this.log('error', 'ranks disagree on the weights', { step: req.step, hashes: Object.fromEntries(b.ranks) });
    }
    this.restore = { path: b.checkpoint, step: req.step };
    for (const r of b.replies) r(null, { checkpoint: b.checkpoint });
    if (Number.isFinite(b.metrics.val_loss))
      this.metricsLog.append({ type: 'eval', step: req.step, val_loss: b.metrics.val_loss, val_bpb: b.metrics.val_bpb });
    this.log('info', 'checkpoint', {
      step: req.step,
      checkpoint: b.checkpoint,
      ranks_identical: hashes.size === 1,
      ...b.metrics,
    });
    this.events.checkpoint({
      runDir: this.train.out,
      checkpoint: b.checkpoint,
      step: req.step,
      tokensSeen: req.step * this.info.tokensPerStep,
      valLoss: b.metrics.val_loss,
    });
    if (b.final) return this.finish(req.step, b);
    if (this.state === 'checkpointing') void this.publishState('running');
    // Workers that joined while the ring ran come in now: the checkpoint just written gives them the weights.
    if (this.watching().length > this.ring.length) this.formRing('growing the ring');
  }

  /**
   * Rank 0 could not write the checkpoint (a full disk, say): the ranks agreed on nothing new, so the
   * restore point stays where it was, and the ring trains on to the next checkpoint rather than re-forming
   * to retry this one. The job's final checkpoint is never skipped: rank 0 tries it again while the other
   * ranks wait here (worker/rank-checkpoint.ts).
   */
  private checkpointNotWritten(b: Barrier): void {
    this.checkpointsSkipped += 1;
    this.log('warn', 'checkpoint not written; training goes on from the last one', {
      step: b.step,
      error: b.writeError,
      restore: this.restore.path || 'seed',
    });
    for (const r of b.replies) r(null, { checkpoint: '' });
    if (this.state === 'checkpointing') void this.publishState('running');
  }

  // --- ring formation and recovery -------------------------------------------------------------------------

  private watching(): WorkerEntry[] {
    return [...this.workers.values()].filter((w) => w.watch);
  }

  private rendezvousTimeout(): void {
    if (this.state !== 'pending') return;
    const n = this.watching().length;
    if (n >= this.dist.min_workers) this.formRing(`rendezvous timeout with ${n} workers`);
    else this.fail(`only ${n} of at least ${this.dist.min_workers} workers joined within ${this.dist.rendezvous_timeout_s} s`);
  }

  private formRing(reason: string, restart = false): void {
    const members = this.watching().slice(0, this.dist.max_workers);
    if (restart) {
      this.restarts += 1;
      this.telemetry?.metrics.workerRestarts.inc();
    }
    if (this.restarts > this.dist.max_restarts)
      return this.fail(`the ring was re-formed more than ${this.dist.max_restarts} times`);
    this.epoch += 1;
    this.ring = members.map((w) => w.id);
    this.reports.reset(members.length, this.restore.step);
    this.nonfiniteInARow = 0;
    this.barriers.clear();
    this.telemetry?.metrics.workersLive.set(members.length);
    this.maxReported = this.restore.step;
    if (this.stopAfter && this.stopAfter <= this.restore.step) this.stopAfter = this.restore.step + 1;
    this.dataLog.rollback(this.restore.step);
    if (!this.started) this.started = Date.now();
    this.lastCommit = Date.now();
    this.log('info', 'ring formed', {
      reason,
      ring_epoch: this.epoch,
      world_size: members.length,
      ring: members.map((w) => w.address),
      restore: this.restore.path || 'seed',
      step: this.restore.step,
    });
    // This process's meter covers its own machine; on each other machine the lowest rank meters it.
    const here = machineId();
    const metered = new Set<string>();
    const meters = members.map((w) => {
      if (w.host === '' || w.host === here || metered.has(w.host)) return false;
      metered.add(w.host);
      return true;
    });
    members.forEach((w, rank) =>
      w.watch!.write(
        WatchResponse.fromPartial({
          assignment: {
            ringEpoch: this.epoch,
            rank,
            worldSize: members.length,
            ring: members.map((m) => m.address),
            restoreCheckpoint: this.restore.path,
            startStep: this.restore.step,
            meterHost: meters[rank],
          },
        }),
      ),
    );
    void this.publishState('running');
  }

  private abortRing(reason: string): void {
    if (this.state === 'recovering') return;
    this.barriers.abortAll(reason);
    for (const id of this.ring)
      this.workers.get(id)?.watch?.write(WatchResponse.fromPartial({ abort: { ringEpoch: this.epoch, reason } }));
    this.epoch += 1; // reports and chunks of the aborted epoch are now stale
    void this.publishState('recovering', reason);
  }

  /** After a loss: re-form once enough workers are back, waiting up to replace_wait_s for the old size. */
  private maybeReform(): void {
    if (this.state !== 'recovering' || this.reformTimer) {
      if (this.state === 'recovering' && this.watching().length >= this.ring.length) this.reformNow();
      return;
    }
    if (this.watching().length >= this.ring.length || this.dist.replace_wait_s === 0) return this.reformNow();
    this.reformTimer = setTimeout(() => this.reformNow(), this.dist.replace_wait_s * 1000);
  }

  private reformNow(): void {
    if (this.reformTimer) clearTimeout(this.reformTimer);
    this.reformTimer = null;
    if (this.state !== 'recovering' || this.checkingRestore) return;
    const n = this.watching().length;
    if (n < this.dist.min_workers) return this.fail(`${n} workers left, fewer than min_workers (${this.dist.min_workers})`);
    this.checkingRestore = true;
    this.intactRestorePoint()
      .then((ok) => {
        this.checkingRestore = false;
        if (ok && this.state === 'recovering') this.formRing('recovering from a lost worker', true);
      })
      .catch((err: Error) => this.fail(`cannot check the restore point: ${err.message}`));
  }

  /**
   * Before a ring restores the agreed checkpoint, it is read back whole (coordinator/restore-point.ts): one
   * that rotted on disk since it was agreed is passed over for the newest intact one before it (never one
   * before the job's own start, which the audit could not account for), or the seed when the job started
   * from it. False when the job failed for want of one.
   */
  private async intactRestorePoint(): Promise<boolean> {
    if (!this.restore.path) return true;
    const problem = await isIntact(this.restore.path);
    if (!problem) return true;
    this.log('error', 'the restore point is not intact; looking for an older one', {
      checkpoint: this.restore.path,
      error: problem,
    });
    const older = await newestIntactCheckpoint(this.train.out, {
      below: this.restore.step,
      atLeast: this.info.startStep,
      log: this.log,
    });
    if (older) this.restore = { path: older.path, step: older.meta.step };
    else if (this.info.startStep === 0) this.restore = { path: '', step: 0 };
    else {
      this.fail(`no intact checkpoint since step ${this.info.startStep} to restore (${problem})`);
      return false;
    }
    this.log('warn', 'restoring an older checkpoint', { checkpoint: this.restore.path || 'seed', step: this.restore.step });
    return true;
  }

  private lost(id: string, why: string): void {
    const w = this.workers.get(id);
    if (!w || this.closed) return;
    this.workers.delete(id);
    w.watch?.end();
    if (this.state === 'finished' || this.state === 'failed') return;
    this.log('warn', 'worker lost', { worker: id, name: w.name, reason: why, workers: this.workers.size });
    if (this.state === 'pending' || !this.ring.includes(id)) return;
    this.telemetry?.metrics.workersLive.set(this.ring.filter((r) => this.workers.has(r)).length);
    this.abortRing(`worker ${w.name} ${why}`);
    this.maybeReform();
  }

  private sweep(): void {
    const now = Date.now();
    for (const w of [...this.workers.values()])
      if (now - w.lastSeen > this.dist.heartbeat_timeout_ms)
        this.lost(w.id, `sent no heartbeat for ${this.dist.heartbeat_timeout_ms} ms`);
  }

  // --- the end ---------------------------------------------------------------------------------------------

  private finish(step: number, b: Barrier): void {
    const windows = (step - this.info.startStep) * this.train.training.batch_size * this.train.training.grad_accum;
    const audit = this.dataLog.audit(this.info.startCursorPosition, windows);
    const elapsed = (Date.now() - this.started) / 1000;
    const result: JobResult = {
      step,
      checkpoint: b.checkpoint,
      metrics: b.metrics,
      workers: this.ring.length,
      restarts: this.restarts,
      samples_skipped: audit.skipped,
      samples_repeated: audit.repeated,
      ranks_identical: this.ranksIdentical,
      tokens_per_s: elapsed > 0 ? ((step - this.info.startStep) * this.info.tokensPerStep) / elapsed : 0,
      steady_tokens_per_s: this.steadyPace.tokensPerS(),
      elapsed_s: elapsed,
      interrupted: this.stopReason !== '' && !this.stopReason.startsWith('time limit'),
      straggler_warnings: this.stragglerWarnings,
      checkpoints_skipped: this.checkpointsSkipped,
    };
    for (const w of this.workers.values()) w.watch?.write(WatchResponse.fromPartial({ finish: { reason: 'job finished' } }));
    void this.publishState('finished');
    this.metricsLog.ended({ status: 'finished', step, interrupted: result.interrupted, error: null });
    this.log('info', 'job finished', { ...result });
    this.finishResolve(result);
  }

  private fail(reason: string): void {
    if (this.state === 'finished' || this.state === 'failed') return;
    for (const w of this.workers.values())
      w.watch?.write(WatchResponse.fromPartial({ finish: { reason: `job failed: ${reason}` } }));
    void this.publishState('failed', reason);
    this.metricsLog.ended({ status: 'failed', step: this.maxReported, interrupted: false, error: reason });
    this.log('error', 'job failed', { reason });
    this.finishReject(new Error(`job ${this.jobId} failed: ${reason}`));
  }

  private async publishState(state: JobState, message?: string): Promise<void> {
    this.state = state;
    await this.events.state(state, {
      step: this.maxReported,
      workers: this.ring.length || this.workers.size,
      message,
      ringEpoch: this.epoch,
      restore: this.restore,
    });
  }
}
