// The evaluator's HTTP JSON API on node:http (a dozen routes need no framework). Every body is read with a
// byte limit (413 past it), parsed as JSON and checked with the route's zod schema (400 naming the field);
// every POST needs `Authorization: Bearer <token>` (401). The routes are listed in openapi.ts. The OpenAI
// routes (/v1/completions, /v1/models) are openai-api.ts's, and answer errors in OpenAI's shape.
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { DetokenizeSchema, TokenizeSchema, tokenizerInfo } from './completions.js';
import { openAiRoutes, sendOpenAiError, type OpenAiApi, type OpenAiRoute } from './openai-api.js';
import { openApiDocument } from './openapi.js';
import { CompareSchema, EvaluatorService, GateSchema, parseRequest as parse, ServiceError, SubmitSchema } from './service.js';
import type { EvaluationRecord } from './store.js';
import { suiteSummary } from './evaluate.js';
import type { SuiteResult } from './suites/types.js';

type Handler = (ctx: { body: unknown; query: URLSearchParams; params: string[] }) => Promise<[number, unknown]>;
type Route =
  | { method: 'GET' | 'POST'; pattern: RegExp; handler: Handler }
  /** An OpenAI route: it writes its own answer, and errors before it (auth, body) are OpenAI-shaped. */
  | (OpenAiRoute & { handler?: undefined });

/** An evaluation as the API shows it: per-item scores only when asked for (`?items=true`). */
export function presentEvaluation(record: EvaluationRecord, items = false) {
  const { key: _key, result, ...rest } = record;
  if (!result) return { ...rest, result: null };
  const suites = Object.fromEntries(
    Object.entries(result.suites).map(([name, s]) => [name, items ? { ...suiteSummary(s), ...perItem(s) } : suiteSummary(s)]),
  );
  return { ...rest, result: { ...result, suites } };
}

/** The per-item arrays of a suite: scores, and for validation windows their nats and bytes. */
function perItem(s: SuiteResult) {
  const { item_ids, item_scores, item_nats, item_bytes } = s;
  return { item_ids, item_scores, ...(item_nats && { item_nats, item_bytes }) };
}

