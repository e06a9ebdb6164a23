// Distributed training end to end, with real processes and real gRPC on loopback: N workers match one
// process with the same global batch, all ranks hold bit-identical weights, a worker killed with SIGKILL
// mid-run costs nothing but a restart, and the coordinator refuses strangers.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { TINY_MODEL, prepareTinyDataset } from './tiny-dataset.js';
import { makeCertificates } from './tls-fixture.js';
import { readCheckpoint } from '../lm/checkpoint.js';
import { loadTrainConfig } from '../train/config.js';
import { train } from '../train/run.js';
import { ProgressLog } from '../train/progress.js';
import { tokenMetadata } from '../collective/auth.js';
import { CoordinatorServiceClient } from '../proto/gen/ringlet/coordinator/v1/coordinator.js';

const root = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-dist-'));
const dataset = path.join(work, 'data');
const configFile = path.join(work, 'config.json');
const STEPS = 24;
const children: ChildProcess[] = [];
after(() => children.forEach((c) => c.exitCode === null && c.kill('SIGKILL')));

// Global batch 8 windows: 4 per micro-batch, 2 micro-batches (one process), split 4/4 or 2/3/3 across ranks.
const training = { batch_size: 4, grad_accum: 2, eval_windows: 8, log_every: 1, eval_every: 4, max_steps: STEPS };
const trainFlags = ['--config', configFile, '--data', dataset, '--lr', '0.01', '--warmup-steps', '2', '--checkpoint-every', '4'];

function ringlet(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'cli/ringlet.ts'), ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

/** Runs to exit; returns the last stdout line as JSON and the JSON log lines from stderr. */
function finish(child: ChildProcess, onLog: (r: Record<string, unknown>) => void = () => {}) {
  let stdout = '';
  const logs: Record<string, unknown>[] = [];
  child.stdout!.on('data', (d) => (stdout += d));
  readline.createInterface({ input: child.stderr! }).on('line', (line) => {
    try {
      const r = JSON.parse(line);
      logs.push(r);
      onLog(r);
    } catch {
      /* not a log record */
    }
  });
  return new Promise<{ summary: Record<string, any>; logs: Record<string, unknown>[]; code: number | null }>((resolve) =>
    child.on('exit', (code) => resolve({ summary: JSON.parse(stdout.trim().split('\n').at(-1) || '{}'), logs, code })),
  );
}

/** The last log records other than step lines, one per line: what a failed run's assertion shows. */
function lastLogs(logs: Record<string, unknown>[]): string {
  return logs
    .filter((l) => l.msg !== 'step')
    .slice(-25)
    .map((l) => JSON.stringify(l))
    .join('\n');
}

async function weights(runDir: string) {
  return (await readCheckpoint(runDir)).weights; // a run folder reads as its latest checkpoint
}

/**
 * Every parameter of `b` within `tolerance` of `a`, relative to the element, or to its tensor's RMS where
 * the element is smaller: float sums in another order move a near-zero element by as much as a large one,
 * so near zero the difference is judged at the scale the tensor works at. Returns the worst ratio.
 */
