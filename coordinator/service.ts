// The coordinator's gRPC face (proto/ringlet/coordinator/v1): every call must carry the job's join token,
// and whatever a handler throws becomes the call's status (a status error as it is, anything else
// INTERNAL with its message). The handlers themselves are the job's: coordinator/coordinator.ts.
import * as grpc from '@grpc/grpc-js';
import type {
  CheckpointBarrierRequest,
  CheckpointBarrierResponse,
  CoordinatorServiceServer,
  HeartbeatRequest,
  HeartbeatResponse,
  JoinRequest,
  JoinResponse,
  LeaveRequest,
  ReportStepRequest,
  ReportStepResponse,
  WatchRequest,
  WatchResponse,
} from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { hasToken, statusError } from '../collective/auth.js';

export interface CoordinatorHandlers {
  join(req: JoinRequest): JoinResponse;
  watch(call: grpc.ServerWritableStream<WatchRequest, WatchResponse>): void;
  heartbeat(req: HeartbeatRequest): HeartbeatResponse;
  leave(req: LeaveRequest): void;
  reportStep(req: ReportStepRequest): ReportStepResponse;
  /** Answers when the barrier completes (or is aborted), not when the call arrives. */
  checkpointBarrier(req: CheckpointBarrierRequest, reply: grpc.sendUnaryData<CheckpointBarrierResponse>): void;
}

const asStatus = (err: unknown): grpc.ServiceError => {
  const e = err as grpc.ServiceError;
  return e.code !== undefined ? e : statusError(grpc.status.INTERNAL, e.message);
};

export function coordinatorService(h: CoordinatorHandlers, token: string): CoordinatorServiceServer {
  const authorize = (metadata: grpc.Metadata) => {
    if (!hasToken(metadata, token)) throw statusError(grpc.status.UNAUTHENTICATED, 'wrong or missing join token');
  };
  const unary =
    <Req, Res>(body: (req: Req) => Res) =>
    (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
      try {
        authorize(call.metadata);
        cb(null, body(call.request));
      } catch (err) {
        cb(asStatus(err));
      }
    };
  return {
    join: unary((req: JoinRequest) => h.join(req)),
    heartbeat: unary((req: HeartbeatRequest) => h.heartbeat(req)),
    leave: unary((req: LeaveRequest) => (h.leave(req), {})),
    reportStep: unary((req: ReportStepRequest) => h.reportStep(req)),
    checkpointBarrier: (call, cb) => {
      try {
        authorize(call.metadata);
        h.checkpointBarrier(call.request, cb);
      } catch (err) {
        cb(asStatus(err));
      }
    },
    watch: (call) => {
      try {
        authorize(call.metadata);
        h.watch(call);
      } catch (err) {
        // 'error' is how grpc-js ends a server stream with a status; destroy() ended it with none, and the
        // client waited for good.
        call.emit('error', asStatus(err));
      }
    },
  };
}
