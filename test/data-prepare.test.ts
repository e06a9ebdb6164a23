// End to end: `prepareDataset` on a small corpus of real ELTeC files plus plain text, then the
// manifest and shards read back; determinism; and the errors for bad inputs and damaged shards.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { countWords } from '../data/fertility.js';
import { MANIFEST_FILE, readManifest, type Manifest } from '../data/manifest.js';
import { prepareDataset, type PrepareSummary } from '../data/prepare.js';
import { listSources } from '../data/sources.js';
import { openSplit } from '../data/shards.js';
import { Tokenizer } from '../lm/tokenizer.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-prepare-'));
const eltec = path.resolve(import.meta.dirname, '../../shared/data/eltec');
const corpusA = path.join(work, 'corpus', 'a');
const corpusB = path.join(work, 'corpus', 'b');
const out = path.join(work, 'dataset');
const SHARD_TOKENS = 20_000;

const options = (inputs: string[], outDir: string) => ({
  inputs,
  outDir,
  vocab: 512,
  seed: 4, // puts a novel and the plain-text document in validation
  valFraction: 0.3,
  command: ['ringlet', 'data', 'prepare', ...inputs],
  shardTokens: SHARD_TOKENS,
});

let summary: PrepareSummary;
let manifest: Manifest;

before(async () => {
  fs.mkdirSync(path.join(corpusA, 'nested'), { recursive: true });
  fs.mkdirSync(corpusB, { recursive: true });
  fs.copyFileSync(`${eltec}/eng/ENG18872_Lyall.xml`, path.join(corpusA, 'ENG18872_Lyall.xml'));
  fs.copyFileSync(`${eltec}/swe/SWE1963958_Lybeck.xml`, path.join(corpusA, 'SWE1963958_Lybeck.xml'));
  fs.copyFileSync(`${eltec}/swe/SWE1498004_Hansson.xml`, path.join(corpusB, 'SWE1498004_Hansson.xml'));
  fs.copyFileSync(`${eltec}/swe/SWE1963958_Lybeck.xml`, path.join(corpusB, 'copy-of-lybeck.xml')); // exact duplicate
  fs.writeFileSync(
    path.join(corpusA, 'nested', 'notes.txt'),
    'A plain-text document,\nwrapped.\n\nIts second paragraph, with “quotes” and åäö.\n',
  );
  fs.writeFileSync(path.join(corpusA, 'README.md'), '# not corpus text\n');
  summary = await prepareDataset(options([corpusA, corpusB], out));
  manifest = await readManifest(out);
});

test('the summary and manifest describe what was read, removed, split and tokenized', () => {
  assert.equal(manifest.sources.files, 5);
  assert.equal(manifest.sources.skipped_files, 1);
  assert.equal(manifest.filters.input_documents, 5);
  assert.equal(manifest.filters.duplicate_documents, 1);
  assert.equal(summary.duplicate_documents, 1);
  assert.equal(summary.documents, 4);
  assert.equal(manifest.documents.train + manifest.documents.val, 4);
  assert.ok(manifest.documents.train >= 1 && manifest.documents.val >= 1);
  assert.equal(summary.train_tokens, manifest.tokens.train);
  assert.equal(summary.val_tokens, manifest.tokens.val);
  assert.equal(summary.roundtrip_ok, true);
  assert.ok(summary.peak_rss_bytes > 0);
  assert.equal(manifest.dtype, 'uint16');
  assert.equal(manifest.tokenizer.vocab_size, 512);
  assert.equal(manifest.tokenizer.eot_id, 511);
  assert.deepEqual(manifest.command, options([corpusA, corpusB], out).command);
  assert.deepEqual(manifest.sources.inputs, [corpusA, corpusB]);
  const tokenizer = Tokenizer.load(path.join(out, manifest.tokenizer.file));
  assert.equal(tokenizer.sha256, manifest.tokenizer.sha256);
  assert.equal(manifest.bytes_per_token, manifest.bytes.val / (manifest.tokens.val - manifest.documents.val));
  assert.ok(summary.bytes_per_token! > 1.5 && summary.bytes_per_token! < 5, `${summary.bytes_per_token} bytes per token`);
  assert.deepEqual(manifest.processing, { filters: 'on', spelling: 'none' });
  assert.deepEqual(manifest.spelling_changes, { words_changed: 0, top_rewrites: [] });
});

