// `ringlet study` end to end on study/smoke.yml (two cells of a few seconds on three short novels per
// language): the plan runs, every result file holds what the report needs, a finished cell is not run
// again, an interrupted cell resumes from its own checkpoint, and bad plans are refused by field.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { CellResultSchema, DatasetResultSchema } from '../study/results.js';

const root = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-study-'));
const plan = path.join(root, 'study/smoke.yml');
const dirs = (name: string) => ['--work-dir', path.join(work, 'work'), '--results-dir', path.join(work, name)];
const entry = ['--import', 'tsx', path.join(root, 'cli/ringlet.ts')];

function cli(args: string[]) {
  return spawnSync(process.execPath, [...entry, ...args], { encoding: 'utf8', cwd: root });
}
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!);
const cellFiles = (results: string) =>
  fs
    .readdirSync(path.join(results, 'cells'))
    .map((f) => CellResultSchema.parse(JSON.parse(fs.readFileSync(path.join(results, 'cells', f), 'utf8'))));

let first: ReturnType<typeof cli>;
before(() => {
  first = cli(['study', 'run', '--plan', plan, ...dirs('results'), '--json']);
});

test('the smoke plan runs both cells, and each result holds curve, held-out windows, benchmark items and samples', () => {
  assert.equal(first.status, 0, first.stderr);
  const summary = lastJson(first.stdout);
  assert.deepEqual(summary.ran.sort(), ['lang/eng-nano-s1', 'lang/swe-nano-s1']);
  assert.equal(summary.cached, 0);
  const cells = cellFiles(path.join(work, 'results'));
  assert.equal(cells.length, 2);
  for (const cell of cells) {
    const language = cell.languages[0];
    assert.ok(cell.train.seconds > 0 && cell.train.tokens_per_s > 0, `${cell.id}: trained for ${cell.train.seconds} s`);
    assert.ok(cell.curve.length >= 3, `${cell.id}: a learning curve of ${cell.curve.length} points`);
    assert.ok(cell.curve.every((p, i) => i === 0 || p.bytes > cell.curve[i - 1].bytes));
    // The budget in bytes decides the steps: the bytes trained on are within one step of it.
    const bytesPerStep = cell.train.bytes / cell.train.steps;
    assert.ok(
      Math.abs(cell.train.bytes - cell.budget_bytes) <= bytesPerStep,
      `${cell.id}: ${cell.train.bytes} bytes for ${cell.budget_bytes}`,
    );
    const heldOut = cell.held_out[language]!;
    assert.equal(heldOut.windows.length, 8);
    const nats = heldOut.windows.reduce((s, [n]) => s + n, 0);
    const bytes = heldOut.windows.reduce((s, [, b]) => s + b, 0);
    assert.ok(Math.abs(heldOut.bpb - nats / Math.LN2 / bytes) < 1e-9, 'bpb is the windows’ nats over their bytes');
    assert.ok(heldOut.bpb > 0.5 && heldOut.bpb < 8.5, `${cell.id}: held-out bpb ${heldOut.bpb}`);
    const [benchmark] = cell.benchmarks;
    assert.equal(benchmark.suite, language === 'eng' ? 'blimp' : 'dalaj');
    assert.equal(benchmark.item_ids.length, benchmark.item_scores.length);
    if (language === 'eng') assert.equal(benchmark.item_ids.length, 2 * Object.keys(benchmark.groups!).length);
    assert.equal(cell.samples.length, 6);
    assert.ok(cell.samples.every((s) => s.language === language && s.text.length > 0 && s.readability.words > 0));
    assert.equal(cell.routing, undefined);
  }
  for (const name of ['eng', 'swe']) {
    const d = DatasetResultSchema.parse(JSON.parse(fs.readFileSync(path.join(work, 'results/datasets', `${name}.json`), 'utf8')));
    assert.ok(d.fertility.bytes_per_token > 1 && d.fertility.words_per_token > 0 && d.fertility.words_per_token < 1);
    assert.ok(d.reference_readability.length > 0);
  }
});

