// The fuzz harness (`ringlet fuzz`, chaos/fuzz/) and the bugs it found, each kept as a regression case.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { tokenMetadata } from '../collective/auth.js';
import { pingUntilDead } from '../collective/session-keepalive.js';
import { httpExchange, probeHttp } from '../chaos/fuzz/http-client.js';
import { httpCase } from '../chaos/fuzz/http-cases.js';
import { failureLine } from '../chaos/fuzz/report.js';
import { fuzzService } from '../chaos/fuzz/run.js';
import { MEASURED_NODE_FLAGS, ServiceProcess } from '../chaos/fuzz/service-process.js';
import type { FuzzService } from '../chaos/fuzz/target.js';
import { InProcessBus } from '../controlplane/bus.js';
import { DistributedConfigSchema } from '../coordinator/config.js';
import { Coordinator } from '../coordinator/coordinator.js';
import { JobTelemetry } from '../coordinator/telemetry.js';
import {
  CoordinatorServiceClient,
  ReportStepRequest,
  type Assignment,
  CheckpointBarrierRequest,
  type WatchResponse,
} from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { loadServiceConfig } from '../evaluator/config.js';
import { startEvaluator } from '../evaluator/main.js';
import { EvaluatorServiceClient } from '../proto/gen/ringlet/evaluator/v1/evaluator.js';
import { TrainConfigSchema } from '../train/config.js';
import { stepWindows } from '../train/shard.js';

const TOKEN = 'fuzz-test-token-0123';

async function startCoordinator(
  workers = 1,
  o: { telemetry?: boolean } = {},
): Promise<{
  coordinator: Coordinator;
  client: CoordinatorServiceClient;
  close: () => Promise<void>;
}> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-fuzz-test-'));
  const train = TrainConfigSchema.parse({ data: out, out, training: { batch_size: 2, max_steps: 100 } });
  const dist = DistributedConfigSchema.parse({ token: TOKEN, job_id: 'job', min_workers: workers, max_workers: workers });
  const info = { windowsPerEpoch: 100, tokensPerStep: 64, startStep: 0, startCursorPosition: 0, restoreCheckpoint: '' };
  // The job's metrics, as a coordinator keeps them (no server, no CPU peak measured, no power polled).
  const telemetry = o.telemetry
    ? await JobTelemetry.start(
        { ...train.observability, cpu_peak_flops_per_core: 1e9, power_poll_s: 3600, gpu_power: 'off' },
        { flopsPerToken: 1, workers },
      )
    : undefined;
  const coordinator = new Coordinator(train, dist, info, { log: () => {}, telemetry });
  await coordinator.start();
  const client = new CoordinatorServiceClient(coordinator.address, grpc.credentials.createInsecure());
  return {
    coordinator,
    client,
    close: async () => {
      client.close();
      await coordinator.close();
      fs.rmSync(out, { recursive: true, force: true });
    },
  };
}

test('a status message quoting a 100 KB worker id is cut, so the caller gets it (it waited for its deadline)', async () => {
  const { client, close } = await startCoordinator();
  try {
    const started = Date.now();
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.heartbeat(
        { jobId: 'job', workerId: 'w'.repeat(100_000), ringEpoch: 0, step: 0, ringError: '' },
        tokenMetadata(TOKEN),
        { deadline: Date.now() + 5000 },
        (e) => resolve(e),
      ),
    );
    assert.equal(err?.code, grpc.status.NOT_FOUND, `answered ${err?.code}: ${err?.details.slice(0, 100)}`);
    assert.match(err.details, /^unknown worker "w+\.\.\. \(\d+ characters\)$/);
    assert.ok(err.details.length < 1100, `${err.details.length} characters`);
    assert.ok(Date.now() - started < 4000);
  } finally {
    await close();
  }
});

/** `n` workers (on machine `host`) join and watch until the ring forms; their ids and assignments, in rank order. */
async function formRing(
  client: CoordinatorServiceClient,
  n: number,
  host = '',
): Promise<Array<{ workerId: string; assignment: Assignment }>> {
  const md = tokenMetadata(TOKEN);
  const joined = await Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise<string>((resolve, reject) =>
          client.join({ jobId: 'job', collectiveAddress: `127.0.0.1:${1000 + i}`, workerName: 'w', host }, md, (e, r) =>
            e ? reject(e) : resolve(r.workerId),
          ),
        ),
    ),
  );
  const members = await Promise.all(
    joined.map(
      (workerId) =>
        new Promise<{ workerId: string; assignment: Assignment }>((resolve) =>
          client
            .watch({ jobId: 'job', workerId }, md)
            .on('data', (m: WatchResponse) => m.assignment && resolve({ workerId, assignment: m.assignment })),
        ),
    ),
  );
  return members.sort((a, b) => a.assignment.rank - b.assignment.rank);
}

