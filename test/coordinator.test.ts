// The coordinator's protocol with scripted workers over real gRPC (no training): rendezvous and ranks,
// the bad-input cases of step reports (duplicate rank, wrong epoch, unknown job, wrong rank), straggler
// warnings, the checkpoint barrier, lifecycle events on the bus, and health/readiness endpoints.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Coordinator } from '../coordinator/coordinator.js';
import { DistributedConfigSchema } from '../coordinator/config.js';
import { TrainConfigSchema } from '../train/config.js';
import { InProcessBus } from '../controlplane/bus.js';
import { CheckpointPublishedEvent, JobLifecycleEvent, SUBJECTS } from '../controlplane/events.js';
import { tokenMetadata } from '../collective/auth.js';
import {
  CoordinatorServiceClient,
  type Assignment,
  type JoinRequest,
  type JoinResponse,
  CheckpointBarrierRequest,
  type CheckpointBarrierResponse,
  type ReportStepRequest,
  type WatchResponse,
} from '../proto/gen/ringlet/coordinator/v1/coordinator.js';

const TOKEN = 'coordinator-test-token';

test('rendezvous, step reports with their bad cases, stragglers, the checkpoint barrier and the bus', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-coord-'));
  const train = TrainConfigSchema.parse({
    data: out,
    out,
    training: { batch_size: 2, grad_accum: 2, max_steps: 2, log_every: 1 },
  });
  const dist = DistributedConfigSchema.parse({ token: TOKEN, job_id: 'job-a', min_workers: 2, max_workers: 2 });
  const logs: Array<{ msg: string } & Record<string, unknown>> = [];
  const bus = new InProcessBus();
  const states: string[] = [];
  const published: CheckpointPublishedEvent[] = [];
  await bus.subscribe(SUBJECTS.jobLifecycle, JobLifecycleEvent, (e) => void states.push(e.state));
  await bus.subscribe(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, (e) => void published.push(e));
  const info = { windowsPerEpoch: 100, tokensPerStep: 4 * 16, startStep: 0, startCursorPosition: 0, restoreCheckpoint: '' };
  const c = new Coordinator(train, dist, info, { bus, log: (_level, msg, fields) => logs.push({ msg, ...fields }) });
  await c.start();
  assert.equal((await fetch(`http://${c.httpAddress}/readyz`)).status, 503, 'not ready before the ring forms');

  const client = new CoordinatorServiceClient(c.address, grpc.credentials.createInsecure());
  const md = tokenMetadata(TOKEN);
  const call = <Req, Res>(
    method: (r: Req, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown,
    req: Req,
  ) =>
    new Promise<Res>((resolve, reject) =>
      method.call(client, req, md, (e: grpc.ServiceError | null, r: Res) => (e ? reject(e) : resolve(r))),
    );
  // Both workers on one machine that is not the coordinator's: the lower rank meters it.
  const join = (address: string) =>
    call<JoinRequest, JoinResponse>(client.join, {
      jobId: 'job-a',
      collectiveAddress: address,
      workerName: address,
      host: 'another-machine',
    });
  const a = await join('127.0.0.1:1001');
  await assert.rejects(join('127.0.0.1:1001'), /already joined/);
  const b = await join('127.0.0.1:1002');
  const assignments = new Map<string, Assignment>();
  const got = Promise.all(
    [a, b].map(
      (w) =>
        new Promise<void>((resolve) =>
          client.watch({ jobId: 'job-a', workerId: w.workerId }, md).on('data', (m: WatchResponse) => {
            if (m.assignment) (assignments.set(w.workerId, m.assignment), resolve());
          }),
        ),
    ),
  );
  await got;
  const ra = assignments.get(a.workerId)!;
  const rb = assignments.get(b.workerId)!;
  assert.deepEqual([ra.rank, rb.rank], [0, 1]);
  assert.deepEqual(ra.ring, ['127.0.0.1:1001', '127.0.0.1:1002']);
  assert.deepEqual([ra.meterHost, rb.meterHost], [true, false]);
  assert.equal((await fetch(`http://${c.httpAddress}/readyz`)).status, 200);

  const report = (w: { workerId: string }, rank: number, extra: Partial<ReportStepRequest> = {}) =>
    call(client.reportStep, {
      jobId: 'job-a',
      workerId: w.workerId,
      ringEpoch: ra.ringEpoch,
      rank,
      step: 1,
      loss: 1,
      gradNorm: 1,
      lr: 1e-3,
      computeMs: 100,
      allreduceMs: 5,
      allreduceBytes: 4096,
      windows: [{ epoch: 0, start: rank * 2, count: 2 }],
      hostEnergyJ: 0,
      hostEnergySource: '',
      ...extra,
    });
  await report(a, 0);
  await assert.rejects(
    report(a, 0),
    (e: grpc.ServiceError) => e.code === grpc.status.ALREADY_EXISTS && /duplicate rank 0/.test(e.details),
  );
  await assert.rejects(report(a, 1), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
  await assert.rejects(
    report(b, 1, { ringEpoch: ra.ringEpoch - 1 }),
    (e: grpc.ServiceError) => e.code === grpc.status.FAILED_PRECONDITION && /stale ring epoch/.test(e.details),
  );
  await assert.rejects(
    report(b, 1, { jobId: 'job-b' }),
    (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND && /unknown job "job-b"/.test(e.details),
  );
  await assert.rejects(
    report(b, 1, { hostEnergyJ: -5 }),
    (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /host energy -5 J/.test(e.details),
  );
  await report(b, 1, { computeMs: 900 }); // rank 1 computes 9x longer than rank 0
  const straggler = logs.find((l) => l.msg === 'straggler');
  assert.equal(straggler?.rank, 1);
  const stepLine = logs.find((l) => l.msg === 'step');
  assert.equal(stepLine?.loss, 2, "the step loss is the sum of the ranks' shares");

  // Step 2, then the final barrier: rank 1 acknowledges, rank 0 brings the checkpoint.
  await report(a, 0, { step: 2, windows: [{ epoch: 0, start: 4, count: 2 }] });
  await report(b, 1, { step: 2, windows: [{ epoch: 0, start: 6, count: 2 }] });
  const barrier = (w: { workerId: string }, rank: number, checkpoint: string) =>
    call(client.checkpointBarrier, {
      jobId: 'job-a',
      workerId: w.workerId,
      ringEpoch: ra.ringEpoch,
      rank,
      step: 2,
      checkpoint,
      metrics: checkpoint ? { val_loss: 3.5 } : {},
      final: rank === 0,
      stateSha256: 'same',
      hostEnergyJ: 0,
      hostEnergySource: '',
      writeError: '',
    });
  const ack = barrier(b, 1, '');
  const write = barrier(a, 0, path.join(out, 'checkpoints', 'step-00000002'));
  assert.deepEqual(await Promise.all([ack, write]), [
    { checkpoint: path.join(out, 'checkpoints', 'step-00000002') },
    { checkpoint: path.join(out, 'checkpoints', 'step-00000002') },
  ]);
  const result = await c.done;
  assert.equal(result.step, 2);
  assert.equal(result.samples_skipped, 0);
  assert.equal(result.samples_repeated, 0);
  assert.equal(result.ranks_identical, true);
  assert.equal(result.straggler_warnings, 1);
  assert.equal(published.length, 1);
  assert.equal(published[0].val_loss, 3.5);
  assert.deepEqual(states.slice(0, 2), ['pending', 'running']);
  assert.equal(states.at(-1), 'finished');
  assert.deepEqual(await bus.kvGet('ringlet-jobs', 'job-a').then((v) => (v as { state: string }).state), 'finished');
  client.close();
  await c.close();
});

test('the data log audit counts skipped and repeated windows', async () => {
  const { DataLog } = await import('../coordinator/data-log.js');
  const log = new DataLog(null, 10);
  log.commit(1, 0, [{ epoch: 0, start: 8, count: 2 }]);
  log.commit(1, 1, [{ epoch: 1, start: 0, count: 2 }]); // crosses into epoch 1: contiguous
  assert.deepEqual(log.audit(8, 4), { skipped: 0, repeated: 0 });
  log.commit(2, 0, [{ epoch: 1, start: 1, count: 1 }]); // window 11 again
  assert.deepEqual(log.audit(8, 5), { skipped: 1, repeated: 1 });
  log.rollback(1);
  assert.deepEqual(log.audit(8, 4), { skipped: 0, repeated: 0 });
});

test('elastic: a late joiner enters at the next checkpoint; a lost worker is replaced within replace_wait_s', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-coord-'));
  const train = TrainConfigSchema.parse({ data: out, out, training: { batch_size: 2, max_steps: 10 } });
  const dist = DistributedConfigSchema.parse({
    token: TOKEN,
    min_workers: 2,
    max_workers: 3,
    rendezvous_timeout_s: 0.3,
    replace_wait_s: 30,
  });
  const info = { windowsPerEpoch: 100, tokensPerStep: 32, startStep: 0, startCursorPosition: 0, restoreCheckpoint: '' };
  const c = new Coordinator(train, dist, info, { log: () => {} });
  await c.start();
  const client = new CoordinatorServiceClient(c.address, grpc.credentials.createInsecure());
  const md = tokenMetadata(TOKEN);
  const call = <Req, Res>(
    method: (r: Req, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown,
    req: Req,
  ) =>
    new Promise<Res>((resolve, reject) =>
      method.call(client, req, md, (e: grpc.ServiceError | null, r: Res) => (e ? reject(e) : resolve(r))),
    );
  /** A scripted worker: joins, watches, and keeps its assignments. */
  const worker = async (port: number) => {
    const j = await call<JoinRequest, JoinResponse>(client.join, {
      jobId: 'ringlet',
      collectiveAddress: `127.0.0.1:${port}`,
      workerName: `w${port}`,
      host: '', // not said: taken as the coordinator's machine
    });
    const assignments: Assignment[] = [];
    let wake = () => {};
    const stream = client.watch({ jobId: 'ringlet', workerId: j.workerId }, md);
    stream.on('data', (m: WatchResponse) => m.assignment && (assignments.push(m.assignment), wake()));
    stream.on('error', () => {});
    const next = async (n: number) => {
      while (assignments.length < n) await new Promise<void>((r) => (wake = r));
      return assignments[n - 1];
    };
    return { id: j.workerId, next, stream };
  };
  const a = await worker(2001);
  const b = await worker(2002);
  const first = await a.next(1); // formed with 2 at the rendezvous timeout
  assert.equal(first.worldSize, 2);
  const late = await worker(2003);

  const report = (w: { id: string }, rank: number, epoch: number, step: number) =>
    call(client.reportStep, {
      jobId: 'ringlet',
      workerId: w.id,
      ringEpoch: epoch,
      rank,
      step,
      loss: 1,
      gradNorm: 1,
      lr: 1,
      computeMs: 10,
      allreduceMs: 1,
      allreduceBytes: 4096,
      windows: [{ epoch: 0, start: (step - 1) * 2 + rank, count: 1 }],
      hostEnergyJ: 0,
      hostEnergySource: '',
    });
  const barrier = (w: { id: string }, rank: number, epoch: number, step: number, checkpoint: string) =>
    call(client.checkpointBarrier, barrierRequest({ workerId: w.id, ringEpoch: epoch, rank, step, checkpoint }));
  await report(a, 0, first.ringEpoch, 1);
  await report(b, 1, first.ringEpoch, 1);
  const ckpt = path.join(out, 'checkpoints', 'step-00000001');
  await Promise.all([barrier(b, 1, first.ringEpoch, 1, ''), barrier(a, 0, first.ringEpoch, 1, ckpt)]);
  const grown = await late.next(1);
  assert.equal(grown.worldSize, 3, 'the late joiner is in the ring formed on the checkpoint');
  assert.equal(grown.restoreCheckpoint, ckpt, 'and receives the current weights through it');
  assert.equal(grown.startStep, 1);
  assert.equal((await a.next(2)).ringEpoch, grown.ringEpoch);

  // The late joiner dies; a replacement arrives within replace_wait_s and the ring is whole again.
  late.stream.cancel();
  await new Promise((r) => setTimeout(r, 200));
  const status = (await (await fetch(`http://${c.httpAddress}/status`)).json()) as { state: string; restarts: number };
  assert.equal(status.state, 'recovering');
  const replacement = await worker(2004);
  const healed = await replacement.next(1);
  assert.equal(healed.worldSize, 3);
  assert.equal(healed.restoreCheckpoint, ckpt);
  assert.ok(healed.ringEpoch > grown.ringEpoch);
  const after = (await (await fetch(`http://${c.httpAddress}/status`)).json()) as { state: string; restarts: number };
  assert.deepEqual([after.state, after.restarts], ['running', 1]);
  for (const w of [a, b, replacement]) w.stream.cancel();
  client.close();
  await c.close();
});

/** A barrier call of job "ringlet"; the fields a scripted worker need not care about keep their defaults. */
function barrierRequest(
  fields: Pick<CheckpointBarrierRequest, 'workerId' | 'ringEpoch' | 'rank' | 'step'> & Partial<CheckpointBarrierRequest>,
): CheckpointBarrierRequest {
  return CheckpointBarrierRequest.fromPartial({ jobId: 'ringlet', stateSha256: 'h', ...fields });
}

/** A coordinator of a one-worker job and a scripted worker that has joined and holds its assignment. */
async function oneWorkerJob(training: Record<string, unknown>) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-coord-'));
  const train = TrainConfigSchema.parse({
    data: out,
    out,
    training: { batch_size: 3, grad_accum: 2, max_steps: 50, ...training },
  });
  const dist = DistributedConfigSchema.parse({ token: TOKEN, min_workers: 1, max_workers: 1, replace_wait_s: 60 });
  const logs: Array<{ msg: string } & Record<string, unknown>> = [];
  // Resumed at step 4 with the data cursor at window 95 of 100: step 5 crosses into epoch 1.
  const info = { windowsPerEpoch: 100, tokensPerStep: 96, startStep: 4, startCursorPosition: 95, restoreCheckpoint: 'ckpt' };
  const c = new Coordinator(train, dist, info, { log: (_level, msg, fields) => logs.push({ msg, ...fields }) });
  await c.start();
  const client = new CoordinatorServiceClient(c.address, grpc.credentials.createInsecure());
  const md = tokenMetadata(TOKEN);
  const j = await new Promise<JoinResponse>((resolve, reject) =>
    client.join({ jobId: 'ringlet', collectiveAddress: '127.0.0.1:3001', workerName: 'w', host: '' }, md, (e, r) =>
      e ? reject(e) : resolve(r),
    ),
  );
  const assignment = await new Promise<Assignment>((resolve) =>
    client
      .watch({ jobId: 'ringlet', workerId: j.workerId }, md)
      .on('data', (m: WatchResponse) => m.assignment && resolve(m.assignment))
      .on('error', () => {}),
  );
  const report = (step: number, extra: Partial<ReportStepRequest> = {}) =>
    new Promise((resolve, reject) =>
      client.reportStep(
        {
          jobId: 'ringlet',
          workerId: j.workerId,
          ringEpoch: assignment.ringEpoch,
          rank: 0,
          step,
          loss: 1,
          gradNorm: 1,
          lr: 1e-3,
          computeMs: 10,
          allreduceMs: 0,
          allreduceBytes: 0,
          windows: [], // filled in by the caller
          hostEnergyJ: 0,
          hostEnergySource: '',
          ...extra,
        },
        md,
        (e, r) => (e ? reject(e) : resolve(r)),
      ),
    );
  const status = async () => ((await (await fetch(`http://${c.httpAddress}/status`)).json()) as { state: string }).state;
  const barrier = (step: number, extra: Partial<CheckpointBarrierRequest> = {}) =>
    new Promise<CheckpointBarrierResponse>((resolve, reject) =>
      client.checkpointBarrier(
        barrierRequest({ workerId: j.workerId, ringEpoch: assignment.ringEpoch, rank: 0, step, ...extra }),
        md,
        (e, r) => (e ? reject(e) : resolve(r)),
      ),
    );
  return { c, client, logs, report, barrier, status };
}

test("step reports are checked against the coordinator's own arithmetic: a worker off its assignment is dropped", async () => {
  const step5 = [
    { epoch: 0, start: 95, count: 5 },
    { epoch: 1, start: 0, count: 1 },
  ];
  const cases: Array<[number, Array<{ epoch: number; start: number; count: number }>, RegExp]> = [
    [6, step5, /reported step 6; its next step is 5/], // ahead of its step
    [4, step5, /reported step 4; its next step is 5/], // a step from before the restore point
    [5, [{ epoch: 0, start: 95, count: 6 }], /its slice is/], // windows past the end of the epoch
    [5, [{ epoch: 0, start: 89, count: 6 }], /its slice is/], // windows of another step
  ];
  for (const [step, windows, problem] of cases) {
    const { c, client, logs, report, status } = await oneWorkerJob({});
    await assert.rejects(
      report(step, { windows }),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && problem.test(e.details),
    );
    assert.ok(logs.some((l) => l.msg === 'step report refused'));
    // A worker that claims what it was not given is no longer trusted: it is dropped, and the ring waits.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await status(), 'recovering');
    assert.ok(logs.some((l) => l.msg === 'worker lost' && /not its assignment/.test(String(l.reason))));
    client.close();
    await c.close();
  }
  // The right step with the right windows is taken.
  const { c, client, report } = await oneWorkerJob({});
  await report(5, { windows: step5 });
  client.close();
  await c.close();
});

test('steps whose reduced gradient is not finite are counted, and max_nonfinite_steps in a row end the job', async () => {
  const { c, client, logs, report } = await oneWorkerJob({ max_nonfinite_steps: 3 });
  const windowsOf = (step: number) => {
    const first = 95 + (step - 5) * 6;
    return first < 100
      ? [
          { epoch: 0, start: first, count: 5 },
          { epoch: 1, start: 0, count: 1 },
        ]
      : [{ epoch: 1, start: first - 100, count: 6 }];
  };
  await report(5, { windows: windowsOf(5), gradNorm: NaN });
  await report(6, { windows: windowsOf(6), gradNorm: NaN });
  await report(7, { windows: windowsOf(7), gradNorm: 2 }); // a finite one resets the count
  await report(8, { windows: windowsOf(8), gradNorm: Infinity });
  await report(9, { windows: windowsOf(9), gradNorm: NaN });
  await report(10, { windows: windowsOf(10), gradNorm: NaN });
  await assert.rejects(c.done, /reduced gradient was not finite for 3 steps in a row \(at step 10\)/);
  assert.equal(logs.filter((l) => l.msg === 'step skipped: the reduced gradient is not finite').length, 5);
  client.close();
  await c.close();
});

test('a checkpoint rank 0 cannot write completes its barrier without moving the restore point, and the job goes on', async () => {
  const { c, client, logs, report, barrier, status } = await oneWorkerJob({ max_steps: 6 });
  const step5 = [
    { epoch: 0, start: 95, count: 5 },
    { epoch: 1, start: 0, count: 1 },
  ];
  await report(5, { windows: step5 });
  const reply = await barrier(5, { writeError: 'ENOSPC: no space left on device' });
  assert.equal(reply.checkpoint, '', 'no checkpoint was agreed');
  const skipped = logs.find((l) => l.msg === 'checkpoint not written; training goes on from the last one');
  assert.deepEqual([skipped?.step, skipped?.restore, skipped?.error], [5, 'ckpt', 'ENOSPC: no space left on device']);
  assert.equal(await status(), 'running', 'no re-formation');
  await report(6, { windows: [{ epoch: 1, start: 1, count: 6 }] });
  const final = await barrier(6, { checkpoint: 'ckpt-6', final: true });
  assert.equal(final.checkpoint, 'ckpt-6');
  const result = await c.done;
  assert.deepEqual([result.step, result.checkpoints_skipped, result.restarts], [6, 1, 0]);
  client.close();
  await c.close();
});