test('a second run finds every cell done and trains nothing; another --scale is another set of cells', () => {
  const again = cli(['study', 'run', '--plan', plan, ...dirs('results'), '--json']);
  assert.equal(again.status, 0, again.stderr);
  const summary = lastJson(again.stdout);
  assert.equal(summary.cached, 2);
  assert.deepEqual(summary.ran, []);
  const listed = lastJson(cli(['study', 'cells', '--plan', plan, ...dirs('results'), '--json']).stdout);
  assert.equal(listed.done, 2);
  const scaled = lastJson(cli(['study', 'cells', '--plan', plan, ...dirs('results'), '--scale', '2', '--json']).stdout);
  assert.equal(scaled.done, 0);
  assert.ok(scaled.cells.every((c: { budget_bytes: number }) => c.budget_bytes === 80000));
});

test('a cell stopped mid-training resumes from its own checkpoint on the next run', async () => {
  const results = dirs('resumed');
  const args = ['study', 'run', '--plan', plan, ...results, '--scale', '6', '--cell', 'lang/eng-nano-s1', '--json'];
  const listed = lastJson(cli(['study', 'cells', '--plan', plan, ...results, '--scale', '6', '--json']).stdout);
  const { hash } = listed.cells.find((c: { id: string }) => c.id === 'lang/eng-nano-s1');
  const runDir = path.join(work, 'work', 'cells', `lang--eng-nano-s1-${hash.slice(0, 12)}`);
  const child = spawn(process.execPath, [...entry, ...args], { cwd: root, detached: true, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const checkpointed = () => fs.existsSync(path.join(runDir, 'checkpoints', 'latest'));
  for (let i = 0; i < 1200 && !checkpointed(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(checkpointed(), 'the cell wrote a checkpoint');
  process.kill(-child.pid!, 'SIGTERM'); // the study process and its training child, as Ctrl-C would
  await exited;
  assert.ok(!fs.existsSync(path.join(work, 'resumed', 'cells', 'lang--eng-nano-s1.json')), 'no result for an unfinished cell');

  const resumed = cli(args);
  assert.equal(resumed.status, 0, resumed.stderr);
  const starts = fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"type":"start"'))
    .map((l) => JSON.parse(l));
  assert.ok(starts.length >= 2, 'training started twice');
  assert.ok(starts.at(-1).resumed_from_step > 0, `resumed from step ${starts.at(-1).resumed_from_step}`);
  const [cell] = cellFiles(path.join(work, 'resumed'));
  assert.equal(cell.train.steps, cell.curve.at(-1)!.step);
});

test('a plan with a group naming an unknown dataset, or a bad budget, is refused by field', () => {
  const bad = path.join(work, 'bad.yml');
  fs.writeFileSync(
    bad,
    fs
      .readFileSync(plan, 'utf8')
      .replace('datasets: [eng, swe]', 'datasets: [eng, nope]')
      .replace('budget_bytes: 40000', 'budget_bytes: -1'),
  );
  const r = cli(['study', 'run', '--plan', bad, ...dirs('bad'), '--json']);
  assert.equal(r.status, 1);
  const { error } = lastJson(r.stdout);
  assert.match(error, /groups\.lang\.datasets\.1: no dataset "nope"/);
  assert.match(error, /groups\.lang\.budget_bytes/);
  assert.ok(!fs.existsSync(path.join(work, 'bad')), 'nothing written');
});

test('the report is written from the results', () => {
  const out = path.join(work, 'study.md');
  const r = cli(['study', 'report', '--plan', plan, ...dirs('results'), '--out', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const text = fs.readFileSync(out, 'utf8');
  const cells = cellFiles(path.join(work, 'results'));
  for (const cell of cells)
    assert.ok(text.includes(cell.held_out[cell.languages[0]]!.bpb.toFixed(3)), `${cell.id}'s bpb in the report`);
});