test('fertility: bytes, characters and words per text token of each split, as the decoded shards give them', async () => {
  const tokenizer = Tokenizer.load(path.join(out, manifest.tokenizer.file));
  for (const split of ['train', 'val'] as const) {
    const { tokens } = await openSplit(out, split);
    const textTokens = [...tokens].filter((t) => t !== tokenizer.eotId);
    const documents = tokenizer
      .decode([...tokens])
      .split('<|endoftext|>')
      .slice(0, -1);
    const chars = documents.reduce((n, d) => n + [...d].length, 0);
    const words = documents.reduce((n, d) => n + countWords(d), 0);
    const f = manifest.fertility[split];
    assert.equal(f.bytes_per_token, manifest.bytes[split] / textTokens.length);
    assert.equal(f.chars_per_token, chars / textTokens.length);
    assert.equal(f.words_per_token, words / textTokens.length);
    assert.ok(f.words_per_token! > 0.1 && f.words_per_token! < 1, `${f.words_per_token} words per token`);
  }
  assert.deepEqual(summary.fertility, manifest.fertility);
  assert.equal(manifest.bytes_per_token, manifest.fertility.val.bytes_per_token);
});

test('words are whitespace-separated runs holding a letter', () => {
  assert.equal(countWords('Hvad? — sade han, 1906 * * * «nej»\n\nåh'), 5);
  assert.equal(countWords('  '), 0);
});

test('--filters off keeps short, garbage and near-duplicate paragraphs; --spelling sv-1906 modernises and is recorded', async () => {
  const corpus = path.join(work, 'corpus', 'processing');
  fs.mkdirSync(corpus, { recursive: true });
  const repeated =
    'Hvad skulle hon göra? Hon hade blifvit qvar i sitt lif, oaktadt allt hon sett och hört under det långa och mörka året.';
  fs.writeFileSync(path.join(corpus, 'a.txt'), `${repeated}\n\n* * *\n\n12 34 56 78 90 ab\n\n${repeated}\n`);
  fs.writeFileSync(path.join(corpus, 'b.txt'), 'Han sof godt. Det var midt i natten.\n');
  fs.writeFileSync(path.join(corpus, 'c.txt'), 'Han sof godt. Det var midt i natten.\n'); // an exact duplicate document
  const prepareWith = async (name: string, filters: 'on' | 'off', spelling: 'none' | 'sv-1906') => {
    const dir = path.join(work, name);
    const s = await prepareDataset({ ...options([corpus], dir), vocab: 257, valFraction: 0.4, filters, spelling });
    const m = await readManifest(dir);
    const tokenizer = Tokenizer.load(path.join(dir, m.tokenizer.file));
    const text = [];
    for (const split of ['train', 'val'] as const) text.push(tokenizer.decode([...(await openSplit(dir, split)).tokens]));
    return { s, m, text: text.join('') };
  };
  const on = await prepareWith('filters-on', 'on', 'none');
  assert.equal(on.m.filters.too_short_paragraphs + on.m.filters.garbage_paragraphs + on.m.filters.near_duplicate_paragraphs, 3);
  const off = await prepareWith('filters-off', 'off', 'sv-1906');
  assert.deepEqual(off.m.processing, { filters: 'off', spelling: 'sv-1906' });
  assert.equal(off.s.filters, 'off');
  assert.equal(off.m.filters.duplicate_documents, 1, 'duplicate documents are removed either way');
  assert.equal(
    off.m.filters.too_short_paragraphs + off.m.filters.garbage_paragraphs + off.m.filters.near_duplicate_paragraphs,
    0,
  );
  assert.equal(off.m.paragraphs.train + off.m.paragraphs.val, 5);
  assert.ok(off.text.includes('* * *') && off.text.includes('12 34 56 78 90 ab'));
  assert.equal(off.text.split('Vad skulle hon göra? Hon hade blivit kvar i sitt liv, oaktat allt').length - 1, 2);
  assert.ok(off.text.includes('Han sov gott. Det var mitt i natten.'));
  assert.ok(!/hvad|qvar|blifvit|godt/i.test(off.text));
  // Two copies of the rewritten paragraph and one of the duplicate document's (read, then dropped).
  assert.equal(off.m.spelling_changes.words_changed, 2 * 5 + 2 * 3);
  assert.deepEqual(
    off.m.spelling_changes.top_rewrites.map((r) => `${r.from}>${r.to}:${r.count}`),
    ['blifvit>blivit:2', 'godt>gott:2', 'hvad>vad:2', 'lif>liv:2', 'midt>mitt:2', 'oaktadt>oaktat:2', 'qvar>kvar:2', 'sof>sov:2'],
  );
  assert.equal(off.s.spelling_words_changed, off.m.spelling_changes.words_changed);
  assert.deepEqual(off.s.spelling_top_rewrites, off.m.spelling_changes.top_rewrites);
});

