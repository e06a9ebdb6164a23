// The CPU peak MFU divides by is this machine's (observability/cpu-peak.ts): measured once with the addon's
// FMA microbenchmark, then read from a cache keyed by CPU model and kernel variant; a corrupt cache is
// reported and measured over; a configured figure wins; without the native kernels the reference machine's
// figure is used and labelled as borrowed; and a real `ringlet train` summary divides by the figure it names.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadNative } from '../kernels/native.js';
import { ObservabilityConfigSchema } from '../observability/config.js';
import { REFERENCE_CPU_PEAK_FLOPS_PER_CORE, cpuPeakCacheFile, cpuPeakKey, hostCpuPeak } from '../observability/cpu-peak.js';
import { resolvePeak } from '../observability/mfu.js';
import { nativeTestSkip } from './native-addon.js';
import { TINY_MODEL, prepareTinyDataset } from './tiny-dataset.js';

const root = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-cpu-peak-'));
const skip = nativeTestSkip();
const key = () => cpuPeakKey(loadNative()!.info().simd);
const plausible = (flops: number) => flops > 0.5e9 && flops < 5000e9; // GFLOP/s of any core, scalar to AVX-512
let dataset = '';

before(async () => {
  process.env.XDG_CACHE_HOME = path.join(work, 'cache'); // this process's resolvePeak calls, away from ~/.cache
  dataset = await prepareTinyDataset(root, work);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const readCache = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

test('the peak is measured once, cached beside other machines, and then read from the cache', { skip }, async () => {
  const cacheFile = path.join(work, 'once', 'cpu-peak.json');
  fs.mkdirSync(path.dirname(cacheFile));
  const other = { gflops_per_core: 222, measured_at: '2025-01-01T00:00:00.000Z' };
  fs.writeFileSync(cacheFile, JSON.stringify({ version: 1, peaks: { 'Other CPU | avx2 | 1 thread': other } }));
  const warnings: string[] = [];
  const first = await hostCpuPeak({ cacheFile, warn: (m) => warnings.push(m) });
  assert.equal(first.source, 'measured');
  assert.ok(plausible(first.flopsPerCore), `${first.flopsPerCore} FLOP/s`);
  const cached = readCache(cacheFile);
  assert.equal(cached.peaks[key()].gflops_per_core * 1e9, first.flopsPerCore);
  assert.deepEqual(cached.peaks['Other CPU | avx2 | 1 thread'], other, "another machine's entry is kept");
  assert.deepEqual(fs.readdirSync(path.dirname(cacheFile)), ['cpu-peak.json'], 'no temp file left behind');

  // A planted figure no measurement gives: the next call returns it, so it measured nothing.
  cached.peaks[key()].gflops_per_core = 12.345;
  fs.writeFileSync(cacheFile, JSON.stringify(cached));
  const second = await hostCpuPeak({ cacheFile, warn: (m) => warnings.push(m) });
  assert.equal(second.source, 'cached');
  assert.equal(second.flopsPerCore, 12.345e9);
  assert.match(second.detail, new RegExp(`cached in ${cacheFile}`));
  assert.deepEqual(warnings, []);
});

test('a corrupt cache is reported, measured over and replaced', { skip }, async () => {
  const cases = [
    { name: 'truncated', text: '{"version":1,"peaks":{"AMD', reason: /JSON/ },
    {
      name: 'negative',
      text: JSON.stringify({ version: 1, peaks: { [key()]: { gflops_per_core: -5, measured_at: 'x' } } }),
      reason: new RegExp(`peaks\\.${key().replace(/[|.()]/g, '\\$&')}\\.gflops_per_core`),
    },
  ];
  for (const c of cases) {
    const cacheFile = path.join(work, `corrupt-${c.name}.json`);
    fs.writeFileSync(cacheFile, c.text);
    const warnings: string[] = [];
    const peak = await hostCpuPeak({ cacheFile, warn: (m) => warnings.push(m) });
    assert.equal(peak.source, 'measured', c.name);
    assert.ok(plausible(peak.flopsPerCore), `${c.name}: ${peak.flopsPerCore} FLOP/s`);
    assert.equal(warnings.length, 1, c.name);
    assert.match(warnings[0], /^ignoring the corrupt CPU peak cache .* measuring the peak again$/);
    assert.ok(warnings[0].includes(cacheFile));
    assert.match(warnings[0], c.reason);
    assert.equal(readCache(cacheFile).peaks[key()].gflops_per_core * 1e9, peak.flopsPerCore, 'the cache is whole again');
  }
});

test('a configured peak wins over the measured one, and then nothing is measured', async () => {
  const config = ObservabilityConfigSchema.parse({ cpu_peak_flops_per_core: 50e9 });
  const peak = await resolvePeak(config, 'cpu', 2);
  assert.deepEqual([peak.flops, peak.source], [100e9, 'configured']);
  assert.equal(fs.existsSync(cpuPeakCacheFile()), false);
});

test('without the native kernels the reference figure is used, labelled as borrowed', () => {
  const script =
    "import { resolvePeak } from './observability/mfu.ts';" +
    "import { ObservabilityConfigSchema } from './observability/config.ts';" +
    "console.log(JSON.stringify(await resolvePeak(ObservabilityConfigSchema.parse({}), 'cpu', 2)));";
  const cache = path.join(work, 'no-native-cache');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, RINGLET_NATIVE: '0', XDG_CACHE_HOME: cache },
  });
  assert.equal(r.status, 0, r.stderr);
  const peak = JSON.parse(r.stdout);
  assert.equal(peak.source, 'reference');
  assert.equal(peak.flops, 2 * REFERENCE_CPU_PEAK_FLOPS_PER_CORE);
  assert.match(peak.detail, /^borrowed from one core of the reference Zen 5 machine; .*RINGLET_NATIVE=0/);
  assert.equal(fs.existsSync(cache), false, 'nothing measured, nothing cached');
});

