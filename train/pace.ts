// Tokens/s once a run has warmed up: from the end of its 5th step to the end of its last, leaving out the
// first steps (slower while kernels compile and the heap grows) and what follows the last step (the final
// evaluation and checkpoint). A short benchmark's whole-run figure is mostly those fixed costs; this one is
// what a long run gets. The single-process loop and the coordinator each keep one.
export const STEADY_FROM_STEP = 5;

export class SteadyPace {
  private from: { step: number; at: number } | null = null;
  private last: { step: number; at: number } | null = null;

  constructor(
    private readonly startStep: number,
    private readonly tokensPerStep: number,
  ) {}

  /** `step` has ended (steps count from the run's start step, not from 0). */
  stepEnded(step: number, at = performance.now()): void {
    // A step at or below the last one: the run rolled back to a checkpoint, and its pace mixes two rings.
    if (this.last && step <= this.last.step) this.from = null;
    else if (step - this.startStep === STEADY_FROM_STEP) this.from = { step, at };
    this.last = { step, at };
  }

  /** Tokens/s from the end of the 5th step to the end of the last; null before the 6th or after a rollback. */
  tokensPerS(): number | null {
    if (!this.from || !this.last || this.last.step <= this.from.step) return null;
    return ((this.last.step - this.from.step) * this.tokensPerStep) / ((this.last.at - this.from.at) / 1000);
  }
}
