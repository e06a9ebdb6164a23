// Fuzz cases every gRPC service gets, made from one valid request of the service (its method path, the
// protobuf bytes, the headers that authenticate it): random protobuf bytes, gRPC framing that lies,
// structured mutations of the valid bytes, wrong or missing credentials, header abuse, and raw HTTP/2 frames
// below gRPC altogether. Each service adds the cases only it can make (fields out of range, calls out of order).
import type http2 from 'node:http2';
import type { Rng } from '../../lm/rng.js';
import { chance, pick, randomBytes, randomText } from './draw.js';
import { grpcFrame, type GrpcRequest, type GrpcWire } from './grpc-client.js';
import { h2Exchange, h2Frame } from './h2-frames.js';
import { mutate } from './mutate.js';
import type { Answer } from './oracle.js';

export interface ValidRequest {
  path: string;
  message: Uint8Array;
  auth: http2.OutgoingHttpHeaders; // the headers that let it past authentication
  streamingMs?: number; // a server-streaming method (see GrpcRequest)
}

export interface Sent {
  what: string;
  answer: Answer;
  body?: Buffer; // the gRPC request's body and path, for a service that reads back what it sent
  path?: string;
  mayClose?: boolean; // the server may close without answering (see Expectation)
}

export interface GrpcTarget {
  wire: GrpcWire;
  address: { host: string; port: number };
}

const method = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/** A generic case: a gRPC request (its body possibly far from a message), or raw HTTP/2 frames. */
export type GenericCase = { what: string; request: GrpcRequest } | { what: string; frames: Buffer };

/** One generic case for `valid`, chosen and made with `rng`. */
export function genericGrpcCase(rng: Rng, valid: ValidRequest): GenericCase {
  const request = (what: string, change: Partial<GrpcRequest>): GenericCase => ({
    what: `${what} (${method(valid.path)})`,
    request: {
      path: valid.path,
      body: grpcFrame(valid.message),
      streamingMs: valid.streamingMs,
      ...change,
      headers: { ...valid.auth, ...change.headers },
    },
  });
  switch (pick(rng, ['random', 'framing', 'mutant', 'mutant', 'mutant', 'auth', 'headers', 'frames'])) {
    case 'random': {
      const size = pick(rng, [0, 1, 5, 16, 64, 256, 4096, 65536]);
      return request(`${size} random bytes as a message`, { body: grpcFrame(randomBytes(rng, rng.int(size + 1))) });
    }
    case 'framing':
      return request(...framing(rng, valid.message));
    case 'mutant': {
      const { bytes, how } = mutate(rng, valid.message);
      return request(`mutant (${how})`, { body: grpcFrame(bytes) });
    }
    case 'auth':
      return request(...credentials(rng, valid.auth));
    case 'headers':
      return request(...headerAbuse(rng, valid.path));
    default:
      return { what: `raw HTTP/2 frames (${method(valid.path)})`, frames: randomFrames(rng, valid.path) };
  }
}

/** Sends a generic case and returns its answer. */
export async function sendGeneric(target: GrpcTarget, c: GenericCase, deadlineMs: number): Promise<Sent> {
  if ('frames' in c) return { what: c.what, answer: await h2Exchange(target.address, c.frames, deadlineMs) };
  return { what: c.what, answer: await target.wire.call(c.request, deadlineMs), body: c.request.body, path: c.request.path };
}

/** A gRPC body whose 5-byte prefixes lie, or that holds no message, or several. */
function framing(rng: Rng, message: Uint8Array): [string, Partial<GrpcRequest>] {
  const m = Buffer.from(message);
  const cases: Array<[string, () => Buffer]> = [
    ['an empty body', () => Buffer.alloc(0)],
    ['a prefix cut short', () => grpcFrame(m).subarray(0, 1 + rng.int(4))],
    ['a length larger than the message', () => grpcFrame(m, { length: m.length + 1 + rng.int(1000) })],
    ['a length smaller than the message', () => grpcFrame(m, { length: rng.int(Math.max(1, m.length)) })],
    ['a length of 4 GiB', () => grpcFrame(m, { length: 0xffffffff })],
    ['a length of 2 GiB', () => grpcFrame(m, { length: 0x7fffffff })],
    ['the compressed flag without compression', () => grpcFrame(m, { compressed: true })],
    ['a flag byte of 0xff', () => Buffer.concat([Buffer.from([0xff]), grpcFrame(m).subarray(1)])],
    ['two messages', () => Buffer.concat([grpcFrame(m), grpcFrame(m)])],
    ['a hundred messages', () => Buffer.concat(Array(100).fill(grpcFrame(m)))],
    ['a message and a half', () => Buffer.concat([grpcFrame(m), grpcFrame(m).subarray(0, 3 + rng.int(m.length + 2))])],
  ];
  const [what, body] = pick(rng, cases);
  return [what, { body: body() }];
}

