// End to end on a small real corpus: prepare, train, resume exactly, stop on SIGTERM, generate.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { TINY_MODEL, prepareTinyDataset } from './tiny-dataset.js';
import { readCheckpoint } from '../lm/checkpoint.js';
import { loadTrainConfig } from '../train/config.js';
import { train } from '../train/run.js';
import { ProgressLog } from '../train/progress.js';

const root = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-train-'));
const dataset = path.join(work, 'data');
const configFile = path.join(work, 'config.json');

function cli(args: string[], options: { input?: string } = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'cli/ringlet.ts'), ...args], {
    encoding: 'utf8',
    cwd: root,
    ...options,
  });
}
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!);

before(async () => {
  await prepareTinyDataset(root, work);
  fs.writeFileSync(
    configFile,
    JSON.stringify({ model: TINY_MODEL, training: { batch_size: 4, eval_windows: 8, log_every: 1000 } }),
  );
});

const config = (out: string, flags: Record<string, unknown>) => loadTrainConfig(configFile, { data: dataset, out, ...flags });
const quiet = (out: string) => new ProgressLog(out, { live: false });

test('N steps, then a resume for N more, gives the same weights as 2N steps straight', async () => {
  const straight = path.join(work, 'straight');
  const resumed = path.join(work, 'resumed');
  const a = await train(config(straight, { maxSteps: 6, evalEvery: 3, checkpointEvery: 3 }), {
    resume: false,
    log: quiet(straight),
  });
  const b1 = await train(config(resumed, { maxSteps: 6, untilStep: 3, evalEvery: 3, checkpointEvery: 3 }), {
    resume: false,
    log: quiet(resumed),
  });
  assert.equal(b1.step, 3);
  const b2 = await train(config(resumed, { maxSteps: 6, evalEvery: 3, checkpointEvery: 3 }), {
    resume: true,
    log: quiet(resumed),
  });
  assert.equal(b2.step, 6);
  assert.equal(a.val_loss, b2.val_loss);
  const wa = await readCheckpoint(a.checkpoint, { withOptimizer: true });
  const wb = await readCheckpoint(b2.checkpoint, { withOptimizer: true });
  assert.deepEqual(wa.meta.data_cursor, wb.meta.data_cursor);
  for (const [name, t] of wa.weights) assert.deepEqual(wb.weights.get(name)!.data, t.data, `weight ${name}`);
  for (const [name, t] of wa.optimizer!) assert.deepEqual(wb.optimizer!.get(name)!.data, t.data, `moment ${name}`);
});

test('training lowers the validation loss below the unigram baseline and writes metrics', async () => {
  const out = path.join(work, 'learn');
  const s = await train(config(out, { maxSteps: 200, batchSize: 8, lr: 1e-2, warmupSteps: 10 }), {
    resume: false,
    log: quiet(out),
  });
  assert.ok(s.val_loss < s.unigram_loss, `val loss ${s.val_loss} vs unigram ${s.unigram_loss}`);
  assert.ok(s.val_bpb > 0 && s.val_bpb < 8);
  const lines = fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.type === 'eval' && l.step === 200));
});

test('SIGTERM writes a checkpoint and exits cleanly with a JSON summary', async () => {
  const out = path.join(work, 'signal');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(root, 'cli/ringlet.ts'),
      'train',
      '--config',
      configFile,
      '--data',
      dataset,
      '--out',
      out,
      '--max-steps',
      '100000',
      '--log-every',
      '1',
      '--json',
    ],
    { cwd: root },
  );
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  await new Promise<void>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      if (/step 2\b/.test(d.toString())) resolve();
    });
  });
  child.kill('SIGTERM');
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 0);
  const summary = lastJson(stdout);
  assert.equal(summary.interrupted, true);
  assert.ok(summary.step >= 2 && summary.step < 100000);
  const ckpt = await readCheckpoint(out);
  assert.equal(ckpt.meta.step, summary.step);
});

test('an invalid config is refused naming the field and the allowed range', () => {
  const r = cli(['train', '--data', dataset, '--out', path.join(work, 'bad'), '--max-steps', '10', '--lr', '5', '--json']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /optimizer\.lr: Too big: expected number to be <=1/);
  assert.match(lastJson(r.stdout).error, /optimizer\.lr/);
  const missing = cli(['train', '--data', dataset, '--out', path.join(work, 'bad'), '--json']);
  assert.match(missing.stderr, /training\.max_steps: give max_steps/);
});

test('resuming with a different model shape is refused', async () => {
  const out = path.join(work, 'shape');
  await train(config(out, { maxSteps: 1 }), { resume: false, log: quiet(out) });
  fs.writeFileSync(
    path.join(work, 'wider.json'),
    JSON.stringify({ model: { ...TINY_MODEL, d_model: 64 }, training: { batch_size: 4, eval_windows: 8 } }),
  );
  await assert.rejects(
    train(loadTrainConfig(path.join(work, 'wider.json'), { data: dataset, out, maxSteps: 2 }), { resume: true, log: quiet(out) }),
    /d_model=32.*d_model=64/,
  );
});

test('generate streams text, keeps the newest tokens of a long prompt and says so', () => {
  const out = path.join(work, 'straight');
  const r = cli([
    'generate',
    '--checkpoint',
    out,
    '--prompt',
    'Det var en gång '.repeat(40),
    '--max-tokens',
    '8',
    '--seed',
    '3',
    '--json',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const s = lastJson(r.stdout);
  assert.equal(s.prompt_truncated, true);
  assert.equal(s.prompt_tokens, 31);
  assert.match(r.stderr, /keeping the newest 31/);
  assert.ok(s.tokens_per_s > 0);
  const again = lastJson(
    cli(['generate', '--checkpoint', out, '--prompt', 'Det var', '--max-tokens', '8', '--seed', '3', '--json']).stdout,
  );
  const same = lastJson(
    cli(['generate', '--checkpoint', out, '--prompt', 'Det var', '--max-tokens', '8', '--seed', '3', '--json']).stdout,
  );
  assert.equal(again.text, same.text);
});

test('a checkpoint due before the first evaluation is written without validation figures', async () => {
  const out = path.join(work, 'early-checkpoint');
  await train(config(out, { maxSteps: 4, checkpointEvery: 2, evalEvery: 100 }), { resume: false, log: quiet(out) });
  const early = await readCheckpoint(path.join(out, 'checkpoints', 'step-00000002'));
  assert.equal(early.meta.metrics?.val_loss, undefined);
  assert.ok(Number.isFinite(early.meta.metrics?.energy_j));
  assert.ok(Number.isFinite((await readCheckpoint(out)).meta.metrics?.val_loss));
});
