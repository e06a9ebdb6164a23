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
