// The benchmarks that compare Ringlet with its PyTorch peers, end to end through the CLI: the peers run
// (torch 2.13 from .venv, which scripts/setup.sh installs), check their own results, and their figures
// land beside Ringlet's. Sizes and steps are tiny: this checks behaviour, not speed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(import.meta.dirname, '..');

function ringlet(...args: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/ringlet.ts', ...args, '--json'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 600_000,
  });
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(r.status, 0, `ringlet ${args.join(' ')} failed: ${last.error ?? r.stderr.slice(-2000)}`);
  return last;
}

test('bench allreduce --peer: Gloo runs the same sizes beside the ring and the TCP ceiling', () => {
  const r = ringlet('bench', 'allreduce', '--workers', '2', '--sizes', '1,2', '--iterations', '2', '--peer');
  const rows = r.rows as Array<Record<string, number>>;
  assert.deepEqual(
    rows.map((row) => [row.workers, row.size_mib]),
    [
      [2, 1],
      [2, 2],
    ],
  );
  for (const row of rows) {
    assert.ok(row.busbw_bytes_per_s > 0 && row.tcp_ceiling_bytes_per_s > 0 && row.gloo_busbw_bytes_per_s > 0);
    assert.equal(row.busbw_vs_gloo, row.busbw_bytes_per_s / row.gloo_busbw_bytes_per_s);
  }
  assert.match(String(r.peer), /PyTorch 2\.13\.0.* Gloo/);
});

test('bench scaling: strong scaling on synthetic data trains the same model on 1 and 2 workers; DDP beside it', () => {
  const r = ringlet('bench', 'scaling', '--preset', 'nano', '--steps', '3', '--batch-size', '4', '--repeats', '1', '--peer');
  assert.equal(r.data, 'synthetic');
  assert.equal(r.global_batch, 4);
  // The same global batch, split 2/2: the same optimizer steps, so the same validation loss (float sums aside).
  const [one, two] = [r.val_loss_1 as number, r.val_loss_2 as number];
  assert.ok(Math.abs(one - two) <= 1e-5 * Math.abs(one), `val loss ${one} on 1 process, ${two} on 2 workers`);
  assert.ok((r.speedup as number) > 0 && (r.peer_speedup as number) > 0);
  assert.equal(r.speedup_vs_peer, (r.speedup as number) / (r.peer_speedup as number));
  assert.match(String(r.peer), /DDP over Gloo/);
});

test('bench scaling refuses a global batch that 2 workers cannot split evenly', () => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'cli/ringlet.ts', 'bench', 'scaling', '--batch-size', '5', '--json'],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 1);
  assert.match(JSON.parse(r.stdout.trim().split('\n').at(-1)!).error, /--batch-size 5 does not split evenly over 2 workers/);
});
