// The benchmarks' one summary of noisy repeated timings.

/** The middle value of `xs` (for an even count, the upper of the two middle ones); `xs` is left unsorted. */
export function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}