function barrier(
  client: CoordinatorServiceClient,
  req: Partial<CheckpointBarrierRequest>,
  deadlineMs = 5000,
): Promise<grpc.ServiceError | null> {
  const full = CheckpointBarrierRequest.fromPartial({ jobId: 'job', stateSha256: 'f'.repeat(64), ...req });
  return new Promise((resolve) =>
    client.checkpointBarrier(full, tokenMetadata(TOKEN), { deadline: Date.now() + deadlineMs }, (e) => resolve(e)),
  );
}

/** `m`'s report of `step` with its windows (global batch 2) and every figure 0, with `change` made to it. */
function reportStep(
  client: CoordinatorServiceClient,
  m: { workerId: string; assignment: Assignment },
  step: number,
  change: Partial<ReportStepRequest> = {},
): Promise<grpc.ServiceError | null> {
  const plan = { firstStep: 0, firstPosition: 0, globalBatch: 2, windowsPerEpoch: 100 };
  const { ringEpoch, rank, worldSize } = m.assignment;
  const windows = stepWindows(plan, step, worldSize, rank);
  return new Promise((resolve) =>
    client.reportStep(
      ReportStepRequest.fromPartial({ jobId: 'job', workerId: m.workerId, ringEpoch, rank, step, windows, ...change }),
      tokenMetadata(TOKEN),
      { deadline: Date.now() + 5000 },
      (e) => resolve(e),
    ),
  );
}

/** An evaluator service in this process, with `flags` on top of a fresh database and checkpoint root. */
async function startTestEvaluator(flags: Record<string, unknown> = {}) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-fuzz-evaluator-'));
  const env = { RINGLET_EVALUATOR_TOKEN: TOKEN };
  const config = loadServiceConfig(undefined, env, {
    port: 0,
    db: path.join(work, 'results.sqlite'),
    checkpoint_roots: work,
    ...flags,
  });
  const evaluator = await startEvaluator(config, new InProcessBus(), () => {});
  return { evaluator, remove: () => fs.rmSync(work, { recursive: true, force: true }) };
}

test('a barrier for a step its rank never reported, or rank 0 naming no checkpoint, is refused at once (both waited forever)', async () => {
  const { client, close } = await startCoordinator();
  try {
    const [{ workerId, assignment }] = await formRing(client, 1);
    const rank0 = { workerId, ringEpoch: assignment.ringEpoch, rank: 0 };
    const never = await barrier(client, { ...rank0, step: 5, checkpoint: 'checkpoints/step-5' });
    assert.equal(never?.code, grpc.status.FAILED_PRECONDITION, never?.details);
    assert.match(never.details, /step 5.*last reported step is 0/);
    const nameless = await barrier(client, { ...rank0, step: 0 });
    assert.equal(nameless?.code, grpc.status.INVALID_ARGUMENT, nameless?.details);
    assert.equal(
      await barrier(client, { ...rank0, step: 0, checkpoint: 'checkpoints/step-0' }),
      null,
      'a barrier at the step reached completes',
    );
  } finally {
    await close();
  }
});

