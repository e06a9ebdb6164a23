// What a worker takes from its coordinator: a fake coordinator (a real gRPC server, test/fake-coordinator.ts)
// answers with hostile configs and assignments, and a real worker (a `ringlet worker` process, or the Worker
// class) refuses them with an error naming what and why, or, for a command, runs its own instead.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Worker } from '../worker/worker.js';
import { MAX_CONFIG_JSON_CHARS, assignmentProblem } from '../worker/job-check.js';
import { workerLimits, type WorkerLimits } from '../worker/limits.js';
import type { Assignment, JoinResponse } from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { fakeNvidiaSmi } from './power-host.js';
import { TOKEN, fakeCoordinator, joinReply, type FakeCoordinator } from './fake-coordinator.js';
import { prepareTinyDataset } from './tiny-dataset.js';

const root = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-trust-'));
const runs = path.join(work, 'runs');
let dataset = '';
const fakes: FakeCoordinator[] = [];
before(async () => {
  dataset = await prepareTinyDataset(root, work);
  fs.mkdirSync(runs);
});
after(() => fakes.forEach((f) => f.close()));

async function serve(o: Parameters<typeof fakeCoordinator>[0]): Promise<FakeCoordinator> {
  const fake = await fakeCoordinator(o);
  fakes.push(fake);
  return fake;
}

/** A Worker in this process, its limits those of a worker given `dataset` and `runs`, its log kept. */
function worker(coordinator: string, limits: Partial<WorkerLimits> = {}) {
  const logs: Array<{ level: string; msg: string } & Record<string, unknown>> = [];
  const w = new Worker({
    coordinator,
    token: TOKEN,
    jobId: 'ringlet',
    connectTimeoutMs: 2000,
    limits: { ...workerLimits({ dataRoot: dataset, runsRoot: runs }), ...limits },
    log: (level, msg, fields) => logs.push({ level, msg, ...fields }),
  });
  return { w, logs };
}

/** A shell script at `file` that appends its arguments to `marker`, then answers as `fake` (an nvidia-smi). */
function markingScript(file: string, marker: string, fake: string): string {
  fs.writeFileSync(file, `#!/bin/sh\necho "$*" >> "${marker}"\nexec "${fake}" "$@"\n`);
  fs.chmodSync(file, 0o755);
  return file;
}

