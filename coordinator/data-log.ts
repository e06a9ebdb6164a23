// Which windows of the global data order each committed step consumed. Positions are absolute:
// epoch * windowsPerEpoch + index (see train/batches.ts). A rollback to a checkpoint forgets the steps
// after it (they are recomputed). The audit then proves that the job's surviving lineage consumed every
// window from its first cursor on exactly once: samples_skipped and samples_repeated must both be 0.
import fs from 'node:fs';
import type { WindowRange } from '../train/shard.js';

export class DataLog {
  private readonly steps = new Map<number, WindowRange[]>();
  private unwritten = ''; // records a full or failing disk refused, written with the next that fits

  constructor(
    private readonly file: string | null,
    private readonly windowsPerEpoch: number,
    private readonly onWriteError: (err: Error) => void = () => {},
  ) {}

  commit(step: number, rank: number, ranges: WindowRange[]): void {
    const list = this.steps.get(step) ?? [];
    list.push(...ranges);
    this.steps.set(step, list);
    this.append({ type: 'step', step, rank, windows: ranges });
  }

  rollback(toStep: number): void {
    for (const step of [...this.steps.keys()]) if (step > toStep) this.steps.delete(step);
    this.append({ type: 'rollback', to_step: toStep });
  }

  /** Windows from `firstPosition` on that the lineage skipped (before its furthest window) or consumed twice. */
  audit(firstPosition: number, windows: number): { skipped: number; repeated: number } {
    const seen = new Uint8Array(windows);
    let repeated = 0;
    let outside = 0;
    for (const ranges of this.steps.values())
      for (const r of ranges)
        for (let i = 0; i < r.count; i++) {
          const at = r.epoch * this.windowsPerEpoch + r.start + i - firstPosition;
          if (at < 0 || at >= windows) outside += 1;
          else if (seen[at]++) repeated += 1;
        }
    let skipped = 0;
    for (const s of seen) if (s === 0) skipped += 1;
    return { skipped, repeated: repeated + outside };
  }

  /**
   * The file is the audit's record for people; the audit itself reads memory. So a write that fails (a full
   * disk) must not stop the job: the lines wait, in order, for the next write that succeeds.
   */
  private append(record: object): void {
    if (!this.file) return;
    const pending = this.unwritten + `${JSON.stringify(record)}\n`;
    try {
      fs.appendFileSync(this.file, pending);
      this.unwritten = '';
    } catch (err) {
      if (!this.unwritten) this.onWriteError(err as Error);
      this.unwritten = pending;
    }
  }
}
