// `ringlet export` on bad input: each case a clear error and nothing left behind (no output folder, no
// temporary folder); an existing output refused unless --force, which replaces it whole; the manifest's
// sha256 match the files written.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setupBackend } from '../kernels/backend.js';
import { makeFixture, root, type Fixture } from './evaluator-fixture.js';

let f: Fixture;
let out: string;

function ringletExport(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'cli/ringlet.ts'), 'export', ...args, '--json'], {
    cwd: root,
    encoding: 'utf8',
  });
  return { code: r.status, summary: JSON.parse(r.stdout.trim().split('\n').at(-1) || '{}'), stderr: r.stderr };
}

/** Folders in `dir` that an export could have left: the output and any temporary folder. */
const leftovers = (dir: string) => fs.readdirSync(dir).filter((n) => n === 'out' || n.startsWith('.tmp'));

before(async () => {
  await setupBackend('wasm');
  f = await makeFixture('ringlet-export-');
  out = path.join(f.work, 'exports');
  fs.mkdirSync(out);
});

after(() => fs.rmSync(f.work, { recursive: true, force: true }));

test('an unknown format or dtype, and q8_0 for Hugging Face, are refused before anything is read', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--format', 'onnx'], /unknown format "onnx": use hf or gguf/],
    [['--format', 'gguf', '--dtype', 'q4_0'], /unknown dtype "q4_0": use f32, f16 or q8_0/],
    [['--format', 'hf', '--dtype', 'q8_0'], /q8_0 is a GGUF block format/],
  ];
  for (const [flags, message] of cases) {
    const r = ringletExport(['--checkpoint', f.fresh, '--out', path.join(out, 'out'), ...flags]);
    assert.equal(r.code, 1, flags.join(' '));
    assert.match(r.summary.error, message);
    assert.deepEqual(leftovers(out), []);
  }
});

test('a checkpoint whose weights do not match their sha256 is refused, and nothing is written', () => {
  const damaged = path.join(f.work, 'damaged');
  fs.cpSync(f.fresh, damaged, { recursive: true });
  const checkpoint = path.join(
    damaged,
    'checkpoints',
    fs.readdirSync(path.join(damaged, 'checkpoints')).find((n) => n.startsWith('step-'))!,
  );
  const weights = path.join(checkpoint, 'model.safetensors');
  const bytes = fs.readFileSync(weights);
  bytes[bytes.length - 3] ^= 0x01;
  fs.writeFileSync(weights, bytes);
  for (const format of ['hf', 'gguf']) {
    const r = ringletExport(['--checkpoint', damaged, '--format', format, '--out', path.join(out, 'out')]);
    assert.equal(r.code, 1);
    assert.match(r.summary.error, /sha256/);
    assert.deepEqual(leftovers(out), []);
  }
});

test('an existing output folder is refused unless --force, which replaces it whole; the manifest holds every sha256', () => {
  const target = path.join(out, 'out');
  fs.mkdirSync(target);
  fs.writeFileSync(path.join(target, 'keep.txt'), 'mine');
  const refused = ringletExport(['--checkpoint', f.fresh, '--format', 'gguf', '--out', target]);
  assert.equal(refused.code, 1);
  assert.match(refused.summary.error, /already exists.*--force/);
  assert.equal(fs.readFileSync(path.join(target, 'keep.txt'), 'utf8'), 'mine');

  for (const [format, dtype] of [
    ['gguf', 'q8_0'],
    ['hf', 'f16'],
  ]) {
    const r = ringletExport(['--checkpoint', f.fresh, '--format', format, '--dtype', dtype, '--out', target, '--force']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!fs.existsSync(path.join(target, 'keep.txt')), 'the old folder is gone whole');
    const manifest = JSON.parse(fs.readFileSync(path.join(target, 'manifest.json'), 'utf8'));
    assert.equal(manifest.format, format);
    assert.equal(manifest.dtype, dtype);
    const files = fs
      .readdirSync(target)
      .filter((n) => n !== 'manifest.json')
      .sort();
    assert.deepEqual(Object.keys(manifest.files).sort(), files);
    for (const name of files) {
      const data = fs.readFileSync(path.join(target, name));
      assert.equal(manifest.files[name].sha256, createHash('sha256').update(data).digest('hex'), name);
      assert.equal(manifest.files[name].bytes, data.length);
    }
  }
  assert.deepEqual(leftovers(out), ['out']);
});
