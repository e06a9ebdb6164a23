// The evaluator's OpenAI routes through the official `openai` npm client, against the real evaluator on
// loopback serving a real (freshly initialised) checkpoint: whole and streamed completions agree, usage
// comes last when asked for, models are listed, errors arrive as the client's APIError naming the field,
// and a client that leaves mid-stream stops its generation on the server, 200 times over without a leak.
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import OpenAI, { APIError } from 'openai';
import { InProcessBus } from '../controlplane/bus.js';
import { loadServiceConfig } from '../evaluator/config.js';
import { startEvaluator, type RunningEvaluator } from '../evaluator/main.js';
import { setupBackend } from '../kernels/backend.js';
import { makeFixture, type Fixture } from './evaluator-fixture.js';

const TOKEN = 'test-token-0123456789';
let f: Fixture;
let evaluator: RunningEvaluator;
let client: OpenAI;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

before(async () => {
  await setupBackend('wasm');
  f = await makeFixture('ringlet-openai-');
  const config = loadServiceConfig(
    undefined,
    { RINGLET_EVALUATOR_TOKEN: TOKEN },
    { port: 0, db: path.join(f.work, 'results.sqlite'), checkpoint_roots: f.work, serve: 'fresh' },
  );
  evaluator = await startEvaluator(config, new InProcessBus(), () => {});
  client = new OpenAI({ baseURL: `${evaluator.url}/v1`, apiKey: TOKEN, maxRetries: 0 });
});

after(async () => {
  await evaluator?.stop();
});

const base = { model: 'ringlet', prompt: 'It was a fine morning in', max_tokens: 40, temperature: 0 } as const;

async function streamed(params: Omit<OpenAI.CompletionCreateParamsStreaming, 'stream'>) {
  const chunks: OpenAI.Completion[] = [];
  for await (const chunk of await client.completions.create({ ...params, stream: true })) chunks.push(chunk);
  return chunks;
}

/** Polls until the server has no completion running; the wait is bounded, the condition exact. */
async function idle(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (evaluator.openAi.stats.running > 0) {
    assert.ok(Date.now() < deadline, 'completions still running 10 s after their clients left');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('a completion through the openai client: text, finish reason and usage', async () => {
  const c = await client.completions.create(base);
  assert.equal(c.object, 'text_completion');
  assert.equal(c.model, 'ringlet');
  assert.equal(c.choices.length, 1);
  assert.equal(typeof c.choices[0].text, 'string');
  assert.ok(['stop', 'length'].includes(c.choices[0].finish_reason));
  const tokenized = await fetch(`${evaluator.url}/tokenize`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ prompt: base.prompt }),
  });
  assert.equal(c.usage!.prompt_tokens, ((await tokenized.json()) as { count: number }).count);
  assert.ok(c.usage!.completion_tokens > 0 && c.usage!.completion_tokens <= 40);
  assert.equal(c.usage!.total_tokens, c.usage!.prompt_tokens + c.usage!.completion_tokens);
});

test('stream: true yields the same text as the whole answer, chunk by chunk, the last with the finish reason', async () => {
  const whole = await client.completions.create(base);
  const chunks = await streamed(base);
  assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
  for (const chunk of chunks) {
    assert.equal(chunk.object, 'text_completion');
    assert.equal(chunk.choices.length, 1);
    assert.equal(chunk.choices[0].index, 0);
    assert.equal(chunk.id, chunks[0].id, 'one id for the whole stream');
    assert.ok(!chunk.choices[0].text.includes('\uFFFD'), 'no split UTF-8 character goes out');
  }
  assert.equal(chunks.map((c) => c.choices[0].text).join(''), whole.choices[0].text);
  assert.deepEqual(
    chunks.map((c) => c.choices[0].finish_reason),
    [...Array(chunks.length - 1).fill(null), whole.choices[0].finish_reason],
  );
  assert.equal('usage' in chunks[0], false, 'no usage field unless asked for');

  // With echo, the prompt comes first, then the same continuation.
  const echoed = await streamed({ ...base, echo: true });
  assert.equal(echoed[0].choices[0].text, base.prompt);
  assert.equal(echoed.map((c) => c.choices[0].text).join(''), base.prompt + whole.choices[0].text);

  // With logprobs, each chunk carries its tokens; together they are the whole answer's tokens.
  const withLogprobs = { ...base, logprobs: 2 };
  const wholeLp = (await client.completions.create(withLogprobs)).choices[0].logprobs!;
  const parts = (await streamed(withLogprobs)).map((c) => c.choices[0].logprobs!);
  assert.deepEqual(
    parts.flatMap((p) => p.tokens!),
    wholeLp.tokens,
  );
  assert.deepEqual(
    parts.flatMap((p) => p.text_offset!),
    wholeLp.text_offset,
  );
  assert.equal(wholeLp.tokens!.length, (await client.completions.create(base)).usage!.completion_tokens);
  for (const top of wholeLp.top_logprobs!) assert.equal(Object.keys(top!).length <= 2, true);
});