/** A path segment percent-decoded; a malformed escape (%E0%A4%A, %zz) is the client's error, not a 500. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ServiceError(400, `malformed percent-encoding in the path: ${segment.slice(0, 200)}`);
  }
}

export class EvaluatorHttp {
  readonly server: http.Server;
  private draining = false;
  private readonly routes: Route[];
  private readonly token: Buffer;
  readonly openAi: OpenAiApi;

  constructor(private readonly service: EvaluatorService) {
    this.token = Buffer.from(`Bearer ${service.config.token}`);
    this.openAi = openAiRoutes(service.openAiModels, { queue: (work) => service.enqueue(work) });
    this.routes = this.buildRoutes();
    // Node's request timeout covers receiving the request only, not the answer, so a client that waits
    // minutes for an evaluation is not cut off; one that never finishes sending is (checked every second).
    this.server = http.createServer({ connectionsCheckingInterval: 1000 }, (req, res) => void this.handle(req, res));
    this.server.requestTimeout = service.config.request_timeout_s * 1000;
    this.server.headersTimeout = Math.min(30_000, this.server.requestTimeout);
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.service.config.port, this.service.config.host, () => {
        const address = this.server.address() as { address: string; port: number };
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /** Graceful stop: readiness fails, new work is refused, running evaluations finish (up to drain_seconds). */
  async shutdown(): Promise<boolean> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const finished = await this.service.drain(this.service.config.drain_seconds);
    await this.openAi.stop();
    this.server.closeAllConnections();
    await closed;
    return finished;
  }

  private buildRoutes(): Route[] {
    const s = this.service;
    const route = (method: Route['method'], path: string, handler: Handler): Route => ({
      method,
      pattern: new RegExp(`^${path.replace(/\{[a-z_]+\}/g, '([^/]+)')}$`),
      handler,
    });
    return [
      route('GET', '/healthz', async () => [200, { status: 'ok' }]),
      route('GET', '/readyz', async () => {
        const ready = !this.draining && s.store.ping();
        return [
          ready ? 200 : 503,
          {
            ready,
            draining: this.draining,
            running_evaluations: s.busy,
            running_completions: this.openAi.stats.running,
            ignored_events: s.ignoredEvents,
          },
        ];
      }),
      route('GET', '/openapi.json', async () => [200, openApiDocument()]),
      route('POST', '/v1/evaluations', async ({ body }) => {
        const { wait, ...request } = parse(SubmitSchema, body);
        const submitted = await s.submit(request, 'api');
        if (!wait) {
          const record = s.store.get(submitted.id)!;
          return [submitted.state === 'stored' ? 200 : 202, { id: submitted.id, state: submitted.state, status: record.status }];
        }
        const record = await submitted.finished;
        return [200, { ...presentEvaluation(record), state: submitted.state }];
      }),
      route('GET', '/v1/evaluations/{id}', async ({ params, query }) => {
        const record = s.store.get(decodeSegment(params[0]));
        if (!record) throw new ServiceError(404, `no evaluation ${params[0]}`);
        return [200, presentEvaluation(record, query.get('items') === 'true')];
      }),
      route('GET', '/v1/evaluations', async ({ query }) => {
        const limit = Number(query.get('limit') ?? 50);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
          throw new ServiceError(400, 'limit must be an integer in 1..1000');
        const records = s.store.list({
          run_dir: query.get('run_dir') ?? undefined,
          checkpoint: query.get('checkpoint') ?? undefined,
          limit,
        });
        return [200, { evaluations: records.map((r) => presentEvaluation(r)) }];
      }),
      route('POST', '/v1/compare', async ({ body }) => [200, await s.compare(parse(CompareSchema, body))]),
      route('POST', '/v1/gate', async ({ body }) => [200, await s.gate(parse(GateSchema, body))]),
      ...this.openAi.routes,
      route('GET', '/tokenizer_info', async () => [200, tokenizerInfo(await s.servedModel('ringlet'))]),
      route('POST', '/tokenize', async ({ body }) => {
        const model = await s.servedModel('ringlet');
        const tokens = model.tokenizer.encode(parse(TokenizeSchema, body).prompt);
        return [200, { tokens, count: tokens.length, max_model_len: model.config.context }];
      }),
      route('POST', '/detokenize', async ({ body }) => {
        const model = await s.servedModel('ringlet');
        const { tokens } = parse(DetokenizeSchema, body);
        const bad = tokens.find((id) => id >= model.tokenizer.vocabSize);
        if (bad !== undefined)
          throw new ServiceError(400, `token id ${bad} is outside the vocabulary (size ${model.tokenizer.vocabSize})`);
        return [200, { prompt: model.tokenizer.decode(tokens) }];
      }),
    ];
  }

  private authorized(req: http.IncomingMessage): boolean {
    const given = Buffer.from(req.headers.authorization ?? '');
    return given.length === this.token.length && timingSafeEqual(given, this.token);
  }

  private async readBody(req: http.IncomingMessage): Promise<unknown> {
    const limit = this.service.config.max_body_bytes;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) throw new ServiceError(413, `request body of ${declared} bytes exceeds the limit of ${limit} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new ServiceError(413, `request body exceeds the limit of ${limit} bytes`);
      chunks.push(chunk);
    }
    if (size === 0) return {};
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      throw new ServiceError(400, `request body is not JSON: ${(err as Error).message}`);
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let status = 500;
    let payload: unknown;
    let openAi = false;
    try {
      const url = new URL(req.url ?? '/', 'http://evaluator');
      const matching = this.routes.filter((r) => r.pattern.test(url.pathname));
      openAi = matching.length > 0 && matching.every((r) => r.handler === undefined);
      const route = matching.find((r) => r.method === req.method);
      if (!route) {
        if (matching.length > 0) throw new ServiceError(405, `${req.method} is not allowed on ${url.pathname}`);
        throw new ServiceError(404, `no route ${url.pathname}`);
      }
      if (route.method === 'POST') {
        if (!this.authorized(req)) {
          res.setHeader('WWW-Authenticate', 'Bearer');
          throw new ServiceError(
            401,
            req.headers.authorization ? 'wrong token' : 'this request needs Authorization: Bearer <token>',
          );
        }
        if (this.draining) throw new ServiceError(503, 'the evaluator is shutting down');
      }
      const body = route.method === 'POST' ? await this.readBody(req) : undefined;
      const params = route.pattern.exec(url.pathname)!.slice(1);
      if (route.handler === undefined) return await route.handle(req, res, body, params);
      [status, payload] = await route.handler({ body, query: url.searchParams, params });
    } catch (err) {
      // A body past the limit is left unread; closing the connection stops the client sending the rest.
      if (err instanceof ServiceError && err.status === 413) res.setHeader('Connection', 'close');
      if (openAi) return sendOpenAiError(res, err);
      if (err instanceof ServiceError) {
        status = err.status;
        payload = { error: err.message };
      } else {
        status = 500;
        payload = { error: `internal error: ${(err as Error).message}` };
      }
    }
    const text = JSON.stringify(payload);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }
}
