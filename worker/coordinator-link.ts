// A worker's calls to its coordinator (proto/ringlet/coordinator/v1), each with the join token, as
// promises; the Watch stream is returned as it is.
import * as grpc from '@grpc/grpc-js';
import {
  CoordinatorServiceClient,
  type CheckpointBarrierRequest,
  type CheckpointBarrierResponse,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JoinRequest,
  type JoinResponse,
  type ReportStepRequest,
  type ReportStepResponse,
} from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { channelCredentials, tokenMetadata, type TlsFiles } from '../collective/auth.js';
import { MAX_COORDINATOR_MESSAGE_BYTES } from './job-check.js';

const CALL_DEADLINE_MS = 10_000; // join and heartbeat: a coordinator that does not answer is retried

export class CoordinatorLink {
  private readonly client: CoordinatorServiceClient;

  constructor(
    readonly address: string,
    private readonly token: string,
    tls: TlsFiles | undefined,
  ) {
    this.client = new CoordinatorServiceClient(address, channelCredentials(tls), {
      'grpc.max_receive_message_length': MAX_COORDINATOR_MESSAGE_BYTES,
    });
  }

  /** Rejects with the gRPC error itself, so the caller can tell a coordinator that is down (UNAVAILABLE). */
  join(req: JoinRequest): Promise<JoinResponse> {
    return new Promise((resolve, reject) =>
      this.client.join(req, tokenMetadata(this.token), { deadline: Date.now() + CALL_DEADLINE_MS }, (err, r) =>
        err ? reject(err) : resolve(r),
      ),
    );
  }

  watch(jobId: string, workerId: string): grpc.ClientReadableStream<unknown> {
    return this.client.watch({ jobId, workerId }, tokenMetadata(this.token));
  }

  heartbeat(req: HeartbeatRequest): Promise<HeartbeatResponse> {
    return new Promise((resolve, reject) =>
      this.client.heartbeat(req, tokenMetadata(this.token), { deadline: Date.now() + CALL_DEADLINE_MS }, (err, r) =>
        err ? reject(err) : resolve(r),
      ),
    );
  }

  reportStep(req: ReportStepRequest): Promise<ReportStepResponse> {
    return this.unary((cb) => this.client.reportStep(req, tokenMetadata(this.token), cb));
  }

  checkpointBarrier(req: CheckpointBarrierRequest): Promise<CheckpointBarrierResponse> {
    return this.unary((cb) => this.client.checkpointBarrier(req, tokenMetadata(this.token), cb));
  }

  /** Best effort: a worker that leaves does not wait for a coordinator that is gone. */
  leave(jobId: string, workerId: string, reason: string): Promise<void> {
    return new Promise((resolve) => this.client.leave({ jobId, workerId, reason }, tokenMetadata(this.token), () => resolve()));
  }

  close(): void {
    this.client.close();
  }

  /** Rejects with the coordinator's message (its details), which names the problem. */
  private unary<Res>(call: (cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown): Promise<Res> {
    return new Promise((resolve, reject) =>
      call((err, res) => (err ? reject(new Error(err.details || err.message)) : resolve(res))),
    );
  }
}
