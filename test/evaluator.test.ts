// The evaluator's scoring core, suites and `ringlet eval`, on real checkpoints (test/evaluator-fixture.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { openSplit } from '../data/shards.js';
import { evaluateCheckpoint, EvaluationRequestSchema, type SuiteLocations } from '../evaluator/evaluate.js';
import { CheckpointRefError, loadScoringModel, type ScoringModel } from '../evaluator/model.js';
import { scoreSequences, slidingWindows, sumFrom } from '../evaluator/scoring.js';
import { readDalaj } from '../evaluator/suites/dalaj.js';
import { SuiteFileError } from '../evaluator/suites/jsonl.js';
import { distinctN, repetitionRate } from '../evaluator/suites/samples.js';
import { pairedBootstrap } from '../evaluator/stats.js';
import { setupBackend } from '../kernels/backend.js';
import { forward } from '../lm/model.js';
import { Tokenizer } from '../lm/tokenizer.js';
import { makeFixture, root, trainTiny, type Fixture } from './evaluator-fixture.js';

let f: Fixture;
let trained: string;
let fresh: ScoringModel;
const where = (over: Partial<SuiteLocations> = {}): SuiteLocations => ({
  blimpDir: path.join(root, '../shared/data/blimp'),
  dalajFile: path.join(root, '../shared/data/dalaj/dalaj-ged-superlim_dev.jsonl'),
  allowPaths: true,
  ...over,
});
const energy = { cpuWatts: 10, gridGramsPerKwh: 300 };
const request = (checkpoint: string, suites: string[], extra: Record<string, unknown> = {}) =>
  EvaluationRequestSchema.parse({ checkpoint, suites, ...extra });

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'cli/ringlet.ts'), ...args], {
    encoding: 'utf8',
    cwd: root,
  });
}
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!);

/**
 * Held-out sentences against the same sentence with its middle words in reverse order, as a user's
 * minimal-pair suite file. Both sides hold the same tokens (each middle word is one " word" piece either
 * way), so length cannot decide a pair: only knowledge of word order can.
 */
