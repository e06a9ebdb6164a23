// Token shards on their own: rolling over at the shard size, uint32 for large vocabularies, and
// tokens that do not fit the shard's type.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { MANIFEST_FILE, MANIFEST_FORMAT_VERSION, type ManifestInput } from '../data/manifest.js';
import { ShardWriter, dtypeForVocab, openSplit } from '../data/shards.js';

test('uint16 up to 65536 ids, uint32 above', () => {
  assert.equal(dtypeForVocab(8192), 'uint16');
  assert.equal(dtypeForVocab(65536), 'uint16');
  assert.equal(dtypeForVocab(65537), 'uint32');
});

test('a writer rolls over to a new shard every N tokens and the reader joins them back', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-shards-'));
  const tokens = Array.from({ length: 23 }, (_, i) => 70_000 + i * 1000);
  const writer = new ShardWriter(dir, 'train', 'uint32', 10);
  await writer.write(tokens.slice(0, 4));
  await writer.write(tokens.slice(4));
  const shards = await writer.close();
  assert.deepEqual(
    shards.map((s) => [s.name, s.tokens, s.bytes]),
    [
      ['train-000.bin', 10, 40],
      ['train-001.bin', 10, 40],
      ['train-002.bin', 3, 12],
    ],
  );
  const first = fs.readFileSync(path.join(dir, 'train-000.bin'));
  assert.equal(first.readUInt32LE(4), tokens[1], 'little-endian uint32');

  const manifest: ManifestInput = {
    format_version: MANIFEST_FORMAT_VERSION,
    created_at: new Date().toISOString(),
    command: ['test'],
    seed: 0,
    val_fraction: 0.05,
    sources: { inputs: [], files: 0, bytes: 0, skipped_files: 0 },
    documents: { train: 1, val: 0 },
    paragraphs: { train: 1, val: 0 },
    bytes: { train: 0, val: 0 },
    tokens: { train: 23, val: 0 },
    bytes_per_token: null,
    dtype: 'uint32',
    shard_tokens: 10,
    shards,
    tokenizer: { file: 'tokenizer.json', sha256: '0'.repeat(64), vocab_size: 100_000, eot_id: 99_999 },
    filters: {
      input_documents: 1,
      duplicate_documents: 0,
      empty_documents: 0,
      input_paragraphs: 1,
      too_short_paragraphs: 0,
      garbage_paragraphs: 0,
      near_duplicate_paragraphs: 0,
    },
  };
  fs.writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest));
  const train = await openSplit(dir, 'train');
  assert.ok(train.tokens instanceof Uint32Array);
  assert.deepEqual([...train.tokens], tokens);
  const val = await openSplit(dir, 'val');
  assert.equal(val.length, 0);

  fs.writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify({ ...manifest, dtype: 'int8' }));
  await assert.rejects(openSplit(dir, 'train'), /manifest\.json is not a valid manifest:[\s\S]*dtype/);
});

test('a token too large for uint16 is refused', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-shards-'));
  const writer = new ShardWriter(dir, 'val', 'uint16', 100);
  await assert.rejects(writer.write([1, 65536]), /token 65536 does not fit uint16/);
});
