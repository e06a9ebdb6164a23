// The OpenAI-compatible HTTP face: POST /v1/completions (whole, or streamed as Server-Sent Events in
// OpenAI's format), GET /v1/models and GET /v1/models/{id}, with errors in OpenAI's shape
// ({"error": {"message", "type", "code", "param"}}). One code path for every server that mounts it: the
// evaluator (evaluator/http.ts, one served checkpoint) and `ringlet serve` (every checkpoint of a runs
// folder). The mounting server keeps its own auth and body reading; this module owns the answer.
//
//   const openAi = openAiRoutes(
//     { list: () => [{ id: 'run-1/step-00000100', created: 1767225600 }], load: (id) => loadModelOr404(id) },
//     { queue: (work) => cpuQueue.run(work) },                       // optional: serialise CPU-bound work
//   );
//   // in the server's request handler, for a pathname and method:
//   const route = openAi.routes.find((r) => r.method === req.method && r.pattern.test(pathname));
//   if (route) {
//     // auth and the JSON body are the server's; report their failures in the same shape:
//     if (!authorized) return sendOpenAiError(res, new OpenAiError(401, 'wrong token'));
//     const body = route.method === 'POST' ? JSON.parse(await readBody(req)) : undefined;
//     return route.handle(req, res, body, route.pattern.exec(pathname)!.slice(1));   // never throws
//   }
//   // on shutdown: await openAi.stop();   // aborts every running completion, waits for them to end
//
// `load(id)` gives the loaded model for an id (from list() or an alias) and throws an error with a
// numeric `status` (404 for an unknown id, 409 for a checkpoint being written ...) that the client sees.
// A client that leaves (the response closes before it has finished) aborts its generation: nothing runs on.
import type http from 'node:http';
import { z } from 'zod';
import {
  CompletionRequestSchema,
  completionHeader,
  completionPieces,
  completionPrompts,
  complete,
  InvalidCompletion,
  type CompletionRequest,
} from './completions.js';
import type { ScoringModel } from './model.js';

export interface OpenAiModel {
  /** What clients name it in `model` (ringlet serve: RUN_ID/step-NNNNNNNN). */
  id: string;
  /** Unix seconds: when the checkpoint was written. */
  created: number;
}

export interface OpenAiModels {
  list(): OpenAiModel[] | Promise<OpenAiModel[]>;
  load(id: string): Promise<ScoringModel>;
}

export interface OpenAiOptions {
  /** Runs each completion's CPU-bound work (e.g. one at a time with evaluations); default: at once. */
  queue?: <T>(work: () => Promise<T>) => Promise<T>;
}

export interface OpenAiRoute {
  method: 'GET' | 'POST';
  /** Matched against the URL's pathname; its groups are the `params` handle() takes (still percent-encoded). */
  pattern: RegExp;
  /** Writes the whole answer, JSON or an event stream, errors included; never throws. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, body: unknown, params: string[]): Promise<void>;
}

export interface OpenAiStats {
  /** Completions accepted and not yet ended (waiting for the queue, or generating). */
  running: number;
  /** Tokens generated since the start, over every completion. */
  tokens: number;
  /** Completions ended because the client left or the server stopped. */
  cancelled: number;
}

export interface OpenAiApi {
  routes: OpenAiRoute[];
  readonly stats: Readonly<OpenAiStats>;
  /** Aborts every running completion (a streaming client gets an error event) and waits for them to end. */
  stop(): Promise<void>;
}

/** An error for an OpenAI route's client: its HTTP status, and the request field at fault (`param`). */
export class OpenAiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

const TYPES: Record<number, string> = {
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
};

/** OpenAI's error object for any error: OpenAiError, an error with a numeric `status`, or an internal one (500). */
export function openAiErrorBody(err: unknown): { status: number; body: { error: Record<string, unknown> } } {
  const e = err as { status?: unknown; message?: unknown; param?: unknown; code?: unknown };
  const known = typeof e?.status === 'number' && e.status >= 400 && e.status < 600;
  const status = known ? (e.status as number) : 500;
  const message = known ? String(e.message) : `internal error: ${(err as Error)?.message ?? String(err)}`;
  const type = TYPES[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
  return {
    status,
    body: {
      error: {
        message,
        type,
        param: typeof e?.param === 'string' ? e.param : null,
        code: typeof e?.code === 'string' ? e.code : null,
      },
    },
  };
}

/**
 * Answers `err` in OpenAI's shape: a JSON error, or, once an event stream has begun, an error event
 * (which the openai client raises as an APIError) and the end of the stream.
 */
export function sendOpenAiError(res: http.ServerResponse, err: unknown): void {
  if (res.destroyed || res.writableEnded) return;
  const { status, body } = openAiErrorBody(err);
  if (res.headersSent) {
    res.end(`data: ${JSON.stringify(body)}\n\n`);
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendJson(res: http.ServerResponse, payload: unknown): void {
  if (res.destroyed) return;
  const text = JSON.stringify(payload);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** The body checked with the schema; OpenAI's `null` ("not given") fields dropped first. A 400 naming the field otherwise. */
export function parseOpenAiRequest<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const given =
    body !== null && typeof body === 'object' && !Array.isArray(body)
      ? Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null))
      : body;
  const parsed = schema.safeParse(given);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues;
  const describe = (i: z.core.$ZodIssue) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => `${k}: unknown field; this endpoint does not support it`).join('; ')
      : `${i.path.join('.') || '(body)'}: ${i.message}`;
  const first = issues[0];
  const param = first.code === 'unrecognized_keys' ? first.keys[0] : first.path.length > 0 ? first.path.join('.') : null;
  const code = first.code === 'unrecognized_keys' ? 'unknown_parameter' : 'invalid_value';
  throw new OpenAiError(400, `invalid request: ${issues.map(describe).join('; ')}`, param, code);
}

