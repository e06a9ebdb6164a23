// Deterministic data parallelism: every rank draws the same global batch from the same data cursor and
// keeps its own contiguous slice, so the slices are disjoint, cover the batch, and depend only on the
// step, the world size and the rank. The global batch (training.batch_size x grad_accum windows) stays the
// same whatever the number of workers, so the data order, the schedule and the result do too.
import type { Batch, DataCursor } from '../train/batches.js';

/** Rank `rank`'s windows [start, end) of a global batch of `globalBatch` windows. */
export function shardAssignment(globalBatch: number, worldSize: number, rank: number): { start: number; end: number } {
  return { start: Math.floor((rank * globalBatch) / worldSize), end: Math.floor(((rank + 1) * globalBatch) / worldSize) };
}

export function sliceBatch(b: Batch, start: number, end: number): Batch {
  const range = [start * b.context, end * b.context] as const;
  return { inputs: b.inputs.subarray(...range), targets: b.targets.subarray(...range), batch: end - start, context: b.context };
}

/** The cursor's absolute window position: epoch x windows per epoch + index. */
export function cursorPosition(c: DataCursor, windowsPerEpoch: number): number {
  return c.epoch * windowsPerEpoch + c.index;
}
