// Fuzzing the coordinator's gRPC methods (Join, Watch, Heartbeat, Leave, ReportStep, CheckpointBarrier) on
// a job kept running by two well-behaved workers (coordinator-session.ts), whose identities the cases
// borrow: the generic gRPC cases on valid requests of each method, and the coordinator's own
// (coordinator-cases.ts). The target sends them, lets a barrier that waits for the other ranks meet them,
// and keeps the members' step counts in line with what the coordinator accepted.
import { randomBytes as secret } from 'node:crypto';
import type { Rng } from '../../lm/rng.js';
import { TOKEN_HEADER } from '../../collective/auth.js';
import {
  CoordinatorServiceService as Methods,
  type CheckpointBarrierRequest,
} from '../../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { badField, bases, reportCall, sequence, type Call, type Method } from './coordinator-cases.js';
import { JOB } from './coordinator-fixture.js';
import { CoordinatorSession, type Member } from './coordinator-session.js';
import { pick } from './draw.js';
import { genericGrpcCase, sendGeneric, type Sent, type ValidRequest } from './grpc-cases.js';
import { GrpcWire, grpcFrame, probeGrpc } from './grpc-client.js';
import { ServiceProcess, ringletCommand } from './service-process.js';
import type { FuzzService, FuzzTarget } from './target.js';

const WATCH_OPEN_MS = 300; // a Watch gets this long to be refused or to send its first message
const PARKED_MS = 300; // a barrier call unanswered for this long waits for the other ranks

class CoordinatorTarget implements FuzzTarget {
  readonly jsonErrors = false;
  private wire: GrpcWire; // to the job's coordinator: a fresh job listens on new ports (serve.ts)
  private wireAddress: string;
  private readonly auth: Record<string, string>;

  constructor(
    readonly process: ServiceProcess,
    private readonly session: CoordinatorSession,
    token: string,
  ) {
    this.wire = new GrpcWire(session.address);
    this.wireAddress = session.address;
    this.auth = { [TOKEN_HEADER]: token };
  }

  private valid(method: Method, request: object): ValidRequest {
    const serialize = Methods[method].requestSerialize as (r: object) => Buffer;
    return {
      path: Methods[method].path,
      message: serialize(request),
      auth: this.auth,
      ...(method === 'watch' ? { streamingMs: WATCH_OPEN_MS } : {}),
    };
  }

  private async call({ method, request, what }: Call, deadlineMs: number): Promise<Sent> {
    const valid = this.valid(method, request);
    const answer = await this.wire.call(
      { path: valid.path, headers: this.auth, body: grpcFrame(valid.message), streamingMs: valid.streamingMs },
      deadlineMs,
    );
    return { what: `${what} (${method})`, answer, body: grpcFrame(valid.message), path: valid.path };
  }

  async send(rng: Rng, deadlineMs: number): Promise<Sent[]> {
    const ring = await this.session.ring();
    if (this.wireAddress !== this.session.address) {
      this.wire.close();
      this.wire = new GrpcWire(this.session.address);
      this.wireAddress = this.session.address;
    }
    const m = pick(rng, ring);
    const kind = pick(rng, ['generic', 'generic', 'generic', 'generic', 'fields', 'fields', 'fields', 'sequence', 'sequence']);
    if (kind === 'generic') {
      const [method, request] = pick(rng, bases(this.session, rng, m));
      const c = genericGrpcCase(rng, this.valid(method, request));
      const at = this.wireAddress.lastIndexOf(':');
      const address = { host: this.wireAddress.slice(0, at), port: Number(this.wireAddress.slice(at + 1)) };
      const first = sendGeneric({ wire: this.wire, address }, c, deadlineMs);
      return this.settle(
        await this.completed(first, 'request' in c ? c.request.body : null, method, ring, deadlineMs),
        ring,
        deadlineMs,
      );
    }
    const sent: Sent[] = [];
    for (const group of kind === 'fields' ? [badField(this.session, rng, m)] : sequence(this.session, rng, m, ring)) {
      if (Array.isArray(group)) sent.push(...(await Promise.all(group.map((c) => this.call(c, deadlineMs)))));
      else
        sent.push(
          ...(await this.completed(
            this.call(group, deadlineMs),
            grpcFrame(this.valid(group.method, group.request).message),
            group.method,
            ring,
            deadlineMs,
          )),
        );
    }
    return this.settle(sent, ring, deadlineMs);
  }