/** `ringlet train` on the tiny model for a few steps with this cache folder; its JSON summary. */
function trainSummary(name: string, cacheHome: string) {
  const config = path.join(work, `${name}.json`);
  fs.writeFileSync(config, JSON.stringify({ model: TINY_MODEL, training: { batch_size: 4, eval_windows: 8 } }));
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'cli/ringlet.ts', 'train', '--config', config, '--data', dataset, '--out', path.join(work, name)].concat([
      '--max-steps',
      '8',
      '--json',
    ]),
    { cwd: root, encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: cacheHome } },
  );
  assert.equal(r.status, 0, r.stderr);
  return { summary: JSON.parse(r.stdout.trim().split('\n').at(-1)!), log: `${r.stdout}${r.stderr}` };
}

test("ringlet train measures this machine's peak, caches it, and its MFU divides by the figure it names", { skip }, () => {
  const cacheHome = path.join(work, 'train-cache');
  const cacheFile = path.join(cacheHome, 'ringlet', 'cpu-peak.json');
  const measured = trainSummary('measured', cacheHome).summary;
  assert.equal(measured.peak_source, 'measured');
  assert.equal(measured.peak_device, 'cpu');
  assert.equal(measured.peak_flops, readCache(cacheFile).peaks[key()].gflops_per_core * 1e9, 'wasm: one core');

  // The second run reads the cache: a planted figure shows it did not measure.
  const planted = readCache(cacheFile);
  planted.peaks[key()].gflops_per_core = 50.5;
  fs.writeFileSync(cacheFile, JSON.stringify(planted));
  const { summary, log } = trainSummary('cached', cacheHome);
  assert.equal(summary.peak_source, 'cached');
  assert.equal(summary.peak_flops, 50.5e9);
  assert.ok(summary.peak_detail.includes(cacheFile), summary.peak_detail);
  assert.match(log, /MFU against 50\.5 GFLOP\/s \(cpu ×1, fp32; cached: /);
  const mfu = (summary.tokens_per_s * summary.flops_per_token) / 50.5e9;
  assert.ok(summary.mfu > 0 && Math.abs(summary.mfu - mfu) <= 1e-12 * mfu, `mfu ${summary.mfu}, expected ${mfu}`);
});
