// Fuzzing the evaluator service, started as `ringlet evaluator` (its own command) with both faces on:
// its HTTP API (every route, the OpenAI ones included: valid requests, malformed JSON, wrong content types,
// oversized bodies, bad paths, header abuse, wrong tokens) and its gRPC face (the generic gRPC cases, and
// each method's fields made wrong: request JSON mutated, checkpoint references outside the roots, huge ids
// and suite lists).
// Its checkpoint root holds one checkpoint folder of garbage, so references reach the checkpoint reader.
import { randomBytes as secret } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Rng } from '../../lm/rng.js';
import { EvaluatorServiceService as Methods } from '../../proto/gen/ringlet/evaluator/v1/evaluator.js';
import { pick, randomBytes, randomText } from './draw.js';
import { genericGrpcCase, sendGeneric, type Sent } from './grpc-cases.js';
import { GrpcWire, grpcFrame, probeGrpc } from './grpc-client.js';
import { httpExchange, probeHttp } from './http-client.js';
import { httpCase, type HttpService } from './http-cases.js';
import { mutateJson, type Json } from './json-mutate.js';
import { ServiceProcess, ringletCommand } from './service-process.js';
import type { FuzzService, FuzzTarget } from './target.js';

const MAX_BODY_BYTES = 65536;
const CHECKPOINT = 'checkpoints/step-00000001';

interface Evaluator {
  child: ServiceProcess;
  token: string;
  http: { host: string; port: number };
  grpc: { host: string; port: number };
  close(): Promise<void>;
}

const hostPort = (address: string) => {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
};

