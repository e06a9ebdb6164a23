// An HTTP/1.1 client on a bare TCP socket: it writes the request's bytes exactly as given (bad request
// lines, header abuse, lying Content-Length, broken chunked bodies) and reads the server's first response.
// node:http's client would validate, and refuse to send, most of them.
import { unhealthy, type Answer } from './oracle.js';
import { socketExchange } from './socket-exchange.js';

const HEADERS_END = Buffer.from('\r\n\r\n');

/** Writes `request` to host:port and resolves with the first response, `closed`, or a hang. */
export function httpExchange(
  address: { host: string; port: number },
  request: Buffer,
  o: { head?: boolean; end?: boolean; deadlineMs: number },
): Promise<Answer> {
  // A request that is not whole is ended (the server sees where it stops); a whole one is not, since Node's
  // server aborts a request whose client has ended its side before the answer is ready.
  return socketExchange(address, {
    send: request,
    end: o.end ?? false,
    deadlineMs: o.deadlineMs,
    read: (received, closed) => parseResponse(received, { head: o.head ?? false, complete: closed }),
  });
}

/** A health probe: GET `path`; null when the answer is a 200 whose body holds `expect`, else what came. */
export async function probeHttp(
  address: { host: string; port: number },
  path: string,
  deadlineMs: number,
  expect = '',
): Promise<string | null> {
  const answer = await httpExchange(address, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`), { deadlineMs });
  return answer.kind === 'http' && answer.status === 200 && answer.body.includes(expect) ? null : unhealthy(answer);
}

/** The first response in `bytes`, once it is whole (or `complete`: the connection has closed). */
function parseResponse(bytes: Buffer, o: { head: boolean; complete: boolean }): Answer | null {
  const end = bytes.indexOf(HEADERS_END);
  if (end < 0) return null;
  const lines = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? 0);
  // An interim answer (100 Continue to an Expect header) comes before the real one.
  if (status >= 100 && status < 200 && status !== 101) return parseResponse(bytes.subarray(end + 4), o);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const contentType = headers.get('content-type') ?? '';
  const rest = bytes.subarray(end + 4);
  const answer = (body: Buffer): Answer => ({ kind: 'http', status, contentType, body: body.toString('utf8'), head: o.head });
  if (o.head || status === 101 || status === 204 || status === 304) return answer(Buffer.alloc(0));
  const length = headers.get('content-length');
  if (length !== undefined) return rest.length >= Number(length) || o.complete ? answer(rest.subarray(0, Number(length))) : null;
  if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) {
    const body = dechunk(rest);
    return body ? answer(body) : o.complete ? answer(rest) : null;
  }
  return o.complete ? answer(rest) : null; // the body runs to the end of the connection
}

/** A chunked body once its last chunk has arrived, else null. */
function dechunk(bytes: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  for (let pos = 0; ;) {
    const eol = bytes.indexOf('\r\n', pos);
    if (eol < 0) return null;
    const size = parseInt(bytes.subarray(pos, eol).toString('latin1'), 16);
    if (!Number.isFinite(size)) return null;
    if (size === 0) return Buffer.concat(parts);
    if (bytes.length < eol + 2 + size + 2) return null;
    parts.push(bytes.subarray(eol + 2, eol + 2 + size));
    pos = eol + 2 + size + 2;
  }
}
