// The val suite on a dataset tokenized with another tokenizer than the checkpoint's: an English checkpoint
// scored on Swedish validation text. The text is re-tokenized exactly (document by document), bytes are the
// text's UTF-8 bytes, and the figures equal those on the same text prepared with the checkpoint's tokenizer.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MANIFEST_FILE, readManifest, type Manifest } from '../data/manifest.js';
import { dtypeForVocab, openSplit, ShardWriter } from '../data/shards.js';
import { evaluateCheckpoint, EvaluationRequestSchema, type EvaluationResult } from '../evaluator/evaluate.js';
import { loadScoringModel, type ScoringModel } from '../evaluator/model.js';
import { datasetValWindows, retokenize } from '../evaluator/suites/val-windows.js';
import { setupBackend } from '../kernels/backend.js';
import { Tokenizer } from '../lm/tokenizer.js';
import { makeFixture, root, type Fixture } from './evaluator-fixture.js';
import { prepareTinyDataset } from './tiny-dataset.js';

const WINDOWS = 24;
let f: Fixture;
let model: ScoringModel;
let swedish: string; // its own tokenizer
let swedishInModelTokens: string; // the same val text, tokenized with the model's tokenizer
let swedishTokenizer: Tokenizer;

before(async () => {
  await setupBackend('wasm');
  f = await makeFixture('ringlet-retokenize-');
  model = await loadScoringModel(f.fresh);
  const work = path.join(f.work, 'swedish');
  fs.mkdirSync(work);
  swedish = await prepareTinyDataset(root, work);
  const manifest = await readManifest(swedish);
  swedishTokenizer = Tokenizer.load(path.join(swedish, manifest.tokenizer.file));
  swedishInModelTokens = await withModelTokenizer(swedish, manifest, path.join(f.work, 'swedish-model-tokens'));
});

after(() => model?.dispose());

/** The dataset's val documents written as prepare writes them, but with the model's tokenizer: each document's ids, then the end-of-document id. */
async function withModelTokenizer(dir: string, manifest: Manifest, out: string): Promise<string> {
  fs.mkdirSync(out);
  const { tokens } = await openSplit(dir, 'val');
  const documents = swedishTokenizer
    .decode([...tokens])
    .split('<|endoftext|>')
    .slice(0, -1);
  const dtype = dtypeForVocab(model.tokenizer.vocabSize);
  const writer = new ShardWriter(out, 'val', dtype);
  for (const doc of documents) await writer.write([...model.tokenizer.encode(doc), model.tokenizer.eotId]);
  const shards = await writer.close();
  fs.copyFileSync(path.join(f.dataset, 'tokenizer.json'), path.join(out, 'tokenizer.json'));
  const modelManifest = await readManifest(f.dataset);
  const tokenCount = shards.reduce((n, s) => n + s.tokens, 0);
  fs.writeFileSync(
    path.join(out, MANIFEST_FILE),
    JSON.stringify({ ...manifest, dtype, shards, tokens: { train: 0, val: tokenCount }, tokenizer: modelManifest.tokenizer }),
  );
  return out;
}

const evaluate = (data: string): Promise<EvaluationResult> =>
  evaluateCheckpoint(
    EvaluationRequestSchema.parse({ checkpoint: f.fresh, suites: ['val'], limit: WINDOWS, data }),
    { blimpDir: '', dalajFile: '', allowPaths: false },
    { cpuWatts: 15, gridGramsPerKwh: 250 },
    { model },
  );

test('re-tokenized val text is the dataset val text, document by document, and its bytes are the text bytes', async () => {
  const manifest = await readManifest(swedish);
  const { tokens } = await openSplit(swedish, 'val');
  const stream = retokenize(tokens, swedishTokenizer, model.tokenizer);
  const expected = swedishTokenizer.decode([...tokens]).split('<|endoftext|>');
  assert.deepEqual(model.tokenizer.decode([...stream]).split('<|endoftext|>'), expected);
  assert.equal(Array.from(stream).filter((t) => t === model.tokenizer.eotId).length, manifest.documents.val);
  const lengths = model.tokenizer.byteLengths();
  const bytesOf = (ids: ArrayLike<number>) => Array.from(ids, (t) => lengths[t]).reduce((a, b) => a + b, 0);
  assert.equal(bytesOf(stream), manifest.bytes.val);
  // Every window, when all are taken: together they cover the stream from its second token on.
  const all = await datasetValWindows(swedish, model.tokenizer, model.config.context, 1e9);
  assert.equal(all.retokenized, true);
  const covered = all.windows.length * model.config.context;
  assert.deepEqual(all.windows[1], [...stream.subarray(model.config.context, 2 * model.config.context + 1)]);
  assert.equal(
    all.bytes.reduce((a, b) => a + b, 0),
    bytesOf(stream.subarray(1, covered + 1)),
  );
});

test('an English checkpoint scores Swedish val data re-tokenized, as on the same text prepared with its tokenizer', async () => {
  const retokenized = (await evaluate(swedish)).suites.val;
  const native = (await evaluate(swedishInModelTokens)).suites.val;
  assert.equal(retokenized.metrics.retokenized, 1);
  assert.equal(native.metrics.retokenized, 0);
  assert.equal(retokenized.items, WINDOWS);
  const { retokenized: _a, ...figures } = retokenized.metrics;
  const { retokenized: _b, ...nativeFigures } = native.metrics;
  assert.deepEqual(figures, nativeFigures);
  assert.deepEqual(retokenized.item_nats, native.item_nats);
  assert.deepEqual(retokenized.item_bytes, native.item_bytes);
  // Bits per byte is the windows' nats over their bytes; an untrained model is near uniform over its vocabulary,
  // so it is about log2(vocab) bits per token times the model's tokens per byte of Swedish text.
  const nats = retokenized.item_nats!.reduce((a, b) => a + b, 0);
  const bytes = retokenized.item_bytes!.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(retokenized.metrics.val_bpb - nats / Math.LN2 / bytes) < 1e-12);
  const uniform = (Math.log2(model.config.vocab) * retokenized.metrics.tokens) / bytes;
  assert.ok(Math.abs(retokenized.metrics.val_bpb / uniform - 1) < 0.03, `${retokenized.metrics.val_bpb} vs ${uniform}`);
  assert.deepEqual(
    retokenized.item_scores,
    retokenized.item_nats!.map((n) => -n / model.config.context),
  );
});

test('on its own dataset the checkpoint is not re-tokenized and each window keeps its nats and bytes', async () => {
  const own = (await evaluate(f.dataset)).suites.val;
  assert.equal(own.metrics.retokenized, 0);
  assert.equal(own.item_nats!.length, own.items);
  assert.ok(own.item_bytes!.every((b) => b > model.config.context));
});
