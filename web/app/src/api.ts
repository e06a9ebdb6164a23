// Every request the UI makes to `ringlet serve`, and every event stream it listens to. Components call
// these and render what comes back; none of them calls fetch or EventSource itself.
import type {
  CheckpointList,
  Comparison,
  DoneEvent,
  ErrorBody,
  MetricPoint,
  PlaygroundRequest,
  RunDetail,
  RunList,
  RunSummary,
  TokenEvent,
} from '../../api';
import { readEventStream } from './event-stream';

/** A request the server refused (its ErrorBody), or one that never reached it (status 0). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null = null,
    /** The request field the server blamed, when it named one. */
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export const isAbort = (error: unknown) => error instanceof DOMException && error.name === 'AbortError';

// Relative URLs: the API sits beside index.html, wherever the server mounts the two.
const runPath = (id: string) => `api/runs/${encodeURIComponent(id)}`;

async function request(path: string, init?: RequestInit): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError('The Ringlet server did not answer. Is `ringlet serve` still running?', 0);
  }
  if (!response.ok) throw await refusal(response);
  return response;
}

async function refusal(response: Response): Promise<ApiError> {
  const body = (await response.json().catch(() => null)) as ErrorBody | null;
  if (!body?.error?.message)
    return new ApiError(`The server answered ${response.status} ${response.statusText}.`, response.status);
  return errorFromBody(body, response.status);
}

const errorFromBody = (body: ErrorBody, status: number) =>
  new ApiError(body.error.message, status, body.error.code, body.error.param ?? null);

const getJson = async <T>(path: string, signal?: AbortSignal): Promise<T> =>
  (await request(path, { signal, headers: { accept: 'application/json' } })).json() as Promise<T>;

export const getRuns = (signal?: AbortSignal) => getJson<RunList>('api/runs', signal);
export const getRun = (id: string, signal?: AbortSignal) => getJson<RunDetail>(runPath(id), signal);
export const getCheckpoints = (signal?: AbortSignal) => getJson<CheckpointList>('api/checkpoints', signal);
export const getComparison = (ids: string[], signal?: AbortSignal) =>
  getJson<Comparison>(`api/compare?${new URLSearchParams({ runs: ids.join(',') })}`, signal);

interface StreamHandlers<Events> {
  /** Called on every (re)connection: what changed while the stream was down must be fetched again. */
  open(): void;
  closed(): void;
  events: { [Name in keyof Events]: (data: Events[Name]) => void };
}

/** Listens to one of the server's SSE streams until the returned function is called. */
function listen<Events>(path: string, handlers: StreamHandlers<Events>): () => void {
  const source = new EventSource(path);
  source.onopen = () => handlers.open();
  // EventSource reconnects by itself after an error; until then the page shows it is not live.
  source.onerror = () => handlers.closed();
  for (const name of Object.keys(handlers.events) as Array<keyof Events & string>)
    source.addEventListener(name, (message) => handlers.events[name](JSON.parse(message.data) as Events[typeof name]));
  return () => source.close();
}

export const watchRuns = (handlers: StreamHandlers<{ run: RunSummary }>) => listen('api/runs/stream', handlers);
export const watchRun = (id: string, handlers: StreamHandlers<{ run: RunSummary; metric: MetricPoint }>) =>
  listen(`${runPath(id)}/stream`, handlers);

interface EvaluationRequest {
  checkpoint: string;
  suites: string[];
  limit?: number;
}

/** Submits an evaluation; `token` is the evaluator's bearer token, needed when the server is not on loopback. */
export async function submitEvaluation(body: EvaluationRequest, token: string | null): Promise<void> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  await request('api/evaluations', { method: 'POST', headers, body: JSON.stringify(body) });
}

interface GenerationHandlers {
  token(event: TokenEvent): void;
  done(event: DoneEvent): void;
}

/** Streams one generation; aborting `signal` closes the connection, which stops the server generating. */
export async function generate(body: PlaygroundRequest, handlers: GenerationHandlers, signal: AbortSignal) {
  const response = await request('api/generate', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(body),
    signal,
  });
  if (!response.body) throw new ApiError('The server sent no stream.', response.status);
  for await (const { event, data } of readEventStream(response.body)) {
    if (event === 'token') handlers.token(JSON.parse(data) as TokenEvent);
    else if (event === 'done') handlers.done(JSON.parse(data) as DoneEvent);
    else if (event === 'error') throw errorFromBody(JSON.parse(data) as ErrorBody, response.status);
  }
}