test("the wire format is OpenAI's: data lines of JSON, then data: [DONE]", async () => {
  const res = await fetch(`${evaluator.url}/v1/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...base, max_tokens: 5, stream: true }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
  const text = await res.text();
  assert.ok(text.endsWith('data: [DONE]\n\n'));
  const events = text.split('\n\n').filter((e) => e !== '');
  assert.equal(events.at(-1), 'data: [DONE]');
  for (const event of events.slice(0, -1)) {
    assert.match(event, /^data: \{/);
    const chunk = JSON.parse(event.slice('data: '.length));
    assert.deepEqual(Object.keys(chunk.choices[0]).sort(), ['finish_reason', 'index', 'logprobs', 'text']);
  }
});

test('stream_options.include_usage: a last chunk with empty choices and the usage, null usage before it', async () => {
  const whole = await client.completions.create(base);
  const chunks = await streamed({ ...base, stream_options: { include_usage: true } });
  const last = chunks.at(-1)!;
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, whole.usage);
  for (const chunk of chunks.slice(0, -1)) assert.equal(chunk.usage, null);
  assert.equal(chunks.at(-2)!.choices[0].finish_reason, whole.choices[0].finish_reason);
});

test('a stop string ends a streamed completion where it ends the whole one, and never goes out', async () => {
  const free = (await client.completions.create(base)).choices[0].text;
  assert.ok(free.length > 12, `the model wrote ${JSON.stringify(free)}`);
  const stop = free.slice(8, 11);
  const at = free.indexOf(stop);
  const whole = await client.completions.create({ ...base, stop: [stop, 'never written here'] });
  const chunks = await streamed({ ...base, stop: [stop, 'never written here'] });
  const text = chunks.map((c) => c.choices[0].text).join('');
  assert.equal(text, whole.choices[0].text);
  assert.ok(text.length <= at && free.startsWith(text), `${JSON.stringify(text)} is cut before ${JSON.stringify(stop)}`);
  assert.equal(whole.choices[0].finish_reason, 'stop');
  assert.equal(chunks.at(-1)!.choices[0].finish_reason, 'stop');
});

test('top_k and repetition_penalty are honoured (extensions); user is taken as opaque metadata', async () => {
  const greedy = (await client.completions.create(base)).choices[0].text;
  const extra = { top_k: 1, repetition_penalty: 1, user: 'someone' } as Record<string, unknown>;
  // top_k 1 at temperature 1 samples the likeliest token every time: greedy decoding.
  const topOne = await client.completions.create({ ...base, temperature: 1, seed: 7, ...extra });
  assert.equal(topOne.choices[0].text, greedy);
  const sampled = await client.completions.create({ ...base, temperature: 1, seed: 7, user: 'someone' });
  assert.notEqual(sampled.choices[0].text, greedy, 'without top_k the same seed samples other text');
  const penalised = await client.completions.create({
    ...base,
    repetition_penalty: 5,
  } as OpenAI.CompletionCreateParamsNonStreaming);
  assert.notEqual(penalised.choices[0].text, greedy, 'a strong repetition penalty changes greedy text');
});

test("models.list and models.retrieve in OpenAI's shape; an unknown model is a 404 naming it", async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  assert.equal(models.length, 1);
  assert.equal(models[0].id, 'ringlet');
  assert.equal(models[0].object, 'model');
  assert.equal(models[0].owned_by, 'ringlet');
  assert.ok(Math.abs(models[0].created - Date.now() / 1000) < 3600, 'created: when the checkpoint was written');
  assert.deepEqual(await client.models.retrieve('ringlet'), models[0]);
  await assert.rejects(
    client.models.retrieve('gpt-4'),
    (e: unknown) => e instanceof OpenAI.NotFoundError && /gpt-4/.test(e.message),
  );
  await assert.rejects(
    client.completions.create({ ...base, model: 'gpt-4' }),
    (e: unknown) => e instanceof OpenAI.NotFoundError && e.param === 'model' && e.code === 'model_not_found',
  );
});

/** The client's error for `params`, which must be a 400 naming `field`. */
async function refused(params: Record<string, unknown>, field: string, what: RegExp) {
  const err = await client.completions.create({ ...base, ...params } as OpenAI.CompletionCreateParamsNonStreaming).then(
    () => assert.fail(`${JSON.stringify(params).slice(0, 100)} was accepted`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof APIError, String(err));
  assert.equal(err.status, 400, err.message);
  assert.equal(err.type, 'invalid_request_error');
  assert.equal(err.param, field);
  assert.match(err.message, new RegExp(field));
  assert.match(err.message, what);
}

test('fields the endpoint cannot honour, and out-of-range values, are a 400 naming the field', async () => {
  await refused({ foo: 1 }, 'foo', /unknown field/);
  await refused({ temperature: 5 }, 'temperature', /<=2/);
  await refused({ top_p: 0 }, 'top_p', />0/);
  await refused({ max_tokens: 100_000 }, 'max_tokens', /<=512/);
  await refused({ logprobs: 50 }, 'logprobs', /<=20/);
  await refused({ n: 2 }, 'n', /only n = 1/);
  await refused({ best_of: 3 }, 'best_of', /best_of = 1/);
  await refused({ frequency_penalty: 0.5 }, 'frequency_penalty', /repetition_penalty/);
  await refused({ presence_penalty: -1 }, 'presence_penalty', /only 0/);
  await refused({ logit_bias: { '50256': -100 } }, 'logit_bias', /not supported/);
  await refused({ suffix: ' the end' }, 'suffix', /not supported/);
  await refused({ stream_options: { include_usage: true } }, 'stream_options', /stream: true/);
  await refused({ prompt: '', max_tokens: 0 }, 'prompt', /nothing to score/);
  await refused({ prompt: [100_000] }, 'prompt', /outside the vocabulary/);
  await refused({ prompt: 'x'.repeat(1_000_000) }, 'prompt', /at most 200000 characters/);
  // OpenAI's null means "not given": the defaults apply.
  const nulls = await client.completions.create({ ...base, logprobs: null, stop: null, seed: null, user: null } as never);
  assert.equal(nulls.choices[0].logprobs, null);
});

test("a body over the limit is a 413, and a wrong token a 401, both in OpenAI's shape", async () => {
  const big = await client.completions.create({ ...base, prompt: 'x'.repeat(2_000_000) }).catch((e: unknown) => e);
  assert.ok(big instanceof APIError && big.status === 413 && /exceeds the limit/.test(big.message), String(big));
  const stranger = new OpenAI({ baseURL: `${evaluator.url}/v1`, apiKey: 'not-the-token-0123456789', maxRetries: 0 });
  const denied = await stranger.completions.create(base).catch((e: unknown) => e);
  assert.ok(denied instanceof OpenAI.AuthenticationError && denied.type === 'authentication_error', String(denied));
  // The evaluator's own routes keep their error shape.
  const own = await fetch(`${evaluator.url}/v1/evaluations/none`);
  assert.equal(typeof ((await own.json()) as { error: unknown }).error, 'string');
});

test('a client that aborts a stream after its first chunk stops the generation on the server', async () => {
  const long = { ...base, max_tokens: 512 };
  // What the stream would have produced: 512 tokens, so only the abort can end it early.
  const whole = await client.completions.create(long);
  assert.equal(whole.usage!.completion_tokens, 512, 'the model writes 512 tokens without an end of document');
  await idle();
  const { tokens, cancelled } = evaluator.openAi.stats;
  const controller = new AbortController();
  const stream = await client.completions.create({ ...long, stream: true }, { signal: controller.signal });
  let chunks = 0;
  for await (const _ of stream) {
    chunks++;
    controller.abort();
    break;
  }
  assert.equal(chunks, 1);
  await idle();
  assert.equal(evaluator.openAi.stats.cancelled, cancelled + 1, 'the generation ended as cancelled');
  const made = evaluator.openAi.stats.tokens - tokens;
  assert.ok(made >= 1 && made < 512, `${made} tokens generated for the aborted stream`);
  // Nothing runs on: no token is made after the generation ended.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(evaluator.openAi.stats.tokens - tokens, made);
  const ready = (await (await fetch(`${evaluator.url}/readyz`)).json()) as { running_completions: number };
  assert.equal(ready.running_completions, 0);
});

/** Starts a streamed completion, reads its first chunk, and drops the connection. */
function disconnectAfterFirstChunk(url: URL): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => {});
    req.end(JSON.stringify({ ...base, max_tokens: 512, stream: true, logprobs: 3 }));
  });
}

test('200 clients that leave mid-stream leave no tensors and no heap growth behind', async () => {
  const url = new URL(`${evaluator.url}/v1/completions`);
  for (let i = 0; i < 10; i++) await disconnectAfterFirstChunk(url); // warm up caches and code
  await idle();
  gc();
  const tensors = tf.memory().numTensors;
  const heap = process.memoryUsage().heapUsed;
  const { cancelled } = evaluator.openAi.stats;
  for (let i = 0; i < 200; i++) await disconnectAfterFirstChunk(url);
  await idle();
  gc();
  assert.equal(evaluator.openAi.stats.cancelled, cancelled + 200, 'every generation stopped when its client left');
  assert.equal(tf.memory().numTensors, tensors, 'tensors left behind');
  const growth = (process.memoryUsage().heapUsed - heap) / 2 ** 20;
  assert.ok(growth < 8, `heap grew ${growth.toFixed(1)} MiB over 200 disconnects`);
});
