// The NATS control-plane bus against a real nats-server (JetStream on, a free port, a temporary store):
// events are validated on both sides, delivered to subscribers, and run state round-trips through KV.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { NatsBus } from '../controlplane/nats-bus.js';
import { CheckpointPublishedEvent, JobLifecycleEvent, SUBJECTS } from '../controlplane/events.js';

let server: ChildProcess;
let url = '';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

before(async () => {
  const port = await freePort();
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-nats-'));
  server = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], { stdio: 'ignore' });
  url = `nats://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => (c.end(), resolve(true))).on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100) throw new Error('nats-server did not start (is it installed? see scripts/setup.sh)');
    await new Promise((r) => setTimeout(r, 50));
  }
});
after(() => server?.kill());

test('events published on JetStream reach a subscriber, validated; invalid ones are refused', async () => {
  const publisher = await NatsBus.connect(url);
  const consumer = await NatsBus.connect(url);
  const received: JobLifecycleEvent[] = [];
  const invalid: Error[] = [];
  let arrived: () => void;
  const twoArrived = new Promise<void>((resolve) => (arrived = resolve));
  const sub = await consumer.subscribe(
    SUBJECTS.jobLifecycle,
    JobLifecycleEvent,
    (e) => {
      received.push(e);
      if (received.length === 2) arrived();
    },
    (err) => invalid.push(err),
  );
  const time = new Date().toISOString();
  await publisher.publish(SUBJECTS.jobLifecycle, JobLifecycleEvent, { job: 'j1', state: 'running', step: 0, workers: 3, time });
  // A publisher must not send what the schema refuses.
  await assert.rejects(
    publisher.publish(SUBJECTS.jobLifecycle, JobLifecycleEvent, {
      job: 'j1',
      state: 'exploded' as 'running',
      step: 1,
      workers: 3,
      time,
    }),
  );
  // A foreign publisher's malformed event reaches onInvalid, not the handler.
  await publisher.publish(SUBJECTS.jobLifecycle, CheckpointPublishedEvent, {
    job: 'j1',
    run_dir: '/r',
    checkpoint: '/r/c',
    step: 4,
    tokens_seen: 10,
    time,
  });
  await publisher.publish(SUBJECTS.jobLifecycle, JobLifecycleEvent, { job: 'j1', state: 'finished', step: 9, workers: 3, time });
  await twoArrived;
  assert.deepEqual(
    received.map((e) => [e.state, e.step]),
    [
      ['running', 0],
      ['finished', 9],
    ],
  );
  assert.equal(invalid.length, 1);
  assert.match(invalid[0].message, /invalid event on ringlet.job.lifecycle/);
  await sub.unsubscribe();
  await publisher.close();
  await consumer.close();
});

test('run state round-trips through a JetStream KV bucket', async () => {
  const bus = await NatsBus.connect(url);
  assert.equal(await bus.kvGet('ringlet-jobs', 'nope'), undefined);
  await bus.kvPut('ringlet-jobs', 'job-1', { state: 'running', ring_epoch: 2 });
  await bus.kvPut('ringlet-jobs', 'job-1', { state: 'finished', ring_epoch: 3 });
  await bus.close();
  const again = await NatsBus.connect(url);
  assert.deepEqual(await again.kvGet('ringlet-jobs', 'job-1'), { state: 'finished', ring_epoch: 3 });
  await again.close();
});