function decodeParam(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new OpenAiError(400, `malformed percent-encoding in the path: ${segment.slice(0, 200)}`);
  }
}

const EVENT_STREAM = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  'X-Accel-Buffering': 'no',
};

export function openAiRoutes(models: OpenAiModels, options: OpenAiOptions = {}): OpenAiApi {
  const queue = options.queue ?? (<T>(work: () => Promise<T>) => work());
  const stats: OpenAiStats = { running: 0, tokens: 0, cancelled: 0 };
  /** Each running completion's controller, and its answer's end. */
  const running = new Map<AbortController, Promise<void>>();
  const onToken = () => void stats.tokens++;

  const modelObject = (m: OpenAiModel) => ({ id: m.id, object: 'model', created: m.created, owned_by: 'ringlet' });

  async function load(id: string): Promise<ScoringModel> {
    try {
      return await models.load(id);
    } catch (err) {
      const status = (err as { status?: unknown }).status;
      if (typeof status !== 'number') throw err;
      throw new OpenAiError(status, (err as Error).message, 'model', status === 404 ? 'model_not_found' : null);
    }
  }

  /** Streams the pieces as chunks of OpenAI's text_completion object, then [DONE]. */
  async function stream(
    res: http.ServerResponse,
    model: ScoringModel,
    request: CompletionRequest,
    prompts: number[][],
    signal: AbortSignal,
  ) {
    const header = completionHeader(request);
    const includeUsage = request.stream_options?.include_usage === true;
    const send = (chunk: object) => {
      if (!res.headersSent) res.writeHead(200, EVENT_STREAM);
      res.write(`data: ${JSON.stringify({ ...header, ...chunk })}\n\n`);
    };
    const pieces = completionPieces(model, request, prompts, { signal, onToken });
    for (;;) {
      const step = await pieces.next();
      if (signal.aborted) {
        await pieces.return(step.done ? step.value : (undefined as never));
        return;
      }
      if (step.done) {
        if (includeUsage) send({ choices: [], usage: step.value });
        break;
      }
      send({ choices: [step.value], ...(includeUsage ? { usage: null } : {}) });
    }
    res.end('data: [DONE]\n\n');
  }

  async function completions(req: http.IncomingMessage, res: http.ServerResponse, body: unknown): Promise<void> {
    const request = parseOpenAiRequest(CompletionRequestSchema, body);
    if (request.stream_options !== undefined && !request.stream)
      throw new OpenAiError(400, 'stream_options is only allowed with stream: true', 'stream_options', 'invalid_value');
    const model = await load(request.model);
    let prompts: number[][];
    try {
      prompts = completionPrompts(model, request);
    } catch (err) {
      if (err instanceof InvalidCompletion)
        throw new OpenAiError(400, `invalid request: ${err.param}: ${err.message}`, err.param, 'invalid_value');
      throw err;
    }
    const controller = new AbortController();
    const { signal } = controller;
    // 'close' before the answer is finished: the client left (or the server dropped the connection).
    const left = () => void (res.writableFinished || controller.abort('client'));
    res.once('close', left);
    stats.running++;
    const answered = queue(async () => {
      if (signal.aborted) return;
      if (request.stream) await stream(res, model, request, prompts, signal);
      else {
        const answer = await complete(model, request, prompts, { signal, onToken });
        if (!signal.aborted) sendJson(res, answer);
      }
      if (signal.reason === 'stop') throw new OpenAiError(503, 'the server is stopping; the completion was cut off');
    });
    const settled = answered
      .catch((err) => sendOpenAiError(res, err))
      .finally(() => {
        if (signal.aborted) stats.cancelled++;
        stats.running--;
        running.delete(controller);
        res.off('close', left);
      });
    running.set(controller, settled);
    await settled;
  }

  async function listModels(res: http.ServerResponse) {
    sendJson(res, { object: 'list', data: (await models.list()).map(modelObject) });
  }

  async function retrieveModel(res: http.ServerResponse, encoded: string) {
    const id = decodeParam(encoded);
    const found = (await models.list()).find((m) => m.id === id);
    if (!found)
      throw new OpenAiError(404, `the model "${id}" does not exist here; GET /v1/models lists them`, 'model', 'model_not_found');
    sendJson(res, modelObject(found));
  }

  const guarded =
    (handler: (req: http.IncomingMessage, res: http.ServerResponse, body: unknown, params: string[]) => Promise<void>) =>
    async (req: http.IncomingMessage, res: http.ServerResponse, body: unknown, params: string[]) => {
      try {
        await handler(req, res, body, params);
      } catch (err) {
        sendOpenAiError(res, err);
      }
    };

  return {
    routes: [
      { method: 'POST', pattern: /^\/v1\/completions$/, handle: guarded((req, res, body) => completions(req, res, body)) },
      { method: 'GET', pattern: /^\/v1\/models$/, handle: guarded((_req, res) => listModels(res)) },
      { method: 'GET', pattern: /^\/v1\/models\/(.+)$/, handle: guarded((_req, res, _body, [id]) => retrieveModel(res, id)) },
    ],
    stats,
    stop: async () => {
      for (const controller of running.keys()) controller.abort('stop');
      await Promise.all(running.values());
    },
  };
}
