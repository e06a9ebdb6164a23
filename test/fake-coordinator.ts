// A coordinator that says what a test tells it to: a real grpc-js server for CoordinatorService whose Join
// reply and assignment the test writes, for trying what a worker accepts. It records what workers send,
// stops a job after its first step, and ends it once the final checkpoint's barrier is met.
import * as grpc from '@grpc/grpc-js';
import {
  CoordinatorServiceService,
  ReportStepResponse,
  WatchResponse,
  type Assignment,
  type CheckpointBarrierRequest,
  type HeartbeatRequest,
  type JoinRequest,
  type JoinResponse,
} from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { DistributedConfigSchema } from '../coordinator/config.js';
import { TrainConfigSchema } from '../train/config.js';
import { TINY_MODEL } from './tiny-dataset.js';

export const TOKEN = 'fake-coordinator-token';

/** A Join reply as the coordinator makes it: the job's configs as JSON, the token left out. */
export function joinReply(train: { data: string; out: string } & Record<string, unknown>): JoinResponse {
  const config = TrainConfigSchema.parse({
    model: TINY_MODEL,
    training: { batch_size: 2, max_steps: 1, eval_windows: 2, eval_every: 100 },
    ...train,
  });
  const dist = DistributedConfigSchema.parse({ token: TOKEN, heartbeat_interval_ms: 200 });
  return {
    jobId: dist.job_id,
    workerId: 'worker-1',
    trainConfigJson: JSON.stringify(config),
    distributedConfigJson: JSON.stringify({ ...dist, token: undefined }),
    heartbeatIntervalMs: dist.heartbeat_interval_ms,
  };
}

export interface FakeCoordinator {
  address: string;
  joined: JoinRequest[];
  heartbeats: HeartbeatRequest[];
  barriers: CheckpointBarrierRequest[];
  close(): void;
}

/**
 * Serves on `host` (default 127.0.0.1): Join answers `reply()` (an Error: that status); Watch pushes
 * `assign(join)` as a ring epoch 1 assignment of rank 0 in a ring of one, with what it overrides.
 */
export async function fakeCoordinator(o: {
  reply: () => JoinResponse | grpc.ServiceError;
  assign?: (join: JoinRequest) => Partial<Assignment>;
  host?: string;
}): Promise<FakeCoordinator> {
  const server = new grpc.Server();
  const fake: FakeCoordinator = { address: '', joined: [], heartbeats: [], barriers: [], close: () => server.forceShutdown() };
  let watch: grpc.ServerWritableStream<unknown, WatchResponse> | null = null;
  server.addService(CoordinatorServiceService, {
    join: (call: grpc.ServerUnaryCall<JoinRequest, JoinResponse>, cb: grpc.sendUnaryData<JoinResponse>) => {
      fake.joined.push(call.request);
      const r = o.reply();
      if (r instanceof Error) cb(r);
      else cb(null, r);
    },
    watch: (call: grpc.ServerWritableStream<unknown, WatchResponse>) => {
      watch = call;
      const join = fake.joined.at(-1)!;
      if (o.assign)
        call.write(
          WatchResponse.fromPartial({
            assignment: { ringEpoch: 1, rank: 0, worldSize: 1, ring: [join.collectiveAddress], ...o.assign(join) },
          }),
        );
    },
    heartbeat: (call: grpc.ServerUnaryCall<HeartbeatRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      fake.heartbeats.push(call.request);
      cb(null, { ringEpoch: call.request.ringEpoch });
    },
    leave: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
    reportStep: (call: grpc.ServerUnaryCall<{ step: number }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, ReportStepResponse.fromPartial({ stopAfterStep: call.request.step })),
    checkpointBarrier: (call: grpc.ServerUnaryCall<CheckpointBarrierRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      fake.barriers.push(call.request);
      cb(null, { checkpoint: call.request.checkpoint });
      if (call.request.final) watch?.write(WatchResponse.fromPartial({ finish: { reason: 'job finished' } }));
    },
  });
  const host = o.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  fake.address = `${host}:${port}`;
  return fake;
}