test("the evaluator's gRPC errors quoting a lone surrogate or a 40 KB id reach the caller (the first crashed the service, the second hung the caller)", async () => {
  const { evaluator, remove } = await startTestEvaluator({ grpc_port: 0 });
  const client = new EvaluatorServiceClient(evaluator.grpcAddress!, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${TOKEN}`);
  const answer = (call: (cb: (e: grpc.ServiceError | null) => void) => void) =>
    new Promise<grpc.ServiceError | null>((resolve) => call((e) => resolve(e)));
  try {
    // JSON can spell a lone surrogate; grpc-js percent-encodes a status message with encodeURI, which throws on one.
    const requestJson = '{"baseline": "\\ud800", "candidate": "b", "suites": ["val"]}';
    const surrogate = await answer((cb) => client.compare({ requestJson }, md, { deadline: Date.now() + 5000 }, cb));
    assert.ok(
      surrogate && surrogate.code !== grpc.status.DEADLINE_EXCEEDED && surrogate.code !== grpc.status.UNAVAILABLE,
      surrogate?.details,
    );
    assert.match(surrogate.details, /\uFFFD/);
    const long = await answer((cb) =>
      client.getEvaluation({ id: 'é'.repeat(20_000) }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, cb),
    );
    assert.equal(long?.code, grpc.status.NOT_FOUND, long?.details.slice(0, 100));
    assert.ok(long.details.length < 1100, `${long.details.length} characters`);
  } finally {
    client.close();
    await evaluator.stop();
    remove();
  }
});

test('closing the coordinator answers the calls waiting at a barrier (close waited for them forever)', async () => {
  const { coordinator, client, close } = await startCoordinator(2);
  try {
    const [, rank1] = await formRing(client, 2);
    const waiting = barrier(client, { workerId: rank1.workerId, ringEpoch: rank1.assignment.ringEpoch, rank: 1, step: 0 });
    await new Promise((r) => setTimeout(r, 200)); // rank 1 is at the barrier; rank 0 never comes
    const closed = await Promise.race([
      coordinator.close().then(() => true),
      new Promise((r) => setTimeout(() => r(false), 3000)),
    ]);
    assert.ok(closed, 'close() returned');
    const err = await waiting;
    assert.equal(err?.code, grpc.status.ABORTED, err?.details);
  } finally {
    await close();
  }
});

/**
 * Opens a connection to host:port, starts a call to `path` (a request whose body never comes), then sends a
 * frame nghttp2 must reject (a client's PUSH_PROMISE claiming 8 MB), waits for the server's GOAWAY and
 * closes the connection. Node's server then stops reading the socket and never learns it closed.
 */
async function breakSession(address: string, path: string): Promise<void> {
  const at = address.lastIndexOf(':');
  const socket = net.connect(Number(address.slice(at + 1)), address.slice(0, at));
  const frame = (type: number, flags: number, stream: number, payload: Buffer, length = payload.length) => {
    const header = Buffer.alloc(9);
    header.writeUIntBE(length, 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(stream, 5);
    return Buffer.concat([header, payload]);
  };
  // HPACK literal header fields without indexing: 0x00, name length, name, value length, value.
  const fields = { ':method': 'POST', ':scheme': 'http', ':path': path, ':authority': 'x', 'content-type': 'application/grpc' };
  const block = Buffer.concat(
    Object.entries(fields).flatMap(([k, v]) => [
      Buffer.from([0, k.length]),
      Buffer.from(k),
      Buffer.from([v.length]),
      Buffer.from(v),
    ]),
  );
  socket.on('error', () => {});
  socket.write(
    Buffer.concat([
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      frame(4, 0, 0, Buffer.alloc(0)), // SETTINGS
      frame(1, 4, 1, block), // HEADERS, END_HEADERS, no END_STREAM: the request's body is to come
      frame(5, 0, 1, Buffer.alloc(8), 8_000_000), // PUSH_PROMISE from a client, longer than any frame may be
    ]),
  );
  await new Promise<void>((resolve) =>
    socket.on('data', (d: Buffer) => d.includes(Buffer.from([7, 0, 0, 0, 0, 0])) && resolve()),
  );
  socket.destroy();
}

test('a session broken by a malformed frame is dropped once it leaves a ping unanswered, a live one is kept (Node kept it for good)', async () => {
  const server = http2.createServer();
  server.on('session', (session) => pingUntilDead(session, 100, 200));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const connections = () => new Promise<number>((resolve) => server.getConnections((_, n) => resolve(n)));
  const live = http2.connect(`http://${address}`);
  try {
    await breakSession(address, '/any');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await connections(), 2, 'the broken session is still open, and the live one');
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(await connections(), 1, 'the broken session was dropped, the live one kept');
  } finally {
    live.destroy();
    server.close();
  }
});

const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

test('a coordinator that a malformed frame reached still stops (grpc-js waited for the broken session forever)', async () => {
  const { coordinator, close } = await startCoordinator();
  await breakSession(coordinator.address, '/ringlet.coordinator.v1.CoordinatorService/Heartbeat');
  assert.ok(await within(coordinator.close(), 10_000), 'the coordinator stopped');
  await close();
});

