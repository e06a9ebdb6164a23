// The NATS control-plane bus against a real nats-server (JetStream on, a free port, a temporary store):
// events are validated on both sides, delivered to subscribers, and run state round-trips through KV.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import { NatsBus } from '../controlplane/nats-bus.js';
import { loadNatsConfig } from '../controlplane/nats-config.js';
import { SIGNATURE_HEADER, signatureFor } from '../controlplane/signing.js';
import { CheckpointPublishedEvent, JobLifecycleEvent, SUBJECTS } from '../controlplane/events.js';
import { startNatsServer, type NatsServer } from './nats-fixture.js';
import { makeCertificates } from './tls-fixture.js';

let server: NatsServer;
let url = '';

before(async () => {
  server = await startNatsServer();
  url = server.url;
});
after(() => server?.stop());

test('events published on JetStream reach a subscriber, validated; invalid ones are refused', async () => {
  const publisher = await NatsBus.connect({ servers: [url] });
  const consumer = await NatsBus.connect({ servers: [url] });
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
  const bus = await NatsBus.connect({ servers: [url] });
  assert.equal(await bus.kvGet('ringlet-jobs', 'nope'), undefined);
  await bus.kvPut('ringlet-jobs', 'job-1', { state: 'running', ring_epoch: 2 });
  await bus.kvPut('ringlet-jobs', 'job-1', { state: 'finished', ring_epoch: 3 });
  await bus.close();
  const again = await NatsBus.connect({ servers: [url] });
  assert.deepEqual(await again.kvGet('ringlet-jobs', 'job-1'), { state: 'finished', ring_epoch: 3 });
  await again.close();
});

const SIGNING_TOKEN = 'job-join-token-1';

function checkpointEvent(step: number) {
  return {
    job: 'j1',
    run_dir: '/runs/a',
    checkpoint: `/runs/a/checkpoints/step-${step}`,
    step,
    tokens_seen: step * 100,
    time: new Date().toISOString(),
  };
}

/** Publishes a lifecycle event on `bus` and waits until the same bus delivers it back. */
async function roundTrip(bus: NatsBus): Promise<JobLifecycleEvent> {
  let delivered!: (e: JobLifecycleEvent) => void;
  const arrived = new Promise<JobLifecycleEvent>((resolve) => (delivered = resolve));
  const sub = await bus.subscribe(SUBJECTS.jobLifecycle, JobLifecycleEvent, (e) => delivered(e));
  const time = new Date().toISOString();
  await bus.publish(SUBJECTS.jobLifecycle, JobLifecycleEvent, { job: 'secure', state: 'running', step: 1, workers: 2, time });
  const event = await arrived;
  await sub.unsubscribe();
  return event;
}

/** What a server says to a client that speaks NATS in plain text, with the right credentials, and whether it hung up. */
async function plaintextConversation(
  port: number,
  credentials: Record<string, string>,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      const first = text === '';
      text += chunk;
      if (first) socket.write(`CONNECT ${JSON.stringify({ verbose: false, ...credentials })}\r\nPING\r\n`);
    });
    socket.on('close', () => resolve({ text, closed: true }));
    socket.on('error', reject);
    setTimeout(() => (resolve({ text, closed: false }), socket.destroy()), 5000).unref();
  });
}

