// The chaos suite's short run, as CI runs it: every scenario of `ringlet chaos` three times against a
// small 3-worker job of real processes. Each trial must survive, the coordinator's audit must find no
// window skipped or repeated, and the final validation loss must stay within tolerance of a fault-free run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { prepareTinyDataset } from './tiny-dataset.js';
import { SCENARIOS } from '../chaos/scenarios.js';
import { summarize, type TrialResult } from '../chaos/run.js';

const root = path.resolve(import.meta.dirname, '..');

test(
  'ringlet chaos all --trials 3: every trial survives, nothing is lost or repeated, the loss is unchanged',
  { timeout: 1_200_000 },
  async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-chaos-test-'));
    const data = await prepareTinyDataset(root, work);
    const run = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(root, 'cli/ringlet.ts'),
        'chaos',
        'all',
        '--data',
        data,
        '--trials',
        '3',
        '--work',
        path.join(work, 'runs'),
        '--json',
      ],
      { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 },
    );
    const summary = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}');
    assert.equal(run.status, 0, `${run.stderr.slice(-4000)}`);
    assert.deepEqual(
      summary.scenarios.map((s: { scenario: string }) => s.scenario),
      SCENARIOS.map((s) => s.name),
      'every scenario ran: none is skipped on this machine',
    );
    for (const s of summary.scenarios) {
      assert.equal(s.survived, 3, `${s.scenario}: ${s.survived} of 3 survived`);
      assert.deepEqual([s.samples_skipped, s.samples_repeated], [0, 0], s.scenario);
      assert.ok(s.within_tolerance, `${s.scenario}: val loss off by ${s.val_loss_rel_diff_max}`);
    }
    const trials = summary.trials as TrialResult[];
    // The faults did happen: a killed process was restarted; a zombie, a full disk or a cut link re-formed the ring.
    // (corrupt-checkpoint and rotten-restore survive only because the coordinator, restarted or live, reads
    // the restore point back and passes over a corrupted one.)
    for (const name of ['kill-worker', 'kill-coordinator', 'corrupt-checkpoint', 'rotten-restore'])
      assert.ok(
        trials.filter((t) => t.scenario === name).every((t) => t.process_restarts >= 1),
        name,
      );
    for (const name of ['kill-worker', 'zombie-worker', 'link-cut', 'rotten-restore'])
      assert.ok(
        trials.filter((t) => t.scenario === name).every((t) => t.ring_reforms >= 1),
        name,
      );
  },
);

test('the chaos summary counts a failed trial as failed', () => {
  const ok: TrialResult = {
    scenario: 'x',
    trial: 1,
    fault_step: 9,
    survived: true,
    ring_reforms: 1,
    checkpoints_skipped: 0,
    process_restarts: 1,
    recover_s: 1,
    samples_skipped: 0,
    samples_repeated: 0,
    val_loss: 5,
    val_loss_rel_diff: 0,
  };
  const s = summarize('x', [ok, { ...ok, trial: 2, survived: false, samples_repeated: 3, val_loss_rel_diff: 0.5 }]);
  assert.deepEqual([s.survived, s.samples_repeated, s.within_tolerance], [1, 3, false]);
});