test("files of the same name in two languages' folders get distinct ids, and same-named folders a #2", async () => {
  const mixed = path.join(work, 'mixed');
  for (const folder of ['eng', 'swe', 'more/eng']) {
    fs.mkdirSync(path.join(mixed, folder), { recursive: true });
    fs.writeFileSync(path.join(mixed, folder, 'novel.txt'), `A novel in ${folder}.\n`);
  }
  const { documents } = await listSources(['eng', 'swe', 'more/eng'].map((f) => path.join(mixed, f)));
  assert.deepEqual(
    documents.map((d) => d.id),
    ['eng/novel.txt', 'eng/novel.txt#2', 'swe/novel.txt'],
  );
});

test('a manifest written before the processing options and fertility still reads, as filters on and spelling none', async () => {
  const old = copyDataset('old-manifest');
  const json = JSON.parse(fs.readFileSync(path.join(old, MANIFEST_FILE), 'utf8'));
  delete json.processing;
  delete json.spelling_changes;
  delete json.fertility;
  fs.writeFileSync(path.join(old, MANIFEST_FILE), JSON.stringify(json));
  const read = await readManifest(old);
  assert.deepEqual(read.processing, { filters: 'on', spelling: 'none' });
  assert.deepEqual(read.spelling_changes, { words_changed: 0, top_rewrites: [] });
  assert.equal(read.fertility.val.words_per_token, null);
});

test('shards are bounded in size, listed in the manifest, and read back as the whole split', async () => {
  const files = fs
    .readdirSync(out)
    .filter((f) => f.endsWith('.bin'))
    .sort();
  assert.deepEqual(files, manifest.shards.map((s) => s.name).sort());
  assert.ok(manifest.shards.filter((s) => s.split === 'train').length >= 2, 'the train split spans several shards');
  for (const shard of manifest.shards) {
    assert.ok(shard.tokens <= SHARD_TOKENS);
    assert.equal(fs.statSync(path.join(out, shard.name)).size, shard.tokens * 2);
  }
  assert.ok(!fs.readdirSync(out).some((f) => f.startsWith('.tmp')), 'no temporary files left behind');

  const tokenizer = Tokenizer.load(path.join(out, 'tokenizer.json'));
  for (const split of ['train', 'val'] as const) {
    const { tokens, length } = await openSplit(out, split);
    assert.ok(tokens instanceof Uint16Array);
    assert.equal(length, manifest.tokens[split]);
    assert.equal(tokens[length - 1], tokenizer.eotId, 'every document ends with the end-of-document token');
    const eots = tokens.filter((t) => t === tokenizer.eotId).length;
    assert.equal(eots, manifest.documents[split]);
    const text = tokenizer.decode([...tokens].filter((t) => t !== tokenizer.eotId));
    assert.equal(Buffer.byteLength(text), manifest.bytes[split]);
  }
  const val = await openSplit(out, 'val');
  const documents = tokenizer
    .decode([...val.tokens])
    .split('<|endoftext|>')
    .slice(0, -1);
  assert.ok(documents.includes('A plain-text document, wrapped.\n\nIts second paragraph, with “quotes” and åäö.'));
  for (const doc of documents) {
    assert.equal(doc, doc.normalize('NFC'));
    assert.ok(!doc.includes('\n\n\n') && !/[ \t]{2,}/.test(doc), 'text is normalised');
  }
});

