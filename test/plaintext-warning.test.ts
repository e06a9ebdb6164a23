// A join token that crosses plaintext to or from a non-loopback address is logged as a warning (JSON log,
// level warn, naming the address and the fix): a worker's coordinator and next rank, a ring endpoint or a
// coordinator listening beyond loopback. On loopback (127.0.0.0/8, ::1, localhost), or with TLS, nothing.
// The non-loopback address is this machine's own (os.networkInterfaces()), so no network is needed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { plaintextTokenWarning, statusError } from '../collective/auth.js';
import { DistributedConfigSchema } from '../coordinator/config.js';
import { createCoordinator } from '../coordinator/run.js';
import { TrainConfigSchema } from '../train/config.js';
import { Worker } from '../worker/worker.js';
import { TOKEN, fakeCoordinator, joinReply, type FakeCoordinator } from './fake-coordinator.js';
import { prepareTinyDataset } from './tiny-dataset.js';

const root = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-plaintext-'));
const external = Object.values(os.networkInterfaces())
  .flat()
  .find((i) => i && !i.internal && i.family === 'IPv4')?.address;
const noExternal = external ? false : 'this machine has no non-loopback IPv4 address';
const fakes: FakeCoordinator[] = [];
after(() => fakes.forEach((f) => f.close()));
let dataset = '';
before(async () => void (dataset = await prepareTinyDataset(root, work)));

const WARNING = /^join token in plaintext on .*, which is not loopback: .*give --tls-ca, --tls-cert and --tls-key \(mutual TLS\)/;

type Log = { level: string; msg: string; address?: string };
function worker(coordinator: string) {
  const logs: Log[] = [];
  const w = new Worker({
    coordinator,
    token: TOKEN,
    jobId: 'ringlet',
    connectTimeoutMs: 2000,
    log: (level, msg, fields) => logs.push({ level, msg, ...fields }),
  });
  return { w, logs, warnings: () => logs.filter((l) => l.level === 'warn' && WARNING.test(l.msg)) };
}

test('the warning names the address and the fix, for anything but loopback without TLS', async () => {
  for (const address of ['127.0.0.1:7070', '127.9.8.7:7070', 'localhost:7070', '[::1]:7070'])
    assert.equal(await plaintextTokenWarning('the connection to', address, undefined), null, address);
  for (const address of ['0.0.0.0:7070', '192.0.2.7:7070', '[fd00::2]:7070', 'coordinator.invalid:7070']) {
    const warning = await plaintextTokenWarning('the connection to', address, undefined);
    assert.match(warning ?? '', WARNING, address);
    assert.ok(warning!.includes(`on the connection to ${address},`), warning!);
  }
  const tls = { ca: 'ca.pem', cert: 'node.pem', key: 'node.key' };
  assert.equal(await plaintextTokenWarning('the connection to', '192.0.2.7:7070', tls), null);
});

test('a worker warns of a coordinator at a non-loopback address, and not at 127.0.0.1', { skip: noExternal }, async () => {
  const fake = await fakeCoordinator({ host: '0.0.0.0', reply: () => statusError(grpc.status.NOT_FOUND, 'no such job') });
  fakes.push(fake);
  const port = fake.address.split(':')[1];
  const far = worker(`${external}:${port}`);
  await assert.rejects(far.w.run(), /no such job/);
  assert.deepEqual(
    far.warnings().map((l) => l.address),
    [`${external}:${port}`],
    JSON.stringify(far.logs),
  );
  const near = worker(`127.0.0.1:${port}`);
  await assert.rejects(near.w.run(), /no such job/);
  assert.deepEqual(near.warnings(), []);
});

test('a worker warns of a next rank at a non-loopback address', { skip: noExternal, timeout: 60_000 }, async () => {
  const fake = await fakeCoordinator({
    reply: () => joinReply({ data: dataset, out: path.join(work, 'run') }),
    assign: (join) => ({ worldSize: 2, ring: [join.collectiveAddress, `${external}:9`] }),
  });
  fakes.push(fake);
  const { w, logs, warnings } = worker(fake.address);
  const running = w.run().catch(() => {});
  for (let i = 0; i < 200 && warnings().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(
    warnings().map((l) => l.address),
    [`${external}:9`],
    JSON.stringify(logs),
  );
  assert.match(warnings()[0].msg, /on the connection to the next rank at/);
  await w.leave('test over');
  await running;
});

test('a coordinator warns when it listens beyond loopback without TLS, and not on 127.0.0.1', async () => {
  const train = TrainConfigSchema.parse({ data: dataset, out: path.join(work, 'coordinator'), training: { max_steps: 1 } });
  for (const host of ['0.0.0.0', '127.0.0.1']) {
    const logs: Log[] = [];
    const dist = DistributedConfigSchema.parse({ token: TOKEN, host, rendezvous_timeout_s: 600 });
    const { coordinator } = await createCoordinator(train, dist, {
      resume: false,
      log: (level, msg, fields) => logs.push({ level, msg, ...fields }),
    });
    await coordinator.start();
    await coordinator.close();
    const address = logs.find((l) => l.msg === 'listening')?.address;
    const warned = logs.filter((l) => l.level === 'warn' && WARNING.test(l.msg)).map((l) => l.address);
    assert.deepEqual(warned, host === '0.0.0.0' ? [address] : [], JSON.stringify(logs));
  }
});