test(
  'a worker runs its own nvidia-smi (--nvidia-smi), never the command the Join reply names',
  { timeout: 120_000 },
  async () => {
    const gpu = path.join(work, 'gpu');
    const smi = fakeNvidiaSmi(gpu);
    fs.writeFileSync(path.join(gpu, 'power.csv'), '0, 70.00\n');
    const wireMarker = path.join(work, 'wire-smi-ran');
    const ownMarker = path.join(work, 'own-smi-ran');
    const wireSmi = markingScript(path.join(work, 'wire-smi'), wireMarker, smi);
    const ownSmi = markingScript(path.join(work, 'own-smi'), ownMarker, smi);
    const out = path.join(runs, 'metered');
    const fake = await serve({
      reply: () => joinReply({ data: dataset, out, observability: { nvidia_smi: wireSmi, power_poll_s: 0.1 } }),
      assign: () => ({ meterHost: true }),
    });
    const child = spawn(
      process.execPath,
      [
        ...['--import', 'tsx', path.join(root, 'cli/ringlet.ts'), 'worker', '--coordinator', fake.address],
        ...['--nvidia-smi', ownSmi, '--data-root', dataset, '--runs-root', runs, '--json'],
      ],
      { cwd: root, env: { ...process.env, RINGLET_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, output);
    assert.equal(fs.existsSync(wireMarker), false, 'the command from the wire must never run');
    assert.match(fs.readFileSync(ownMarker, 'utf8'), /--query-gpu=index,power.draw/);
    const final = fake.barriers.at(-1)!;
    assert.match(final.hostEnergySource, /nvidia-smi/, "the GPU is metered, with the worker's own command");
  },
);

test(
  'a worker refuses a job whose data or run folder lies outside its own folders, links included',
  { timeout: 60_000 },
  async () => {
    const allowedData = path.join(work, 'allowed-data');
    fs.mkdirSync(allowedData);
    fs.symlinkSync(dataset, path.join(allowedData, 'link'));
    let reply: JoinResponse = joinReply({ data: dataset, out: path.join(runs, 'r') });
    const fake = await serve({ reply: () => reply });
    const refused = async (r: JoinResponse, limits: Partial<WorkerLimits>, pattern: RegExp) => {
      reply = r;
      const { w } = worker(fake.address, limits);
      await assert.rejects(w.run(), (err: Error) => {
        assert.match(err.message, new RegExp(`cannot join ${fake.address}: `));
        assert.match(err.message, pattern);
        return true;
      });
    };
    const onlyAllowed = { dataRoots: [allowedData] };
    await refused(
      joinReply({ data: dataset, out: path.join(runs, 'r') }),
      onlyAllowed,
      new RegExp(`train\\.data ${dataset} is outside this worker's folders ${allowedData}; give the worker --data-root`),
    );
    await refused(
      joinReply({ data: path.join(allowedData, 'link'), out: path.join(runs, 'r') }),
      onlyAllowed,
      new RegExp(`train\\.data ${allowedData}/link \\(resolves to ${dataset}\\) is outside`),
    );
    await refused(
      joinReply({ data: dataset, out: path.join(work, 'elsewhere', 'run') }),
      {},
      new RegExp(`train\\.out ${work}/elsewhere/run is outside this worker's folders ${runs}; give the worker --runs-root`),
    );
    await refused(joinReply({ data: dataset, out: `${runs}/../escaped` }), {}, /train\.out .*\/runs\/\.\.\/escaped is outside/);
    fs.symlinkSync(work, path.join(runs, 'up'));
    await refused(
      joinReply({ data: dataset, out: path.join(runs, 'up', 'run') }),
      {},
      /up\/run \(resolves to .*\/run\) is outside/,
    );
  },
);

test(
  'a worker refuses an oversized config, an oversized message, and a model past its memory limit',
  { timeout: 60_000 },
  async () => {
    const good = joinReply({ data: dataset, out: path.join(runs, 'sizes') });
    let reply = good;
    const fake = await serve({ reply: () => reply });
    const refused = async (r: JoinResponse, pattern: RegExp) => {
      reply = r;
      await assert.rejects(worker(fake.address).w.run(), pattern);
    };
    const padded = good.trainConfigJson + ' '.repeat(MAX_CONFIG_JSON_CHARS); // still valid JSON
    await refused(
      { ...good, trainConfigJson: padded },
      new RegExp(
        `the coordinator's train_config_json has ${padded.length} characters; a worker accepts at most ${MAX_CONFIG_JSON_CHARS}`,
      ),
    );
    await refused({ ...good, distributedConfigJson: ' '.repeat(2 << 20) }, /RESOURCE_EXHAUSTED|larger than max/);
    await refused({ ...good, distributedConfigJson: '{"bucket_bytes": 1e12}' }, /bucket_bytes/);
    const huge = { preset: 'small', d_model: 8192, n_layers: 128, n_heads: 64, n_kv_heads: 64, ffn_hidden: 65536, context: 8192 };
    await refused(
      joinReply({ data: dataset, out: path.join(runs, 'sizes'), model: huge }),
      /the job's model \(\d+ parameters, micro-batches of 2 × 8192 tokens\) needs about \d+ GiB to train, more than the [\d.]+ GiB this worker accepts \(--max-memory\)/,
    );
  },
);

test('a worker refuses an assignment that does not fit its ring', { timeout: 60_000 }, async () => {
  const fake = await serve({
    reply: () => joinReply({ data: dataset, out: path.join(runs, 'shape') }),
    assign: (join) => ({ worldSize: 2, ring: [join.collectiveAddress] }),
  });
  await assert.rejects(
    worker(fake.address).w.run(),
    /refusing the coordinator's assignment: the ring lists 1 addresses for a world size of 2/,
  );
  const self = '127.0.0.1:7000';
  const a = (o: Partial<Assignment>): Assignment => ({
    ringEpoch: 1,
    rank: 0,
    worldSize: 2,
    ring: [self, '127.0.0.1:7001'],
    restoreCheckpoint: '',
    startStep: 0,
    meterHost: false,
    ...o,
  });
  assert.equal(assignmentProblem(a({}), self), null);
  assert.match(assignmentProblem(a({ rank: 2 }), self)!, /rank 2 is not below the world size 2/);
  assert.match(assignmentProblem(a({ worldSize: 5000 }), self)!, /world size 5000 is not in 1\.\.1024/);
  assert.match(assignmentProblem(a({ ring: [self, 'no port'] }), self)!, /ring\[1\] "no port" is not host:port/);
  assert.match(
    assignmentProblem(a({ ring: ['127.0.0.1:7001', self] }), self)!,
    /ring\[0\] is 127\.0\.0\.1:7001, not this worker's address/,
  );
});

test(
  "a worker restores only from its run folder's checkpoints: a link out of it is refused and reported",
  { timeout: 60_000 },
  async () => {
    const out = path.join(runs, 'restore');
    const elsewhere = path.join(work, 'other-run', 'checkpoints', 'step-00000004');
    fs.mkdirSync(elsewhere, { recursive: true });
    fs.mkdirSync(path.join(out, 'checkpoints'), { recursive: true });
    const linked = path.join(out, 'checkpoints', 'step-00000004');
    fs.symlinkSync(elsewhere, linked);
    const fake = await serve({
      reply: () => joinReply({ data: dataset, out }),
      assign: () => ({ restoreCheckpoint: linked, startStep: 4 }),
    });
    const { w, logs } = worker(fake.address);
    const running = w.run().catch((err: Error) => err);
    const refusal = new RegExp(`checkpoint ${linked} to restore is not in the run's checkpoints folder ${out}/checkpoints`);
    for (let i = 0; i < 200 && !fake.heartbeats.some((h) => refusal.test(h.ringError)); i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.ok(
      fake.heartbeats.some((h) => refusal.test(h.ringError)),
      JSON.stringify(logs),
    );
    assert.ok(!logs.some((l) => l.msg === 'assignment'), 'nothing was restored');
    await w.leave('test over');
    assert.match(String(await running), /worker stopped/);
  },
);

test('the limits come from the worker: flags, then RINGLET_* variables, then defaults', () => {
  const env = { RINGLET_DATA_ROOT: `/a${path.delimiter}/b`, RINGLET_NVIDIA_SMI: '/opt/smi', RINGLET_MAX_MEMORY_MIB: '512' };
  assert.deepEqual(workerLimits({}, env), {
    dataRoots: ['/a', '/b'],
    runsRoots: [process.cwd(), os.tmpdir()],
    nvidiaSmi: '/opt/smi',
    maxMemoryBytes: 512 << 20,
  });
  const flags = workerLimits({ dataRoot: '/c', nvidiaSmi: 'smi', maxMemory: 64 }, env);
  assert.deepEqual([flags.dataRoots, flags.nvidiaSmi, flags.maxMemoryBytes], [['/c'], 'smi', 64 << 20]);
  assert.equal(workerLimits({}, {}).nvidiaSmi, 'nvidia-smi');
  assert.throws(() => workerLimits({}, { RINGLET_MAX_MEMORY_MIB: 'lots' }), /must be a positive number of MiB/);
});
