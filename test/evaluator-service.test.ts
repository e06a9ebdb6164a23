// The evaluator service over real HTTP on loopback, with a real SQLite file and real checkpoints:
// the CI gate end to end, comparisons, each bad-input case of the issue, lm-eval's completions contract,
// automatic evaluation from the bus, and a graceful SIGTERM of the `ringlet evaluator` process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { InProcessBus } from '../controlplane/bus.js';
import { SUBJECTS, CheckpointPublishedEvent } from '../controlplane/events.js';
import { loadServiceConfig } from '../evaluator/config.js';
import { startEvaluator, type RunningEvaluator } from '../evaluator/main.js';
import { loadScoringModel } from '../evaluator/model.js';
import { openApiDocument } from '../evaluator/openapi.js';
import { scoreSequences, sumFrom } from '../evaluator/scoring.js';
import { setupBackend } from '../kernels/backend.js';
import { EvaluatorServiceClient } from '../proto/gen/ringlet/evaluator/v1/evaluator.js';
import { makeFixture, root, trainTiny, type Fixture } from './evaluator-fixture.js';

const TOKEN = 'test-token-0123456789';
let f: Fixture;
let trained: string;
let evaluator: RunningEvaluator;
const bus = new InProcessBus();

async function call(method: string, route: string, body?: unknown, token: string | null = TOKEN) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(evaluator.url + route, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

before(async () => {
  await setupBackend('wasm');
  f = await makeFixture('ringlet-evsvc-');
  trained = await trainTiny(f, 60);
  const suites = path.join(f.work, 'suites');
  fs.mkdirSync(suites);
  fs.writeFileSync(
    path.join(suites, 'agreement.jsonl'),
    [
      JSON.stringify({ type: 'minimal_pair', good: 'The dogs bark.', bad: 'The dogs barks.' }),
      JSON.stringify({ type: 'minimal_pair', good: 'She was here.', bad: 'She were here.' }),
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(suites, 'broken.jsonl'),
    `${JSON.stringify({ type: 'minimal_pair', good: 'a', bad: 'b' })}\nnot json\n{"type": "minimal_pair"}\n`,
  );
  const config = loadServiceConfig(
    undefined,
    { RINGLET_EVALUATOR_TOKEN: TOKEN },
    {
      port: 0,
      grpc_port: 0,
      db: path.join(f.work, 'results.sqlite'),
      checkpoint_roots: f.work,
      suites_dir: suites,
      max_body_bytes: 8192,
      auto_suites: 'agreement',
      serve: path.join(trained),
    },
  );
  evaluator = await startEvaluator(config, bus, () => {});
});

after(async () => {
  await evaluator?.stop();
});

test('health, readiness and the OpenAPI document, which matches evaluator/openapi.json', async () => {
  assert.deepEqual((await call('GET', '/healthz', undefined, null)).body, { status: 'ok' });
  const ready = await call('GET', '/readyz', undefined, null);
  assert.equal(ready.status, 200);
  assert.equal(ready.body.ready, true);
  const doc = await call('GET', '/openapi.json', undefined, null);
  assert.deepEqual(doc.body, openApiDocument());
  assert.deepEqual(
    JSON.parse(fs.readFileSync(path.join(root, 'evaluator/openapi.json'), 'utf8')),
    openApiDocument(),
    'run `ringlet evaluator --openapi > evaluator/openapi.json`',
  );
  assert.ok(doc.body.paths['/v1/gate'].post.requestBody);
});

test('a gate that must pass passes and one that must fail fails, over HTTP', async () => {
  const pass = await call('POST', '/v1/gate', {
    checkpoint: 'fresh',
    suites: ['val', 'blimp'],
    limit: 4,
    thresholds: [
      { suite: 'blimp', metric: 'accuracy', min: 0.2 },
      { suite: 'val', metric: 'val_loss', max: 10 },
    ],
    baseline: 'fresh2',
    max_regression: 0.5,
  });
  assert.equal(pass.status, 200, JSON.stringify(pass.body));
  assert.equal(pass.body.pass, true, JSON.stringify(pass.body.checks));
  assert.equal(pass.body.exit_code, 0);
  assert.equal(pass.body.checks.length, 4);

  // Fails on a threshold (an untrained model's loss is near ln 512) and against a trained baseline.
  const fail = await call('POST', '/v1/gate', {
    checkpoint: 'fresh',
    suites: ['val'],
    limit: 16,
    thresholds: [{ suite: 'val', metric: 'val_loss', max: 3 }],
    baseline: path.relative(f.work, trained),
  });
  assert.equal(fail.status, 200);
  assert.equal(fail.body.pass, false);
  assert.equal(fail.body.exit_code, 1);
  const [threshold, regression] = fail.body.checks;
  assert.equal(threshold.pass, false);
  assert.ok(threshold.value > 5);
  assert.equal(regression.pass, false);
  assert.equal(regression.comparison.verdict, 'baseline better');
  assert.ok(regression.comparison.ci_high < 0);

  const typo = await call('POST', '/v1/gate', {
    checkpoint: 'fresh',
    suites: ['val'],
    limit: 2,
    thresholds: [{ suite: 'val', metric: 'acuracy', min: 1 }],
  });
  assert.equal(typo.status, 400);
  assert.match(typo.body.error, /no metric "acuracy"/);
});

test('compare gives per-suite metrics and a paired-bootstrap interval that excludes zero for a real gain', async () => {
  const r = await call('POST', '/v1/compare', {
    baseline: 'fresh',
    candidate: path.relative(f.work, trained),
    suites: ['val'],
    limit: 16,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const val = r.body.suites.val;
  assert.ok(val.metrics.val_loss.candidate < val.metrics.val_loss.baseline);
  assert.equal(val.comparison.items, 16);
  assert.ok(
    val.comparison.ci_low > 0 &&
      val.comparison.ci_low <= val.comparison.difference &&
      val.comparison.difference <= val.comparison.ci_high,
  );
  assert.equal(val.comparison.verdict, 'candidate better');
});

test('writes need the token: missing or wrong gives 401, reads do not need it', async () => {
  const body = { checkpoint: 'fresh', suites: ['agreement'] };
  const missing = await call('POST', '/v1/evaluations', body, null);
  assert.equal(missing.status, 401);
  assert.match(missing.body.error, /Bearer/);
  const wrong = await call('POST', '/v1/evaluations', body, 'not-the-token-at-all');
  assert.equal(wrong.status, 401);
  assert.equal((await call('GET', '/v1/evaluations', undefined, null)).status, 200);
});

test('oversized requests are refused with 413 before the body is read', async () => {
  const big = { checkpoint: 'fresh', suites: ['agreement'], padding: 'x'.repeat(20_000) };
  const r = await call('POST', '/v1/evaluations', big);
  assert.equal(r.status, 413);
  assert.match(r.body.error, /exceeds the limit of 8192 bytes/);
});

test('unknown, half-written and out-of-root checkpoints, bad suites and bad fields get clear errors', async () => {
  const unknown = await call('POST', '/v1/evaluations', { checkpoint: 'no-such-run', suites: ['agreement'] });
  assert.equal(unknown.status, 404);
  assert.match(unknown.body.error, /unknown checkpoint no-such-run/);

  const published = fs.readdirSync(path.join(f.fresh, 'checkpoints')).find((n) => n.startsWith('step-'))!;
  const inFlight = path.join(f.fresh, 'checkpoints', `.tmp-${published}-1-ffff`);
  fs.cpSync(path.join(f.fresh, 'checkpoints', published), inFlight, { recursive: true });
  const writing = await call('POST', '/v1/evaluations', { checkpoint: path.relative(f.work, inFlight), suites: ['agreement'] });
  assert.equal(writing.status, 409);
  assert.match(writing.body.error, /still being written/);

  const outside = await call('POST', '/v1/evaluations', { checkpoint: '/work', suites: ['agreement'] });
  assert.equal(outside.status, 403);

  const broken = await call('POST', '/v1/evaluations', { checkpoint: 'fresh', suites: ['broken'] });
  assert.equal(broken.status, 400);
  assert.match(broken.body.error, /broken.jsonl:2: not JSON/);
  assert.match(broken.body.error, /broken.jsonl:3: /);

  const path_ = await call('POST', '/v1/evaluations', { checkpoint: 'fresh', suites: ['/etc/passwd.jsonl'] });
  assert.equal(path_.status, 400, 'the API does not read suite files by path');

  const field = await call('POST', '/v1/evaluations', { checkpoint: 'fresh', suites: [], limit: -1 });
  assert.equal(field.status, 400);
  assert.match(field.body.error, /suites/);
  assert.match(field.body.error, /limit/);
});

test('two concurrent requests for the same evaluation run it once and both get the answer', async () => {
  const body = { checkpoint: 'fresh2', suites: ['agreement', 'blimp'], limit: 2, wait: true };
  const [a, b] = await Promise.all([call('POST', '/v1/evaluations', body), call('POST', '/v1/evaluations', body)]);
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  assert.equal(a.body.id, b.body.id);
  assert.deepEqual([a.body.state, b.body.state].sort(), ['joined', 'started']);
  assert.deepEqual(a.body.result.suites.blimp.accuracy, b.body.result.suites.blimp.accuracy);
  const ckpt = a.body.checkpoint.path;
  const all = (await call('GET', `/v1/evaluations?checkpoint=${encodeURIComponent(ckpt)}`, undefined, null)).body.evaluations;
  assert.equal(all.filter((e: any) => e.request.suites.join() === 'agreement,blimp').length, 1);
  // Asked again later, the stored result answers at once.
  const again = await call('POST', '/v1/evaluations', { ...body, wait: false });
  assert.equal(again.status, 200);
  assert.equal(again.body.state, 'stored');
  assert.equal(again.body.id, a.body.id);
  const read = await call('GET', `/v1/evaluations/${a.body.id}?items=true`, undefined, null);
  assert.equal(read.body.status, 'done');
  assert.equal(read.body.result.suites.blimp.item_ids.length, 102);
  assert.equal(read.body.result.energy.estimated, true);
  assert.ok(read.body.result.energy.joules > 0);
  assert.equal(read.body.checkpoint.run_dir, f.fresh2);
});

test('a published checkpoint is evaluated automatically, with its job recorded', async () => {
  const ckpt = path.join(
    trained,
    'checkpoints',
    fs.readdirSync(path.join(trained, 'checkpoints')).find((n) => n.startsWith('step-'))!,
  );
  await bus.publish(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, {
    job: 'job-42',
    run_dir: trained,
    checkpoint: ckpt,
    step: 60,
    tokens_seen: 1,
    time: new Date().toISOString(),
  });
  let found: any;
  for (let i = 0; i < 100 && !found; i++) {
    const list = (await call('GET', `/v1/evaluations?run_dir=${encodeURIComponent(trained)}`, undefined, null)).body.evaluations;
    found = list.find((e: any) => e.source === 'event:job-42' && e.status === 'done');
    if (!found) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(found, 'the event produced a finished evaluation');
  assert.equal(found.checkpoint.job, 'job-42');
  assert.equal(found.checkpoint.step, 60);
  assert.deepEqual(found.request.suites, ['agreement']);
});

test('/v1/completions answers lm-eval loglikelihood requests: echo, logprobs, ids or text', async () => {
  const model = await loadScoringModel(trained);
  const context = [model.tokenizer.eotId, ...model.tokenizer.encode('It was a')];
  const continuation = model.tokenizer.encode(' fine day');
  // What lm-eval's local-completions sends for a loglikelihood request (tokenized_requests=True).
  const r = await call('POST', '/v1/completions', {
    model: 'ringlet',
    prompt: [[...context, ...continuation]],
    temperature: 0,
    max_tokens: 1,
    logprobs: 1,
    seed: 1234,
    echo: true,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const lp = r.body.choices[0].logprobs;
  assert.equal(lp.token_logprobs.length, context.length + continuation.length + 1);
  assert.equal(lp.token_logprobs[0], null);
  // lm-eval sums token_logprobs[ctxlen:-1]; it must equal the scoring core's sum for the continuation.
  const harness = lp.token_logprobs.slice(context.length, -1).reduce((a: number, b: number) => a + b, 0);
  const [scored] = await scoreSequences(model, [[...context, ...continuation]]);
  assert.ok(Math.abs(harness - sumFrom(scored.logprobs, context.length - 1)) < 1e-6);
  for (const top of lp.top_logprobs.slice(1)) {
    assert.equal(Object.keys(top).length, 1);
  }
  // is_greedy: a token equal to the top alternative's logprob.
  const i = context.length;
  assert.ok(lp.token_logprobs[i] <= Math.max(...(Object.values(lp.top_logprobs[i]) as number[])) + 1e-9);

  const text = await call('POST', '/v1/completions', {
    model: 'ringlet',
    prompt: ['It was a', 'The'],
    max_tokens: 5,
    temperature: 0,
  });
  assert.equal(text.body.choices.length, 2);
  assert.equal(text.body.choices[0].logprobs, null);
  assert.equal(text.body.usage.completion_tokens <= 10, true);

  const info = await call('GET', '/tokenizer_info', undefined, null);
  assert.equal(info.body.eos_token, '<|endoftext|>');
  const tok = await call('POST', '/tokenize', { prompt: 'test', add_special_tokens: false });
  assert.deepEqual(tok.body.tokens, model.tokenizer.encode('test'));
  const detok = await call('POST', '/detokenize', { tokens: tok.body.tokens });
  assert.equal(detok.body.prompt, 'test');

  // What lm-eval 0.4.13 sends for generate_until: the task's `until` with the end-of-text token added as stop
  // strings (five here, past OpenAI's four), seed 1234; it reads choices[index].text.
  const until = await call('POST', '/v1/completions', {
    prompt: [context],
    model: 'ringlet',
    max_tokens: 256,
    temperature: 0,
    stop: ['\n\n', 'Question:', '</s>', '<|im_end|>', '<|endoftext|>'],
    seed: 1234,
  });
  assert.equal(until.status, 200, JSON.stringify(until.body));
  assert.equal(until.body.choices[0].index, 0);
  assert.ok(!until.body.choices[0].text.includes('\n\n'));

  // The OpenAI routes answer errors in OpenAI's shape.
  const badModel = await call('POST', '/v1/completions', { model: 'gpt-4', prompt: 'x' });
  assert.equal(badModel.status, 404);
  assert.equal(badModel.body.error.type, 'not_found_error');
  assert.equal(badModel.body.error.param, 'model');
  assert.match(badModel.body.error.message, /gpt-4/);
  const badId = await call('POST', '/v1/completions', {
    model: 'ringlet',
    prompt: [999999],
    max_tokens: 0,
    echo: true,
    logprobs: 0,
  });
  assert.equal(badId.status, 400);
  model.dispose();
});

test('ringlet evaluator keeps results across a restart and stops cleanly on SIGTERM', async () => {
  const db = path.join(f.work, 'cli.sqlite');
  const start = () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(root, 'cli/ringlet.ts'),
        'evaluator',
        '--port',
        '0',
        '--db',
        db,
        '--checkpoint-roots',
        f.work,
        '--json',
      ],
      {
        cwd: root,
        env: { ...process.env, RINGLET_EVALUATOR_TOKEN: TOKEN },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const url = new Promise<string>((resolve, reject) => {
      child.stdout.on('data', () => {
        const m = /"listening":"([^"]+)"/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`evaluator exited with ${code}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { child, url, exited, output: () => out };
  };
  const first = start();
  const url1 = await first.url;
  const submitted = await fetch(`${url1}/v1/evaluations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ checkpoint: 'fresh', suites: ['blimp'], limit: 1, wait: true }),
  }).then((r) => r.json() as any);
  assert.equal(submitted.status, 'done');
  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  const summary = JSON.parse(first.output().trim().split('\n').at(-1)!);
  assert.equal(summary.stopped, 'SIGTERM');
  assert.equal(summary.drained, true);

  const second = start();
  const url2 = await second.url;
  const read = await fetch(`${url2}/v1/evaluations/${submitted.id}`).then((r) => r.json() as any);
  assert.equal(read.status, 'done');
  assert.equal(read.result.suites.blimp.accuracy, submitted.result.suites.blimp.accuracy);
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0);
});

test('the gRPC face gates and submits like the HTTP API, and wants the token for writes', async () => {
  const client = new EvaluatorServiceClient(evaluator.grpcAddress!, grpc.credentials.createInsecure());
  const unary = <Req, Res>(
    method: (req: Req, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown,
    req: Req,
    token: string | null = TOKEN,
  ) =>
    new Promise<Res>((resolve, reject) => {
      const md = new grpc.Metadata();
      if (token !== null) md.set('authorization', `Bearer ${token}`);
      method.call(client, req, md, (err, res) => (err ? reject(err) : resolve(res)));
    });
  try {
    const gate = { checkpoint: 'fresh', suites: ['val'], limit: 4, thresholds: [{ suite: 'val', metric: 'val_loss', max: 3 }] };
    const fail: any = await unary(client.gate, { requestJson: JSON.stringify(gate) });
    assert.equal(fail.pass, false);
    assert.equal(fail.exitCode, 1);
    const pass: any = await unary(client.gate, {
      requestJson: JSON.stringify({ ...gate, thresholds: [{ suite: 'val', metric: 'val_loss', max: 10 }] }),
    });
    assert.equal(pass.pass, true);
    assert.equal(pass.exitCode, 0);
    await assert.rejects(
      unary(client.gate, { requestJson: JSON.stringify(gate) }, null),
      (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED,
    );
    await assert.rejects(
      unary(client.submit, { checkpoint: 'no-such-run', suites: ['val'], limit: 0, wait: true }),
      (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND,
    );
    const submitted: any = await unary(client.submit, { checkpoint: 'fresh', suites: ['val'], limit: 4, wait: true });
    assert.equal(submitted.status, 'done');
    const read: any = await unary(client.getEvaluation, { id: submitted.id }, null);
    assert.equal(JSON.parse(read.evaluationJson).result.suites.val.items, 4);
  } finally {
    client.close();
  }
});

test('config comes from a file, then the environment, then flags, and a bad field is named', () => {
  const file = path.join(f.work, 'evaluator.json');
  fs.writeFileSync(
    file,
    JSON.stringify({ token: 'from-the-file-0123456789', port: 9001, cpu_watts: 40, auto_suites: ['blimp'] }),
  );
  const c = loadServiceConfig(
    file,
    { RINGLET_EVALUATOR_PORT: '9002', RINGLET_EVALUATOR_AUTO_SUITES: 'val,dalaj' },
    { port: '9003' },
  );
  assert.equal(c.token, 'from-the-file-0123456789');
  assert.equal(c.cpu_watts, 40);
  assert.deepEqual(c.auto_suites, ['val', 'dalaj']);
  assert.equal(c.port, 9003);
  assert.throws(() => loadServiceConfig(file, { RINGLET_EVALUATOR_PORT: 'eighty' }, {}), /port/);
  assert.throws(
    () => loadServiceConfig(undefined, { RINGLET_EVALUATOR_TOKEN: 'short' }, {}),
    /token: the token must be at least 16 characters/,
  );
});

test('a client that promises a body and never sends it is answered 408 after request_timeout_s, and the service goes on', async () => {
  const config = loadServiceConfig(
    undefined,
    { RINGLET_EVALUATOR_TOKEN: TOKEN },
    { port: 0, db: path.join(f.work, 'timeout.sqlite'), checkpoint_roots: f.work, request_timeout_s: 1 },
  );
  const slow = await startEvaluator(config, new InProcessBus(), () => {});
  try {
    const { hostname, port } = new URL(slow.url);
    const socket = net.connect(Number(port), hostname);
    const started = Date.now();
    socket.write(
      `POST /v1/evaluations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 100\r\n\r\n{"che`,
    );
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d) => (text += d));
      socket.on('close', () => resolve(text));
    });
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.ok(Date.now() - started < 5000, `answered after ${Date.now() - started} ms`);
    assert.equal((await fetch(`${slow.url}/healthz`)).status, 200, 'the service goes on');
  } finally {
    await slow.stop();
  }
});
