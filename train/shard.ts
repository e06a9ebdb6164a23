// Deterministic data parallelism: every rank draws the same global batch from the same data cursor and
// keeps its own contiguous slice, so the slices are disjoint, cover the batch, and depend only on the
// step, the world size and the rank. The global batch (training.batch_size x grad_accum windows) stays the
// same whatever the number of workers, so the data order, the schedule and the result do too.
// Workers take their slice from here, and the coordinator checks each step report against the same
// arithmetic (coordinator/data-log.ts records it).
import type { Batch, DataCursor } from './batches.js';

/** Windows [epoch, start, start + count) of one epoch's order: a piece of one rank's slice of a step. */
export interface WindowRange {
  epoch: number;
  start: number;
  count: number;
}

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

/** Splits `count` windows from absolute position `start` into ranges that do not cross an epoch. */
export function windowRanges(start: number, count: number, windowsPerEpoch: number): WindowRange[] {
  const out: WindowRange[] = [];
  for (let pos = start, left = count; left > 0;) {
    const epoch = Math.floor(pos / windowsPerEpoch);
    const index = pos - epoch * windowsPerEpoch;
    const n = Math.min(left, windowsPerEpoch - index);
    out.push({ epoch, start: index, count: n });
    pos += n;
    left -= n;
  }
  return out;
}

/**
 * The windows rank `rank` of `worldSize` trains on at step `step` (1-based) of a job whose data cursor
 * stood at absolute position `firstPosition` after step `firstStep`: every step takes the next
 * `globalBatch` windows of the data order, whatever the ring looked like at earlier steps.
 */
export interface WindowPlan {
  firstStep: number;
  firstPosition: number;
  globalBatch: number;
  windowsPerEpoch: number;
}

export function stepWindows(o: WindowPlan, step: number, worldSize: number, rank: number): WindowRange[] {
  const { start, end } = shardAssignment(o.globalBatch, worldSize, rank);
  const stepStart = o.firstPosition + (step - 1 - o.firstStep) * o.globalBatch;
  return windowRanges(stepStart + start, end - start, o.windowsPerEpoch);
}
