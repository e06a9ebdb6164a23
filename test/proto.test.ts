// The committed TypeScript in proto/gen is what the .proto files generate (buf + ts-proto from
// node_modules, then prettier), so nobody edits generated code by hand or forgets `npm run proto`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(import.meta.dirname, '..');
const bin = (name: string) => path.join(root, 'node_modules', '.bin', name);

function files(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

test('regenerating proto/gen from the .proto files gives the committed files', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-proto-'));
  execFileSync(bin('buf'), ['generate', '--output', out], { cwd: path.join(root, 'proto') });
  execFileSync(bin('prettier'), ['--config', path.join(root, '.prettierrc.json'), '--write', path.join(out, 'gen')], {
    cwd: root,
    stdio: 'ignore',
  });
  const committed = path.join(root, 'proto', 'gen');
  assert.deepEqual(files(path.join(out, 'gen')), files(committed));
  for (const f of files(committed))
    assert.equal(
      fs.readFileSync(path.join(out, 'gen', f), 'utf8'),
      fs.readFileSync(path.join(committed, f), 'utf8'),
      `${f} is stale: run npm run proto`,
    );
});
