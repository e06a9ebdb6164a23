// The acceptance test of issue 5: a real Prometheus (Debian package) scrapes a running training job on
// loopback, and every query of the Grafana dashboard returns data through Prometheus's HTTP API; the
// alert rules pass promtool's check and its unit tests; the dashboard file is what its generator writes.
// Power assertions follow the host (test/power-host.ts): the sources the product's detection finds here,
// and on a fake host with RAPL and a GPU, rapl and nvidia-smi.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TINY_MODEL, prepareTinyDataset } from './tiny-dataset.js';
import { readCheckpoint } from '../lm/checkpoint.js';
import { loadTrainConfig } from '../train/config.js';
import { ProgressLog } from '../train/progress.js';
import { train } from '../train/run.js';
import { DASHBOARD_FILE, dashboardJson } from '../observability/grafana/build-dashboard.js';
import { ObservabilityConfigSchema } from '../observability/config.js';
import { assertPowerSeries, hostPower, startFakeGpuHost, type HostPower } from './power-host.js';

const root = path.resolve(import.meta.dirname, '..');
const rulesDir = path.join(root, 'observability/prometheus');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-obs-prom-'));
const dataset = path.join(work, 'data');
const configFile = path.join(work, 'config.json');
const children: ChildProcess[] = [];
let host: HostPower; // how this machine's power is read, as the product detects it

/** A training config for the tiny model with these observability settings. */
function writeConfig(file: string, observability: Record<string, unknown>): void {
  fs.writeFileSync(
    file,
    JSON.stringify({
      model: TINY_MODEL,
      training: { batch_size: 4, eval_windows: 8, eval_every: 25, log_every: 1000 },
      checkpoint: { every: 50, keep_last: 1 },
      observability,
    }),
  );
}

before(async () => {
  await prepareTinyDataset(root, work);
  const observability = { power_poll_s: 0.5 };
  writeConfig(configFile, observability);
  host = await hostPower(ObservabilityConfigSchema.parse(observability));
});

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
});

function start(command: string, args: string[]): ChildProcess & { output: () => string; exited: Promise<number | null> } {
  const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return Object.assign(child, { output: () => output, exited });
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | null> | T | null): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Every Prometheus expression in the dashboard, with Grafana's $__rate_interval filled in. */
function dashboardQueries(): Array<{ panel: string; expr: string }> {
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8'));
  const queries = [];
  for (const panel of dashboard.panels)
    for (const target of panel.targets ?? [])
      queries.push({ panel: panel.title, expr: target.expr.replaceAll('$__rate_interval', '10s') });
  return queries;
}

