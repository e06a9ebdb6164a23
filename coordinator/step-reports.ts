// The step reports of one ring epoch: each rank reports its steps in order, each with exactly the windows
// its slice of that step holds (train/shard.ts), and a step is complete once every rank has reported it.
// Stragglers are read off a complete step's compute times.
import * as grpc from '@grpc/grpc-js';
import { isDeepStrictEqual } from 'node:util';
import type { ReportStepRequest } from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { statusError } from '../collective/auth.js';
import { stepWindows, type WindowPlan } from '../train/shard.js';

export interface CompleteStep {
  step: number;
  reports: ReportStepRequest[]; // one per rank
  firstArrival: number; // when the first rank's report came (ms since the epoch)
}

export class StepReports {
  private readonly pending = new Map<number, Map<number, ReportStepRequest>>(); // step -> rank -> report
  private readonly firstArrival = new Map<number, number>();
  private readonly lastStep = new Map<number, number>(); // rank -> the last step it reported
  private worldSize = 0;
  private restoreStep = 0;

  constructor(private readonly plan: WindowPlan) {}

  /** A new ring of `worldSize` ranks, all starting after `restoreStep`. */
  reset(worldSize: number, restoreStep: number): void {
    this.pending.clear();
    this.firstArrival.clear();
    this.lastStep.clear();
    this.worldSize = worldSize;
    this.restoreStep = restoreStep;
  }

  /**
   * What is wrong with `req` as its rank's next report, or null: the wrong step, or windows not its slice.
   * A second report of the same step is refused outright (ALREADY_EXISTS).
   */
  problem(req: ReportStepRequest): string | null {
    if (this.pending.get(req.step)?.has(req.rank))
      throw statusError(grpc.status.ALREADY_EXISTS, `duplicate rank ${req.rank} for step ${req.step}`);
    const expected = (this.lastStep.get(req.rank) ?? this.restoreStep) + 1;
    if (req.step !== expected) return `reported step ${req.step}; its next step is ${expected}`;
    const windows = this.windows(req.step, req.rank);
    const given = req.windows.map((r) => ({ epoch: r.epoch, start: r.start, count: r.count }));
    if (isDeepStrictEqual(given, windows)) return null;
    return `reported windows ${JSON.stringify(given).slice(0, 200)} for step ${req.step}; its slice is ${JSON.stringify(windows)}`;
  }

  /** The last step `rank` reported in this ring (the restore step before its first report). */
  lastReported(rank: number): number {
    return this.lastStep.get(rank) ?? this.restoreStep;
  }

  /** The windows rank `rank` of this ring trains on at `step`: what the data log records. */
  windows(step: number, rank: number) {
    return stepWindows(this.plan, step, this.worldSize, rank);
  }

  /** Takes a report that passed problem(); returns the step once every rank has reported it. */
  add(req: ReportStepRequest): CompleteStep | null {
    const ranks = this.pending.get(req.step) ?? new Map<number, ReportStepRequest>();
    ranks.set(req.rank, req);
    this.pending.set(req.step, ranks);
    this.lastStep.set(req.rank, req.step);
    if (!this.firstArrival.has(req.step)) this.firstArrival.set(req.step, Date.now());
    if (ranks.size < this.worldSize) return null;
    const firstArrival = this.firstArrival.get(req.step)!;
    this.pending.delete(req.step);
    this.firstArrival.delete(req.step);
    return { step: req.step, reports: [...ranks.values()], firstArrival };
  }
}

/**
 * Ranks whose compute time exceeds the median by `factor` and by 50 ms: the lower median, so that with 2
 * ranks the faster one is the yardstick.
 */
export function stragglers(
  reports: ReportStepRequest[],
  factor: number,
): Array<{ rank: number; computeMs: number; medianMs: number }> {
  if (reports.length < 2) return [];
  const sorted = reports.map((r) => r.computeMs).sort((a, b) => a - b);
  const medianMs = sorted[Math.floor((sorted.length - 1) / 2)];
  return reports
    .filter((r) => r.computeMs > medianMs * factor && r.computeMs - medianMs > 50)
    .map((r) => ({ rank: r.rank, computeMs: r.computeMs, medianMs }));
}
