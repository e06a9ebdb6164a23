// A worker actor: joins the coordinator, holds a Watch stream for its assignments, and for each ring epoch
// restores the assigned state, then trains: gradients of its slice of the global batch
// (train/step.ts computeGradients), the ring all-reduce, the AdamW update (applyGradients), a step report,
// and at checkpoint steps the barrier (rank 0 writes with lm/checkpoint.ts, the others acknowledge).
// The model code knows nothing of this: parallelism is composed around train/step.ts.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs';
import {
  CoordinatorServiceClient,
  type Assignment,
  type JoinResponse,
  type ReportStepRequest,
  type ReportStepResponse,
  type WatchResponse,
} from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { channelCredentials, plaintextTokenWarning, tokenMetadata, type TlsFiles } from '../collective/auth.js';
import { RingThread } from '../collective/ring-thread.js';
import { setupBackend } from '../kernels/backend.js';
import { readManifest } from '../data/manifest.js';
import { openSplit } from '../data/shards.js';
import { Tokenizer } from '../lm/tokenizer.js';
import { initParams, paramsFromTensors, type Params } from '../lm/model.js';
import type { ModelConfig } from '../lm/model-config.js';
import { checkCompatible, pruneCheckpoints, readCheckpoint, writeCheckpoint } from '../lm/checkpoint.js';
import type { TrainConfig } from '../train/config.js';
import { resolveModelConfig } from '../train/run.js';
import { AdamW } from '../train/optimizer.js';
import { learningRate } from '../train/schedule.js';
import { WindowSampler, chunkBatch, fixedWindows, type Batch, type DataCursor } from '../train/batches.js';
import { FlatGradients, applyGradients } from '../train/step.js';
import { evaluate, unigramLoss } from '../train/evaluate.js';
import type { DistributedConfig } from '../coordinator/config.js';
import { jsonLog, type JsonLog } from '../coordinator/log.js';
import { HealthServer } from '../coordinator/health.js';
import { withSpan } from '../observability/tracing.js';
import { EnergyMeter, energySources, machineId } from '../observability/power.js';
import { cursorPosition, shardAssignment, sliceBatch, windowRanges } from '../train/shard.js';
import { checkRestorePath } from './confine.js';
import { MAX_COORDINATOR_MESSAGE_BYTES, acceptJobConfig, assignmentProblem, checkModelFits } from './job-check.js';
import { workerLimits, type WorkerLimits } from './limits.js';

export interface WorkerOptions {
  coordinator: string; // host:port
  token: string;
  jobId: string;
  host?: string; // where this worker's collective endpoint listens (default 127.0.0.1)
  port?: number;
  tls?: TlsFiles;
  connectTimeoutMs?: number; // how long to keep trying to reach a coordinator that is down or restarting
  httpPort?: number; // health and readiness endpoints on `host`; undefined: none
  limits?: WorkerLimits; // what it accepts from the coordinator; default: workerLimits() from RINGLET_* and defaults
  log?: JsonLog;
}

const MAX_CHUNK_BYTES = 16 << 20; // the largest chunk_bytes the config schema allows

/** Everything a worker loads once: backend, data, model shape. */
interface Job {
  train: TrainConfig;
  dist: DistributedConfig;
  model: ModelConfig;
  sampler: WindowSampler;
  validation: Batch;
  byteLengths: Uint32Array;
  unigram: number;
  tokenizerSha256: string;
  tokenizerJson: Buffer;
  backend: string;
}

interface TrainingState {
  params: Params;
  optimizer: AdamW;
  step: number;
  tokensSeen: number;
  cursor: DataCursor;
  horizonSteps: number | null;
}

class Aborted extends Error {}