test('the same corpus given in another order gives the same dataset; stale shards are removed', async () => {
  const again = path.join(work, 'again');
  fs.mkdirSync(again);
  fs.writeFileSync(path.join(again, 'train-099.bin'), 'left over from an earlier run');
  await prepareDataset(options([corpusB, corpusA], again));
  const second = await readManifest(again);
  assert.deepEqual(second.shards, manifest.shards);
  assert.equal(second.tokenizer.sha256, manifest.tokenizer.sha256);
  assert.deepEqual(second.documents, manifest.documents);
  assert.ok(!fs.existsSync(path.join(again, 'train-099.bin')));
});

test('a truncated shard is refused with the expected and found sizes', async () => {
  const damaged = copyDataset('truncated');
  const shard = manifest.shards.find((s) => s.split === 'train')!;
  fs.truncateSync(path.join(damaged, shard.name), shard.bytes - 10);
  await assert.rejects(openSplit(damaged, 'train'), {
    message: `shard ${shard.name}: expected ${shard.bytes} bytes, found ${shard.bytes - 10} (truncated)`,
  });
  await openSplit(damaged, 'val'); // the other split is untouched
});

test('a corrupted shard is refused by its sha256', async () => {
  const damaged = copyDataset('corrupted');
  const shard = manifest.shards.find((s) => s.split === 'val')!;
  const file = path.join(damaged, shard.name);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length >> 1] ^= 0xff;
  fs.writeFileSync(file, bytes);
  await assert.rejects(
    openSplit(damaged, 'val'),
    new RegExp(`^Error: shard ${shard.name}: sha256 [0-9a-f]{64} does not match .*\\(corrupted\\)$`),
  );
});

test('a folder without a manifest is not a dataset', async () => {
  await assert.rejects(openSplit(work, 'train'), /manifest\.json not found: .* is not a prepared dataset/);
});

test('a missing input is an error naming it', async () => {
  const missing = path.join(work, 'no-such-corpus');
  await assert.rejects(prepareDataset(options([missing], path.join(work, 'x'))), { message: `input ${missing} does not exist` });
});

test('a corpus without .xml or .txt files, or without usable text, is an error', async () => {
  const empty = path.join(work, 'empty');
  fs.mkdirSync(empty);
  fs.writeFileSync(path.join(empty, 'README.md'), 'nothing here');
  await assert.rejects(prepareDataset(options([empty], path.join(work, 'y'))), /no \.xml or \.txt files found in/);
  fs.writeFileSync(path.join(empty, 'junk.txt'), '* * *\n\n1234\n\n—\n');
  await assert.rejects(
    prepareDataset(options([empty], path.join(work, 'y'))),
    /no usable text in .*: all 1 documents were empty or removed/,
  );
  await assert.rejects(
    prepareDataset(options([path.join(empty, 'README.md')], path.join(work, 'y'))),
    /neither a \.xml \(TEI\) nor a \.txt file/,
  );
});

test('bad options are refused before any work', async () => {
  await assert.rejects(
    prepareDataset({ ...options([corpusA], path.join(work, 'z')), vocab: 100 }),
    /vocabulary size must be an integer >= 257/,
  );
  await assert.rejects(prepareDataset({ ...options([corpusA], path.join(work, 'z')), valFraction: 1 }), /validation fraction/);
  await assert.rejects(
    prepareDataset({ ...options([corpusA], path.join(work, 'z')), spelling: 'sv' as 'none' }),
    /spelling must be one of none, sv-1906, got "sv"/,
  );
  assert.ok(!fs.existsSync(path.join(work, 'z')));
});

function copyDataset(name: string): string {
  const dir = path.join(work, name);
  fs.cpSync(out, dir, { recursive: true });
  return dir;
}