/** The valid request with its credentials wrong, missing or malformed. */
function credentials(rng: Rng, auth: http2.OutgoingHttpHeaders): [string, Partial<GrpcRequest>] {
  const name = Object.keys(auth)[0];
  const value = String(auth[name]);
  const cases: Array<[string, http2.OutgoingHttpHeaders]> = [
    ['no credentials', { [name]: undefined }],
    ['a wrong token', { [name]: value.slice(0, -1) + (value.endsWith('x') ? 'y' : 'x') }],
    ['the token with a character more', { [name]: `${value}0` }],
    ['an empty token', { [name]: '' }],
    ['a 64 KiB token', { [name]: 'a'.repeat(65536) }],
    ['the token twice', { [name]: [value, value] }],
    ['a random token', { [name]: randomText(rng, 1 + rng.int(64)).replace(/[^\x21-\x7e]/g, '_') }],
  ];
  const [what, headers] = pick(rng, cases);
  return [what, { headers }];
}

/** The valid message under headers that break gRPC's rules. */
function headerAbuse(rng: Rng, path: string): [string, Partial<GrpcRequest>] {
  const cases: Array<[string, Partial<GrpcRequest>]> = [
    ['content-type text/plain', { headers: { 'content-type': 'text/plain' } }],
    ['content-type application/grpc+json', { headers: { 'content-type': 'application/grpc+json' } }],
    ['no content-type', { headers: { 'content-type': undefined } }],
    ['grpc-timeout "1x"', { headers: { 'grpc-timeout': '1x' } }],
    ['grpc-timeout of 99999999 hours', { headers: { 'grpc-timeout': '99999999H' } }],
    ['grpc-timeout "-1S"', { headers: { 'grpc-timeout': '-1S' } }],
    ['grpc-encoding gzip on a plain message', { headers: { 'grpc-encoding': 'gzip' } }],
    ['grpc-encoding "snappy-ish"', { headers: { 'grpc-encoding': 'snappy-ish' } }],
    ['method GET', { headers: { ':method': 'GET' } }],
    ['no te: trailers', { headers: { te: undefined } }],
    ['a 60 KiB header', { headers: { 'x-fuzz': 'v'.repeat(60 << 10) } }],
    ['200 headers', { headers: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-fuzz-${i}`, String(i)])) }],
    ['an unknown method', { path: `${path.slice(0, path.lastIndexOf('/'))}/${randomText(rng, 8).replace(/[^A-Za-z]/g, 'X')}` }],
    ['an unknown service', { path: '/ringlet.fuzz.v1.Nothing/Call' }],
    ['the path "/"', { path: '/' }],
    ['the method path with a tail', { path: `${path}/extra` }],
    ['the method path with a query', { path: `${path}?x=1` }],
  ];
  return pick(rng, cases);
}

/** One to six HTTP/2 frames of any type, flags and stream, now and then with a length that lies. */
function randomFrames(rng: Rng, path: string): Buffer {
  const frames: Buffer[] = [];
  for (let i = 1 + rng.int(6); i > 0; i--) {
    const type = chance(rng, 0.9) ? rng.int(10) : pick(rng, [10, 0x20, 0xff]);
    const stream = pick(rng, [0, 1, 1, 3, 2, 2 ** 31 - 1, rng.int(100)]);
    const payload = randomBytes(rng, pick(rng, [0, 1, 4, 5, 6, 8, 9, 64, 300]));
    const length = chance(rng, 0.1) ? rng.int(1 << 24) : payload.length;
    frames.push(h2Frame(type, rng.int(256), stream, payload, length));
  }
  // Now and then a well-formed request's opening, so that the garbage lands on a stream the server knows.
  if (chance(rng, 0.3))
    frames.unshift(h2Frame(1, 4, 1, literalHeaders({ ':method': 'POST', ':scheme': 'http', ':path': path, ':authority': 'x' })));
  return Buffer.concat(frames);
}

/** An HPACK header block of literal fields without indexing (RFC 7541 6.2.2), names and values plain. */
function literalHeaders(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers))
    parts.push(Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value));
  return Buffer.concat(parts);
}
