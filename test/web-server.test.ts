// `ringlet serve`'s API against real run folders: two tiny runs trained here, a run whose process died, one
// that is running, a truncated metrics line; the playground streaming from a real checkpoint; bad input;
// clients that leave mid-stream; and writes refused off loopback without the token.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import OpenAI from 'openai';
import { setupBackend } from '../kernels/backend.js';
import { EnergyMeter } from '../observability/power.js';
import { defaultObservabilityConfig } from '../observability/config.js';
import { loadTrainConfig } from '../train/config.js';
import { ProgressLog } from '../train/progress.js';
import { train } from '../train/run.js';
import type { CheckpointList, DoneEvent, RunDetail, RunList, TokenEvent } from '../web/api.js';
import { Evaluations } from '../web/server/evaluations.js';
import { GenerationEnergy } from '../web/server/playground.js';
import { RunsIndex } from '../web/server/runs.js';
import { WebServer } from '../web/server/server.js';
import { prepareTinyDataset, TINY_MODEL } from './tiny-dataset.js';

const root = path.resolve(import.meta.dirname, '..');
let work: string;
let runsDir: string;
let server: WebServer;
let evaluations: Evaluations;
let url: string;

async function trainRun(name: string, dataset: string, seed: number): Promise<void> {
  const out = path.join(runsDir, name);
  const configFile = path.join(work, `${name.replace("/", "-")}.json`);
  fs.writeFileSync(
    configFile,
    JSON.stringify({ model: TINY_MODEL, optimizer: { lr: 0.01, warmup_steps: 2 }, training: { batch_size: 8, eval_windows: 4, log_every: 1, seed } }),
  );
  const config = loadTrainConfig(configFile, { data: dataset, out, maxSteps: 6, evalEvery: 3, checkpointEvery: 3 });
  await train(config, { resume: false, log: new ProgressLog(out, { live: false }) });
}

async function startServer(host = '127.0.0.1', token: string | null = null) {
  const meter = await EnergyMeter.forMachine(defaultObservabilityConfig());
  const s = new WebServer(new RunsIndex(runsDir, evaluations), evaluations, new GenerationEnergy(meter), {
    host,
    port: 0,
    staticDir: path.join(root, 'dist', 'web'),
    token,
    maxBodyBytes: 1 << 20,
    pollMs: 50,
    maxLoadedModels: 2,
  });
  const address = await s.listen();
  return { s, url: address.replace('0.0.0.0', '127.0.0.1') };
}

async function api<T>(pathname: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url + pathname, init);
  return { status: res.status, body: (await res.json()) as T };
}

/** Reads a Server-Sent Events stream into [event, data] pairs until `until` says stop or the stream ends. */
async function readEvents(res: Response, until: (events: Array<[string, unknown]>) => boolean = () => false) {
  const events: Array<[string, unknown]> = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let at: number;
    while ((at = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) events.push([event, JSON.parse(data)]);
    }
    if (until(events)) {
      await reader.cancel();
      break;
    }
  }
  return events;
}

async function waitForEvaluation(id: string): Promise<void> {
  for (let i = 0; evaluations.store.get(id)?.status === 'running'; i++) {
    assert.ok(i < 600, 'the evaluation finished within a minute');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const generateBody = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ checkpoint: 'eng/a/step-00000006', prompt: 'Det var en gång', max_tokens: 12, seed: 1, temperature: 0.8, ...over });

before(async () => {
  await setupBackend('wasm');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-web-'));
  runsDir = path.join(work, 'runs');
  const dataset = await prepareTinyDataset(root, work);
  await trainRun('eng/a', dataset, 1);
  await trainRun('b', dataset, 2);
  // A run whose process died without an end record, and one whose process (this one) is alive.
  const deadPid = Number(execFileSync('sh', ['-c', 'echo $$']).toString());
  const start = (pid: number) =>
    JSON.stringify({ type: 'start', time: new Date().toISOString(), pid, host: os.hostname(), preset: 'nano', dataset, parameters: 1, tokens_per_step: 256, workers: 1, status_address: null, resumed_from_step: 0, config: {} });
  fs.mkdirSync(path.join(runsDir, 'died'));
  fs.writeFileSync(path.join(runsDir, 'died', 'metrics.jsonl'), `${start(deadPid)}\n{"type":"step","step":1,"loss":6}\n`);
  fs.mkdirSync(path.join(runsDir, 'live'));
  fs.writeFileSync(path.join(runsDir, 'live', 'metrics.jsonl'), `${start(process.pid)}\n{"type":"step","step":1,"loss":6}\n{"type":"step","st`);
  evaluations = new Evaluations(path.join(runsDir, 'evaluator.sqlite'), runsDir, () => {});
  ({ s: server, url } = await startServer());
});