  /**
   * A barrier call that the coordinator keeps waiting (no answer after PARKED_MS) and that reads as a ring
   * member's valid arrival at the step the ring has reached waits for the other ranks: they come, as in a
   * ring. Any other call must be answered by itself; one that waits for ever is a hang.
   */
  private async completed(
    first: Promise<Sent>,
    body: Buffer | null,
    method: Method,
    ring: Member[],
    deadlineMs: number,
  ): Promise<Sent[]> {
    const others = body ? this.counterparts(body, method, ring) : [];
    if (others.length === 0) return [await first];
    const answered = await Promise.race([
      first.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), PARKED_MS)),
    ]);
    if (answered) return [await first];
    return Promise.all([first, ...others.map((o) => this.call(o, deadlineMs))]);
  }

  /**
   * When `body` is one barrier call that a ring member could make at the step the ring has reached, the
   * other members' arrivals, which the coordinator waits for (as the ranks of a ring would come). A barrier
   * that is anything else must be refused at once: the fuzzer sends nothing that would let it complete.
   */
  private counterparts(body: Buffer, method: Method, ring: Member[]): Call[] {
    if (method !== 'checkpointBarrier' || body.length < 5 || body.readUInt32BE(1) > body.length - 5) return [];
    let b: CheckpointBarrierRequest;
    try {
      b = Methods.checkpointBarrier.requestDeserialize(body.subarray(5, 5 + body.readUInt32BE(1)));
    } catch {
      return [];
    }
    const from = ring.find(
      (m) => m.workerId === b.workerId && m.rank === b.rank && m.epoch === b.ringEpoch && m.lastStep === b.step,
    );
    // Rank 0 names its checkpoint, or why it could not write one (write_error, where the proto has it).
    const named = b.checkpoint !== '' || Boolean((b as { writeError?: string }).writeError);
    const wellFormed = b.jobId === JOB.id && Number.isFinite(b.hostEnergyJ) && b.hostEnergyJ >= 0 && (b.rank !== 0 || named);
    if (!from || !wellFormed) return [];
    return ring
      .filter((m) => m !== from)
      .map((m) => ({ method: 'checkpointBarrier', request: this.session.barrierRequest(m), what: 'the other ranks arrive' }));
  }

  /**
   * Records the steps the coordinator accepted, so that the members' next valid reports follow them; a
   * member left behind (another's report was taken alone) catches up, as the ranks of a ring do.
   */
  private async settle(sent: Sent[], ring: Member[], deadlineMs: number): Promise<Sent[]> {
    for (const s of sent) {
      if (!s.body || s.body.length < 5 || s.answer.kind !== 'grpc' || s.answer.code !== 0 || s.path !== Methods.reportStep.path)
        continue;
      try {
        const r = Methods.reportStep.requestDeserialize(s.body.subarray(5, 5 + s.body.readUInt32BE(1)));
        const m = ring.find((x) => x.workerId === r.workerId);
        if (m && r.step > m.lastStep) m.lastStep = r.step;
      } catch {
        continue; // not a report the fuzzer can read back: it changed nothing the members rely on
      }
    }
    const ahead = Math.max(...ring.map((m) => m.lastStep));
    for (const m of ring)
      while (m.lastStep < ahead) {
        const caughtUp = await this.call(reportCall(this.session, m, 'a rank catches up'), deadlineMs);
        sent.push(caughtUp);
        if (caughtUp.answer.kind !== 'grpc' || caughtUp.answer.code !== 0) break;
        m.lastStep += 1;
      }
    return sent;
  }

  probe(deadlineMs: number): Promise<string | null> {
    // A heartbeat of an unknown worker: NOT_FOUND from a live coordinator.
    const heartbeat = { jobId: JOB.id, workerId: 'probe', ringEpoch: 0, step: 0, ringError: '' };
    const request = {
      path: Methods.heartbeat.path,
      headers: this.auth,
      body: grpcFrame(Methods.heartbeat.requestSerialize(heartbeat)),
    };
    return probeGrpc(this.session.address, request, 5, deadlineMs);
  }

  async close(): Promise<void> {
    this.session.close();
    this.wire.close();
    await this.process.stop();
  }
}

/** The coordinator's child process and its addresses. */
export async function startCoordinatorProcess(): Promise<{
  child: ServiceProcess;
  token: string;
  line: { coordinator: string; health: string; metrics: string };
}> {
  const token = secret(24).toString('hex');
  const child = new ServiceProcess(ringletCommand(['fuzz', '--serve', 'coordinator']), { RINGLET_TOKEN: token });
  const line = await child.announcement<{ coordinator: string; health: string; metrics: string }>(
    (l) => 'coordinator' in l,
    60_000,
  );
  return { child, token, line };
}

export const coordinatorService: FuzzService = {
  name: 'coordinator',
  async start() {
    const { child, token, line } = await startCoordinatorProcess();
    const session = new CoordinatorSession(line.coordinator, token, child);
    return new CoordinatorTarget(child, session, token);
  },
};
