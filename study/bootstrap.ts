// Percentile-bootstrap confidence intervals for the study's figures (Efron & Tibshirani 1993).
// Every figure is a ratio of sums over evaluation units: bits per byte is Σ bits / Σ bytes over held-out
// windows, an accuracy is Σ score / Σ 1 over benchmark items. A cell group (one dataset, model and several
// seeds) reports the mean of its seeds' figures; a replicate resamples the units of each seed
// independently (each seed's evaluation is its own sample of the text) and averages the seeds again.
// The seeds' spread (min, max) is reported beside the interval: with two seeds it cannot be resampled.
//
// Differences between groups resample both groups in each replicate. When every unit set of both carries
// ids and they share some (the same benchmark items, or the same windows of the same text under the same
// tokenizer), one resample of the shared ids serves all of them (a paired bootstrap as in
// evaluator/stats.ts, extended to ratios and seeds), so the variance the units share cancels; otherwise
// each is resampled on its own (unpaired).
import { Rng } from '../lm/rng.js';
import type { HeldOut } from './results.js';

/** One seed's evaluation: figure = Σ num / Σ den over its units. */
export interface Units {
  num: Float64Array;
  den: Float64Array;
  /** Unit ids; units of different evaluations with the same id are the same item or window. */
  ids?: string[];
}

export interface Interval {
  value: number;
  ci_low: number;
  ci_high: number;
}

export interface GroupEstimate extends Interval {
  /** Each seed's own figure, in the order given. */
  seeds: number[];
  seed_min: number;
  seed_max: number;
}

export interface Difference extends Interval {
  paired: boolean;
  /** Units behind each figure: the shared ids when paired, else the smallest unit count of any seed. */
  units: number;
  /** (a − b) / b in %. */
  relative: Interval;
}

export interface BootstrapOptions {
  samples: number;
  confidence: number;
  seed: number;
}

export const DEFAULT_OPTIONS: BootstrapOptions = { samples: 2000, confidence: 0.95, seed: 0 };

/** Bits per byte over held-out windows; ids name each window of `text` so that equal windows pair. */
export function windowUnits(heldOut: HeldOut, text?: string): Units {
  const w = heldOut.windows;
  return {
    num: Float64Array.from(w, ([nats]) => nats / Math.LN2),
    den: Float64Array.from(w, ([, bytes]) => bytes),
    // The byte count guards the pairing: windows cut by another tokenizer differ in it.
    ids: text === undefined ? undefined : w.map(([, bytes], i) => `${text}#${i}:${bytes}`),
  };
}

/** Accuracy over benchmark items. */
export function itemUnits(ids: string[], scores: number[]): Units {
  return { num: Float64Array.from(scores), den: new Float64Array(scores.length).fill(1), ids };
}

export function estimate(seeds: Units[], options: BootstrapOptions = DEFAULT_OPTIONS): GroupEstimate {
  const figures = seeds.map((u) => ratio(u, identity(u.num.length)));
  const rng = new Rng(options.seed);
  const replicates = Float64Array.from({ length: options.samples }, () => groupFigure(seeds, (u) => draw(rng, u.num.length)));
  return {
    value: mean(figures),
    ...percentiles(replicates, options.confidence),
    seeds: figures,
    seed_min: Math.min(...figures),
    seed_max: Math.max(...figures),
  };
}

/** a − b, with its interval, and the relative difference (a − b) / b. */
export function difference(a: Units[], b: Units[], options: BootstrapOptions = DEFAULT_OPTIONS): Difference {
  const sampler = resampler([...a, ...b], new Rng(options.seed));
  const absolute = new Float64Array(options.samples);
  const relative = new Float64Array(options.samples);
  for (let r = 0; r < options.samples; r++) {
    sampler.next();
    const fa = groupFigure(a, sampler.select);
    const fb = groupFigure(b, sampler.select);
    absolute[r] = fa - fb;
    relative[r] = (100 * (fa - fb)) / fb;
  }
  const fa = groupFigure(a, sampler.all);
  const fb = groupFigure(b, sampler.all);
  return {
    value: fa - fb,
    ...percentiles(absolute, options.confidence),
    paired: sampler.paired,
    units: sampler.units,
    relative: { value: (100 * (fa - fb)) / fb, ...percentiles(relative, options.confidence) },
  };
}

interface Resampler {
  paired: boolean;
  units: number;
  /** Starts a replicate. */
  next(): void;
  /** The unit positions of `u` in the current replicate. */
  select(u: Units): Int32Array;
  /** The unit positions of `u` that the point estimate uses. */
  all(u: Units): Int32Array;
}

function resampler(sets: Units[], rng: Rng): Resampler {
  const shared = sharedIds(sets);
  if (shared === undefined) {
    return {
      paired: false,
      units: Math.min(...sets.map((u) => u.num.length)),
      next: () => {},
      select: (u) => draw(rng, u.num.length),
      all: (u) => identity(u.num.length),
    };
  }
  const positions = new Map(sets.map((u) => [u, positionsOf(u, shared)]));
  let picks: Int32Array = new Int32Array(0);
  return {
    paired: true,
    units: shared.length,
    // One draw of the shared ids per replicate serves every unit set.
    next: () => (picks = draw(rng, shared.length)),
    select: (u) => {
      const at = positions.get(u)!;
      return picks.map((i) => at[i]);
    },
    all: (u) => positions.get(u)!,
  };
}

function groupFigure(seeds: Units[], select: (u: Units) => Int32Array): number {
  return mean(seeds.map((u) => ratio(u, select(u))));
}

function ratio(u: Units, at: Int32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < at.length; i++) {
    num += u.num[at[i]];
    den += u.den[at[i]];
  }
  return num / den;
}

/** n positions drawn uniformly with replacement from [0, n). */
function draw(rng: Rng, n: number): Int32Array {
  const at = new Int32Array(n);
  for (let i = 0; i < n; i++) at[i] = rng.int(n);
  return at;
}

function identity(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

/** The ids every unit set holds, in the first set's order; undefined when one has none or none are shared. */
function sharedIds(sets: Units[]): string[] | undefined {
  if (sets.some((u) => u.ids === undefined)) return undefined;
  const others = sets.slice(1).map((u) => new Set(u.ids));
  const shared = sets[0].ids!.filter((id) => others.every((s) => s.has(id)));
  return shared.length > 0 ? shared : undefined;
}

function positionsOf(u: Units, ids: string[]): Int32Array {
  const at = new Map(u.ids!.map((id, i) => [id, i]));
  return Int32Array.from(ids, (id) => at.get(id)!);
}

function mean(xs: number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** The interval between the (1 − confidence)/2 and (1 + confidence)/2 quantiles, read as evaluator/stats.ts reads them. */
function percentiles(replicates: Float64Array, confidence: number): { ci_low: number; ci_high: number } {
  const sorted = Float64Array.from(replicates).sort();
  const n = sorted.length;
  const at = (q: number) => sorted[Math.min(n - 1, Math.max(0, Math.floor(q * n)))];
  const tail = (1 - confidence) / 2;
  return { ci_low: at(tail), ci_high: at(1 - tail) };
}
