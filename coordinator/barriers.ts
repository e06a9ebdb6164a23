// Checkpoint barriers: at a checkpoint step every rank arrives with the sha256 of its weights and rank 0
// with the checkpoint it wrote (or why it could not write one); the barrier completes (and every rank's
// call is answered) once all ranks of the ring are there and rank 0 has spoken. Until then the previous
// checkpoint stays the restore point.
import * as grpc from '@grpc/grpc-js';
import type { CheckpointBarrierRequest, CheckpointBarrierResponse } from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { statusError } from '../collective/auth.js';

export interface Barrier {
  step: number;
  ranks: Map<number, string>; // rank -> state sha256
  checkpoint: string; // '' when rank 0 could not write it
  writeError: string; // rank 0's reason, when it could not
  metrics: Record<string, number>;
  final: boolean;
  replies: Array<grpc.sendUnaryData<CheckpointBarrierResponse>>;
  started: number; // first arrival: the other ranks wait there while rank 0 writes
}

export class CheckpointBarriers {
  private readonly open = new Map<number, Barrier>();

  /** Records `req`'s arrival; returns the barrier once it is complete for a ring of `worldSize` ranks. */
  arrive(req: CheckpointBarrierRequest, reply: grpc.sendUnaryData<CheckpointBarrierResponse>, worldSize: number): Barrier | null {
    const b: Barrier = this.open.get(req.step) ?? {
      step: req.step,
      ranks: new Map(),
      checkpoint: '',
      writeError: '',
      metrics: {},
      final: false,
      replies: [],
      started: Date.now(),
    };
    if (b.ranks.has(req.rank))
      throw statusError(grpc.status.ALREADY_EXISTS, `duplicate rank ${req.rank} at the barrier of step ${req.step}`);
    this.open.set(req.step, b);
    b.ranks.set(req.rank, req.stateSha256);
    b.replies.push(reply);
    if (req.rank === 0) {
      b.checkpoint = req.writeError ? '' : req.checkpoint;
      b.writeError = req.writeError.slice(0, 1000);
      b.metrics = req.metrics;
      b.final = req.final;
    }
    if (b.ranks.size < worldSize || !(b.checkpoint || b.writeError)) return null;
    this.open.delete(req.step);
    return b;
  }

  /** Fails every waiting call with ABORTED (the ring is being re-formed) and forgets the barriers. */
  abortAll(reason: string): void {
    for (const b of this.open.values()) for (const r of b.replies) r(statusError(grpc.status.ABORTED, `step aborted: ${reason}`));
    this.open.clear();
  }

  clear(): void {
    this.open.clear();
  }
}
