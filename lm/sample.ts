// Picks the next token from a row of logits: repetition penalty, temperature, top-k, then top-p (nucleus).
// Plain JavaScript over one vocabulary-sized row, seeded, so a given seed always samples the same text.
import type { Rng } from './rng.js';

export interface SamplingOptions {
  temperature: number; // 0 means greedy
  topK: number; // 0 means no limit
  topP: number; // 1 means no limit
  repetitionPenalty: number; // 1 means none; >1 discourages tokens already in the context (CTRL-style)
}

export function sampleToken(logits: Float32Array, history: Iterable<number>, o: SamplingOptions, rng: Rng): number {
  const scores = Float32Array.from(logits);
  if (o.repetitionPenalty !== 1)
    for (const id of new Set(history))
      scores[id] = scores[id] > 0 ? scores[id] / o.repetitionPenalty : scores[id] * o.repetitionPenalty;
  if (o.temperature === 0) return argmax(scores);

  // Candidates in descending order of score (ties: lower id first), cut by top-k, turned into
  // probabilities, cut by top-p. With top-k, only the k best are found and sorted (not the vocabulary).
  const before = (a: number, b: number) => scores[b] - scores[a] || a - b;
  const order = o.topK > 0 && o.topK < scores.length ? topK(scores, o.topK, before) : Array.from(scores.keys()).sort(before);
  const max = scores[order[0]];
  const weights = order.map((id) => Math.exp((scores[id] - max) / o.temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let kept = order.length;
  if (o.topP < 1) {
    let cumulative = 0;
    for (let i = 0; i < order.length; i++) {
      cumulative += weights[i] / total;
      if (cumulative >= o.topP) {
        kept = i + 1;
        break;
      }
    }
  }
  const keptTotal = weights.slice(0, kept).reduce((a, b) => a + b, 0);
  let u = rng.next() * keptTotal;
  for (let i = 0; i < kept; i++) {
    u -= weights[i];
    if (u < 0) return order[i];
  }
  return order[kept - 1];
}

/** The k ids that come first under `before`, in that order: one pass keeping a sorted list of the best k. */
function topK(scores: Float32Array, k: number, before: (a: number, b: number) => number): number[] {
  const best: number[] = [];
  for (let id = 0; id < scores.length; id++) {
    if (best.length === k && before(id, best[k - 1]) >= 0) continue; // not better than the worst kept
    let lo = 0;
    let hi = best.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(id, best[mid]) < 0) hi = mid;
      else lo = mid + 1;
    }
    best.splice(lo, 0, id);
    if (best.length > k) best.pop();
  }
  return best;
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}
