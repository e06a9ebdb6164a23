// The one way every config loads (config/layers.ts): file, then environment, then flags, validated once.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { loadConfig } from '../config/layers.js';
import { loadDistributedConfig } from '../coordinator/config.js';
import { loadServiceConfig } from '../evaluator/config.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-config-'));
const schema = z.strictObject({
  a: z.strictObject({ b: z.number(), c: z.string().default('c') }),
  d: z.number().max(10),
});
const fields = [
  { path: ['a', 'b'], env: 'X_B', flag: 'b' },
  { path: ['d'], env: 'X_D', flag: 'd' },
];

test('flags win over the environment, which wins over the file; nested fields keep their siblings', () => {
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ a: { b: 1, c: 'from file' }, d: 1 }));
  const load = (env: NodeJS.ProcessEnv, flags: Record<string, unknown>) =>
    loadConfig(schema, { name: 'test config', file, env, flags, fields, fromEnv: (_p, t) => Number(t) });
  assert.deepEqual(load({}, {}), { a: { b: 1, c: 'from file' }, d: 1 });
  assert.deepEqual(load({ X_B: '2', X_D: '3' }, {}), { a: { b: 2, c: 'from file' }, d: 3 });
  assert.deepEqual(load({ X_B: '2', X_D: '3' }, { b: 4 }), { a: { b: 4, c: 'from file' }, d: 3 });
  assert.throws(() => load({}, { d: 11 }), /invalid test config:\n {2}d: Too big/);
});

test('a file that is not a JSON object is refused, naming the config and the file', () => {
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, '[1, 2]');
  assert.throws(
    () => loadConfig(schema, { name: 'test config', file: bad, fields }),
    /test config file .*bad\.json must hold a JSON object/,
  );
  assert.throws(
    () => loadConfig(schema, { name: 'test config', file: path.join(dir, 'none.json'), fields }),
    /cannot read test config file/,
  );
});

test('the distributed and evaluator configs load through the same layers', () => {
  const dist = loadDistributedConfig(
    undefined,
    { minWorkers: 2 },
    { RINGLET_TOKEN: 'a-long-token', RINGLET_MIN_WORKERS: '3', RINGLET_FP16: 'true' },
  );
  assert.deepEqual([dist.min_workers, dist.fp16, dist.token], [2, true, 'a-long-token']);
  assert.throws(() => loadDistributedConfig(undefined, {}, {}), /invalid distributed config:\n {2}token:/);
  const ev = loadServiceConfig(
    undefined,
    { RINGLET_EVALUATOR_PORT: '9000', RINGLET_EVALUATOR_TOKEN: 'a-sixteen-char-token' },
    { port: '9001' },
  );
  assert.equal(ev.port, 9001);
  assert.throws(() => loadServiceConfig(undefined, { RINGLET_EVALUATOR_PORT: 'x' }, {}), /invalid evaluator config:\n {2}port/);
});