test('a server that requires TLS, client certificates and a password: plaintext, no or wrong credentials and an unknown CA are refused clearly', async () => {
  const tls = makeCertificates();
  const secured = await startNatsServer(`
authorization { user: ringlet, password: "correct-horse-battery" }
tls { cert_file: "${tls.cert}", key_file: "${tls.key}", ca_file: "${tls.ca}", verify: true }`);
  try {
    const tlsFiles = { tls_ca: tls.ca, tls_cert: tls.cert, tls_key: tls.key };
    const servers = [secured.url];
    // A client that does not start TLS gets nowhere, even with the right password: the server's greeting
    // says TLS is required, and it hangs up on the plaintext CONNECT without an answer.
    const plain = await plaintextConversation(secured.port, { user: 'ringlet', pass: 'correct-horse-battery' });
    const [greeting, ...rest] = plain.text.split('\r\n').filter(Boolean);
    assert.equal(JSON.parse(greeting.replace(/^INFO /, '')).tls_required, true);
    assert.deepEqual(rest, []);
    assert.equal(plain.closed, true);
    await assert.rejects(
      NatsBus.connect({ servers, ...tlsFiles }),
      /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: Authorization Violation \(the server wants credentials: RINGLET_NATS_USER/,
    );
    await assert.rejects(
      NatsBus.connect({ servers, ...tlsFiles, user: 'ringlet', password: 'wrong-password' }),
      /Authorization Violation/,
    );
    // Without our CA the server's certificate is not trusted: no silent fallback.
    await assert.rejects(
      NatsBus.connect({ servers, user: 'ringlet', password: 'correct-horse-battery' }),
      /unable to verify the first certificate \(TLS: RINGLET_NATS_TLS_CA/,
    );
    const bus = await NatsBus.connect({ servers, ...tlsFiles, user: 'ringlet', password: 'correct-horse-battery' });
    assert.equal((await roundTrip(bus)).job, 'secure');
    await bus.close();
  } finally {
    secured.stop();
  }
});

test('a server that wants a token over TLS: the token from the environment connects, none is refused', async () => {
  const tls = makeCertificates();
  const secured = await startNatsServer(`
authorization { token: "nats-token-0123456789" }
tls { cert_file: "${tls.cert}", key_file: "${tls.key}" }`);
  try {
    const env = { RINGLET_NATS_URL: secured.url, RINGLET_NATS_TLS_CA: tls.ca };
    await assert.rejects(NatsBus.connect(loadNatsConfig({}, env)!), /Authorization Violation/);
    const bus = await NatsBus.connect(loadNatsConfig({}, { ...env, RINGLET_NATS_TOKEN: 'nats-token-0123456789' })!);
    assert.equal((await roundTrip(bus)).job, 'secure');
    await bus.close();
  } finally {
    secured.stop();
  }
});

test('NATS settings come from a file, then RINGLET_NATS_*, then flags; bad combinations are named', () => {
  const tls = makeCertificates();
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-natscfg-')), 'nats.json');
  fs.writeFileSync(file, JSON.stringify({ servers: ['nats://a:4222'], user: 'u', password: 'from-file', tls_ca: '/nope' }));
  const c = loadNatsConfig(
    { natsConfig: file, nats: 'nats://b:4222,c:4222', natsTlsCa: tls.ca },
    { RINGLET_NATS_URL: 'nats://ignored:1', RINGLET_NATS_PASSWORD: 'from-env' },
  );
  assert.deepEqual(c, { servers: ['nats://b:4222', 'c:4222'], user: 'u', password: 'from-env', tls_ca: tls.ca });
  assert.equal(loadNatsConfig({}, {}), undefined);
  assert.throws(() => loadNatsConfig({ natsUser: 'u' }, {}), /NATS settings \(user\) are given but no server: set --nats/);
  assert.throws(() => loadNatsConfig({ nats: 'nats://a:1', natsUser: 'u' }, {}), /password: user and password go together/);
  assert.throws(
    () => loadNatsConfig({ nats: 'nats://a:1' }, { RINGLET_NATS_TOKEN: 't', RINGLET_NATS_USER: 'u', RINGLET_NATS_PASSWORD: 'p' }),
    /token: give a token or a user and password, not both/,
  );
  assert.throws(
    () => loadNatsConfig({ nats: 'nats://a:1', natsTlsCert: tls.cert }, {}),
    /tls_key: tls_cert and tls_key go together/,
  );
  assert.throws(() => loadNatsConfig({ natsConfig: file }, {}), /tls_ca: cannot read the file \/nope/);
  assert.throws(() => loadNatsConfig({ nats: 'http://a/b' }, {}), /servers.0: expected nats:\/\/HOST:PORT/);
  assert.throws(() => loadNatsConfig({ nats: 'nats://a:b:c' }, {}), /servers.0: expected nats:\/\/HOST:PORT/);
});

test('a bus that trusts a job token delivers events it signed, re-encoded or not, and refuses forged, tampered and foreign ones', async () => {
  const subscriber = await NatsBus.connect({ servers: [url] }, { trust: [SIGNING_TOKEN] });
  const coordinator = await NatsBus.connect({ servers: [url] }, { sign: SIGNING_TOKEN });
  const otherJob = await NatsBus.connect({ servers: [url] }, { sign: 'another-jobs-token' });
  const raw = await connect({ servers: [url] });
  const js = jetstream(raw);
  const rawPublish = async (body: string, signature?: string) => {
    const h = headers();
    if (signature !== undefined) h.set(SIGNATURE_HEADER, signature);
    await js.publish(SUBJECTS.checkpointPublished, body, { headers: h });
  };
  const received: CheckpointPublishedEvent[] = [];
  const refused: string[] = [];
  let lastArrived!: () => void;
  const last = new Promise<void>((resolve) => (lastArrived = resolve));
  const sub = await subscriber.subscribe(
    SUBJECTS.checkpointPublished,
    CheckpointPublishedEvent,
    (e) => {
      received.push(e);
      if (e.step === 99) lastArrived();
    },
    (err) => refused.push(err.message),
  );
  try {
    const genuine = checkpointEvent(10);
    const signature = signatureFor({ sign: SIGNING_TOKEN }, SUBJECTS.checkpointPublished, genuine)!;
    await rawPublish(JSON.stringify(checkpointEvent(1))); // no signature
    await rawPublish(JSON.stringify(checkpointEvent(2)), 'not-hex-at-all');
    await rawPublish(JSON.stringify({ ...genuine, checkpoint: '/elsewhere' }), signature); // tampered
    await otherJob.publish(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, checkpointEvent(3)); // another key
    // The signature covers the event, not its bytes: other key order and spacing still verify.
    const reordered = Object.fromEntries(Object.entries(genuine).reverse());
    await rawPublish(JSON.stringify(reordered, null, 2), signature);
    await coordinator.publish(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, checkpointEvent(99));
    await last;
    assert.deepEqual(
      received.map((e) => [e.step, e.checkpoint]),
      [
        [10, genuine.checkpoint],
        [99, '/runs/a/checkpoints/step-99'],
      ],
    );
    assert.equal(refused.length, 4);
    assert.match(refused[0], /refused an event on ringlet.checkpoint.published: it is not signed/);
    for (const reason of refused.slice(1)) assert.match(reason, /its signature matches none of the trusted job tokens/);
  } finally {
    await sub.unsubscribe();
    await Promise.all([subscriber.close(), coordinator.close(), otherJob.close(), raw.drain()]);
  }
});
