// The evaluator on a real nats-server evaluates only checkpoint events signed with a job token it trusts:
// events a raw NATS client forges (unsigned, or signed with another token) are logged, counted and never
// evaluated, while a coordinator's signed event is. Without trusted tokens it will not start on NATS.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import type { Bus } from '../controlplane/bus.js';
import { CheckpointPublishedEvent, SUBJECTS } from '../controlplane/events.js';
import { NatsBus } from '../controlplane/nats-bus.js';
import { openBus } from '../controlplane/open-bus.js';
import { SIGNATURE_HEADER, signatureFor } from '../controlplane/signing.js';
import { evaluatorBusKeys, loadServiceConfig, type ServiceConfig } from '../evaluator/config.js';
import { startEvaluator, type RunningEvaluator } from '../evaluator/main.js';
import { setupBackend } from '../kernels/backend.js';
import { makeFixture, type Fixture } from './evaluator-fixture.js';
import { startNatsServer, type NatsServer } from './nats-fixture.js';

const JOB_TOKEN = 'job-b-join-token';
let f: Fixture;
let nats: NatsServer;
let config: ServiceConfig;
let bus: Bus;
let evaluator: RunningEvaluator;
const logs: string[] = [];

before(async () => {
  await setupBackend('wasm');
  f = await makeFixture('ringlet-evbus-');
  const suites = path.join(f.work, 'suites');
  fs.mkdirSync(suites);
  fs.writeFileSync(
    path.join(suites, 'agreement.jsonl'),
    JSON.stringify({ type: 'minimal_pair', good: 'The dogs bark.', bad: 'The dogs barks.' }),
  );
  nats = await startNatsServer();
  config = loadServiceConfig(
    undefined,
    { RINGLET_EVALUATOR_TOKEN: 'test-token-0123456789', RINGLET_EVALUATOR_BUS_TOKENS: `job-a-join-token,${JOB_TOKEN}` },
    { port: 0, db: path.join(f.work, 'results.sqlite'), checkpoint_roots: f.work, suites_dir: suites, auto_suites: 'agreement' },
  );
  bus = await openBus({ servers: [nats.url] }, evaluatorBusKeys(config, true));
  evaluator = await startEvaluator(config, bus, (line) => logs.push(line));
});

after(async () => {
  await evaluator?.stop();
  await bus?.close();
  nats?.stop();
});

function checkpointEvent(job: string, runDir: string) {
  return { job, run_dir: runDir, checkpoint: runDir, step: 0, tokens_seen: 0, time: new Date().toISOString() };
}

test('forged checkpoint events are ignored with a logged reason and a count; a signed one is evaluated', async () => {
  const raw = await connect({ servers: [nats.url] });
  const coordinator = await NatsBus.connect({ servers: [nats.url] }, { sign: JOB_TOKEN });
  try {
    const js = jetstream(raw);
    // Both forgeries name a real checkpoint inside the roots: only the signature keeps them out.
    await js.publish(SUBJECTS.checkpointPublished, JSON.stringify(checkpointEvent('forged', f.fresh)));
    const wrong = checkpointEvent('forged', f.fresh);
    const h = headers();
    h.set(SIGNATURE_HEADER, signatureFor({ sign: 'an-intruders-token' }, SUBJECTS.checkpointPublished, wrong)!);
    await js.publish(SUBJECTS.checkpointPublished, JSON.stringify(wrong), { headers: h });
    await coordinator.publish(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, checkpointEvent('job-b', f.fresh2));

    let evaluations: any[] = [];
    for (let i = 0; i < 200 && !evaluations.some((e) => e.status === 'done'); i++) {
      evaluations = ((await (await fetch(`${evaluator.url}/v1/evaluations`)).json()) as any).evaluations;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(
      evaluations.map((e) => [e.source, e.status, e.checkpoint.run_dir]),
      [['event:job-b', 'done', f.fresh2]],
    );
    assert.equal(evaluator.service.ignoredEvents, 2);
    const ready = (await (await fetch(`${evaluator.url}/readyz`)).json()) as any;
    assert.equal(ready.ignored_events, 2);
    const ignored = logs.filter((l) => l.startsWith('ignored a checkpoint event'));
    assert.equal(ignored.length, 2);
    assert.match(ignored[0], /\(1 so far\): refused an event on ringlet.checkpoint.published: it is not signed/);
    assert.match(ignored[1], /\(2 so far\): .*its signature matches none of the trusted job tokens/);
  } finally {
    await coordinator.close();
    await raw.drain();
  }
});

test('on NATS the evaluator needs bus tokens; on the in-process bus it trusts the process unless given some', () => {
  const base = { RINGLET_EVALUATOR_TOKEN: 'test-token-0123456789' };
  const without = loadServiceConfig(undefined, base, {});
  assert.throws(() => evaluatorBusKeys(without, true), /bus_tokens: on NATS the evaluator evaluates only events signed/);
  assert.deepEqual(evaluatorBusKeys(without, false), {});
  assert.deepEqual(evaluatorBusKeys(config, false), { trust: ['job-a-join-token', JOB_TOKEN] });
  assert.throws(
    () => loadServiceConfig(undefined, { ...base, RINGLET_EVALUATOR_BUS_TOKENS: 'short' }, {}),
    /bus_tokens.0: a join token has at least 8 characters/,
  );
});
