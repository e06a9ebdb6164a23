// `--check-config` on the commands a deployment runs: the whole config loaded as a start would load it, printed
// resolved with every secret redacted, exit 0; or the error and exit 1, starting nothing. Also `data prepare
// --if-missing`, and the metrics server's bind address (observability.metrics_host).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { Registry } from 'prom-client';
import { redactSecrets } from '../cli/check-config.js';
import { serveMetrics } from '../observability/metrics.js';
import { loadTrainConfig } from '../train/config.js';
import { inBatches } from './chart-contract.js';
import { prepareTinyDataset } from './tiny-dataset.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const JOIN_TOKEN = 'join-token-not-to-be-printed';
const API_TOKEN = 'api-token-not-to-be-printed-either';

/** `ringlet ARGS` with only PATH and `env` in its environment; the last line of stdout parsed as the summary. */
function ringlet(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ status: number; stdout: string; stderr: string; summary: any }>((resolve) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'cli/ringlet.ts'), ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const last = stdout.trim().split('\n').pop() ?? '';
        const status = err ? Number((err as { code?: number }).code ?? 1) : 0;
        resolve({ status, stdout, stderr, summary: last.startsWith('{') ? JSON.parse(last) : null });
      },
    ),
  );
}

/** Arguments written as one line (none here has a space in it). */
const argv = (line: string) => line.split(' ');

test('coordinator --check-config prints the resolved job config with the token redacted, and starts nothing', async () => {
  const env = {
    RINGLET_TOKEN: JOIN_TOKEN,
    RINGLET_MIN_WORKERS: '2',
    RINGLET_NATS_USER: 'u',
    RINGLET_NATS_PASSWORD: 'nats-password-secret',
  };
  const [r, human] = await Promise.all([
    ringlet(
      argv(
        'coordinator --data /d --out /o --max-steps 9 --port 7070 --metrics-port 9464 --metrics-host 0.0.0.0 ' +
          '--nats nats://127.0.0.1:1 --check-config --json',
      ),
      env,
    ),
    // Without --json the config is printed indented.
    ringlet(argv('coordinator --data /d --out /o --max-steps 9 --check-config'), { RINGLET_TOKEN: JOIN_TOKEN }),
  ]);
  assert.equal(r.status, 0, r.stderr);
  const { train, distributed, nats } = r.summary.config;
  assert.equal(train.training.max_steps, 9);
  assert.equal(train.observability.metrics_host, '0.0.0.0');
  assert.equal(distributed.port, 7070);
  assert.equal(distributed.min_workers, 2, 'the environment layer');
  assert.equal(distributed.token, '[redacted]');
  assert.equal(nats.password, '[redacted]');
  assert.deepEqual(nats.servers, ['nats://127.0.0.1:1'], 'no connection was tried: nothing listens there');
  for (const secret of [JOIN_TOKEN, 'nats-password-secret']) assert.ok(!(r.stdout + r.stderr).includes(secret));
  assert.equal(human.status, 0, human.stderr);
  assert.equal(JSON.parse(human.stdout).distributed.token, '[redacted]');
});

test('--check-config refuses what a start would refuse, naming it, with exit 1', async () => {
  const token = { RINGLET_TOKEN: JOIN_TOKEN };
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['coordinator --data /d --out /o', token, /training\.max_steps: give max_steps/],
    ['coordinator --data /d --out /o --max-steps 1', { RINGLET_TOKEN: 'short' }, /token: the join token must have at least 8/],
    ['coordinator --data /d --out /o --max-steps 1 --preset huge', token, /unknown preset "huge"/],
    [
      'coordinator --data /d --out /o --max-steps 1 --tls-ca /nonexistent/ca.crt --tls-cert /x --tls-key /y',
      token,
      /--tls-ca: cannot read the file \/nonexistent\/ca\.crt/,
    ],
    ['worker --coordinator coordinator-without-port', token, /--coordinator: "coordinator-without-port" is not host:port/],
    ['worker --coordinator c:7070', {}, /give the join token with --token or RINGLET_TOKEN/],
    ['worker --coordinator c:7070 --metrcs-port 1', token, /unknown option '--metrcs-port'/],
    ['evaluator', {}, /token: /],
    ['evaluator --nats nats://127.0.0.1:1', { RINGLET_EVALUATOR_TOKEN: API_TOKEN }, /bus_tokens: on NATS/],
    ['serve --port 99999', {}, /port: Too big/],
    ['serve --backend tpu', {}, /--backend: unknown backend "tpu"/],
    ['data prepare --input x --out y --vocab 10', {}, /vocabulary size must be an integer >= 257/],
    ['data prepare --input x --out y --spelling sv-1800', {}, /--spelling <scheme>' argument 'sv-1800' is invalid/],
  ];
  const results = await inBatches(cases, 4, ([line, env]) => ringlet(argv(`${line} --check-config --json`), env));
  cases.forEach(([line, , message], i) => {
    const r = results[i];
    assert.equal(r.status, 1, `${line}: ${r.stdout}`);
    assert.match(r.stderr, message, line);
    assert.doesNotMatch(r.stdout, /config_ok/);
  });
});