export class Worker {
  private readonly log: JsonLog;
  private readonly limits: WorkerLimits;
  private readonly warned = new Set<string>(); // addresses already warned of for a plaintext token
  private transport: RingThread | null = null; // the ring's endpoint and all-reduce, on their own thread
  private client: CoordinatorServiceClient | null = null;
  private workerId = '';
  private job: Job | null = null;
  private state: TrainingState | null = null;
  private epoch = 0; // the newest epoch this worker has heard of
  private ring: RingThread | null = null; // the transport, while an assignment trains
  private assignments: Array<Assignment | { finish: string } | { lost: string }> = [];
  private wake: (() => void) | null = null;
  private ringError = '';
  private stopAfter = 0;
  private runEnergy: { energy_j?: number; emissions_g?: number } = {}; // from the latest step report's reply
  private hostMeter: EnergyMeter | null = null; // this machine's, when the assignment says this worker meters it
  private hostSampledMs = -Infinity;
  private horizon: { steps: number; from: number } | null = null;
  private leaving = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private session = 0;
  private assignment: Assignment | null = null; // the ring this worker trains in now
  private readonly health = new HealthServer({
    ready: () => this.assignment !== null && this.assignment.ringEpoch === this.epoch,
    status: () => ({
      worker: this.workerId,
      coordinator: this.o.coordinator,
      collective: this.transport?.address ?? '',
      ring_epoch: this.assignment?.ringEpoch ?? null,
      rank: this.assignment?.rank ?? null,
      world_size: this.assignment?.worldSize ?? null,
      step: this.state?.step ?? 0,
    }),
  });

  constructor(private readonly o: WorkerOptions) {
    this.log = o.log ?? jsonLog('worker', { pid: process.pid });
    this.limits = o.limits ?? workerLimits();
  }

