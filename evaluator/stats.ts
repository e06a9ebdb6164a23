// Paired bootstrap (Efron & Tibshirani; as used for comparing systems in Koehn 2004): resample the items
// shared by two evaluations with replacement, many times, and read the confidence interval of the mean
// score difference from the resampled means. Pairing by item removes the variance that items share.
import { Rng } from '../lm/rng.js';

export interface PairedComparison {
  /** Items scored by both, matched by id. */
  items: number;
  baseline_mean: number;
  candidate_mean: number;
  /** candidate − baseline; scores are higher-is-better, so a positive difference favours the candidate. */
  difference: number;
  ci_low: number;
  ci_high: number;
  confidence: number;
  samples: number;
  /** Share of resamples in which the candidate was not better (a one-sided bootstrap p-value). */
  p_not_better: number;
  verdict: 'candidate better' | 'baseline better' | 'no significant difference';
}

export interface BootstrapOptions {
  samples: number;
  confidence: number;
  seed: number;
}

export const DEFAULT_BOOTSTRAP: BootstrapOptions = { samples: 1000, confidence: 0.95, seed: 0 };

export function pairedBootstrap(
  baseline: { ids: string[]; scores: number[] },
  candidate: { ids: string[]; scores: number[] },
  options: BootstrapOptions = DEFAULT_BOOTSTRAP,
): PairedComparison {
  const byId = new Map(baseline.ids.map((id, i) => [id, baseline.scores[i]]));
  const b: number[] = [];
  const c: number[] = [];
  candidate.ids.forEach((id, i) => {
    const s = byId.get(id);
    if (s !== undefined) {
      b.push(s);
      c.push(candidate.scores[i]);
    }
  });
  const n = b.length;
  if (n === 0) throw new Error('the two evaluations share no items to compare');
  const diffs = Float64Array.from(c, (x, i) => x - b[i]);
  const mean = (xs: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < xs.length; i++) s += xs[i];
    return s / xs.length;
  };
  const rng = new Rng(options.seed);
  const means = new Float64Array(options.samples);
  let notBetter = 0;
  for (let r = 0; r < options.samples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += diffs[rng.int(n)];
    means[r] = s / n;
    if (means[r] <= 0) notBetter++;
  }
  means.sort();
  const tail = (1 - options.confidence) / 2;
  const at = (q: number) => means[Math.min(options.samples - 1, Math.max(0, Math.floor(q * options.samples)))];
  const ciLow = at(tail);
  const ciHigh = at(1 - tail);
  return {
    items: n,
    baseline_mean: mean(b),
    candidate_mean: mean(c),
    difference: mean(diffs),
    ci_low: ciLow,
    ci_high: ciHigh,
    confidence: options.confidence,
    samples: options.samples,
    p_not_better: notBetter / options.samples,
    verdict: ciLow > 0 ? 'candidate better' : ciHigh < 0 ? 'baseline better' : 'no significant difference',
  };
}