test('worker, evaluator, serve and data prepare print their resolved settings with secrets redacted', async () => {
  const [worker, evaluator, serve, prepare] = await Promise.all([
    ringlet(argv('worker --coordinator c.example:7070 --host w-0.example --data-root /data --check-config --json'), {
      RINGLET_TOKEN: JOIN_TOKEN,
    }),
    ringlet(argv('evaluator --port 8470 --nats nats://127.0.0.1:1 --check-config --json'), {
      RINGLET_EVALUATOR_TOKEN: API_TOKEN,
      RINGLET_EVALUATOR_BUS_TOKENS: `${JOIN_TOKEN},another-join-token`,
      RINGLET_NATS_TOKEN: 'nats-token-secret',
    }),
    ringlet(argv('serve --host 0.0.0.0 --check-config --json'), { RINGLET_EVALUATOR_TOKEN: API_TOKEN }),
    ringlet(argv('data prepare --input /corpus --out /data/eng --if-missing --check-config --json')),
  ]);
  assert.equal(worker.status, 0, worker.stderr);
  assert.equal(worker.summary.config.worker.token, '[redacted]');
  assert.equal(worker.summary.config.worker.host, 'w-0.example');
  assert.deepEqual(worker.summary.config.worker.limits.dataRoots, ['/data']);

  assert.equal(evaluator.status, 0, evaluator.stderr);
  assert.equal(evaluator.summary.config.evaluator.token, '[redacted]');
  assert.deepEqual(evaluator.summary.config.evaluator.bus_tokens, ['[redacted]', '[redacted]']);
  assert.equal(evaluator.summary.config.nats.token, '[redacted]');
  for (const secret of [API_TOKEN, JOIN_TOKEN, 'nats-token-secret']) assert.ok(!evaluator.stdout.includes(secret));

  assert.equal(serve.status, 0, serve.stderr);
  assert.equal(serve.summary.config.serve.host, '0.0.0.0');
  assert.equal(serve.summary.config.serve.token, '[redacted]');

  assert.equal(prepare.status, 0, prepare.stderr);
  assert.deepEqual(prepare.summary.config.prepare, {
    inputs: ['/corpus'],
    outDir: '/data/eng',
    vocab: 8192,
    seed: 1234,
    valFraction: 0.05,
    filters: 'on',
    spelling: 'none',
    ifMissing: true,
  });
});

test('redactSecrets replaces secret fields at any depth and keeps everything else', () => {
  assert.deepEqual(
    redactSecrets({
      a: { token: 't', password: 'p', bus_tokens: ['x', 'y'], port: 1 },
      token: undefined,
      list: [{ token: 'z' }],
    }),
    {
      a: { token: '[redacted]', password: '[redacted]', bus_tokens: ['[redacted]', '[redacted]'], port: 1 },
      token: undefined,
      list: [{ token: '[redacted]' }],
    },
  );
});

test('data prepare --if-missing leaves a prepared dataset alone and prepares a missing one', { timeout: 120_000 }, async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-if-missing-'));
  try {
    const dataset = await prepareTinyDataset(ROOT, work);
    const manifest = fs.readFileSync(path.join(dataset, 'manifest.json'), 'utf8');
    const corpus = path.join(work, 'corpus');
    const prepareIfMissing = (out: string) =>
      ringlet(argv(`data prepare --input ${corpus} --out ${out} --vocab 512 --if-missing --json`));
    const again = await prepareIfMissing(dataset);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.summary.skipped, true);
    assert.equal(again.summary.vocab_size, 512);
    assert.equal(fs.readFileSync(path.join(dataset, 'manifest.json'), 'utf8'), manifest, 'untouched');
    const fresh = path.join(work, 'fresh');
    const made = await prepareIfMissing(fresh);
    assert.equal(made.status, 0, made.stderr);
    assert.equal(made.summary.skipped, undefined);
    assert.ok(fs.existsSync(path.join(fresh, 'manifest.json')));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('the metrics server binds 127.0.0.1 unless metrics_host says otherwise', async () => {
  const flags = { data: 'd', out: 'o', maxSteps: 1 };
  assert.equal(loadTrainConfig(undefined, flags).observability.metrics_host, '127.0.0.1');
  assert.equal(loadTrainConfig(undefined, { ...flags, metricsHost: '0.0.0.0' }).observability.metrics_host, '0.0.0.0');
  const registry = new Registry();
  const server = await serveMetrics(0, registry, '0.0.0.0');
  try {
    assert.equal(server.url, `http://0.0.0.0:${server.port}/metrics`);
    // Bound to every address: loopback reaches it too.
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/metrics`)).status, 200);
  } finally {
    await server.close();
  }
});