  /** Runs until the job finishes; rejects if it fails. Reconnects when the coordinator restarts. */
  async run(): Promise<{ step: number }> {
    this.transport = await RingThread.start({
      jobId: this.o.jobId,
      token: this.o.token,
      host: this.o.host,
      port: this.o.port,
      maxChunkBytes: MAX_CHUNK_BYTES,
      maxQueuedBytes: 2 * MAX_CHUNK_BYTES,
      tls: this.o.tls,
    });
    if (this.o.httpPort !== undefined) {
      const address = await this.health.listen(this.o.host ?? '127.0.0.1', this.o.httpPort);
      this.log('info', 'health endpoints', { http: address });
    }
    try {
      for (;;) {
        await this.connect();
        const outcome = await this.serve();
        if (outcome.finished) return { step: this.state?.step ?? 0 };
        if (this.leaving) throw new Error('worker stopped');
        this.log('warn', 'lost the coordinator; reconnecting', { reason: outcome.reason });
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      this.stopTimers();
      await this.meterHost(false);
      this.ring?.abort('worker exiting');
      this.client?.close();
      await this.transport.stop();
      await this.health.close();
    }
  }

  /** SIGTERM: leave the job (the coordinator re-forms the ring without this worker) and stop. */
  async leave(reason: string): Promise<void> {
    this.leaving = true;
    if (this.client && this.workerId)
      await new Promise<void>((resolve) =>
        this.client!.leave({ jobId: this.o.jobId, workerId: this.workerId, reason }, tokenMetadata(this.o.token), () =>
          resolve(),
        ),
      );
    this.push({ lost: reason });
  }

  // --- coordinator session --------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    this.client?.close();
    this.client = new CoordinatorServiceClient(this.o.coordinator, channelCredentials(this.o.tls), {
      'grpc.max_receive_message_length': MAX_COORDINATOR_MESSAGE_BYTES,
    });
    this.warnIfPlaintext('the connection to the coordinator at', this.o.coordinator);
    this.warnIfPlaintext("this worker's ring endpoint at", this.transport!.address);
    const deadline = Date.now() + (this.o.connectTimeoutMs ?? 60_000);
    for (let delay = 100; ; delay = Math.min(2000, delay * 2)) {
      try {
        const reply = await new Promise<JoinResponse>((resolve, reject) =>
          this.client!.join(
            {
              jobId: this.o.jobId,
              collectiveAddress: this.transport!.address,
              workerName: `${os.hostname()}/${process.pid}`,
              host: machineId(),
            },
            tokenMetadata(this.o.token),
            { deadline: Date.now() + 10_000 },
            (err, r) => (err ? reject(err) : resolve(r)),
          ),
        );
        this.workerId = reply.workerId;
        this.transport!.reset();
        this.epoch = 0;
        await this.loadJob(reply);
        this.log('info', 'joined', {
          worker: reply.workerId,
          coordinator: this.o.coordinator,
          collective: this.transport?.address ?? '',
        });
        return;
      } catch (err) {
        const e = err as grpc.ServiceError;
        const retry = e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED;
        if (!retry || Date.now() > deadline || this.leaving)
          throw new Error(`cannot join ${this.o.coordinator}: ${e.details ?? e.message}`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Logs, once per address, that join tokens cross plaintext to or from a non-loopback `address`. */
  private warnIfPlaintext(channel: string, address: string): void {
    if (this.warned.has(address)) return;
    this.warned.add(address);
    void plaintextTokenWarning(channel, address, this.o.tls).then((warning) => warning && this.log('warn', warning, { address }));
  }

  private async loadJob(reply: JoinResponse): Promise<void> {
    const { train, dist } = await acceptJobConfig(reply, this.o.token, this.limits);
    this.transport!.chunkLimit = dist.chunk_bytes;
    if (this.job && JSON.stringify(this.job.train) === JSON.stringify(train)) return void (this.job.dist = dist);
    const backend = await setupBackend(train.backend);
    const manifest = await readManifest(train.data);
    const tokenizerPath = path.join(train.data, manifest.tokenizer.file);
    const tokenizer = await Tokenizer.load(tokenizerPath);
    const model = resolveModelConfig(train, tokenizer.vocabSize);
    checkModelFits(model, train.training.batch_size, this.limits);
    const trainTokens = (await openSplit(train.data, 'train')).tokens;
    const valTokens = (await openSplit(train.data, 'val')).tokens;
    this.job = {
      train,
      dist,
      model,
      sampler: new WindowSampler(trainTokens, model.context, train.training.seed),
      validation: fixedWindows(valTokens, model.context, train.training.eval_windows),
      byteLengths: tokenizer.byteLengths(),
      unigram: unigramLoss(trainTokens, valTokens, model.vocab),
      tokenizerSha256: tokenizer.sha256,
      tokenizerJson: fs.readFileSync(tokenizerPath),
      backend: backend.name,
    };
  }

  /** Watches for assignments and trains them until the job finishes or the coordinator goes away. */
  private async serve(): Promise<{ finished: boolean; reason: string }> {
    this.assignments = [];
    const watch = this.client!.watch({ jobId: this.o.jobId, workerId: this.workerId }, tokenMetadata(this.o.token));
    // Events of an earlier session's stream (it ends after this one starts) must not reach this one.
    const session = ++this.session;
    const mine = (f: () => void) => () => session === this.session && f();
    watch.on('data', (m: WatchResponse) => session === this.session && this.onEvent(m));
    watch.on('error', (err: grpc.ServiceError) =>
      mine(() => this.push({ lost: `watch stream failed: ${err.details || err.message}` }))(),
    );
    watch.on(
      'end',
      mine(() => this.push({ lost: 'watch stream ended' })),
    );
    this.startHeartbeat();
    try {
      for (;;) {
        const next = await this.nextEvent();
        if ('finish' in next) {
          if (next.finish.startsWith('job failed')) throw new Error(next.finish);
          return { finished: true, reason: next.finish };
        }
        if ('lost' in next) {
          this.ring?.abort(next.lost);
          return { finished: false, reason: next.lost };
        }
        const refused = assignmentProblem(next, this.transport!.address);
        if (refused) throw new Error(`refusing the coordinator's assignment: ${refused}`);
        this.warnIfPlaintext('the connection to the next rank at', next.ring[(next.rank + 1) % next.worldSize]);
        const finished = await this.train(next).catch((err: Error) => this.trainingFailed(next, err));
        if (finished) {
          // Wait for the coordinator's word that the job is over (every rank has acknowledged).
          const end = await this.nextEvent();
          return { finished: 'finish' in end, reason: 'finish' in end ? end.finish : 'lost' };
        }
      }
    } finally {
      this.stopTimers();
      this.session += 1;
      watch.cancel();
    }
  }

  private trainingFailed(a: Assignment, err: Error): false {
    if (err instanceof Aborted || this.epoch > a.ringEpoch || this.ring?.aborted) {
      this.log('info', 'step aborted; waiting for the new ring', { ring_epoch: a.ringEpoch, reason: err.message });
    } else {
      this.ringError = err.message;
      this.log('warn', 'ring failed; telling the coordinator', { ring_epoch: a.ringEpoch, error: err.message });
      this.sendHeartbeat();
    }
    return false;
  }

  private onEvent(m: WatchResponse): void {
    if (m.assignment) {
      this.epoch = Math.max(this.epoch, m.assignment.ringEpoch);
      if (this.ring) this.ring.abort(`ring epoch ${m.assignment.ringEpoch} replaces this one`);
      this.push(m.assignment);
    } else if (m.abort) {
      this.epoch = Math.max(this.epoch, m.abort.ringEpoch + 1);
      this.ring?.abort(`coordinator aborted the step: ${m.abort.reason}`);
    } else if (m.finish) this.push({ finish: m.finish.reason });
  }

  private push(e: Assignment | { finish: string } | { lost: string }): void {
    this.assignments.push(e);
    this.wake?.();
  }

  private async nextEvent(): Promise<Assignment | { finish: string } | { lost: string }> {
    for (;;) {
      // A newer assignment supersedes older ones still queued.
      let latest = -1;
      this.assignments.forEach((e, i) => ('ringEpoch' in e ? (latest = i) : null));
      const special = this.assignments.findIndex((e) => !('ringEpoch' in e));
      if (special >= 0) return this.assignments.splice(special, 1)[0];
      if (latest >= 0) {
        const a = this.assignments[latest];
        this.assignments = this.assignments.slice(latest + 1);
        return a;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }

  private startHeartbeat(): void {
    this.stopTimers();
    this.heartbeat = setInterval(() => this.sendHeartbeat(), this.job!.dist.heartbeat_interval_ms);
  }

  private stopTimers(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private sendHeartbeat(): void {
    const ringError = this.ringError;
    this.ringError = '';
    this.client?.heartbeat(
      { jobId: this.o.jobId, workerId: this.workerId, ringEpoch: this.epoch, step: this.state?.step ?? 0, ringError },
      tokenMetadata(this.o.token),
      { deadline: Date.now() + 10_000 },
      (err, reply) => {
        if (!err && reply.ringEpoch > this.epoch) {
          this.epoch = reply.ringEpoch;
          this.ring?.abort(`coordinator is at ring epoch ${reply.ringEpoch}`);
        }
      },
    );
  }

  private unary<Req, Res>(
    method: (req: Req, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown,
    req: Req,
  ): Promise<Res> {
    return new Promise((resolve, reject) =>
      method.call(this.client, req, tokenMetadata(this.o.token), (err: grpc.ServiceError | null, res: Res) =>
        err ? reject(new Error(err.details || err.message)) : resolve(res),
      ),
    );
  }

  // --- this machine's energy, on machines other than the coordinator's ------------------------------------

  /** Starts or stops metering this machine, as the assignment says. */
  private async meterHost(on: boolean): Promise<void> {
    if (on && !this.hostMeter) {
      const config = this.job!.train.observability;
      this.hostMeter = await EnergyMeter.forMachine(config);
      this.hostMeter.start(config.power_poll_s);
      this.log('info', 'metering this machine', { host: machineId() });
    } else if (!on && this.hostMeter) {
      const meter = this.hostMeter;
      this.hostMeter = null;
      await meter.stop();
    }
  }

  /**
   * What a step report or a barrier says of this machine's energy: its meter's totals, sampled at most every
   * 0.5 s (the sample lands in a later report), or now and awaited when `fresh` (the final checkpoint).
   */
  private async hostEnergy(fresh = false): Promise<{ hostEnergyJ: number; hostEnergySource: string }> {
    if (!this.hostMeter) return { hostEnergyJ: 0, hostEnergySource: '' };
    if (fresh || performance.now() - this.hostSampledMs >= 500) {
      this.hostSampledMs = performance.now();
      const sampled = this.hostMeter.sample();
      if (fresh) await sampled;
    }
    const totals = this.hostMeter.totals();
    return { hostEnergyJ: totals.energy_j, hostEnergySource: energySources(totals) };
  }

  // --- training --------------------------------------------------------------------------------------------

  private async restoreState(a: Assignment): Promise<void> {
    const { model, train } = this.job!;
    const o = train.optimizer;
    if (this.state) {
      for (const v of this.state.params.values()) v.dispose();
      for (const v of this.state.optimizer.moments().values()) v.dispose();
      this.state = null;
    }
    const adamw = (params: Params) =>
      new AdamW(params, { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weight_decay });
    if (!a.restoreCheckpoint) {
      const params = initParams(model, train.training.seed);
      this.state = {
        params,
        optimizer: adamw(params),
        step: 0,
        tokensSeen: 0,
        cursor: { epoch: 0, index: 0 },
        horizonSteps: train.training.max_steps ?? null,
      };
      return;
    }
    await checkRestorePath(a.restoreCheckpoint, train.out);
    const ckpt = await readCheckpoint(a.restoreCheckpoint, { withOptimizer: true });
    checkCompatible(ckpt.meta, { modelConfig: model, tokenizerSha256: this.job!.tokenizerSha256 });
    if (ckpt.meta.step !== a.startStep)
      throw new Error(`checkpoint ${a.restoreCheckpoint} is at step ${ckpt.meta.step}, not ${a.startStep}`);
    const params = paramsFromTensors(model, ckpt.weights);
    const optimizer = adamw(params);
    optimizer.restore(ckpt.optimizer!);
    optimizer.step = ckpt.meta.step;
    const c = ckpt.meta.data_cursor as unknown as DataCursor;
    this.state = {
      params,
      optimizer,
      step: ckpt.meta.step,
      tokensSeen: ckpt.meta.tokens_seen,
      cursor: { epoch: c.epoch, index: c.index },
      horizonSteps: train.training.max_steps ?? ckpt.meta.schedule_horizon_steps,
    };
  }

  /** Trains assignment `a` to the end of the job (true) or until it is aborted (throws). */
  private async train(a: Assignment): Promise<boolean> {
    const job = this.job!;
    const { train: cfg, model, dist } = job;
    const t = cfg.training;
    const o = cfg.optimizer;
    const ring = this.transport!;
    ring.form({
      jobId: this.o.jobId,
      token: this.o.token,
      epoch: a.ringEpoch,
      rank: a.rank,
      worldSize: a.worldSize,
      next: a.ring[(a.rank + 1) % a.worldSize],
      fromRank: (a.rank - 1 + a.worldSize) % a.worldSize,
      fromAddress: a.ring[(a.rank - 1 + a.worldSize) % a.worldSize],
      bucketBytes: dist.bucket_bytes,
      chunkBytes: dist.chunk_bytes,
      fp16: dist.fp16,
      timeoutMs: dist.ring_timeout_ms,
      tls: this.o.tls,
    });
    this.ring = ring;
    this.assignment = a;
    await this.meterHost(a.meterHost);
    this.stopAfter = 0;
    this.horizon = null;
    await this.restoreState(a);
    const s = this.state!;
    this.log('info', 'assignment', { ring_epoch: a.ringEpoch, rank: a.rank, world_size: a.worldSize, step: s.step });

    const globalBatch = t.batch_size * t.grad_accum;
    const tokensPerStep = globalBatch * model.context;
    const { start, end } = shardAssignment(globalBatch, a.worldSize, a.rank);
    const flat = new FlatGradients(s.params); // every gradient in one shared buffer, which the ring sums in place
    const gradientBytes = flat.buffer.byteLength;
    const lastStep = () => Math.min(s.horizonSteps ?? Infinity, t.until_step ?? Infinity, this.stopAfter || Infinity);

    // The step report's reply (stop, schedule horizon, energy) is awaited only when it is needed: before the
    // next step's all-reduce, or before a checkpoint or evaluation. So its round trip (2-49 ms, median ~14,
    // of a ~300 ms micro step with 2 workers on 2 cores) overlaps the next step's gradients.
    // Everything the reply decides (whether step s was the last, the learning rate of step s+1) is still
    // decided after it arrives, as if it had been awaited at once.
    let pendingReport: Promise<ReportStepResponse> | null = null;
    const settleReport = async () => {
      if (!pendingReport) return;
      const reply = await pendingReport;
      pendingReport = null;
      if (reply.stopAfterStep) this.stopAfter = reply.stopAfterStep;
      if (reply.runEnergyJ > 0) this.runEnergy = { energy_j: reply.runEnergyJ, emissions_g: reply.runEmissionsG };
      if (reply.horizonSteps && !this.horizon) this.horizon = { steps: reply.horizonSteps, from: reply.horizonFromStep };
    };
    const horizon = () => this.horizon; // read through a call: the reply sets it inside settleReport()
    const isFinal = () => {
      const h = horizon();
      return s.step >= lastStep() || (h !== null && s.step >= h.steps && s.step + 1 >= h.from);
    };

    while (s.step < lastStep()) {
      if (ring.aborted || this.epoch > a.ringEpoch) throw new Aborted(`ring epoch ${a.ringEpoch} is over`);
      const computeStarted = performance.now();
      const { batch, cursor } = job.sampler.next(globalBatch, s.cursor);
      const mine = sliceBatch(batch, start, end);
      // The all-reduce starts now, on the ring's thread: it reduces each bucket of gradients as soon as the
      // backward pass of the last micro-batch has finished it, while the rest of the backward pass runs.
      flat.reset();
      const reduction = withSpan('allreduce', { 'ringlet.step': s.step + 1, 'ringlet.bytes': gradientBytes }, () =>
        ring.allReduce(flat.buffer, s.step + 1, flat.ready),
      );
      reduction.catch(() => {}); // a failed all-reduce surfaces where it is awaited
      // Each micro-batch's mean gradient weighs by its share of the global batch: the ring's sum is then
      // the global batch's mean gradient, whatever the number of workers.
      const microBatches = mine.batch > 0 ? chunkBatch(mine, t.batch_size) : [];
      let loss = 0;
      microBatches.forEach((mb, i) => {
        const w = mb.batch / globalBatch;
        loss += flat.add(model, mb, w, i === microBatches.length - 1) * w;
      });
      flat.markAllReady();
      const computeMs = performance.now() - computeStarted;
      await settleReport();
      // The previous step's reply may say that it was the last (a stop requested while this step computed):
      // this step's gradients are dropped, as every rank's are, since every rank reads the same reply fields,
      // and so is the all-reduce under way.
      if (isFinal()) {
        ring.abort('the job is stopping');
        break;
      }
      const h = horizon();
      const horizonSteps = h && s.step + 1 >= h.from ? h.steps : s.horizonSteps;
      const lr = learningRate(s.tokensSeen, {
        lr: o.lr,
        minLr: o.min_lr ?? o.lr / 10,
        warmupTokens: o.warmup_steps * tokensPerStep,
        totalTokens: horizonSteps === null ? Infinity : horizonSteps * tokensPerStep,
      });
      // What the step waits for the all-reduce beyond its own compute (the rest overlapped the backward pass).
      const reduceStarted = performance.now();
      await reduction;
      const allreduceMs = performance.now() - reduceStarted;
      if (ring.aborted) throw new Aborted('aborted during the all-reduce');
      const grads = flat.tensors();
      const gradNorm = applyGradients(s.optimizer, grads, lr, o.grad_clip);
      for (const g of grads.values()) g.dispose();
      const position = cursorPosition(s.cursor, job.sampler.windows);
      s.step += 1;
      s.tokensSeen += tokensPerStep;
      s.cursor = cursor;
      if (horizonSteps !== s.horizonSteps && horizonSteps !== null) s.horizonSteps = horizonSteps;
      // A gradient that is not finite was skipped by applyGradients on every rank alike (they all hold the
      // same sum); the report's grad norm tells the coordinator, which ends the job after too many in a row.

      pendingReport = this.unary<ReportStepRequest, ReportStepResponse>(this.client!.reportStep, {
        jobId: this.o.jobId,
        workerId: this.workerId,
        ringEpoch: a.ringEpoch,
        rank: a.rank,
        step: s.step,
        loss,
        gradNorm,
        lr,
        computeMs,
        allreduceMs,
        allreduceBytes: a.worldSize > 1 ? gradientBytes : 0,
        windows: windowRanges(position + start, end - start, job.sampler.windows),
        ...(await this.hostEnergy()),
      });
      pendingReport.catch(() => {}); // a failed report surfaces where it is awaited
      const checkpointDue = s.step % cfg.checkpoint.every === 0;
      const evalDue = a.rank === 0 && s.step % t.eval_every === 0;
      if (checkpointDue || evalDue || s.step >= lastStep()) {
        await settleReport();
        const final = isFinal();
        if (final || checkpointDue) await this.checkpoint(a, final);
        else this.evaluate();
        if (final) return true;
      }
      await new Promise((resolve) => setImmediate(resolve)); // let watch events and heartbeats through
    }
    await settleReport();
    await this.checkpoint(a, true);
    return true;
  }

  private evaluate(): { val_loss: number; val_bpb: number } {
    const job = this.job!;
    const e = evaluate(this.state!.params, job.model, job.validation, job.train.training.batch_size, job.byteLengths);
    this.log('info', 'eval', { step: this.state!.step, val_loss: e.loss, val_bpb: e.bpb, unigram_loss: job.unigram });
    return { val_loss: e.loss, val_bpb: e.bpb };
  }

  private async checkpoint(a: Assignment, final: boolean): Promise<void> {
    const job = this.job!;
    const s = this.state!;
    const hash = createHash('sha256');
    for (const v of s.params.values()) hash.update(new Uint8Array((v.dataSync() as Float32Array).buffer));
    let checkpoint = '';
    let metrics: Record<string, number> = {};
    if (a.rank === 0) {
      // Energy and emissions as the coordinator's meter saw them at this step's report (as train/run.ts
      // stores them), so a resumed run carries them on.
      metrics = { ...this.evaluate(), unigram_loss: job.unigram, ...this.runEnergy };
      const buffers = (vars: Map<string, tf.Variable>) =>
        new Map([...vars].map(([name, v]) => [name, { shape: v.shape, data: v.dataSync() as Float32Array }]));
      checkpoint = await writeCheckpoint(
        job.train.out,
        {
          step: s.step,
          weights: buffers(s.params),
          optimizer: buffers(s.optimizer.moments()),
          meta: {
            config: { model: job.model, training: job.train },
            tokens_seen: s.tokensSeen,
            data_cursor: { epoch: s.cursor.epoch, index: s.cursor.index },
            rng_state: { data_order_seed: job.train.training.seed },
            schedule_horizon_steps: s.horizonSteps,
            tokenizer_sha256: job.tokenizerSha256,
            backend: job.backend,
            metrics,
          },
          tokenizerJson: job.tokenizerJson,
        },
        null, // pruned once the barrier agrees: until then the previous checkpoint is the job's restore point
      );
    }
    await this.unary(this.client!.checkpointBarrier, {
      jobId: this.o.jobId,
      workerId: this.workerId,
      ringEpoch: a.ringEpoch,
      rank: a.rank,
      step: s.step,
      checkpoint,
      metrics,
      final,
      stateSha256: hash.digest('hex'),
      ...(await this.hostEnergy(final)),
    });
    if (a.rank === 0) await pruneCheckpoints(job.train.out, job.train.checkpoint.keep_last, checkpoint);
  }
}
