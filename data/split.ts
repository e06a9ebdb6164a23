// Deterministic train/validation split by document. Each document id gets a score in [0, 1) from a
// seeded sha256, and documents scoring below the validation fraction go to validation; the split
// thus depends only on (seed, id, fraction), never on input order. With two or more documents each
// split gets at least one: the lowest-scoring document moves to validation, or the highest to train.
import { createHash } from 'node:crypto';

export type SplitName = 'train' | 'val';

export function splitScore(seed: number, id: string): number {
  const digest = createHash('sha256').update(`ringlet-split\0${seed}\0${id}`).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/** The ids that go to validation; every other id goes to train. */
export function validationIds(ids: readonly string[], seed: number, valFraction: number): Set<string> {
  if (!(valFraction > 0 && valFraction < 1)) {
    throw new Error(`validation fraction must be between 0 and 1 (exclusive), got ${valFraction}`);
  }
  const scored = ids.map((id) => ({ id, score: splitScore(seed, id) }));
  const val = new Set(scored.filter((d) => d.score < valFraction).map((d) => d.id));
  if (ids.length >= 2) {
    const byScore = [...scored].sort((a, b) => a.score - b.score || (a.id < b.id ? -1 : 1));
    if (val.size === 0) val.add(byScore[0].id);
    if (val.size === ids.length) val.delete(byScore[byScore.length - 1].id);
  }
  return val;
}
