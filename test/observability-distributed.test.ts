// Issue 5's contract for several workers: `ringlet train --workers 2 --metrics-port 0` serves the whole
// job's metrics from the coordinator (the URL is in its `listening` log record), fed by the workers' step
// reports, and the summary carries the job's energy and MFU as a single-process run's does; the MFU peak is
// this machine's per-core figure (from a cache planted here) times the workers.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TINY_MODEL, prepareTinyDataset } from './tiny-dataset.js';
import { loadNative } from '../kernels/native.js';
import { REFERENCE_CPU_PEAK_FLOPS_PER_CORE, cpuPeakKey } from '../observability/cpu-peak.js';

const root = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-obs-dist-'));
const configFile = path.join(work, 'config.json');
const cacheHome = path.join(work, 'cache');
// The peak per core the coordinator should use: the cached figure planted below, or without the native
// kernels (nothing to measure with) the reference machine's, labelled so.
const native = loadNative();
const expectedPeak = native
  ? { perCore: 61.25e9, source: 'cached' }
  : { perCore: REFERENCE_CPU_PEAK_FLOPS_PER_CORE, source: 'reference' };
let dataset = '';
let child: ChildProcess | null = null;

before(async () => {
  dataset = await prepareTinyDataset(root, work);
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      model: TINY_MODEL,
      training: { batch_size: 4, eval_windows: 8, eval_every: 1000, log_every: 1000 },
      checkpoint: { every: 1000, keep_last: 1 },
      observability: { power_poll_s: 0.2 },
    }),
  );
  if (native) {
    const peaks = { [cpuPeakKey(native.info().simd)]: { gflops_per_core: 61.25, measured_at: new Date().toISOString() } };
    fs.mkdirSync(path.join(cacheHome, 'ringlet'), { recursive: true });
    fs.writeFileSync(path.join(cacheHome, 'ringlet', 'cpu-peak.json'), JSON.stringify({ version: 1, peaks }));
  }
});

after(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
});

/** The value of an unlabelled sample, or of the first sample of a labelled metric; NaN when absent. */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
}

test('the coordinator serves the metrics of a 2-worker job', { timeout: 120_000 }, async () => {
  child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'cli/ringlet.ts',
      'train',
      '--config',
      configFile,
      '--data',
      dataset,
      '--out',
      path.join(work, 'run'),
      '--max-steps',
      '100000',
      '--workers',
      '2',
      '--metrics-port',
      '0',
      '--json',
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XDG_CACHE_HOME: cacheHome } },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child!.once('exit', resolve));

  const deadline = Date.now() + 90_000;
  let text = '';
  for (;;) {
    if (child.exitCode !== null) assert.fail(`training exited early:\n${stderr}`);
    assert.ok(Date.now() < deadline, `no training metrics in time:\n${text}\n${stderr}`);
    const url = /"msg":"listening".*?"metrics":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(stderr)?.[1];
    if (url) {
      text = await (await fetch(url)).text();
      if (sample(text, 'ringlet_train_tokens_total') > 0 && sample(text, 'ringlet_train_steps_total') >= 3) break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(sample(text, 'ringlet_allreduce_bytes_total') > 0, 'all-reduce bytes');
  assert.ok(sample(text, 'ringlet_allreduce_bus_bandwidth_bytes_per_second') > 0, 'bus bandwidth');
  assert.equal(sample(text, 'ringlet_workers_live'), 2);
  assert.equal(sample(text, 'ringlet_workers_expected'), 2);
  assert.ok(sample(text, 'ringlet_train_tokens_per_second') > 0);
  assert.ok(Number.isFinite(sample(text, 'ringlet_train_loss')));
  assert.ok(sample(text, 'ringlet_mfu_ratio') > 0);
  // the peak covers both workers: a CPU core each
  assert.equal(sample(text, 'ringlet_peak_flops'), 2 * expectedPeak.perCore);
  assert.match(text, new RegExp(`^ringlet_mfu_ratio\\{.*peak_flops="${2 * expectedPeak.perCore}"\\} `, 'm'));
  assert.ok(sample(text, 'ringlet_energy_joules_total') > 0, 'energy');
  assert.ok(sample(text, 'ringlet_emissions_grams_total') > 0, 'emissions');
  assert.ok(sample(text, 'ringlet_power_watts') > 0, 'power');
  // Workers do not serve metrics: only the coordinator's listening record names a metrics URL.
  assert.equal(stderr.match(/http:\/\/127\.0\.0\.1:\d+\/metrics/g)?.length, 1);

  child.kill('SIGTERM'); // ends the job after the step in flight, with a final checkpoint
  assert.equal(await exited, 0, stderr);
  const summary = JSON.parse(stdout.trim().split('\n').at(-1)!);
  assert.equal(summary.workers, 2);
  // The stop reaches each worker in a step report's reply, which a worker reads only after computing the next
  // step's gradients: both still end on the same step, with the same weights, nothing repeated or skipped.
  assert.equal(summary.ranks_identical, true, JSON.stringify(summary));
  assert.equal(summary.samples_repeated, 0);
  assert.equal(summary.samples_skipped, 0);
  assert.equal(summary.interrupted, true);
  assert.ok(summary.energy_j > 0 && summary.emissions_g > 0 && summary.mfu > 0, JSON.stringify(summary));
  assert.equal(summary.peak_flops, 2 * expectedPeak.perCore);
  assert.equal(summary.peak_source, expectedPeak.source);
  const mfu = (summary.tokens_per_s * summary.flops_per_token) / summary.peak_flops;
  assert.ok(Math.abs(summary.mfu - mfu) <= 1e-12 * mfu, `mfu ${summary.mfu}, expected ${mfu}`);
});
