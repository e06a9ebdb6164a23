// Two well-behaved workers ("anchors") that keep the fuzzed coordinator's job running, so that fuzz cases
// reach the code behind the ring: step reports, barriers, heartbeats of ring members. Each anchor joins,
// holds its Watch stream, heartbeats, and follows its assignments (ring epoch, rank, the next step it owes);
// the fuzz cases borrow their identities. When a case gets an anchor dropped (a bad report is meant to),
// a new one joins, and the ring grows back at a checkpoint barrier, as it does for real workers. When a case
// ends the job (a final barrier, non-finite steps in a row), the service starts a fresh job.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { tokenMetadata } from '../../collective/auth.js';
import {
  CoordinatorServiceClient,
  CheckpointBarrierRequest,
  ReportStepRequest,
  type WatchResponse,
} from '../../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { stepWindows } from '../../train/shard.js';
import { JOB, JOB_INFO } from './coordinator-fixture.js';
import type { ServiceProcess } from './service-process.js';

export interface Member {
  workerId: string;
  epoch: number;
  rank: number;
  worldSize: number;
  lastStep: number; // the last step it reported (or the restore step)
}

interface Anchor {
  workerId: string;
  address: string;
  watch: grpc.ClientReadableStream<WatchResponse>;
  member: Member | null; // its place in the current ring, once assigned
  gone: boolean;
}

export class CoordinatorSession {
  private client: CoordinatorServiceClient;
  private anchors: Anchor[] = [];
  private readonly heartbeat: NodeJS.Timeout;
  private jobOver = false;
  private reformAsked = 0; // when a re-formation was last asked for
  private port = 20000; // collective addresses the anchors claim (nothing listens: the ring is never used)

  constructor(
    public address: string, // the coordinator's: a fresh job listens on new ports
    private readonly token: string,
    private readonly service: ServiceProcess,
  ) {
    this.client = new CoordinatorServiceClient(address, grpc.credentials.createInsecure());
    this.heartbeat = setInterval(() => this.beat(), JOB.heartbeatMs);
  }

  private get md() {
    return tokenMetadata(this.token);
  }

  /** The ring's members, once the job runs with every live anchor in it (waits up to 10 s). */
  async ring(): Promise<Member[]> {
    for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
      if (this.jobOver) await this.freshJob();
      this.anchors = this.anchors.filter((a) => !a.gone);
      while (this.anchors.length < 2) if (!(await this.join())) break;
      const members = this.members();
      const waiting = this.anchors.filter((a) => !a.member);
      if (members.length > 0 && waiting.length === 0) return members;
      // A ring that runs without a new anchor takes it in when it re-forms: a member reports a ring error.
      if (members.length > 0 && Date.now() - this.reformAsked > 150) await this.reform(members[0]);
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error("the coordinator did not form a ring of the fuzzer's workers within 10 s");
  }

  private members(): Member[] {
    const epoch = Math.max(0, ...this.anchors.map((a) => a.member?.epoch ?? 0));
    return this.anchors
      .map((a) => a.member)
      .filter((m): m is Member => m !== null && m.epoch === epoch)
      .sort((a, b) => a.rank - b.rank);
  }

  /** A valid report of `m`'s next step (the windows its slice holds, finite figures). */
  report(m: Member, step = m.lastStep + 1): ReportStepRequest {
    const plan = { firstStep: 0, firstPosition: 0, globalBatch: JOB.batchSize, windowsPerEpoch: JOB_INFO.windowsPerEpoch };
    return ReportStepRequest.fromPartial({
      jobId: JOB.id,
      workerId: m.workerId,
      ringEpoch: m.epoch,
      rank: m.rank,
      step,
      loss: 3,
      gradNorm: 1,
      lr: 1e-3,
      computeMs: 10,
      allreduceMs: 1,
      windows: stepWindows(plan, step, m.worldSize, m.rank),
      allreduceBytes: 1024,
    });
  }

  /** A valid barrier call of `m` at the last step it reported. */
  barrierRequest(m: Member, final = false): CheckpointBarrierRequest {
    return CheckpointBarrierRequest.fromPartial({
      jobId: JOB.id,
      workerId: m.workerId,
      ringEpoch: m.epoch,
      rank: m.rank,
      step: m.lastStep,
      checkpoint: m.rank === 0 ? `checkpoints/step-${m.lastStep}` : '',
      metrics: m.rank === 0 ? { val_loss: 3 } : {},
      final,
      stateSha256: 'f'.repeat(64),
    });
  }

  /** A ring error from `m` aborts the epoch; the coordinator re-forms the ring with every worker watching. */
  private async reform(m: Member): Promise<void> {
    this.reformAsked = Date.now();
    await new Promise<void>((resolve) =>
      this.client.heartbeat(
        { jobId: JOB.id, workerId: m.workerId, ringEpoch: m.epoch, step: m.lastStep, ringError: 'fuzz: taking a new worker in' },
        this.md,
        () => resolve(),
      ),
    );
  }

  private async join(): Promise<boolean> {
    const address = `127.0.0.1:${this.port++}`;
    const joined = await new Promise<{ workerId: string } | grpc.ServiceError>((resolve) =>
      this.client.join(
        { jobId: JOB.id, collectiveAddress: address, workerName: 'fuzz-anchor', host: 'fuzz-host' },
        this.md,
        (err, r) => resolve(err ?? r),
      ),
    );
    if ('code' in joined) {
      if (joined.code === grpc.status.FAILED_PRECONDITION) this.jobOver = true; // the job has finished or failed
      await new Promise((r) => setTimeout(r, 100)); // slots held by workers a case joined free up once they are swept
      return false;
    }
    const anchor: Anchor = {
      workerId: joined.workerId,
      address,
      watch: this.client.watch({ jobId: JOB.id, workerId: joined.workerId }, this.md),
      member: null,
      gone: false,
    };
    anchor.watch.on('data', (m: WatchResponse) => {
      if (m.assignment)
        anchor.member = {
          workerId: anchor.workerId,
          epoch: m.assignment.ringEpoch,
          rank: m.assignment.rank,
          worldSize: m.assignment.worldSize,
          lastStep: m.assignment.startStep,
        };
      if (m.abort) anchor.member = null;
      if (m.finish) this.jobOver = true;
    });
    const gone = () => ((anchor.gone = true), (anchor.member = null));
    anchor.watch.on('error', gone);
    anchor.watch.on('end', gone);
    this.anchors.push(anchor);
    return true;
  }

  private beat(): void {
    for (const a of this.anchors)
      if (!a.gone)
        this.client.heartbeat(
          { jobId: JOB.id, workerId: a.workerId, ringEpoch: a.member?.epoch ?? 0, step: a.member?.lastStep ?? 0, ringError: '' },
          this.md,
          () => {},
        );
  }

  /** Drops the anchors and has the service start a fresh job on the same ports. */
  private async freshJob(): Promise<void> {
    for (const a of this.anchors) a.watch.cancel();
    this.anchors = [];
    this.service.command('job');
    const line = await this.service.announcement<{ coordinator: string }>((l) => 'coordinator' in l, 30_000);
    this.client.close();
    this.address = line.coordinator;
    this.client = new CoordinatorServiceClient(this.address, grpc.credentials.createInsecure());
    this.jobOver = false;
  }

  /** A worker id the coordinator has never seen. */
  stranger(): string {
    return randomUUID();
  }

  close(): void {
    clearInterval(this.heartbeat);
    for (const a of this.anchors) a.watch.cancel();
    this.client.close();
  }
}
