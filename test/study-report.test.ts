import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { readTeiParagraphs } from '../data/tei.js';
import { pairedBootstrap } from '../evaluator/stats.js';
import { Rng } from '../lm/rng.js';
import { difference, estimate, itemUnits, windowUnits, type Units } from '../study/bootstrap.js';
import { readability, words } from '../study/readability.js';

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

test('words are letter runs, Unicode-aware, with inner apostrophes kept', () => {
  assert.deepEqual(words("Hvad sade hon? Don't—1848, o'er Åsa's hus-båt."), [
    'Hvad',
    'sade',
    'hon',
    "Don't",
    "o'er",
    "Åsa's",
    'hus',
    'båt',
  ]);
  assert.deepEqual(words(' 12 -- ... '), []);
});

test('readability figures match hand counts', async () => {
  // 10 words; 4-grams: 7, of which "the cat sat on" (3rd occurrence position 5?) see below.
  const r = await readability('The cat sat on the mat. The cat sat on a qxzvv.', 'eng');
  // words: the cat sat on the mat the cat sat on a qxzvv (12)
  assert.equal(r.words, 12);
  close(r.dictionary_share, 11 / 12);
  // 9 four-grams; "the cat sat on" at 0 and 6, "cat sat on a" new: 1 repeated.
  close(r.repetition_rate, 1 / 9);
  // unigrams: the, cat, sat, on, mat, a, qxzvv = 7 distinct of 12.
  close(r.distinct_1, 7 / 12);
  // bigrams (11): the cat, cat sat, sat on, on the, the mat, mat the, (the cat), (cat sat), (sat on), on a, a qxzvv = 8.
  close(r.distinct_2, 8 / 11);
  assert.deepEqual(await readability('', 'swe'), {
    words: 0,
    dictionary_share: 0,
    repetition_rate: 0,
    distinct_1: 0,
    distinct_2: 0,
  });
});

test('a sentence-initial capital is no spelling error, and Swedish compounds pass but nonsense does not', async () => {
  close((await readability('Hello there', 'eng')).dictionary_share, 1);
  close((await readability('Sommarnatten kärleksbrev husbåt', 'swe')).dictionary_share, 1);
  // nspell 2.1.5 accepts any string with dictionary-sv unless study/nspell-compounds.ts fixes its rules.
  close((await readability('xyzzq qwrtp kjhgfd', 'swe')).dictionary_share, 0);
});

async function eltecExcerpts(language: 'eng' | 'swe', files: number): Promise<string[]> {
  const dir = `/work/shared/data/eltec/${language}`;
  const names = (await readdir(dir))
    .filter((f) => f.endsWith('.xml'))
    .sort()
    .slice(0, files);
  return Promise.all(names.map(async (f) => (await readTeiParagraphs(`${dir}/${f}`)).slice(50, 120).join('\n').slice(0, 6000)));
}

test('real novels score a high dictionary share in their own language and a low one in the other', async () => {
  // Measured on these excerpts (~1000 words each): English 0.97-0.99 under English, 0.22-0.26 under
  // Swedish; Swedish 0.87-0.99 under Swedish (older spellings such as "hvad" fail), 0.22-0.28 under English.
  for (const [language, other] of [
    ['eng', 'swe'],
    ['swe', 'eng'],
  ] as const) {
    for (const text of await eltecExcerpts(language, 4)) {
      const own = await readability(text, language);
      const foreign = await readability(text, other);
      assert.ok(own.words > 500);
      assert.ok(own.dictionary_share > (language === 'eng' ? 0.95 : 0.85), `${language} own ${own.dictionary_share}`);
      assert.ok(foreign.dictionary_share < 0.35, `${language} under ${other}: ${foreign.dictionary_share}`);
      assert.ok(own.repetition_rate < 0.05 && own.distinct_2 > 0.8);
    }
  }
});

const normalUnits = (rng: Rng, n: number, mu: number, sd: number): Units => ({
  num: Float64Array.from({ length: n }, () => mu + sd * rng.normal()),
  den: new Float64Array(n).fill(1),
});

test('constant data gives a zero-width interval', () => {
  const flat = windowUnits({ dataset: 'd', retokenized: false, bpb: 1, windows: Array(20).fill([Math.LN2 * 300, 300]) });
  const e = estimate([flat, flat], { samples: 200, confidence: 0.95, seed: 1 });
  close(e.value, 1);
  close(e.ci_low, 1);
  close(e.ci_high, 1);
});

