// `ringlet serve`: one node:http server for the web UI's files (dist/web, built by `npm run build`), its
// JSON and Server-Sent Events API (web/api.ts), and the OpenAI-compatible endpoints. Loopback only unless
// told otherwise; off loopback, evaluation submissions need the evaluator's token. Every body is read
// with a byte limit and checked by a zod schema; every error is `{ error: { message, type, code, param } }`.
import { timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { z } from 'zod';
import type { ErrorBody, RunDetail, RunSummary } from '../api.js';
import { OpenAiError, openAiRoutes, sendOpenAiError, type OpenAiApi } from '../../evaluator/openai-api.js';
import type { Evaluations } from './evaluations.js';
import { LoadedModels, UnknownModelError } from './models.js';
import { GenerationEnergy, PlaygroundRequestSchema, streamGeneration } from './playground.js';
import { metricPoint, readMetrics } from './run-files.js';
import type { RunsIndex } from './runs.js';
import { openEventStream } from './sse.js';

export interface ServeOptions {
  host: string;
  port: number;
  /** dist/web: index.html and assets/ from the Vite build. */
  staticDir: string;
  /** Needed for POST /api/evaluations when the server listens beyond loopback. */
  token: string | null;
  maxBodyBytes: number;
  /** How often live streams look at the run folders. */
  pollMs: number;
  maxLoadedModels: number;
}

/** An API error: HTTP status, OpenAI-style type, and the request field at fault. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

type Handler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  ctx: { params: string[]; query: URLSearchParams },
) => Promise<void>;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

export const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

export class WebServer {
  readonly server: http.Server;
  readonly models: LoadedModels;
  /** POST /v1/completions, GET /v1/models: the evaluator's OpenAI-compatible code over every checkpoint. */
  readonly openAi: OpenAiApi;
  private readonly energy: GenerationEnergy;
  private readonly routes: Array<{ method: string; pattern: RegExp; handler: Handler }> = [];

  constructor(
    private readonly runs: RunsIndex,
    private readonly evaluations: Evaluations | null,
    energy: GenerationEnergy,
    private readonly options: ServeOptions,
  ) {
    this.models = new LoadedModels(runs, options.maxLoadedModels, () => this.openAi.stats.running > 0);
    this.openAi = openAiRoutes({
      list: async () =>
        (await runs.checkpoints()).map((c) => ({ id: c.id, created: Math.floor((Date.parse(c.created_at) || 0) / 1000) })),
      load: (id) => this.models.load(id),
    });
    this.energy = energy;
    this.buildRoutes();
    this.server = http.createServer({ connectionsCheckingInterval: 1000 }, (req, res) => void this.handle(req, res));
    this.server.requestTimeout = 30_000; // receiving a request; streams that follow are not limited
  }

  /** Adds a route; the OpenAI-compatible endpoints come in this way (cli/serve.ts). */
  route(method: string, pattern: string, handler: Handler): void {
    this.routes.push({ method, pattern: new RegExp(`^${pattern}$`), handler });
  }

  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        const a = this.server.address() as { address: string; port: number };
        resolve(`http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`);
      });
    });
  }

  async close(): Promise<void> {
    await this.openAi.stop();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
    this.models.close();
  }

  private buildRoutes(): void {
    const json = (res: http.ServerResponse, status: number, body: unknown) => sendJson(res, status, body);
    this.route('GET', '/healthz', async (_req, res) => json(res, 200, { status: 'ok' }));
    this.route('GET', '/api/status', async (_req, res) =>
      json(res, 200, { generating: this.models.busy, models_loaded: this.models.loaded }),
    );
    this.route('GET', '/api/runs', async (_req, res) => json(res, 200, { runs: await this.runs.list() }));
    this.route('GET', '/api/runs/stream', async (_req, res) => this.streamRuns(res));
    this.route('GET', '/api/runs/([^/]+)', async (_req, res, { params }) => {
      const detail = await this.runs.detail(decodeSegment(params[0]));
      if (!detail) throw new ApiError(404, `no run "${decodeSegment(params[0])}" under the runs folder`, 'not_found_error');
      json(res, 200, detail);
    });
    this.route('GET', '/api/runs/([^/]+)/stream', async (_req, res, { params }) => this.streamRun(res, decodeSegment(params[0])));
    this.route('GET', '/api/checkpoints', async (_req, res) => json(res, 200, { checkpoints: await this.runs.checkpoints() }));
    this.route('GET', '/api/compare', async (_req, res, { query }) => json(res, 200, await this.compare(query)));
    this.route('POST', '/api/generate', async (req, res) => this.generate(req, res));
    this.route('POST', '/api/evaluations', async (req, res) => {
      if (!this.evaluations) throw new ApiError(503, 'this server has no evaluator store', 'server_error');
      this.authorizeWrite(req);
      const body = (await this.readBody(req)) as Record<string, unknown>;
      const checkpoint = typeof body.checkpoint === 'string' ? await this.runs.checkpointFolder(body.checkpoint) : null;
      if (!checkpoint)
        throw new ApiError(404, `unknown checkpoint ${JSON.stringify(body.checkpoint)}`, 'not_found_error', 'checkpoint');
      json(res, 202, await this.evaluations.submit({ ...body, checkpoint }));
    });
    this.route('GET', '/(|index\\.html|assets/[A-Za-z0-9._-]+|favicon\\.(?:svg|ico))', async (_req, res, { params }) =>
      this.sendFile(res, params[0] || 'index.html'),
    );
  }

  private async answerOpenAi(
    route: OpenAiApi['routes'][number],
    req: http.IncomingMessage,
    res: http.ServerResponse,
    pathname: string,
  ) {
    let body: unknown;
    try {
      body = route.method === 'POST' ? await this.readBody(req) : undefined;
    } catch (err) {
      if ((err as ApiError).status === 413) res.setHeader('Connection', 'close');
      return sendOpenAiError(res, new OpenAiError((err as ApiError).status ?? 400, (err as Error).message));
    }
    await route.handle(req, res, body, route.pattern.exec(pathname)!.slice(1));
  }

  private async generate(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const request = parse(PlaygroundRequestSchema, await this.readBody(req));
    await this.models.use(request.checkpoint, async (model) => {
      if (request.top_k > model.config.vocab)
        throw new ApiError(
          400,
          `top_k ${request.top_k} is larger than the vocabulary (${model.config.vocab})`,
          'invalid_request_error',
          'top_k',
        );
      const stream = openEventStream(res);
      try {
        stream.send('done', await streamGeneration(model, request, stream, this.energy));
      } catch (err) {
        stream.send('error', errorBody(err));
      }
      stream.end();
    });
  }

  private async compare(query: URLSearchParams) {
    const ids = (query.get('runs') ?? '').split(',').filter(Boolean);
    if (ids.length < 2 || ids.length > 8)
      throw new ApiError(400, 'compare takes 2 to 8 runs: ?runs=A,B', 'invalid_request_error', 'runs');
    const runs: RunDetail[] = [];
    for (const id of ids) {
      const detail = await this.runs.detail(id);
      if (!detail) throw new ApiError(404, `no run "${id}" under the runs folder`, 'not_found_error', 'runs');
      runs.push(detail);
    }
    const pairs = [];
    if (this.evaluations) {
      const newestEvaluated = (r: RunDetail) =>
        [...r.checkpoints].reverse().find((c) => c.evaluations.some((e) => e.status === 'done'));
      const base = newestEvaluated(runs[0]);
      for (const other of runs.slice(1)) {
        const cand = newestEvaluated(other);
        if (!base || !cand) continue;
        const [pa, pb] = await Promise.all([this.runs.checkpointFolder(base.id), this.runs.checkpointFolder(cand.id)]);
        if (pa && pb)
          pairs.push(...this.evaluations.pairs({ id: runs[0].summary.id, path: pa }, { id: other.summary.id, path: pb }));
      }
    }
    return { runs, pairs };
  }

  /** Every run's summary once, then each one again whenever it changes. */
  private async streamRuns(res: http.ServerResponse): Promise<void> {
    const stream = openEventStream(res);
    const last = new Map<string, string>();
    while (!stream.signal.aborted) {
      let summaries: RunSummary[] = [];
      try {
        summaries = await this.runs.list();
      } catch {
        // a run folder changing under the scan: the next round sees it whole
      }
      for (const s of summaries) {
        const text = JSON.stringify(s);
        if (last.get(s.id) !== text) stream.send('run', s);
        last.set(s.id, text);
      }
      await sleep(this.options.pollMs * 2, stream.signal);
    }
  }

  /** A run's new metrics.jsonl lines as `metric` events (from the end of the file at connect), and its summary. */
  private async streamRun(res: http.ServerResponse, id: string): Promise<void> {
    const folder = await this.runs.folder(id);
    if (!folder) throw new ApiError(404, `no run "${id}" under the runs folder`, 'not_found_error');
    const file = path.join(folder, 'metrics.jsonl');
    const first = await readMetrics(folder, null);
    let tokensPerStep = first.start?.tokens_per_step ?? null;
    let offset = (await stat(file).catch(() => null))?.size ?? 0;
    let partial = Buffer.alloc(0); // bytes of a line still being written (it may end inside a UTF-8 character)
    let lastSummary = '';
    const stream = openEventStream(res);
    while (!stream.signal.aborted) {
      const size = (await stat(file).catch(() => null))?.size ?? 0;
      if (size < offset) offset = 0; // the file was replaced: read it again from the start
      if (size > offset) {
        const bytes = Buffer.concat([partial, await readRange(file, offset, size)]);
        offset = size;
        const end = bytes.lastIndexOf(0x0a) + 1;
        partial = bytes.subarray(end);
        for (const line of bytes.subarray(0, end).toString('utf8').split('\n')) {
          if (line === '') continue;
          let r: Record<string, unknown>;
          try {
            r = JSON.parse(line);
          } catch {
            continue;
          }
          if (r?.type === 'start' && typeof r.tokens_per_step === 'number') tokensPerStep = r.tokens_per_step;
          const point = metricPoint(r, tokensPerStep);
          if (point) stream.send('metric', point);
        }
        const summary = (await this.runs.read(id)).summary;
        const text = JSON.stringify(summary);
        if (text !== lastSummary) stream.send('run', summary);
        lastSummary = text;
      }
      await sleep(this.options.pollMs, stream.signal);
    }
  }

  private async sendFile(res: http.ServerResponse, name: string): Promise<void> {
    const file = path.join(this.options.staticDir, name);
    if (!existsSync(file)) {
      if (name === 'index.html')
        throw new ApiError(503, `the web UI is not built (no ${file}): run \`npm run build\``, 'server_error');
      throw new ApiError(404, `no file /${name}`, 'not_found_error');
    }
    const immutable = name.startsWith('assets/'); // hashed names: a new build makes new names
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream',
      'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'X-Content-Type-Options': 'nosniff',
    });
    createReadStream(file).pipe(res);
  }

  private authorizeWrite(req: http.IncomingMessage): void {
    if (isLoopback(this.options.host)) return;
    if (!this.options.token)
      throw new ApiError(
        403,
        'this server listens beyond loopback without a token: evaluations cannot be submitted',
        'permission_error',
      );
    const expected = Buffer.from(`Bearer ${this.options.token}`);
    const given = Buffer.from(req.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new ApiError(
        401,
        'submitting an evaluation needs Authorization: Bearer <the evaluator token>',
        'authentication_error',
      );
  }

  private async readBody(req: http.IncomingMessage): Promise<unknown> {
    const limit = this.options.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit)
      throw new ApiError(413, `the request body of ${declared} bytes is larger than the limit of ${limit} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new ApiError(413, `the request body is larger than the limit of ${limit} bytes`);
      chunks.push(chunk);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch (err) {
      throw new ApiError(400, `the request body is not JSON: ${(err as Error).message}`);
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://ringlet');
      const openAi = this.openAi.routes.find((r) => r.method === req.method && r.pattern.test(url.pathname));
      if (openAi) return await this.answerOpenAi(openAi, req, res, url.pathname);
      const matching = this.routes.filter((r) => r.pattern.test(url.pathname));
      const route = matching.find((r) => r.method === req.method);
      if (!route) {
        if (matching.length > 0) throw new ApiError(405, `${req.method} is not allowed on ${url.pathname}`);
        throw new ApiError(404, `no route ${url.pathname}`, 'not_found_error');
      }
      await route.handler(req, res, { params: route.pattern.exec(url.pathname)!.slice(1), query: url.searchParams });
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status =
        err instanceof ApiError ? err.status : err instanceof UnknownModelError ? 404 : err instanceof RangeError ? 400 : 500;
      if (status === 413) res.setHeader('Connection', 'close'); // stop a client sending the rest
      sendJson(res, status, errorBody(err));
    }
  }
}

export function errorBody(err: unknown): ErrorBody {
  if (err instanceof ApiError) return { error: { message: err.message, type: err.type, code: null, param: err.param } };
  if (err instanceof UnknownModelError)
    return { error: { message: err.message, type: 'not_found_error', code: 'model_not_found', param: 'checkpoint' } };
  if (err instanceof RangeError)
    return { error: { message: err.message, type: 'invalid_request_error', code: null, param: null } };
  return { error: { message: `internal error: ${(err as Error).message}`, type: 'server_error', code: null, param: null } };
}

/** A body checked by `schema`; the first problem is the 400's message, naming its field. */
export function parse<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : '');
  const message =
    issue.code === 'unrecognized_keys'
      ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}: this endpoint cannot honour ${issue.keys.length > 1 ? 'them' : 'it'}`
      : `${field ? `${field}: ` : ''}${issue.message}`;
  throw new ApiError(400, message, 'invalid_request_error', field || null);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, `malformed percent-encoding in the path: ${segment.slice(0, 200)}`);
  }
}

async function readRange(file: string, from: number, to: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(to - from);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, from);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}
