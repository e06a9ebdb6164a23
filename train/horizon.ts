// The schedule's horizon when only a time limit is given: the pace of steps 5-15 after the start (the
// first steps are slower while the backend warms up) says how many steps fit in the time left. One
// process (train/run.ts) and the coordinator of a ring (coordinator/coordinator.ts) decide it the same way.
const PACE_FROM = 5;
const PACE_TO = 15;

export class TimeLimitHorizon {
  private paceFrom: { step: number; time: number } | null = null;
  private decided = false;

  /**
   * `minAhead`: the fewest steps the horizon may lie past the step that fixes it (a ring needs 2: its
   * ranks may already be one step past the highest report when the horizon reaches them).
   */
  constructor(
    private readonly startStep: number,
    private readonly timeLimitS: number,
    private readonly minAhead: number,
  ) {}

  /** Called as each step ends; returns the horizon (in steps) once, at the end of the pace window. */
  stepEnded(step: number, startedMs: number, now = Date.now()): number | null {
    if (this.decided) return null;
    const done = step - this.startStep;
    if (done >= PACE_FROM && !this.paceFrom) this.paceFrom = { step, time: now };
    if (!this.paceFrom || done < PACE_TO) return null;
    const perStepS = (now - this.paceFrom.time) / 1000 / Math.max(1, step - this.paceFrom.step);
    const remainingS = this.timeLimitS - (now - startedMs) / 1000;
    this.decided = true;
    return step + Math.max(this.minAhead, Math.floor(remainingS / perStepS));
  }
}
