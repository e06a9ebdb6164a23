import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InProcessBus } from '../controlplane/bus.js';
import { CheckpointPublishedEvent, SUBJECTS } from '../controlplane/events.js';
import { canonicalJson, signatureFor, signatureProblem } from '../controlplane/signing.js';

const event = {
  job: 'j1',
  run_dir: '/runs/a',
  checkpoint: '/runs/a/checkpoints/step-00000010',
  step: 10,
  tokens_seen: 1000,
  time: new Date().toISOString(),
};

test('subscribers receive validated copies of published events until they unsubscribe', async () => {
  const bus = new InProcessBus();
  const seen: unknown[] = [];
  const sub = await bus.subscribe(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, (e) => void seen.push(e));
  await bus.publish(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, event);
  assert.deepEqual(seen, [event]);
  assert.notEqual(seen[0], event);
  await sub.unsubscribe();
  await bus.publish(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, event);
  assert.equal(seen.length, 1);
});

test('publishing an invalid event is refused before it reaches anyone', async () => {
  const bus = new InProcessBus();
  let calls = 0;
  await bus.subscribe(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, () => void calls++);
  await assert.rejects(bus.publish(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, { ...event, step: -1 }));
  assert.equal(calls, 0);
});

test('the key-value store returns copies of what was put', async () => {
  const bus = new InProcessBus();
  const state = { step: 3 };
  await bus.kvPut('runs', 'j1', state);
  state.step = 4;
  assert.deepEqual(await bus.kvGet('runs', 'j1'), { step: 3 });
  assert.equal(await bus.kvGet('runs', 'missing'), undefined);
});

test('a bus that trusts a job token delivers what that token signed and refuses unsigned or otherwise signed events', async () => {
  const refused: string[] = [];
  const seen: unknown[] = [];
  const subscribe = async (bus: InProcessBus) =>
    bus.subscribe(
      SUBJECTS.checkpointPublished,
      CheckpointPublishedEvent,
      (e) => void seen.push(e),
      (err) => void refused.push(err.message),
    );
  const signedAndTrusted = new InProcessBus({ sign: 'job-token-1', trust: ['job-token-0', 'job-token-1'] });
  await subscribe(signedAndTrusted);
  await signedAndTrusted.publish(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, event);
  const unsigned = new InProcessBus({ trust: ['job-token-1'] });
  await subscribe(unsigned);
  await unsigned.publish(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, event);
  const foreign = new InProcessBus({ sign: 'job-token-2', trust: ['job-token-1'] });
  await subscribe(foreign);
  await foreign.publish(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, event);
  assert.deepEqual(seen, [event]);
  assert.deepEqual(refused, [
    'refused an event on ringlet.checkpoint.published: it is not signed, and this subscriber accepts only events signed with a trusted job token',
    'refused an event on ringlet.checkpoint.published: its signature matches none of the trusted job tokens',
  ]);
});

test('a signature covers the canonical event and its subject: key order does not matter, any change does', () => {
  const keys = { sign: 'job-token-1', trust: ['job-token-1'] };
  const subject = SUBJECTS.checkpointPublished;
  const reordered = Object.fromEntries(Object.entries(event).reverse());
  assert.equal(canonicalJson(reordered), canonicalJson(event));
  assert.equal(canonicalJson({ b: [{ d: 1, c: 2 }], a: null }), '{"a":null,"b":[{"c":2,"d":1}]}');
  const signature = signatureFor(keys, subject, event);
  assert.match(signature!, /^[0-9a-f]{64}$/);
  assert.equal(signatureProblem(keys, subject, reordered, signature), null);
  assert.match(signatureProblem(keys, subject, { ...event, step: 11 }, signature)!, /matches none/);
  assert.match(signatureProblem(keys, SUBJECTS.jobLifecycle, event, signature)!, /matches none/);
  assert.match(signatureProblem(keys, subject, event, signature!.slice(0, 62))!, /matches none/);
  // A bus that trusts no token checks nothing, and one that holds no token signs nothing.
  assert.equal(signatureProblem({}, subject, event, undefined), null);
  assert.equal(signatureFor({ trust: ['job-token-1'] }, subject, event), undefined);
});
