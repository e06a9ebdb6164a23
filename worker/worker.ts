// A worker actor: joins the coordinator, holds a Watch stream for its assignments, and for each ring epoch
// forms the ring, restores the assigned state (worker/job.ts) and trains it (worker/train-assignment.ts:
// gradients of its slice of the global batch, the ring all-reduce, the AdamW update, a step report, and at
// checkpoint steps the barrier). The model code knows nothing of this: parallelism is composed around
// train/step.ts. What the coordinator sends is checked against the worker's own limits (worker/job-check.ts).
import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import type { Assignment, WatchResponse } from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { plaintextTokenWarning, type TlsFiles } from '../collective/auth.js';
import { RingThread } from '../collective/ring-thread.js';
import { jsonLog, type JsonLog } from '../coordinator/log.js';
import { HealthServer } from '../coordinator/health.js';
import { machineId } from '../observability/power.js';
import { CoordinatorLink } from './coordinator-link.js';
import { HostEnergy } from './host-energy.js';
import { acceptJobConfig, assignmentProblem } from './job-check.js';
import { disposeState, loadJob, restoreState, type Job, type TrainingState } from './job.js';
import { workerLimits, type WorkerLimits } from './limits.js';
import type { RunEnergy } from './rank-checkpoint.js';
import { Aborted, trainAssignment } from './train-assignment.js';

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

export class Worker {
  private readonly log: JsonLog;
  private readonly limits: WorkerLimits;
  private readonly warned = new Set<string>(); // addresses already warned of for a plaintext token
  private transport: RingThread | null = null; // the ring's endpoint and all-reduce, on their own thread
  private link: CoordinatorLink | null = null;
  private workerId = '';
  private job: Job | null = null;
  private state: TrainingState | null = null;
  private epoch = 0; // the newest epoch this worker has heard of
  private ring: RingThread | null = null; // the transport, while an assignment trains
  private assignments: Array<Assignment | { finish: string } | { lost: string }> = [];
  private wake: (() => void) | null = null;
  private ringError = '';
  private readonly runEnergy: RunEnergy = {}; // from the latest step report's reply
  private readonly hostEnergy: HostEnergy; // this machine's, when the assignment says this worker meters it
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
    this.hostEnergy = new HostEnergy(this.log);
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
      await this.hostEnergy.stop();
      this.ring?.abort('worker exiting');
      this.link?.close();
      await this.transport.stop();
      await this.health.close();
    }
  }

  /** SIGTERM: leave the job (the coordinator re-forms the ring without this worker) and stop. */
  async leave(reason: string): Promise<void> {
    this.leaving = true;
    if (this.link && this.workerId) await this.link.leave(this.o.jobId, this.workerId, reason);
    this.push({ lost: reason });
  }

  // --- coordinator session --------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    this.link?.close();
    this.link = new CoordinatorLink(this.o.coordinator, this.o.token, this.o.tls);
    this.warnIfPlaintext('the connection to the coordinator at', this.o.coordinator);
    this.warnIfPlaintext("this worker's ring endpoint at", this.transport!.address);
    const deadline = Date.now() + (this.o.connectTimeoutMs ?? 60_000);
    for (let delay = 100; ; delay = Math.min(2000, delay * 2)) {
      try {
        const reply = await this.link.join({
          jobId: this.o.jobId,
          collectiveAddress: this.transport!.address,
          workerName: `${os.hostname()}/${process.pid}`,
          host: machineId(),
        });
        this.workerId = reply.workerId;
        this.transport!.reset();
        this.epoch = 0;
        const { train, dist } = await acceptJobConfig(reply, this.o.token, this.limits);
        this.transport!.chunkLimit = dist.chunk_bytes;
        this.job = await loadJob(train, dist, this.limits, this.job);
        this.log('info', 'joined', {
          worker: reply.workerId,
          coordinator: this.o.coordinator,
          collective: this.transport?.address ?? '',
          backend: this.job.backend,
          device: this.job.device,
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

  /** Watches for assignments and trains them until the job finishes or the coordinator goes away. */
  private async serve(): Promise<{ finished: boolean; reason: string }> {
    this.assignments = [];
    const watch = this.link!.watch(this.o.jobId, this.workerId);
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
    this.link
      ?.heartbeat({ jobId: this.o.jobId, workerId: this.workerId, ringEpoch: this.epoch, step: this.state?.step ?? 0, ringError })
      .then(
        (reply) => {
          if (reply.ringEpoch > this.epoch) {
            this.epoch = reply.ringEpoch;
            this.ring?.abort(`coordinator is at ring epoch ${reply.ringEpoch}`);
          }
        },
        () => {}, // a missed heartbeat is retried at the next interval
      );
  }

  /** Forms the ring of assignment `a`, restores its state and trains it to the end of the job (true). */
  private async train(a: Assignment): Promise<boolean> {
    const job = this.job!;
    const { dist } = job;
    const ring = this.transport!;
    const previous = (a.rank - 1 + a.worldSize) % a.worldSize;
    ring.form({
      jobId: this.o.jobId,
      token: this.o.token,
      epoch: a.ringEpoch,
      rank: a.rank,
      worldSize: a.worldSize,
      next: a.ring[(a.rank + 1) % a.worldSize],
      fromRank: previous,
      fromAddress: a.ring[previous],
      bucketBytes: dist.bucket_bytes,
      chunkBytes: dist.chunk_bytes,
      fp16: dist.fp16,
      timeoutMs: dist.ring_timeout_ms,
      tls: this.o.tls,
    });
    this.ring = ring;
    this.assignment = a;
    await this.hostEnergy.set(a.meterHost, job.train.observability);
    if (this.state) disposeState(this.state);
    this.state = null;
    this.state = await restoreState(job, a);
    this.log('info', 'assignment', { ring_epoch: a.ringEpoch, rank: a.rank, world_size: a.worldSize, step: this.state.step });
    return trainAssignment({
      jobId: this.o.jobId,
      workerId: this.workerId,
      job,
      state: this.state,
      assignment: a,
      ring,
      link: this.link!,
      hostEnergy: this.hostEnergy,
      runEnergy: this.runEnergy,
      superseded: () => this.epoch > a.ringEpoch,
      log: this.log,
    });
  }
}