function assertClose(a: Map<string, { data: Float32Array }>, b: Map<string, { data: Float32Array }>, tolerance: number) {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  let worst = 0;
  for (const [name, t] of a) {
    const u = b.get(name)!.data;
    const rms = Math.sqrt(t.data.reduce((s, x) => s + x * x, 0) / t.data.length);
    for (let i = 0; i < t.data.length; i++) {
      const rel = Math.abs(t.data[i] - u[i]) / Math.max(Math.abs(t.data[i]), rms);
      worst = Math.max(worst, rel);
      assert.ok(rel <= tolerance, `${name}[${i}]: ${t.data[i]} vs ${u[i]} (relative ${rel}, tensor RMS ${rms})`);
    }
  }
  return worst;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

let reference: Awaited<ReturnType<typeof weights>>;
let referenceLoss = NaN;

before(async () => {
  await prepareTinyDataset(root, work);
  fs.writeFileSync(configFile, JSON.stringify({ model: TINY_MODEL, training }));
  // The reference: one process, global batch 8, the same schedule.
  const out = path.join(work, 'single');
  const config = loadTrainConfig(configFile, { data: dataset, out, lr: 0.01, warmupSteps: 2, checkpointEvery: 4 });
  const s = await train(config, { resume: false, log: new ProgressLog(out, { live: false }) });
  referenceLoss = s.val_loss;
  reference = await weights(out);
});

test('2 worker processes with global batch 8 match 1 process with batch 8 within 1e-5 on every parameter (over mTLS)', async () => {
  const out = path.join(work, 'two');
  const tls = makeCertificates(); // `train --workers` hands the certificate to the coordinator and both workers
  const tlsFlags = ['--tls-ca', tls.ca, '--tls-cert', tls.cert, '--tls-key', tls.key];
  const r = await finish(ringlet(['train', ...trainFlags, '--out', out, '--workers', '2', ...tlsFlags, '--json']));
  assert.equal(r.code, 0, JSON.stringify(r.summary));
  const s = r.summary;
  for (const field of [
    'step',
    'params',
    'val_loss',
    'val_bpb',
    'tokens_per_s',
    'checkpoint',
    'backend',
    'd_model',
    'n_layers',
    'n_heads',
    'context',
    'vocab',
  ])
    assert.ok(field in s, `summary lacks ${field}`);
  assert.equal(s.step, STEPS);
  assert.equal(s.workers, 2);
  assert.equal(s.restarts, 0);
  assert.equal(s.samples_skipped, 0);
  assert.equal(s.samples_repeated, 0);
  assert.equal(s.ranks_identical, true, 'every rank hashes its weights at each checkpoint; they must agree bit for bit');
  assertClose(reference, await weights(out), 1e-5);
  assert.ok(Math.abs(s.val_loss - referenceLoss) < 1e-4, `${s.val_loss} vs ${referenceLoss}`);
  const metrics = (await readCheckpoint(out)).meta.metrics ?? {};
  assert.ok(
    metrics.energy_j > 0 && metrics.emissions_g > 0,
    `the checkpoint carries the run's energy: ${JSON.stringify(metrics)}`,
  );
});

test('kill -9 of one of 3 workers mid-run: the ring re-forms, nothing is lost or repeated, the result is unchanged', async () => {
  const out = path.join(work, 'fault');
  const token = 'fault-test-token';
  const coordinator = ringlet(
    [
      'coordinator',
      ...trainFlags,
      '--out',
      out,
      '--min-workers',
      '2',
      '--max-workers',
      '3',
      '--rendezvous-timeout',
      '60',
      '--json',
    ],
    { RINGLET_TOKEN: token, RINGLET_HOST_ID: 'machine-a' },
  );
  const workers: ChildProcess[] = [];
  let address = '';
  let http = '';
  let killedAt = -1;
  let workerReady: Promise<Response> | null = null;
  const workerHttp = await freePort();
  let ready: () => void;
  const listening = new Promise<void>((resolve) => (ready = resolve));
  const done = finish(coordinator, (rec) => {
    if (rec.msg === 'listening') {
      address = String(rec.address);
      http = String(rec.http);
      for (let i = 0; i < 3; i++) {
        const health = i === 0 ? ['--http-port', String(workerHttp)] : [];
        // As if on other machines: workers 0 and 1 on machine-b, worker 2 on machine-c.
        const host = i < 2 ? 'machine-b' : 'machine-c';
        workers.push(
          ringlet(['worker', '--coordinator', address, ...health, '--json'], { RINGLET_TOKEN: token, RINGLET_HOST_ID: host }),
        );
      }
      ready();
    }
    if (rec.msg === 'checkpoint' && !workerReady) workerReady = fetch(`http://127.0.0.1:${workerHttp}/readyz`);
    // After the first checkpoint and a step past it, kill the worker at rank 1 without warning.
    if (rec.msg === 'step' && killedAt < 0 && Number(rec.step) >= 6) {
      killedAt = Number(rec.step);
      workers[1].kill('SIGKILL');
    }
  });
  await listening;

  // The coordinator refuses a wrong token and an unknown job, and answers its health endpoints.
  const client = new CoordinatorServiceClient(address, grpc.credentials.createInsecure());
  const join = (jobId: string, t: string) =>
    new Promise<grpc.ServiceError | null>((resolve) =>
      client.join({ jobId, collectiveAddress: '127.0.0.1:1', workerName: 'intruder', host: '' }, tokenMetadata(t), (err) =>
        resolve(err),
      ),
    );
  assert.equal((await join('ringlet', 'wrong-token'))?.code, grpc.status.UNAUTHENTICATED);
  const unknown = await join('other-job', token);
  assert.equal(unknown?.code, grpc.status.NOT_FOUND);
  assert.match(unknown!.details, /unknown job "other-job"/);
  client.close();
  assert.equal((await fetch(`http://${http}/healthz`)).status, 200);

  const r = await done;
  assert.equal(r.code, 0, lastLogs(r.logs));
  assert.ok(killedAt > 0 && killedAt < STEPS, `the kill must land mid-run (at step ${killedAt})`);
  const s = r.summary;
  assert.equal(s.step, STEPS);
  assert.ok(s.restarts >= 1, 'the ring was re-formed');
  assert.equal(s.workers, 2);
  assert.equal(s.samples_skipped, 0);
  assert.equal(s.samples_repeated, 0);
  assert.equal(s.ranks_identical, true);
  assert.ok(r.logs.some((l) => l.msg === 'worker lost'));
  // Each machine's energy: the coordinator's own meter, and one worker's meter on each other machine (on
  // machine-b, a survivor of the kill); the job's total is their sum.
  const byHost = s.energy_by_host_j as Record<string, number>;
  assert.deepEqual(Object.keys(byHost).sort(), ['machine-a', 'machine-b', 'machine-c']);
  for (const [host, joules] of Object.entries(byHost)) assert.ok(joules > 0, `${host}: ${joules} J`);
  const sum = Object.values(byHost).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(s.energy_j - sum) <= 1e-9 * sum, `energy_j ${s.energy_j} is the machines' sum ${sum}`);
  // The data log on disk tells the same story: after the rollback, each window once.
  const log = fs
    .readFileSync(path.join(out, 'data-log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.ok(
    log.some((l) => l.type === 'rollback' && l.to_step > 0),
    'recovery restored a checkpoint, not the start',
  );
  // Restoring the last checkpoint and going on with 2 ranks gives the fault-free result, up to the order
  // of float sums (3 ranks split the batch 2/3/3, then 2 ranks 4/4; Adam amplifies the last bits of
  // near-zero gradients): weights within 1e-3 relative, validation loss within 1e-4 relative.
  assertClose(reference, await weights(out), 1e-3);
  assert.ok(Math.abs(s.val_loss - referenceLoss) / referenceLoss < 1e-4, `val_loss ${s.val_loss} vs fault-free ${referenceLoss}`);
  await Promise.all(
    workers.map((w) => new Promise((resolve) => (w.exitCode !== null || w.signalCode ? resolve(null) : w.on('exit', resolve)))),
  );
});

test('kill -9 of the coordinator: the workers reconnect to its restart, which resumes from the last checkpoint', async () => {
  const out = path.join(work, 'coordinator-restart');
  const env = { RINGLET_TOKEN: 'restart-test-token' };
  const port = await freePort();
  const args = [
    'coordinator',
    ...trainFlags,
    '--out',
    out,
    '--min-workers',
    '2',
    '--max-workers',
    '2',
    '--port',
    String(port),
    '--json',
  ];
  const first = ringlet(args, env);
  const workers: ChildProcess[] = [];
  let killedAt = -1;
  const firstDone = finish(first, (rec) => {
    if (rec.msg === 'listening')
      for (let i = 0; i < 2; i++) workers.push(ringlet(['worker', '--coordinator', `127.0.0.1:${port}`, '--json'], env));
    if (rec.msg === 'step' && killedAt < 0 && Number(rec.step) >= 6) {
      killedAt = Number(rec.step);
      first.kill('SIGKILL');
    }
  });
  await firstDone;
  assert.ok(killedAt > 0, 'the first coordinator was killed mid-run');
  const energyBefore = (await readCheckpoint(out)).meta.metrics?.energy_j ?? 0; // of the checkpoint the restart resumes
  assert.ok(energyBefore > 0);
  const r = await finish(ringlet([...args, '--resume'], env));
  assert.equal(r.code, 0, lastLogs(r.logs));
  const resumedFrom = r.logs.find((l) => l.msg === 'ring formed');
  assert.ok(Number(resumedFrom?.step) >= 4, `resumed from a checkpoint, not from scratch: ${JSON.stringify(resumedFrom)}`);
  assert.equal(r.summary.step, STEPS);
  assert.equal(r.summary.samples_skipped, 0);
  assert.equal(r.summary.samples_repeated, 0);
  assertClose(reference, await weights(out), 1e-5);
  assert.ok(((await readCheckpoint(out)).meta.metrics?.energy_j ?? 0) > energyBefore, 'energy is carried across the restart');
  await Promise.all(workers.map((w) => new Promise((resolve) => (w.exitCode !== null ? resolve(null) : w.on('exit', resolve)))));
  assert.deepEqual(
    workers.map((w) => w.exitCode),
    [0, 0],
  );
});

test('ringlet train --workers 3 survives a kill -9 of a worker: the launcher starts a replacement and the ring is whole again', async () => {
  const out = path.join(work, 'launcher');
  let http = '';
  let killed = 0;
  const r = await finish(ringlet(['train', ...trainFlags, '--out', out, '--workers', '3', '--json']), (rec) => {
    if (rec.msg === 'listening' && rec.component === 'coordinator') http = String(rec.http);
    if (rec.msg === 'step' && Number(rec.step) >= 6 && !killed) {
      killed = -1;
      // The coordinator's /status names each worker host/pid.
      void fetch(`http://${http}/status`)
        .then((res) => res.json() as Promise<{ workers: Array<{ name: string; rank: number }> }>)
        .then((status) => {
          killed = Number(
            status.workers
              .find((w) => w.rank === 1)!
              .name.split('/')
              .at(-1),
          );
          process.kill(killed, 'SIGKILL');
        });
    }
  });
  assert.equal(r.code, 0, lastLogs(r.logs));
  assert.ok(killed > 0, 'a worker was killed mid-run');
  const replaced = r.logs.find((l) => l.msg === 'worker died; started a replacement');
  assert.equal(replaced?.worker_pid, killed);
  const s = r.summary;
  assert.equal(s.step, STEPS);
  assert.ok(s.restarts >= 1);
  assert.equal(s.workers, 3, `the replacement brought the ring back to 3 workers\n${lastLogs(r.logs)}`);
  assert.deepEqual([s.samples_skipped, s.samples_repeated], [0, 0]);
  assert.equal(s.ranks_identical, true);
});

test('3 workers, an uneven split (3/3/4) and gradient accumulation match 1 process within 1e-5 relative on every parameter', async () => {
  // Global batch 10 as 5 micro-batches of 2 in one process; 3 workers take 3, 3 and 4 windows, and each
  // accumulates its own micro-batches of 2 (2+1, 2+1, 2+2). Only the order of float sums differs.
  const flags = ['--config', configFile, '--data', dataset, '--lr', '0.01', '--warmup-steps', '2', '--checkpoint-every', '4'];
  const shape = ['--batch-size', '2', '--grad-accum', '5', '--max-steps', String(STEPS)];
  const single = path.join(work, 'uneven-single');
  const one = await finish(ringlet(['train', ...flags, ...shape, '--out', single, '--json']));
  assert.equal(one.code, 0, JSON.stringify(one.summary));
  const out = path.join(work, 'uneven-three');
  const three = await finish(ringlet(['train', ...flags, ...shape, '--out', out, '--workers', '3', '--json']));
  assert.equal(three.code, 0, lastLogs(three.logs));
  assert.equal(three.summary.workers, 3);
  assert.equal(three.summary.ranks_identical, true);
  const worst = assertClose(await weights(single), await weights(out), 1e-5);
  assert.ok(Math.abs(three.summary.val_loss - one.summary.val_loss) / one.summary.val_loss < 1e-5);
  console.log(`uneven split + accumulation, ${STEPS} steps: worst relative difference ${worst.toExponential(2)}`);
});