test('bits per byte is a ratio of sums over resampled windows, and seeds are averaged', () => {
  const a = windowUnits({
    dataset: 'd',
    retokenized: false,
    bpb: 1,
    windows: [
      [Math.LN2 * 10, 10],
      [Math.LN2 * 30, 10],
    ],
  });
  const b = windowUnits({
    dataset: 'd',
    retokenized: false,
    bpb: 1,
    windows: [
      [Math.LN2 * 10, 20],
      [Math.LN2 * 10, 20],
    ],
  });
  const e = estimate([a, b]);
  close(e.value, (40 / 20 + 20 / 40) / 2);
  assert.deepEqual([e.seed_min, e.seed_max], [0.5, 2]);
  assert.ok(e.ci_low <= e.value && e.value <= e.ci_high);
});

test('a large synthetic difference excludes 0 and a null one does not', () => {
  const rng = new Rng(3);
  const big = difference([normalUnits(rng, 200, 1.2, 0.3)], [normalUnits(rng, 200, 1.0, 0.3)]);
  assert.equal(big.paired, false);
  assert.ok(big.ci_low > 0.1 && big.ci_high < 0.3, JSON.stringify(big));
  assert.ok(big.relative.ci_low > 10 && big.relative.ci_high < 30, JSON.stringify(big.relative));
  const none = difference([normalUnits(rng, 200, 1, 0.3)], [normalUnits(rng, 200, 1, 0.3)]);
  assert.ok(none.ci_low < 0 && none.ci_high > 0);
});

test('the 95% interval of a group covers the true mean about 95% of the time', () => {
  const rng = new Rng(11);
  let covered = 0;
  const trials = 300;
  for (let t = 0; t < trials; t++) {
    const e = estimate([normalUnits(rng, 60, 2, 1), normalUnits(rng, 60, 2, 1)], { samples: 300, confidence: 0.95, seed: t });
    if (e.ci_low <= 2 && 2 <= e.ci_high) covered++;
  }
  // The percentile bootstrap runs a little narrow at small n; 0.90-0.98 holds for n = 120.
  assert.ok(covered / trials > 0.9 && covered / trials < 0.98, `coverage ${covered / trials}`);
});

test('items shared by id are paired, which narrows the interval, and one seed each matches evaluator/stats.ts', () => {
  const rng = new Rng(5);
  const ids = Array.from({ length: 300 }, (_, i) => `item${i}`);
  const hard = ids.map(() => rng.next());
  // The candidate solves every item the baseline solves and a few more: strongly correlated scores.
  const base = hard.map((h) => (h > 0.5 ? 1 : 0));
  const cand = hard.map((h) => (h > 0.45 ? 1 : 0));
  const paired = difference([itemUnits(ids, cand)], [itemUnits(ids, base)], { samples: 1000, confidence: 0.95, seed: 7 });
  const unpaired = difference(
    [
      itemUnits(
        ids.map((i) => `a${i}`),
        cand,
      ),
    ],
    [itemUnits(ids, base)],
    { samples: 1000, confidence: 0.95, seed: 7 },
  );
  assert.equal(paired.paired, true);
  assert.equal(unpaired.paired, false);
  assert.ok(paired.ci_low > 0, JSON.stringify(paired));
  assert.ok(paired.ci_high - paired.ci_low < (unpaired.ci_high - unpaired.ci_low) / 2);
  const reference = pairedBootstrap({ ids, scores: base }, { ids, scores: cand }, { samples: 1000, confidence: 0.95, seed: 7 });
  close(paired.value, reference.difference, 1e-9);
  close(paired.ci_low, reference.ci_low, 1e-9);
  close(paired.ci_high, reference.ci_high, 1e-9);
});

test('the bootstrap is deterministic by seed', () => {
  const data = [normalUnits(new Rng(2), 50, 1, 1)];
  assert.deepEqual(
    estimate(data, { samples: 500, confidence: 0.95, seed: 4 }),
    estimate(data, { samples: 500, confidence: 0.95, seed: 4 }),
  );
  assert.notDeepEqual(
    estimate(data, { samples: 500, confidence: 0.95, seed: 4 }),
    estimate(data, { samples: 500, confidence: 0.95, seed: 5 }),
  );
});