async function wordOrderSuite(dataset: string, tokenizer: Tokenizer, file: string, count: number): Promise<void> {
  const { tokens } = await openSplit(dataset, 'val');
  const text = tokenizer.decode(Array.from(tokens.subarray(0, 40_000)).filter((id) => id !== tokenizer.eotId));
  const sentences = (text.match(/[A-Z][^.!?\n]{20,90}[.!?]/g) ?? []).filter((s) => s.split(' ').length >= 6).slice(0, count);
  assert.equal(sentences.length, count, 'the held-out text has enough sentences');
  const lines = sentences.map((good) => JSON.stringify({ type: 'minimal_pair', good, bad: reverseMiddle(good) }));
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

function reverseMiddle(sentence: string): string {
  const w = sentence.split(' ');
  return [w[0], ...w.slice(1, -1).reverse(), w.at(-1)].join(' ');
}

before(async () => {
  await setupBackend('wasm');
  f = await makeFixture('ringlet-eval-');
  trained = await trainTiny(f, 300);
  fresh = await loadScoringModel(f.fresh);
});

test('scoreSequences gives each next-token log-probability, as a direct forward pass computes it', async () => {
  const seq = [fresh.tokenizer.eotId, ...fresh.tokenizer.encode('It was a fine morning in May.')];
  const [scored] = await scoreSequences(fresh, [seq]);
  const expected = tf.tidy(() => {
    const logp = tf.logSoftmax(forward(fresh.params, fresh.config, tf.tensor2d(seq.slice(0, -1), [1, seq.length - 1], 'int32')));
    const rows = logp.arraySync() as number[][];
    return rows.map((row, t) => row[seq[t + 1]]);
  });
  assert.equal(scored.logprobs.length, seq.length - 1);
  scored.logprobs.forEach((lp, t) => assert.ok(Math.abs(lp - expected[t]) < 1e-5, `position ${t}: ${lp} vs ${expected[t]}`));
});

test('a sequence longer than the context is scored in sliding windows, every token once', async () => {
  assert.deepEqual(
    slidingWindows(0, 80, 32).map((w) => [w.start, w.length, w.scoreFrom]),
    [
      [0, 32, 0],
      [16, 32, 16],
      [32, 32, 16],
      [47, 32, 17],
    ],
  );
  const long = [fresh.tokenizer.eotId, ...fresh.tokenizer.encode('The quick brown fox jumps over the lazy dog. '.repeat(8))];
  assert.ok(long.length > 2 * fresh.config.context);
  const [scored] = await scoreSequences(fresh, [long]);
  assert.ok(scored.windows > 2);
  assert.equal(scored.logprobs.length, long.length - 1);
  assert.ok(scored.logprobs.every((lp) => lp < 0 && Number.isFinite(lp)));
  // The first window's positions match scoring the first context tokens alone.
  const [head] = await scoreSequences(fresh, [long.slice(0, fresh.config.context + 1)]);
  for (let t = 0; t < fresh.config.context; t++) assert.ok(Math.abs(head.logprobs[t] - scored.logprobs[t]) < 1e-5);
});

test('scores do not depend on the batch or on padding, and repeat exactly', async () => {
  const texts = ['A short one.', 'A rather longer sentence about the sea and the sky.', 'Mid length text here.'];
  const seqs = texts.map((t) => [fresh.tokenizer.eotId, ...fresh.tokenizer.encode(t)]);
  const one = await scoreSequences(fresh, seqs, { batchSize: 1 });
  const all = await scoreSequences(fresh, seqs, { batchSize: 8 });
  const again = await scoreSequences(fresh, seqs, { batchSize: 8 });
  seqs.forEach((_, i) => {
    assert.ok(Math.abs(sumFrom(one[i].logprobs) - sumFrom(all[i].logprobs)) < 1e-4);
    assert.deepEqual(all[i].logprobs, again[i].logprobs);
  });
});

test('an unknown checkpoint, a half-written one and a corrupted one are refused with a clear error', async () => {
  await assert.rejects(
    loadScoringModel(path.join(f.work, 'no-such-run')),
    (e: Error) => e instanceof CheckpointRefError && /unknown checkpoint/.test(e.message),
  );
  // A checkpoint being written lives in checkpoints/.tmp-*; even with every file in place it is refused.
  const published = fs.readdirSync(path.join(f.fresh, 'checkpoints')).find((n) => n.startsWith('step-'))!;
  const inFlight = path.join(f.work, 'fresh', 'checkpoints', `.tmp-${published}-123-abcd`);
  fs.cpSync(path.join(f.fresh, 'checkpoints', published), inFlight, { recursive: true });
  await assert.rejects(loadScoringModel(inFlight), /still being written/);
  const torn = path.join(f.work, 'torn');
  fs.cpSync(path.join(f.fresh, 'checkpoints', published), torn, { recursive: true });
  const model = path.join(torn, 'model.safetensors');
  fs.truncateSync(model, fs.statSync(model).size - 100);
  await assert.rejects(loadScoringModel(torn), /truncated or replaced/);
});

test('a suite file with bad lines is refused, naming every bad line', async () => {
  const file = path.join(f.work, 'bad-suite.jsonl');
  fs.writeFileSync(
    file,
    [
      JSON.stringify({ type: 'minimal_pair', good: 'The cat sleeps.', bad: 'The cat sleep.' }),
      '{"type": "minimal_pair", "good": "x"',
      '',
      JSON.stringify({ type: 'minimal_pair', good: 'A dog runs.' }),
      JSON.stringify({ type: 'multiple_choice', context: 'Q', choices: ['a', 'b'], answer: 5 }),
    ].join('\n'),
  );
  await assert.rejects(evaluateCheckpoint(request(f.fresh, [file]), where(), energy, { model: fresh }), (e: Error) => {
    assert.ok(e instanceof SuiteFileError);
    assert.deepEqual(
      e.lines.map((l) => l.line),
      [2, 4, 5],
    );
    assert.match(e.message, /bad-suite.jsonl:2: not JSON/);
    assert.match(e.message, /bad-suite.jsonl:4: .*bad/);
    assert.match(e.message, /bad-suite.jsonl:5: answer: answer must index one of the choices/);
    return true;
  });
  await assert.rejects(evaluateCheckpoint(request(f.fresh, ['nonsense']), where(), energy), /unknown suite "nonsense"/);
});

test('DaLAJ pairs each incorrect sentence with its corrected form from the same file', async () => {
  const { pairs, skipped } = await readDalaj(where().dalajFile);
  assert.ok(pairs.length > 1500, `${pairs.length} pairs`);
  assert.equal(pairs.length + skipped, 2278); // every incorrect sentence of the dev split is paired or counted
  const first = pairs.find((p) => p.bad.startsWith('Barnen är ett lands framtid och desto'))!;
  assert.equal(
    first.good,
    'Barnen är ett lands framtid och ju bättre uppfostrade barnen blir i ett samhälle, desto bättre blir landet.',
  );
  // "typer av" was detokenised to an insertion without a space; the pair still holds the file's own sentence.
  assert.ok(pairs.some((p) => p.bad.includes('olika av utveckling') && p.good.includes('olika typer av utveckling')));
});

test('a fresh model is near chance on BLiMP and DaLAJ', async () => {
  const r = await evaluateCheckpoint(request(f.fresh, ['blimp', 'dalaj'], { limit: 8 }), where(), energy, { model: fresh });
  assert.equal(r.suites.blimp.items, 51 * 8);
  assert.equal(Object.keys(r.suites.blimp.groups!).length, 51);
  const { blimp, dalaj } = r.suites;
  assert.ok(Math.abs(blimp.metrics.accuracy - 0.5) < 0.15, `blimp accuracy ${blimp.metrics.accuracy}`);
  // On DaLAJ the incorrect sentence is more often the shorter one (an omitted word), and an untrained model
  // pays about log(vocab) per token, so the plain sum sits below chance; per token it is at chance.
  assert.ok(Math.abs(dalaj.metrics.accuracy_per_token - 0.5) < 0.15, `dalaj per token ${dalaj.metrics.accuracy_per_token}`);
  assert.ok(dalaj.metrics.accuracy > 0.2 && dalaj.metrics.accuracy < 0.65, `dalaj accuracy ${dalaj.metrics.accuracy}`);
  assert.ok(r.suites.blimp.items_per_s > 0);
  assert.equal(r.energy.estimated, true);
  assert.ok(Math.abs(r.energy.joules - r.seconds * 10) < 1e-9);
});

test('a trained model beats chance on held-out word order where a fresh one does not', async () => {
  const file = path.join(f.work, 'word-order.jsonl');
  await wordOrderSuite(f.dataset, fresh.tokenizer, file, 80);
  const before = await evaluateCheckpoint(request(f.fresh, [file]), where(), energy, { model: fresh });
  const after = await evaluateCheckpoint(request(trained, [file]), where(), energy);
  const b = before.suites[file].metrics.accuracy;
  const a = after.suites[file].metrics.accuracy;
  assert.ok(a > 0.65 && a > b + 0.2, `trained ${a}, fresh ${b}`);
});

test('validation loss and bits per byte fall with training and match the training log', async () => {
  const fr = await evaluateCheckpoint(request(f.fresh, ['val'], { limit: 16 }), where(), energy, { model: fresh });
  const tr = await evaluateCheckpoint(request(trained, ['val'], { limit: 16 }), where(), energy);
  const vocab = fresh.config.vocab;
  assert.ok(Math.abs(fr.suites.val.metrics.val_loss - Math.log(vocab)) < 0.1, 'a fresh model is near uniform');
  assert.ok(tr.suites.val.metrics.val_loss < fr.suites.val.metrics.val_loss - 1);
  assert.ok(tr.suites.val.metrics.val_bpb < fr.suites.val.metrics.val_bpb);
  assert.ok(Math.abs(tr.suites.val.metrics.perplexity - Math.exp(tr.suites.val.metrics.val_loss)) < 1e-6);
  // With the run's eval_windows (8), the windows are training's own: the figures equal the checkpoint's.
  const same = await evaluateCheckpoint(request(trained, ['val'], { limit: 8 }), where(), energy);
  const logged = (await loadScoringModel(trained)).meta.metrics!;
  assert.ok(
    Math.abs(same.suites.val.metrics.val_loss - logged.val_loss) < 1e-4,
    `${same.suites.val.metrics.val_loss} vs ${logged.val_loss}`,
  );
  assert.ok(Math.abs(same.suites.val.metrics.val_bpb - logged.val_bpb) < 1e-4);
});

test('a multiple-choice suite file picks the likeliest continuation', async () => {
  const file = path.join(f.work, 'choice.jsonl');
  fs.writeFileSync(
    file,
    [
      { type: 'multiple_choice', context: 'He said that', choices: [' he would go.', ' he he he he he.'], answer: 0, group: 'a' },
      { type: 'multiple_choice', context: 'It was', choices: [' the the the', ' a fine day.'], answer: 1, group: 'b' },
    ]
      .map((l) => JSON.stringify(l))
      .join('\n'),
  );
  const r = await evaluateCheckpoint(request(trained, [file]), where(), energy);
  const s = r.suites[file];
  assert.equal(s.kind, 'multiple_choice');
  assert.equal(s.items, 2);
  assert.deepEqual(Object.keys(s.groups!), ['a', 'b']);
  assert.ok(s.metrics.accuracy >= 0 && s.metrics.accuracy <= 1 && 'accuracy_norm' in s.metrics);
});

test('distinct-n and the repetition rate measure variety', () => {
  assert.equal(distinctN(['a b c d'], 1), 1);
  assert.equal(distinctN(['a a a a'], 1), 0.25);
  assert.equal(repetitionRate('one two three one two three one two three'), 4 / 7);
  assert.equal(repetitionRate('one two three four'), 0);
});

test('the paired bootstrap matches items by id and brackets the true difference', () => {
  const ids = Array.from({ length: 200 }, (_, i) => `item-${i}`);
  const base = ids.map((_, i) => (i % 2 === 0 ? 1 : 0));
  const same = pairedBootstrap({ ids, scores: base }, { ids: [...ids].reverse(), scores: [...base].reverse() });
  assert.equal(same.items, 200);
  assert.equal(same.difference, 0);
  assert.equal(same.verdict, 'no significant difference');
  const better = ids.map((_, i) => (i % 2 === 0 || i % 3 === 0 ? 1 : 0)); // 1/6 of the items gained
  const r = pairedBootstrap({ ids, scores: base }, { ids, scores: better });
  assert.ok(Math.abs(r.difference - 33 / 200) < 1e-12);
  assert.ok(r.ci_low > 0.1 && r.ci_high < 0.23 && r.ci_low < r.difference && r.difference < r.ci_high);
  assert.equal(r.verdict, 'candidate better');
  assert.deepEqual(pairedBootstrap({ ids, scores: base }, { ids, scores: better }), r, 'seeded: the same interval every time');
  assert.throws(() => pairedBootstrap({ ids: ['a'], scores: [1] }, { ids: ['b'], scores: [1] }), /share no items/);
});

test('ringlet eval prints the contract JSON, the same every run', () => {
  const args = ['eval', '--checkpoint', trained, '--suite', 'blimp,val,dalaj', '--limit', '3', '--json'];
  const a = cli(args);
  assert.equal(a.status, 0, a.stderr);
  const out = lastJson(a.stdout);
  assert.equal(out.suites.blimp.items, 51 * 3);
  assert.equal(typeof out.suites.blimp.accuracy, 'number');
  assert.equal(Object.keys(out.suites.blimp.paradigms).length, 51);
  assert.equal(typeof out.suites.val.val_loss, 'number');
  assert.equal(typeof out.suites.val.val_bpb, 'number');
  assert.equal(typeof out.suites.dalaj.accuracy, 'number');
  assert.ok(out.items_per_s > 0);
  const second = cli(args);
  assert.equal(second.status, 0, second.stderr);
  const b = lastJson(second.stdout);
  for (const s of ['blimp', 'val', 'dalaj']) {
    const { seconds: _s1, items_per_s: _i1, ...x } = out.suites[s];
    const { seconds: _s2, items_per_s: _i2, ...y } = b.suites[s];
    assert.deepEqual(x, y, `suite ${s} repeats`);
  }
  const missing = cli(['eval', '--checkpoint', path.join(f.work, 'nope'), '--suite', 'blimp', '--json']);
  assert.equal(missing.status, 1, missing.stderr);
  assert.match(lastJson(missing.stdout).error, /unknown checkpoint/);
});
