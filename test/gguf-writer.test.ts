// The GGUF container writer past its first buffer: metadata and tensors far larger than the 64 KiB it starts
// with (a real vocabulary's tokens and merges are), read back by node-llama-cpp's GGUF reader.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readGgufFileInfo } from 'node-llama-cpp';
import { encodeGguf, type GgufValue } from '../export/gguf-writer.js';

test('metadata and tensors that outgrow the initial buffer are written whole', async () => {
  const tokens = Array.from({ length: 20_000 }, (_, i) => `token-${i}`); // ~200 KB of strings
  const ids = Int32Array.from({ length: 30_000 }, (_, i) => i - 15_000);
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['test.tokens', { type: 'string[]', value: tokens }],
    ['test.ids', { type: 'int32[]', value: ids }],
    ['test.last', { type: 'uint32', value: 7 }],
  ]);
  const data = new Float32Array(100_000).map((_, i) => i / 7);
  const bytes = encodeGguf(metadata, [{ name: 'w', shape: [250, 400], type: 'F32', data: new Uint8Array(data.buffer) }]);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-gguf-')), 'big.gguf');
  fs.writeFileSync(file, bytes);
  try {
    const info = await readGgufFileInfo(file, { logWarnings: false, readTensorInfo: true });
    const m = info.metadata as any;
    assert.deepEqual(m.test.tokens, tokens);
    assert.deepEqual(Array.from(m.test.ids as number[]), Array.from(ids));
    assert.equal(m.test.last, 7);
    const w = info.tensorInfo![0];
    assert.deepEqual(w.dimensions.map(Number), [400, 250]);
    const start = bytes.length - data.byteLength;
    assert.deepEqual(new Float32Array(bytes.slice(start).buffer), data, 'the tensor data is the last bytes, unchanged');
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
});