test('Prometheus scrapes a running training job and every dashboard query returns data', { timeout: 90_000 }, async () => {
  const trainer = start(process.execPath, [
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
    '--time-limit',
    '120',
    '--metrics-port',
    '0',
    '--json',
  ]);
  const metricsUrl = await waitFor('the metrics server', 30_000, () => {
    if (trainer.exitCode !== null) throw new Error(`training exited early:\n${trainer.output()}`);
    return /metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(trainer.output())?.[1] ?? null;
  });

  // The endpoint itself: the contract names with their types, Node's process metrics, nothing else served.
  const text = await (await fetch(metricsUrl)).text();
  for (const [name, type] of [
    ['ringlet_train_tokens_total', 'counter'],
    ['ringlet_mfu_ratio', 'gauge'],
    ['ringlet_power_watts', 'gauge'],
    ['ringlet_energy_joules_total', 'counter'],
    ['ringlet_emissions_grams_total', 'counter'],
    ['ringlet_allreduce_bytes_total', 'counter'],
    ['ringlet_train_step_duration_seconds', 'histogram'],
    ['ringlet_process_cpu_user_seconds_total', 'counter'],
  ])
    assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) assert.match(line, /^ringlet_/);
  assert.equal((await fetch(metricsUrl.replace('/metrics', '/other'))).status, 404);

  const promPort = await freePort();
  const promConfig = path.join(work, 'prometheus.yml');
  fs.writeFileSync(
    promConfig,
    [
      'global: { scrape_interval: 500ms, evaluation_interval: 1s }',
      `rule_files: ['${path.join(rulesDir, 'ringlet-rules.yml')}']`,
      'scrape_configs:',
      '  - job_name: ringlet',
      `    static_configs: [{ targets: ['${new URL(metricsUrl).host}'] }]`,
      '',
    ].join('\n'),
  );
  const prometheus = start('prometheus', [
    `--config.file=${promConfig}`,
    `--storage.tsdb.path=${path.join(work, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
    '--log.level=warn',
  ]);
  const api = `http://127.0.0.1:${promPort}/api/v1`;
  const queries = dashboardQueries();
  assert.ok(queries.length >= 15, `dashboard has ${queries.length} queries`);

  const query = async (expr: string) => {
    const res = await fetch(`${api}/query?query=${encodeURIComponent(expr)}`).catch(() => null);
    if (!res?.ok) return null;
    type Result = { metric: Record<string, string>; value: [number, string] };
    const body = (await res.json()) as { status: string; data: { result: Result[] } };
    return body.status === 'success' ? body.data.result : null;
  };
  const missing = await waitFor('every panel query to return data', 60_000, async () => {
    if (prometheus.exitCode !== null) throw new Error(`prometheus exited:\n${prometheus.output()}`);
    if (trainer.exitCode !== null) throw new Error(`training exited:\n${trainer.output()}`);
    const empty = [];
    for (const q of queries) if (!(await query(q.expr))?.length) empty.push(q);
    return empty.length === 0 ? empty : null;
  }).catch(async (err) => {
    const still = [];
    for (const q of queries) if (!(await query(q.expr))?.length) still.push(`${q.panel}: ${q.expr}`);
    throw new Error(`${(err as Error).message}; no data for:\n${still.join('\n')}`);
  });
  assert.deepEqual(missing, []);

  const tokens = await query('ringlet_train_tokens_total');
  assert.ok(Number(tokens![0].value[1]) > 0);
  const power = await query('ringlet_power_watts');
  assertPowerSeries(
    power!.map((r) => ({ source: r.metric.source, device: r.metric.device, watts: Number(r.value[1]) })),
    host,
  );
  const rules = (await (await fetch(`${api}/rules`)).json()) as { data: { groups: Array<{ rules: unknown[] }> } };
  assert.equal(rules.data.groups[0].rules.length, 5);

  trainer.kill('SIGTERM');
  assert.equal(await trainer.exited, 0);
  const summary = JSON.parse(trainer.output().trim().split('\n').at(-1)!);
  assert.ok(summary.energy_j > 0 && summary.emissions_g > 0 && summary.mfu > 0, JSON.stringify(summary));
  assert.equal(summary.energy_estimated, host.estimated);
  prometheus.kill('SIGTERM');
  assert.notEqual(await prometheus.exited, null);
});

/** The step records of a run's metrics.jsonl. */
function stepRecords(out: string) {
  return fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((l) => l.type === 'step');
}

/** The `ringlet_power_watts` series of a /metrics text. */
function powerSeries(text: string): Array<{ source: string; device: string; watts: number }> {
  const series = [];
  for (const m of text.matchAll(/^ringlet_power_watts\{(.*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    series.push({ source: labels.source, device: labels.device, watts: Number(m[2]) });
  }
  return series;
}

test(
  'on a host with RAPL and nvidia-smi, power is labelled rapl and nvidia-smi and nothing is estimated',
  { timeout: 90_000 },
  async () => {
    const fake = startFakeGpuHost(path.join(work, 'gpu-host'));
    try {
      const observability = { power_poll_s: 0.2, ...fake.observability };
      const gpuHost = await hostPower(ObservabilityConfigSchema.parse(observability));
      assert.deepEqual(gpuHost.sources, ['nvidia-smi', 'rapl'], "the product's detection finds the fake host's meters");
      const config = path.join(work, 'gpu-host.json');
      writeConfig(config, observability);
      const out = path.join(work, 'gpu-host-run');
      const trainer = start(process.execPath, [
        ...['--import', 'tsx', 'cli/ringlet.ts', 'train', '--config', config, '--data', dataset, '--out', out],
        ...['--time-limit', '120', '--log-every', '1', '--metrics-port', '0', '--json'],
      ]);
      const metricsUrl = await waitFor('the metrics server', 30_000, () => {
        if (trainer.exitCode !== null) throw new Error(`training exited early:\n${trainer.output()}`);
        return /metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(trainer.output())?.[1] ?? null;
      });
      // Both meters have sampled twice (a reading is an interval), a few steps are done, and the RAPL
      // counter has moved between two samples (this process moves it on a timer, which a loaded machine
      // may delay past one poll: the reading is then 0 W until the next).
      const series = await waitFor('power readings from both meters, the RAPL one moving', 30_000, async () => {
        const text = await (await fetch(metricsUrl)).text();
        const steps = Number(/^ringlet_train_steps_total (\S+)$/m.exec(text)?.[1] ?? 0);
        const found = powerSeries(text);
        const raplMoves = (found.find((s) => s.device === 'cpu-package-0')?.watts ?? 0) > 0;
        return steps >= 3 && new Set(found.map((s) => s.source)).size === 2 && raplMoves ? found : null;
      });
      assertPowerSeries(series, gpuHost);
      assert.equal(series.find((s) => s.device === 'gpu0')?.watts, fake.gpuWatts);

      trainer.kill('SIGTERM');
      assert.equal(await trainer.exited, 0, trainer.output());
      const summary = JSON.parse(trainer.output().trim().split('\n').at(-1)!);
      assert.equal(summary.energy_estimated, false, JSON.stringify(summary));
      assert.ok(summary.energy_j > 0);
      const steps = stepRecords(out);
      assert.ok(steps.length >= 3);
      for (const s of steps) assert.equal(s.energy_estimated, false, JSON.stringify(s));
    } finally {
      fake.stop();
    }
  },
);

test('promtool accepts the alert rules and the scrape config, and the rule unit tests fire each alert', () => {
  for (const args of [
    ['check', 'rules', 'ringlet-rules.yml'],
    ['check', 'config', 'prometheus.yml'],
    ['test', 'rules', 'ringlet-rules.test.yml'],
  ]) {
    const r = spawnSync('promtool', args, { cwd: rulesDir, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  }
});

test('the dashboard JSON is what build-dashboard.ts generates', () => {
  assert.deepEqual(
    JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8')),
    JSON.parse(dashboardJson()),
    'run: node --import tsx observability/grafana/build-dashboard.ts',
  );
});

test('a resumed run adds the energy and emissions its checkpoint recorded; metrics.jsonl carries them too', async () => {
  const out = path.join(work, 'resume');
  const config = (untilStep: number) =>
    loadTrainConfig(configFile, { data: dataset, out, maxSteps: 6, untilStep, logEvery: 1, evalEvery: 3, checkpointEvery: 3 });
  const first = await train(config(3), { resume: false, log: new ProgressLog(out, { live: false }) });
  const meta = (await readCheckpoint(first.checkpoint)).meta;
  // The checkpoint holds the energy up to its write; the summary adds the final eval and shutdown.
  assert.ok(meta.metrics!.energy_j > 0 && meta.metrics!.energy_j <= first.run_energy_j, JSON.stringify(meta.metrics));
  assert.ok(meta.metrics!.emissions_g > 0 && meta.metrics!.emissions_g <= first.run_emissions_g);
  const second = await train(config(6), { resume: true, log: new ProgressLog(out, { live: false }) });
  assert.equal(second.run_energy_j, meta.metrics!.energy_j + second.energy_j);
  assert.equal(second.run_emissions_g, meta.metrics!.emissions_g + second.emissions_g);
  assert.ok(Math.abs(second.emissions_g - (second.energy_j / 3.6e6) * 481) < 1e-12, 'world-average grid by default');
  const steps = stepRecords(out);
  assert.equal(steps.length, 6);
  for (const s of steps) assert.ok(s.mfu > 0 && s.energy_j >= 0 && s.energy_estimated === host.estimated, JSON.stringify(s));
  assert.ok(steps[5].energy_j >= meta.metrics!.energy_j, 'step records after the resume count the run so far');
});

test('ringlet generate reports the energy per 1000 generated tokens', () => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'cli/ringlet.ts', 'generate', '--checkpoint', path.join(work, 'resume'), '--max-tokens', '4000', '--json'],
    { cwd: root, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.ok(s.tokens > 0 && s.energy_j > 0, JSON.stringify(s));
  assert.ok(Math.abs(s.energy_j_per_1k_tokens - (s.energy_j / s.tokens) * 1000) < 1e-9);
  assert.equal(s.energy_estimated, host.estimated, 'generate meters with the default settings, as the host allows');
});
