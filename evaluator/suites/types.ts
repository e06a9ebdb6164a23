// What every suite returns: headline metrics, per-group figures, and one score per item (aligned by item
// id across checkpoints, which is what the paired bootstrap in evaluator/stats.ts resamples).
import type { RoutingCounts } from '../../lm/moe.js';
import type { ScoringModel } from '../model.js';

export interface GroupResult {
  items: number;
  accuracy: number;
}

export interface SuiteResult {
  suite: string;
  kind: 'minimal_pair' | 'multiple_choice' | 'validation' | 'samples' | 'routing';
  /** Headline figures: accuracy, or val_loss / val_bpb / perplexity, or distinct_n / repetition_rate. */
  metrics: Record<string, number>;
  items: number;
  seconds: number;
  items_per_s: number;
  /** Per-group accuracy (BLiMP: per paradigm, the UID; DaLAJ: per error label). */
  groups?: Record<string, GroupResult>;
  /** Stable item ids and their scores, higher is better (1/0 for a right/wrong pair, −nats per token for a window). */
  item_ids: string[];
  item_scores: number[];
  /** Validation windows: each item's nats and the UTF-8 bytes its targets stand for, so bits per byte (a ratio of sums) can be bootstrapped over items. */
  item_nats?: number[];
  item_bytes?: number[];
  /** Items the data held that could not be scored, and why. */
  skipped?: { items: number; reason: string };
  /** The routing suite's assignments per expert per layer, and those over the training capacity. */
  routing?: RoutingCounts;
  /** The generated texts of the samples suite. */
  samples?: Array<{ prompt: string; text: string }>;
}

export interface SuiteContext {
  model: ScoringModel;
  batchSize: number;
  /** Items per group (per paradigm for BLiMP) at most; all when undefined. */
  limit?: number;
}

/** Fills in the timing fields from a start time taken with performance.now(). */
export function timed(started: number, result: Omit<SuiteResult, 'seconds' | 'items_per_s'>): SuiteResult {
  const seconds = (performance.now() - started) / 1000;
  return { ...result, seconds, items_per_s: seconds > 0 ? result.items / seconds : 0 };
}

/** Accuracy per group from item groups and 0/1 scores, groups sorted by name. */
export function groupAccuracies(groups: string[], scores: number[]): Record<string, GroupResult> {
  const sums = new Map<string, { items: number; correct: number }>();
  groups.forEach((g, i) => {
    const s = sums.get(g) ?? { items: 0, correct: 0 };
    s.items++;
    s.correct += scores[i];
    sums.set(g, s);
  });
  return Object.fromEntries(
    [...sums.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([g, s]) => [g, { items: s.items, accuracy: s.correct / s.items }]),
  );
}

export function mean(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}
