import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../lm/rng.js';
import { sampleToken, type SamplingOptions } from '../lm/sample.js';

const plain: SamplingOptions = { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1 };
const logits = Float32Array.from([0, 3, 1, 2.5, -1]);

function histogram(o: SamplingOptions, draws = 4000, history: number[] = []) {
  const rng = new Rng(9);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampleToken(logits, history, o, rng)] += 1;
  return counts;
}

test('temperature 0 is greedy', () => {
  assert.equal(sampleToken(logits, [], { ...plain, temperature: 0 }, new Rng(1)), 1);
});

test('sampling follows the softmax distribution', () => {
  const counts = histogram(plain);
  const z = [...logits].reduce((s, x) => s + Math.exp(x), 0);
  counts.forEach((c, i) => assert.ok(Math.abs(c / 4000 - Math.exp(logits[i]) / z) < 0.03, `token ${i}: ${c}`));
});

test('top-k keeps only the k likeliest tokens', () => {
  const counts = histogram({ ...plain, topK: 2 });
  assert.deepEqual([counts[0], counts[2], counts[4]], [0, 0, 0]);
  assert.ok(counts[1] > 0 && counts[3] > 0);
});

test('top-p keeps the smallest set reaching the probability mass', () => {
  // p(1) ≈ 0.55, p(3) ≈ 0.33: a nucleus of 0.5 is token 1 alone, 0.8 adds token 3.
  assert.deepEqual(
    histogram({ ...plain, topP: 0.5 }).map((c) => c > 0),
    [false, true, false, false, false],
  );
  assert.deepEqual(
    histogram({ ...plain, topP: 0.8 }).map((c) => c > 0),
    [false, true, false, true, false],
  );
});

test('repetition penalty makes tokens already present less likely', () => {
  const without = histogram(plain)[1];
  const withPenalty = histogram({ ...plain, repetitionPenalty: 2 }, 4000, [1, 1])[1];
  assert.ok(withPenalty < without * 0.8, `${withPenalty} vs ${without}`);
  assert.equal(sampleToken(logits, [1], { ...plain, temperature: 0, repetitionPenalty: 2 }, new Rng(1)), 3);
});

test('the same seed samples the same tokens', () => {
  const draw = () => {
    const rng = new Rng(42);
    return Array.from({ length: 50 }, () => sampleToken(logits, [], plain, rng));
  };
  assert.deepEqual(draw(), draw());
});

test('top-k samples exactly as sorting the whole vocabulary and cutting it to k would', () => {
  // The reference: the full sort (descending score, ties by id), cut to k, softmax, a draw with the same rng.
  function reference(row: Float32Array, k: number, temperature: number, rng: Rng): number {
    const order = Array.from(row.keys())
      .sort((a, b) => row[b] - row[a] || a - b)
      .slice(0, k);
    const weights = order.map((id) => Math.exp((row[id] - row[order[0]]) / temperature));
    let u = rng.next() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < k; i++) if ((u -= weights[i]) < 0) return order[i];
    return order[k - 1];
  }
  const rng = new Rng(5);
  for (let trial = 0; trial < 50; trial++) {
    const row = Float32Array.from({ length: 300 }, () => Math.round(rng.normal() * 3) / 2); // coarse: many ties
    const k = 1 + rng.int(40);
    const temperature = [0.3, 1, 5][trial % 3];
    const [a, b] = [new Rng(trial), new Rng(trial)];
    for (let i = 0; i < 40; i++)
      assert.equal(
        sampleToken(row, [], { ...plain, temperature, topK: k }, a),
        reference(row, k, temperature, b),
        `trial ${trial}`,
      );
  }
});

test('without top-k, candidates are ordered as a full sort would order them: ties by id, -0 with 0, negative scores', () => {
  // The reference: the whole vocabulary sorted (descending score, ties by id), top-p, a draw with the same rng.
  function reference(row: Float32Array, topP: number, rng: Rng): number {
    const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
    const weights = order.map((id) => Math.exp(row[id] - row[order[0]]));
    const total = weights.reduce((a, b) => a + b, 0);
    let kept = order.length;
    let cumulative = 0;
    for (let i = 0; i < order.length && topP < 1; i++)
      if ((cumulative += weights[i] / total) >= topP) {
        kept = i + 1;
        break;
      }
    let u = rng.next() * weights.slice(0, kept).reduce((a, b) => a + b, 0);
    for (let i = 0; i < kept; i++) if ((u -= weights[i]) < 0) return order[i];
    return order[kept - 1];
  }
  const rng = new Rng(6);
  for (let trial = 0; trial < 30; trial++) {
    // Coarse values (many ties), both signs, zeros of both signs, and an infinity.
    const row = Float32Array.from({ length: 200 }, () => Math.round(rng.normal() * 3) / 2 || (rng.next() < 0.5 ? -0 : 0));
    if (trial % 3 === 0) row[rng.int(200)] = -Infinity;
    const topP = [1, 0.9, 0.3][trial % 3];
    const [a, b] = [new Rng(trial), new Rng(trial)];
    for (let i = 0; i < 40; i++)
      assert.equal(sampleToken(row, [], { ...plain, topP }, a), reference(row, topP, b), `trial ${trial}`);
  }
});