test('an evaluator that a malformed frame reached still stops (grpc-js waited for the broken session forever)', async () => {
  const { evaluator, remove } = await startTestEvaluator({ grpc_port: 0, drain_seconds: 1 });
  await breakSession(evaluator.grpcAddress!, '/ringlet.evaluator.v1.EvaluatorService/GetEvaluation');
  assert.ok(await within(evaluator.stop(), 10_000), 'the evaluator stopped');
  remove();
});

test('a step report with a non-finite or negative time is refused, and the step still commits for the others (the other rank got INTERNAL)', async () => {
  const { client, close } = await startCoordinator(2, { telemetry: true });
  try {
    const ring = await formRing(client, 2);
    for (const change of [{ allreduceMs: Infinity }, { allreduceMs: NaN }, { computeMs: NaN }, { computeMs: -1 }]) {
      const err = await reportStep(client, ring[0], 1, change);
      assert.equal(err?.code, grpc.status.INVALID_ARGUMENT, `${JSON.stringify(change)}: ${err?.details}`);
    }
    assert.equal(await reportStep(client, ring[0], 1), null, 'rank 0 reports step 1');
    const other = await reportStep(client, ring[1], 1);
    assert.equal(other, null, `rank 1 completes step 1: ${other?.details}`);
  } finally {
    await close();
  }
});

test("the evaluator's HTTP API answers a malformed percent-escape in a path with 400 (it was a 500)", async () => {
  const { evaluator, remove } = await startTestEvaluator();
  try {
    for (const escape of ['%E0%A4%A', '%zz']) {
      const res = await fetch(`${evaluator.url}/v1/evaluations/${escape}`);
      assert.equal(res.status, 400, escape);
      assert.match(((await res.json()) as { error: string }).error, /malformed percent-encoding/);
    }
  } finally {
    await evaluator.stop();
    remove();
  }
});

test('a refused Watch (wrong token, unknown worker, a second Watch) ends with its status (the stream stayed open without one)', async () => {
  const { client, close } = await startCoordinator(1);
  try {
    const [member] = await formRing(client, 1);
    const watch = (workerId: string, token: string) =>
      new Promise<grpc.ServiceError>((resolve, reject) => {
        const md = tokenMetadata(token);
        const stream = client.watch({ jobId: 'job', workerId }, md, { deadline: Date.now() + 5000 });
        stream.on('error', resolve);
        stream.on('data', () => reject(new Error('a message on a refused Watch')));
      });
    assert.equal((await watch(member.workerId, 'not-the-token')).code, grpc.status.UNAUTHENTICATED);
    assert.equal((await watch('nobody', TOKEN)).code, grpc.status.NOT_FOUND);
    assert.equal((await watch(member.workerId, TOKEN)).code, grpc.status.ALREADY_EXISTS);
  } finally {
    await close();
  }
});

test('a step report naming an energy source no meter has is refused (each made a new metrics series, without end)', async () => {
  const { client, close } = await startCoordinator(1, { telemetry: true });
  try {
    const [m] = await formRing(client, 1, 'another-machine');
    const report = (step: number, hostEnergySource: string) =>
      reportStep(client, m, step, { hostEnergyJ: step, hostEnergySource });
    for (const source of ['made-up', 'rapl+', 'x'.repeat(64)])
      assert.equal((await report(1, source))?.code, grpc.status.INVALID_ARGUMENT, source);
    assert.equal(await report(1, 'nvidia-smi+rapl'), null);
    assert.equal(await report(2, 'estimated'), null);
  } finally {
    await close();
  }
});

// A toy HTTP service, broken on purpose, in a child process: a PATCH kills it, a path with an encoded NUL gets
// a 500 with a stack trace, and an OPTIONS request is never answered. Everything else: JSON, 200 or 400.
const TOY_SERVER = `
const http = require('node:http');
http.createServer((req, res) => {
  if (req.method === 'PATCH' && process.env.TOY_CRASHES) throw new Error('toy: a PATCH takes me down');
  if (req.method === 'OPTIONS') return;
  const send = (status, body) => (res.writeHead(status, { 'content-type': 'application/json' }), res.end(JSON.stringify(body)));
  if (req.url.includes('%00')) return send(500, { error: new Error('toy: a NUL in the path').stack });
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    let parsed;
    try { parsed = JSON.parse(body || '{}'); } catch { return send(400, { error: 'not JSON' }); }
    send(200, { keys: typeof parsed === 'object' && parsed !== null ? Object.keys(parsed).length : 0 });
  });
}).listen(0, '127.0.0.1', function () { console.log(JSON.stringify({ port: this.address().port })); });
`;

