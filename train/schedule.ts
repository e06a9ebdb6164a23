// The learning-rate schedule: linear warmup, then cosine decay to a floor. It is a function of tokens
// seen, not of steps, so it stays the same when the number of workers (and so the step size) changes.

export interface Schedule {
  lr: number; // peak learning rate, reached at the end of warmup
  minLr: number; // floor reached at the end of the horizon
  warmupTokens: number;
  totalTokens: number; // the horizon; past it the rate stays at minLr
}

export function learningRate(tokensSeen: number, s: Schedule): number {
  if (tokensSeen < s.warmupTokens) return (s.lr * (tokensSeen + 1)) / (s.warmupTokens + 1);
  if (tokensSeen >= s.totalTokens) return s.minLr;
  const progress = (tokensSeen - s.warmupTokens) / Math.max(1, s.totalTokens - s.warmupTokens);
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}