after(async () => {
  await server?.close();
  evaluations?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

test('the runs list tells finished, failed and running runs apart, from their files and processes', async () => {
  const { body } = await api<RunList>('/api/runs');
  const byId = new Map(body.runs.map((r) => [r.id, r]));
  assert.deepEqual([...byId.keys()].sort(), ['b', 'died', 'eng/a', 'live']);
  const a = byId.get('eng/a')!;
  assert.equal(a.status, 'finished');
  assert.equal(a.step, 6);
  assert.equal(a.preset, 'nano');
  assert.equal(a.checkpoints, 2);
  assert.equal(a.tokens, 6 * 8 * 32);
  assert.ok(a.val_bpb! > 0 && a.loss! > 0 && a.tokens_per_s! > 0);
  assert.ok(a.parameters! > 0);
  assert.equal(byId.get('died')!.status, 'failed');
  assert.match(byId.get('died')!.error!, /ended without finishing/);
  assert.equal(byId.get('live')!.status, 'running');
});

test('run detail has curves against tokens, the config and checkpoints; a truncated line is skipped and counted', async () => {
  const { status, body } = await api<RunDetail>(`/api/runs/${encodeURIComponent('eng/a')}`);
  assert.equal(status, 200);
  const steps = body.metrics.filter((p) => p.type === 'step');
  assert.deepEqual(steps.map((p) => p.step), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(steps.map((p) => p.tokens), [1, 2, 3, 4, 5, 6].map((s) => s * 8 * 32));
  assert.ok(body.metrics.some((p) => p.type === 'eval' && p.val_bpb! > 0));
  assert.deepEqual(body.checkpoints.map((c) => c.id), ['eng/a/step-00000003', 'eng/a/step-00000006']);
  assert.equal((body.config as { data: string }).data.endsWith('data'), true);
  assert.equal(body.workers, null);
  const live = await api<RunDetail>('/api/runs/live');
  assert.equal(live.body.skipped_lines, 1);
  assert.equal(live.body.metrics.length, 1);
});

test('ids that are not runs under --runs get 404, however they are spelled', async () => {
  for (const id of ['nope', '..', encodeURIComponent('../runs/b'), encodeURIComponent('/etc')]) {
    const { status, body } = await api<{ error: { type: string } }>(`/api/runs/${id}`);
    assert.equal(status, 404, id);
    assert.equal(body.error.type, 'not_found_error');
  }
});

test("a run's stream sends each metric line as the run appends it", async () => {
  const controller = new AbortController();
  const res = await fetch(`${url}/api/runs/live/stream`, { signal: controller.signal });
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const file = path.join(runsDir, 'live', 'metrics.jsonl');
  const writer = (async () => {
    await new Promise((r) => setTimeout(r, 150));
    fs.appendFileSync(file, 'ep":2}\n'); // completes nothing useful: the truncated line stays broken
    for (let step = 2; step <= 4; step++) {
      fs.appendFileSync(file, `${JSON.stringify({ type: 'step', step, loss: 6 - step / 10, tokens: step * 256 })}\n`);
      await new Promise((r) => setTimeout(r, 120));
    }
  })();
  const events = await readEvents(
    res,
    (e) => e.filter(([name]) => name === 'metric').length >= 3 && e.some(([name, d]) => name === 'run' && (d as { step: number }).step === 4),
  );
  await writer;
  const steps = events.filter(([name]) => name === 'metric').map(([, d]) => (d as { step: number }).step);
  assert.deepEqual(steps, [2, 3, 4]);
  assert.ok(events.some(([name, d]) => name === 'run' && (d as { step: number }).step === 4));
});

test('the playground streams tokens with log-probabilities and alternatives, then a summary', async () => {
  const res = await fetch(`${url}/api/generate`, { method: 'POST', body: generateBody({ top_logprobs: 3 }) });
  assert.equal(res.status, 200);
  const events = await readEvents(res);
  assert.equal(events.at(-1)![0], 'done', JSON.stringify(events.at(-1)));
  const tokens = events.filter(([e]) => e === 'token').map(([, d]) => d as TokenEvent);
  const done = events.find(([e]) => e === 'done')![1] as DoneEvent;
  assert.equal(events.at(-1)![0], 'done');
  assert.equal(done.tokens, tokens.length);
  assert.ok(tokens.length > 0 && tokens.length <= 12);
  assert.deepEqual(tokens.map((t) => t.index), tokens.map((_, i) => i));
  for (const t of tokens) {
    assert.ok(t.logprob <= 0 && Number.isFinite(t.logprob));
    assert.equal(t.top.length, 3);
    assert.ok(t.top[0].logprob >= t.top[1].logprob && t.top[1].logprob >= t.top[2].logprob);
    assert.ok(t.top[0].logprob >= t.logprob - 1e-6, 'the likeliest alternative is at least as likely as the sampled token');
  }
  assert.ok(done.tokens_per_s > 0 && done.first_token_ms > 0);
  assert.ok(done.energy_j_per_1k_tokens === null || done.energy_j_per_1k_tokens > 0);
  // The same seed gives the same text.
  const again = await readEvents(await fetch(`${url}/api/generate`, { method: 'POST', body: generateBody({ top_logprobs: 3 }) }));
  const text = (ev: Array<[string, unknown]>) => ev.filter(([e]) => e === 'token').map(([, d]) => (d as TokenEvent).text).join('');
  assert.equal(text(again), text(events));
});

test('bad playground requests get a clear error naming the field', async () => {
  const cases: Array<[Record<string, unknown>, number, RegExp]> = [
    [{ prompt: '' }, 400, /prompt.*empty/],
    [{ prompt: 'x'.repeat(1_000_000) }, 400, /longer than 100000 characters/],
    [{ temperature: 3 }, 400, /temperature/],
    [{ top_p: 0 }, 400, /top_p/],
    [{ max_tokens: 0 }, 400, /max_tokens/],
    [{ top_k: 1.5 }, 400, /top_k/],
    [{ frequency_penalty: 1 }, 400, /unknown field "frequency_penalty"/],
    [{ checkpoint: 'eng/a/step-00000099' }, 404, /unknown checkpoint/],
    [{ checkpoint: '../../etc' }, 404, /unknown checkpoint/],
  ];
  for (const [over, status, message] of cases) {
    const r = await api<{ error: { message: string; type: string } }>('/api/generate', { method: 'POST', body: generateBody(over) });
    assert.equal(r.status, status, JSON.stringify(over).slice(0, 80));
    assert.match(r.body.error.message, message);
  }
  const huge = await fetch(`${url}/api/generate`, { method: 'POST', body: generateBody({ prompt: 'x'.repeat(2 << 20) }) });
  assert.equal(huge.status, 413);
});

test('a checkpoint being written is not offered, and a damaged one is refused with the reason', async () => {
  const checkpoints = path.join(runsDir, 'b', 'checkpoints');
  fs.cpSync(path.join(checkpoints, 'step-00000003'), path.join(checkpoints, '.tmp-step-00000009'), { recursive: true });
  const damaged = path.join(checkpoints, 'step-00000003', 'model.safetensors');
  const bytes = fs.readFileSync(damaged);
  bytes[bytes.length - 1] ^= 0xff;
  fs.writeFileSync(damaged, bytes);
  const { body } = await api<CheckpointList>('/api/checkpoints');
  assert.ok(!body.checkpoints.some((c) => c.id.includes('.tmp')));
  assert.ok(body.checkpoints.some((c) => c.id === 'b/step-00000003'));
  const r = await api<{ error: { message: string } }>('/api/generate', { method: 'POST', body: generateBody({ checkpoint: 'b/step-00000003' }) });
  assert.equal(r.status, 404);
  assert.match(r.body.error.message, /sha256/);
});

test('clients that leave mid-stream stop their generation, and 200 of them leak no tensors', async () => {
  const leave = async () => {
    const controller = new AbortController();
    const res = await fetch(`${url}/api/generate`, { method: 'POST', body: generateBody({ max_tokens: 1000 }), signal: controller.signal });
    await readEvents(res, (e) => e.some(([name]) => name === 'token')).catch(() => []);
    controller.abort();
  };
  await leave(); // loads the model
  const idle = async () => {
    for (let i = 0; i < 200; i++) {
      const { body } = await api<{ generating: number }>('/api/status');
      if (body.generating === 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail('a generation kept running after its client left');
  };
  await idle();
  const tensors = tf.memory().numTensors;
  const heap = process.memoryUsage().heapUsed;
  for (let i = 0; i < 200; i++) await leave();
  await idle();
  assert.equal(tf.memory().numTensors, tensors, 'every generation freed its tensors');
  global.gc?.();
  assert.ok(process.memoryUsage().heapUsed < heap + 64 * 2 ** 20, 'the heap did not grow by 64 MiB');
});

test('an evaluation submitted from the UI lands in the store, and compare pairs the two runs on it', async () => {
  for (const [checkpoint, suites] of [['eng/a/step-00000006', ['val', 'blimp']], ['b/step-00000006', ['val']]] as const) {
    const r = await api<{ id: string }>('/api/evaluations', { method: 'POST', body: JSON.stringify({ checkpoint, suites, limit: 2 }) });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await waitForEvaluation(r.body.id);
  }
  const { body } = await api<CheckpointList>('/api/checkpoints');
  const evaluated = body.checkpoints.find((c) => c.id === 'eng/a/step-00000006')!;
  assert.equal(evaluated.evaluations[0].status, 'done');
  assert.ok(evaluated.evaluations[0].suites.val.metrics.val_bpb > 0);
  const blimp = evaluated.evaluations[0].suites.blimp;
  assert.equal(blimp.metric, 'accuracy');
  assert.ok(blimp.ci_low! <= blimp.value && blimp.value <= blimp.ci_high! && blimp.ci_low! < blimp.ci_high!);
  assert.ok(Object.keys(blimp.groups!).length > 10, 'BLiMP accuracy per paradigm');
  const compare = await api<{ runs: RunDetail[]; pairs: Array<{ suite: string; ci_low: number; ci_high: number; difference: number }> }>(
    `/api/compare?runs=${encodeURIComponent('eng/a')},b`,
  );
  assert.equal(compare.status, 200);
  assert.deepEqual(compare.body.runs.map((r) => r.summary.id), ['eng/a', 'b']);
  const pair = compare.body.pairs.find((p) => p.suite === 'val')!;
  assert.ok(pair.ci_low <= pair.difference && pair.difference <= pair.ci_high);
  assert.equal((await api('/api/compare?runs=b')).status, 400);
});

test('off loopback, submitting an evaluation needs the token', async () => {
  const open = await startServer('0.0.0.0', null);
  const guarded = await startServer('0.0.0.0', 'a-token-of-sixteen-chars');
  try {
    const submit = (base: string, auth?: string) =>
      fetch(`${base}/api/evaluations`, {
        method: 'POST',
        headers: auth ? { authorization: auth } : {},
        body: JSON.stringify({ checkpoint: 'b/step-00000006', suites: ['val'], limit: 2 }),
      });
    assert.equal((await submit(open.url)).status, 403);
    assert.equal((await submit(guarded.url)).status, 401);
    assert.equal((await submit(guarded.url, 'Bearer wrong-token-of-16-chars')).status, 401);
    const accepted = await submit(guarded.url, 'Bearer a-token-of-sixteen-chars');
    assert.equal(accepted.status, 202);
    await waitForEvaluation(((await accepted.json()) as { id: string }).id);
  } finally {
    await open.s.close();
    await guarded.s.close();
  }
});

test("a distributed run shows its workers from the live coordinator while it runs, then finishes", async () => {
  const out = path.join(runsDir, 'dist');
  const configFile = path.join(work, 'dist.json');
  fs.writeFileSync(configFile, JSON.stringify({ model: TINY_MODEL, training: { batch_size: 4, eval_windows: 4, log_every: 1, eval_every: 20 } }));
  const dataset = path.join(work, 'data');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'cli/ringlet.ts'), 'train', '--config', configFile, '--data', dataset, '--out', out, '--workers', '2', '--max-steps', '400', '--checkpoint-every', '200'],
    { cwd: root, stdio: 'ignore' },
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    let seen: RunDetail | null = null;
    for (let i = 0; i < 600 && !seen; i++) {
      const r = await api<RunDetail>('/api/runs/dist');
      if (r.status === 200 && r.body.summary.status === 'running' && (r.body.workers?.length ?? 0) === 2 && r.body.metrics.length > 0) seen = r.body;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(seen, 'the run was seen running with its two workers');
    assert.deepEqual(seen.workers!.map((w) => w.rank).sort(), [0, 1]);
    assert.ok(seen.workers!.every((w) => w.healthy));
    assert.equal(seen.summary.workers, 2);
    assert.equal(await exited, 0);
    const done = await api<RunDetail>('/api/runs/dist');
    assert.equal(done.body.summary.status, 'finished');
    assert.equal(done.body.workers, null);
    assert.equal(done.body.summary.step, 400);
    assert.ok(done.body.metrics.some((p) => p.type === 'eval' && p.val_bpb! > 0));
  } finally {
    child.kill('SIGKILL');
  }
});

test('the official openai client lists every checkpoint and streams completions from ringlet serve', async () => {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 });
  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  assert.ok(ids.includes('eng/a/step-00000006') && ids.includes('b/step-00000006'), ids.join());
  const request = { model: 'eng/a/step-00000006', prompt: 'Det var', max_tokens: 10, temperature: 0, seed: 3 };
  const whole = await client.completions.create(request);
  const chunks: string[] = [];
  for await (const chunk of await client.completions.create({ ...request, stream: true })) chunks.push(chunk.choices[0]?.text ?? '');
  assert.ok(chunks.length >= 2);
  assert.equal(chunks.join(''), whole.choices[0].text);
  await assert.rejects(client.completions.create({ ...request, model: 'eng/a/step-00000099' }), (err: InstanceType<typeof OpenAI.APIError>) => {
    assert.equal(err.status, 404);
    return true;
  });
});
