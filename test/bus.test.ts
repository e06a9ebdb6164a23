import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InProcessBus } from '../controlplane/bus.js';
import { CheckpointPublishedEvent, SUBJECTS } from '../controlplane/events.js';

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