async function startEvaluator(): Promise<Evaluator> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-fuzz-evaluator-'));
  const roots = path.join(dir, 'runs');
  fs.mkdirSync(path.join(roots, CHECKPOINT), { recursive: true });
  fs.writeFileSync(path.join(roots, CHECKPOINT, 'meta.json'), '{"step": "not a number", "config": []}');
  fs.writeFileSync(path.join(roots, CHECKPOINT, 'model.safetensors'), secret(256));
  const token = secret(24).toString('hex');
  const args = [
    'evaluator',
    '--port',
    '0',
    '--grpc-port',
    '0',
    '--db',
    path.join(dir, 'results.sqlite'),
    '--checkpoint-roots',
    roots,
  ];
  const child = new ServiceProcess(
    ringletCommand([...args, '--max-body-bytes', String(MAX_BODY_BYTES), '--auto-suites', 'val']),
    {
      RINGLET_EVALUATOR_TOKEN: token,
    },
  );
  const { listening, grpc } = await child.announcement<{ listening: string; grpc: string }>((l) => 'listening' in l, 120_000);
  return {
    child,
    token,
    http: hostPort(new URL(listening).host),
    grpc: hostPort(grpc),
    close: async () => {
      await child.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const SUBMIT: Record<string, Json> = { checkpoint: CHECKPOINT, suites: ['val'], limit: 2, wait: true };
const COMPARE: Record<string, Json> = { baseline: CHECKPOINT, candidate: 'checkpoints/step-00000002', suites: ['val'] };
const GATE: Record<string, Json> = {
  checkpoint: CHECKPOINT,
  suites: ['val'],
  thresholds: [{ suite: 'val', metric: 'val_loss', max: 5 }],
};

class EvaluatorHttpTarget implements FuzzTarget {
  readonly jsonErrors = true;
  readonly process: ServiceProcess;
  private readonly service: HttpService;

  constructor(private readonly evaluator: Evaluator) {
    this.process = evaluator.child;
    this.service = {
      token: evaluator.token,
      maxBodyBytes: MAX_BODY_BYTES,
      routes: [
        { method: 'GET', path: '/healthz' },
        { method: 'GET', path: '/readyz' },
        { method: 'GET', path: '/openapi.json' },
        { method: 'GET', path: '/v1/evaluations?limit=5' },
        { method: 'GET', path: '/v1/evaluations/some-id?items=true' },
        { method: 'GET', path: '/tokenizer_info' },
        { method: 'POST', path: '/v1/evaluations', body: SUBMIT },
        { method: 'POST', path: '/v1/compare', body: COMPARE },
        { method: 'POST', path: '/v1/gate', body: GATE },
        { method: 'GET', path: '/v1/models' },
        { method: 'GET', path: '/v1/models/ringlet' },
        { method: 'POST', path: '/v1/completions', body: { model: 'ringlet', prompt: 'Det var en gång', max_tokens: 4 } },
        {
          method: 'POST',
          path: '/v1/completions',
          body: {
            model: 'ringlet',
            prompt: 'Det var en gång',
            max_tokens: 4,
            stream: true,
            stream_options: { include_usage: true },
          },
        },
        { method: 'POST', path: '/tokenize', body: { prompt: 'hej' } },
        { method: 'POST', path: '/detokenize', body: { tokens: [1, 2, 3] } },
      ],
    };
  }

  async send(rng: Rng, deadlineMs: number): Promise<Sent[]> {
    const c = httpCase(rng, this.service);
    return [
      {
        what: c.what,
        answer: await httpExchange(this.evaluator.http, c.request, { head: c.head, end: c.incomplete, deadlineMs }),
        mayClose: c.incomplete || c.dropped,
      },
    ];
  }

  probe(deadlineMs: number): Promise<string | null> {
    return probeHttp(this.evaluator.http, '/healthz', deadlineMs);
  }

  close(): Promise<void> {
    return this.evaluator.close();
  }
}

type Method = keyof typeof Methods;

class EvaluatorGrpcTarget implements FuzzTarget {
  readonly jsonErrors = false;
  readonly process: ServiceProcess;
  private readonly wire: GrpcWire;
  private readonly auth: Record<string, string>;

  constructor(private readonly evaluator: Evaluator) {
    this.process = evaluator.child;
    this.wire = new GrpcWire(`${evaluator.grpc.host}:${evaluator.grpc.port}`);
    this.auth = { authorization: `Bearer ${evaluator.token}` };
  }

  private message(method: Method, request: object): Buffer {
    return (Methods[method].requestSerialize as (r: object) => Buffer)(request);
  }

  async send(rng: Rng, deadlineMs: number): Promise<Sent[]> {
    const bases: Array<[Method, object]> = [
      ['submit', { checkpoint: CHECKPOINT, suites: ['val'], limit: 2, wait: true }],
      ['getEvaluation', { id: 'some-id' }],
      ['compare', { requestJson: JSON.stringify(COMPARE) }],
      ['gate', { requestJson: JSON.stringify(GATE) }],
    ];
    if (pick(rng, ['generic', 'generic', 'fields']) === 'generic') {
      const [method, request] = pick(rng, bases);
      const valid = { path: Methods[method].path, message: this.message(method, request), auth: this.auth };
      return [await sendGeneric({ wire: this.wire, address: this.evaluator.grpc }, genericGrpcCase(rng, valid), deadlineMs)];
    }
    const [what, method, request] = this.badField(rng);
    const answer = await this.wire.call(
      { path: Methods[method].path, headers: this.auth, body: grpcFrame(this.message(method, request)) },
      deadlineMs,
    );
    return [{ what: `${what} (${method})`, answer }];
  }

  /** A valid call with one field made wrong. */
  private badField(rng: Rng): [string, Method, object] {
    const json = (body: Record<string, Json>) => mutateJson(rng, body);
    const compare = json(COMPARE);
    const gate = json(GATE);
    const [where, checkpoint] = pick(rng, [
      ['outside the roots', '../../../../etc'],
      ['an absolute path', '/etc/passwd'],
      ['a NUL', 'checkpoints/\u0000x'],
      ['a 1 MiB reference', 'c'.repeat(1 << 20)],
      ['a random reference', randomText(rng, 40)],
      ['the root itself', '.'],
    ]);
    const cases: Array<[string, Method, object]> = [
      [`request JSON: ${compare.what}`, 'compare', { requestJson: compare.text }],
      [`request JSON: ${gate.what}`, 'gate', { requestJson: gate.text }],
      ['request JSON of random bytes', 'gate', { requestJson: randomBytes(rng, 1 + rng.int(100)).toString('latin1') }],
      [`a checkpoint ${where}`, 'submit', { checkpoint, suites: ['val'], limit: 0, wait: false }],
      ['10,000 suites', 'submit', { checkpoint: CHECKPOINT, suites: Array(10_000).fill('val'), limit: 0, wait: false }],
      ['a suite named by a path', 'submit', { checkpoint: CHECKPOINT, suites: ['/etc/passwd'], limit: 0, wait: false }],
      ['a random suite', 'submit', { checkpoint: CHECKPOINT, suites: [randomText(rng, 30)], limit: 1, wait: true }],
      ['limit 2^32-1', 'submit', { checkpoint: CHECKPOINT, suites: ['val'], limit: 0xffffffff, wait: false }],
      ['no suites', 'submit', { checkpoint: CHECKPOINT, suites: [], limit: 0, wait: false }],
      ['a 1 MiB id', 'getEvaluation', { id: 'i'.repeat(1 << 20) }],
      ['a 40 KB id of non-ASCII letters', 'getEvaluation', { id: 'é'.repeat(20_000) }],
      ['a random id', 'getEvaluation', { id: randomText(rng, 40) }],
    ];
    return pick(rng, cases);
  }

  probe(deadlineMs: number): Promise<string | null> {
    // An evaluation that does not exist: NOT_FOUND from a live service.
    const request = {
      path: Methods.getEvaluation.path,
      headers: this.auth,
      body: grpcFrame(this.message('getEvaluation', { id: 'probe' })),
    };
    return probeGrpc(`${this.evaluator.grpc.host}:${this.evaluator.grpc.port}`, request, 5, deadlineMs);
  }

  async close(): Promise<void> {
    this.wire.close();
    await this.evaluator.close();
  }
}

export const evaluatorHttpService: FuzzService = {
  name: 'evaluator-http',
  start: async () => new EvaluatorHttpTarget(await startEvaluator()),
};

export const evaluatorGrpcService: FuzzService = {
  name: 'evaluator-grpc',
  start: async () => new EvaluatorGrpcTarget(await startEvaluator()),
};