function toyService(env: Record<string, string>): FuzzService {
  const routes = [
    { method: 'POST', path: '/echo', body: { a: 1 } },
    { method: 'GET', path: '/ok' },
  ];
  return {
    name: 'toy',
    async start() {
      const child = new ServiceProcess([process.execPath, ...MEASURED_NODE_FLAGS, '-e', TOY_SERVER], env);
      const { port } = await child.announcement<{ port: number }>((l) => 'port' in l, 10_000);
      const address = { host: '127.0.0.1', port };
      return {
        process: child,
        jsonErrors: true,
        async send(rng, deadlineMs) {
          const c = httpCase(rng, { routes, maxBodyBytes: 1024 });
          const answer = await httpExchange(address, c.request, { head: c.head, end: c.incomplete, deadlineMs });
          return [{ what: c.what, answer, mayClose: c.incomplete || c.dropped }];
        },
        probe: (deadlineMs) => probeHttp(address, '/ok', deadlineMs),
        close: () => child.stop(),
      };
    },
  };
}

test('the oracle fails a broken toy service: its crash is found, with the seed and index that replay it', async () => {
  const toy = toyService({ TOY_CRASHES: '1' });
  const crashed = await fuzzService(toy, { count: 400, seed: 11, deadlineMs: 1000 });
  assert.equal(crashed.crashes, 1);
  const crash = crashed.failures.find((f) => f.kind === 'crash')!;
  assert.match(crash.what, /method PATCH/);
  assert.match(crash.why, /a PATCH takes me down/);
  assert.match(
    failureLine(crash),
    new RegExp(`\\(seed 11\\)[^]*\\n  replay: ringlet fuzz --service toy --seed 11 --index ${crash.index}$`),
  );
  const replayed = await fuzzService(toy, { count: 400, seed: 11, deadlineMs: 1000, index: crash.index });
  assert.deepEqual([replayed.cases, replayed.crashes], [1, 1], 'the same message crashes it again, alone');
});

test('the oracle fails a broken toy service: a 500 with a stack trace is unclear, a request never answered a hang', async () => {
  const result = await fuzzService(toyService({}), { count: 300, seed: 11, deadlineMs: 1000 });
  assert.equal(result.crashes, 0, JSON.stringify(result.failures.filter((f) => f.kind === 'crash')));
  assert.ok(result.answers.unclear > 0 && result.failures.some((f) => f.kind === 'unclear' && /stack trace/.test(f.why)));
  assert.ok(result.answers.hang > 0 && result.failures.some((f) => f.kind === 'hang' && /OPTIONS/.test(f.what)));
  assert.ok(result.answers.ok > 0 && result.answers.refused > 0, 'and the rest are judged as they are');
});

test('ringlet fuzz: 1,000 messages to each service (seed 1), no crash, no hang, only clear errors, memory bounded', () => {
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'cli/ringlet.ts', 'fuzz', '--count', '1000', '--seed', '1', '--json'],
    {
      encoding: 'utf8',
      timeout: 600_000,
    },
  );
  const summary = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
  const failures = run.stderr.split('\n').filter((l) => l.startsWith('fuzz ') || l.startsWith('  replay'));
  assert.deepEqual(failures, [], 'no failure reported');
  assert.deepEqual(
    summary.services.map((s: { service: string }) => s.service),
    ['collective', 'coordinator', 'evaluator-http', 'evaluator-grpc', 'metrics'],
  );
  for (const s of summary.services) {
    assert.ok(s.messages >= 1000, `${s.service}: ${s.messages} messages`);
    assert.deepEqual([s.crashes, s.answers.hang, s.answers.unclear, s.failed_probes], [0, 0, 0, 0], s.service);
    assert.ok(s.answers.refused > 0, `${s.service} refused something`);
    assert.ok(s.rss_before_mib > 0 && s.rss_growth_mib < 64, `${s.service}: RSS ${s.rss_before_mib} -> ${s.rss_after_mib} MiB`);
  }
  assert.equal(summary.passed, true);
  assert.equal(run.status, 0);
});
