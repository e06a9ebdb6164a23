// Fuzz cases for an HTTP/1.1 service, made from its routes: valid requests, malformed JSON bodies, wrong
// content types, oversized and lying bodies, bad paths and queries, odd methods, header abuse, wrong or
// missing tokens, and bytes that are not HTTP at all. Each case is the request's raw bytes.
import type { Rng } from '../../lm/rng.js';
import { chance, pick, randomBytes, randomText } from './draw.js';
import { mutateJson, type Json } from './json-mutate.js';

export interface HttpRoute {
  method: string;
  path: string; // a valid path, query included
  body?: Record<string, Json>; // a valid JSON body
}

export interface HttpService {
  routes: HttpRoute[];
  token?: string; // the bearer token POST routes need
  maxBodyBytes: number; // what the service accepts at most
}

export interface HttpCase {
  what: string;
  request: Buffer;
  head: boolean; // a HEAD request: the response has no body
  incomplete: boolean; // not a whole request (the client ends its side after it): closing is a fair reply
  dropped: boolean; // CONNECT or Upgrade, which Node's server drops without a listener for them
}

interface Parts {
  method: string;
  target: string;
  version?: string;
  headers: Array<[string, string | null]>; // null: the name alone, as a line without a colon
  body?: Buffer;
  chunked?: boolean; // send the body chunked instead of with a Content-Length
  length?: number; // a Content-Length that may lie
}

/** The request's bytes as written on the wire, nothing checked. */
function requestBytes(p: Parts): Buffer {
  const headers: Array<[string, string | null]> = [['Host', '127.0.0.1'], ...p.headers];
  if (p.body && p.chunked) headers.push(['Transfer-Encoding', 'chunked']);
  else if (p.body || p.length !== undefined) headers.push(['Content-Length', String(p.length ?? p.body!.length)]);
  const head = `${p.method} ${p.target} ${p.version ?? 'HTTP/1.1'}\r\n${headers.map(([k, v]) => (v === null ? `${k}\r\n` : `${k}: ${v}\r\n`)).join('')}\r\n`;
  const body = p.body
    ? p.chunked
      ? Buffer.concat([Buffer.from(`${p.body.length.toString(16)}\r\n`), p.body, Buffer.from('\r\n0\r\n\r\n')])
      : p.body
    : Buffer.alloc(0);
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

const CONTENT_TYPES = [
  'application/json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  '',
];

/** One case for `service`, chosen and made with `rng`. */
export function httpCase(rng: Rng, service: HttpService): HttpCase {
  const route = pick(rng, service.routes);
  const auth: Array<[string, string | null]> = service.token ? [['Authorization', `Bearer ${service.token}`]] : [];
  const json = (text: string): Partial<Parts> => ({
    headers: [...auth, ['Content-Type', 'application/json']],
    body: Buffer.from(text),
  });
  const valid: Parts = {
    method: route.method,
    target: route.path,
    headers: auth,
    ...(route.body ? json(JSON.stringify(route.body)) : {}),
  };
  const make = (what: string, change: Partial<Parts>): HttpCase => {
    const parts = { ...valid, ...change };
    return {
      what: `${what} (${route.method} ${route.path.slice(0, 40)})`,
      request: requestBytes(parts),
      head: parts.method === 'HEAD',
      incomplete: !parts.chunked && (parts.length ?? 0) > (parts.body?.length ?? 0), // a body promised, never sent
      dropped: parts.method.toUpperCase() === 'CONNECT' || parts.headers.some(([k]) => k.toLowerCase() === 'upgrade'),
    };
  };
  switch (pick(rng, ['valid', 'json', 'json', 'json', 'path', 'method', 'headers', 'headers', 'size', 'auth', 'raw'])) {
    case 'valid':
      return make('a valid request', {});
    case 'json': {
      if (!route.body) return make('a JSON body where none is wanted', json(JSON.stringify({ x: randomText(rng, 16) })));
      const { what, text } = mutateJson(rng, route.body);
      const type = pick(rng, CONTENT_TYPES);
      return make(`${what}, as ${type || 'no content type'}`, {
        ...json(text),
        headers: [...auth, ...(type ? [['Content-Type', type] as [string, string]] : [])],
      });
    }
    case 'path': {
      const [what, target] = pick(rng, badTargets(rng, route.path));
      return make(what, { target });
    }
    case 'method':
      return make(
        ...pick(rng, [
          ['method PUT', { method: 'PUT' }],
          ['method DELETE', { method: 'DELETE' }],
          ['method PATCH', { method: 'PATCH' }],
          ['method OPTIONS', { method: 'OPTIONS' }],
          ['method HEAD', { method: 'HEAD' }],
          ['method TRACE', { method: 'TRACE' }],
          ['method CONNECT', { method: 'CONNECT', target: '127.0.0.1:80' }],
          ['a lower-case method', { method: route.method.toLowerCase() }],
          ['a made-up method', { method: 'FUZZ' }],
          ['GET with a body', { method: 'GET', ...json('{"x": 1}') }],
        ] as Array<[string, Partial<Parts>]>),
      );
    case 'headers':
      return make(...pick(rng, headerAbuse(rng, valid)));
    case 'size': {
      const over = service.maxBodyBytes + 1 + rng.int(service.maxBodyBytes * 4);
      return make(
        ...pick(rng, [
          [`a ${over}-byte body`, json(`"${'x'.repeat(over - 2)}"`)],
          [`a ${over}-byte chunked body`, { ...json(`"${'x'.repeat(over - 2)}"`), chunked: true }],
          ['a Content-Length larger than the body', { ...json('{}'), length: 1000 }],
          ['a Content-Length of 10^15', { ...json('{}'), length: 1e15 }],
          ['a Content-Length smaller than the body', { ...json('{"a": 1, "b": 2}'), length: 3 }],
          ['a Content-Length of 0 with a body', { ...json('{"a": 1}'), length: 0 }],
        ] as Array<[string, Partial<Parts>]>),
      );
    }
    case 'auth':
      return make(
        ...pick(rng, [
          ['no token', { headers: [] }],
          ['a wrong token', { headers: [['Authorization', `Bearer ${service.token ?? ''}x`]] }],
          ['a Basic credential', { headers: [['Authorization', 'Basic dXNlcjpwYXNz']] }],
          ['"Bearer" alone', { headers: [['Authorization', 'Bearer']] }],
          ['a 10 KB token', { headers: [['Authorization', `Bearer ${'t'.repeat(10_000)}`]] }],
          ['the token twice', { headers: [...auth, ...auth] }],
        ] as Array<[string, Partial<Parts>]>),
      );
    default: {
      const [what, bytes, incomplete] = pick(rng, [
        ['random bytes', randomBytes(rng, 1 + rng.int(200)), false],
        ['the HTTP/2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), false],
        ['a request line only', Buffer.from(`${route.method} ${route.path} HTTP/1.1\r\n`), true],
        ['empty lines', Buffer.from('\r\n\r\n'), true],
        ['two pipelined requests', Buffer.concat([requestBytes(valid), requestBytes(valid)]), false],
        ['a request cut in its headers', requestBytes(valid).subarray(0, 20 + rng.int(20)), true],
      ] as Array<[string, Buffer, boolean]>);
      return {
        what: `${what} (${route.method} ${route.path.slice(0, 40)})`,
        request: bytes,
        head: route.method === 'HEAD', // the pipelined requests are HEADs too
        incomplete,
        dropped: false,
      };
    }
  }
}

/** Request targets a router should refuse cleanly. */
function badTargets(rng: Rng, path: string): Array<[string, string]> {
  return [
    [
      'random percent-encoded bytes as the path',
      `/${[...randomBytes(rng, 1 + rng.int(30))].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`,
    ],
    ['path traversal', `${path}/../../../../etc/passwd`],
    ['an encoded traversal', '/v1/evaluations/..%2F..%2F..%2Fetc%2Fpasswd'],
    ['a broken percent-escape', `${path.split('?')[0]}/%E0%A4%A`],
    ['%zz', `${path.split('?')[0]}%zz`],
    ['an encoded NUL', `${path.split('?')[0]}/%00`],
    ['a 2 KB path', `/${'a'.repeat(2048)}`],
    ['a 100 KB path', `/${'a'.repeat(100_000)}`],
    ['double slashes', `//${path}`],
    ['an absolute URL', `http://127.0.0.1${path}`],
    ['an asterisk', '*'],
    ['no leading slash', path.slice(1)],
    ['a query of junk', `${path.split('?')[0]}?${randomText(rng, 20).replace(/[ #]/g, '_')}`],
    ['limit=-1', `${path.split('?')[0]}?limit=-1`],
    ['limit=1e999', `${path.split('?')[0]}?limit=1e999`],
    ['limit=abc', `${path.split('?')[0]}?limit=abc`],
    ['a parameter 1,000 times', `${path.split('?')[0]}?${Array(1000).fill('limit=1').join('&')}`],
    ['a fragment', `${path}#frag`],
  ];
}

/** The valid request with its headers abused. */
function headerAbuse(rng: Rng, valid: Parts): Array<[string, Partial<Parts>]> {
  const h = valid.headers;
  return [
    ['a 20 KB header', { headers: [...h, ['X-Fuzz', 'v'.repeat(20_000)]] }],
    [
      '500 headers',
      { headers: [...h, ...Array.from({ length: 500 }, (_, i) => [`X-Fuzz-${i}`, String(i)] as [string, string])] },
    ],
    ['two different Content-Lengths', { headers: [...h, ['Content-Length', '1'], ['Content-Length', '2']] }],
    ['Transfer-Encoding and Content-Length', { headers: [...h, ['Transfer-Encoding', 'chunked']], body: Buffer.from('{}') }],
    ['Transfer-Encoding gzip', { headers: [...h, ['Transfer-Encoding', 'gzip']] }],
    ['a header without a colon', { headers: [...h, ['X-No-Colon', null]] }],
    ['a space before the colon', { headers: [...h, ['X-Fuzz ', 'v']] }],
    ['a control character in a value', { headers: [...h, ['X-Fuzz', 'a\u0001b']] }],
    ['a folded header', { headers: [...h, ['X-Fuzz', 'a\r\n b']] }],
    ['a bare LF', { headers: [...h, ['X-Fuzz', 'a\nX-Other: b']] }],
    ['no Host', { headers: [...h, ['Host', '']] }],
    ['Expect: 100-continue', { headers: [...h, ['Expect', '100-continue']] }],
    ['Expect: something', { headers: [...h, ['Expect', 'something']] }],
    [
      'Connection: Upgrade to h2c',
      { headers: [...h, ['Connection', 'Upgrade, HTTP2-Settings'], ['Upgrade', 'h2c'], ['HTTP2-Settings', 'AAMAAABkAAQAAP__']] },
    ],
    ['Connection: Upgrade to websocket', { headers: [...h, ['Connection', 'Upgrade'], ['Upgrade', 'websocket']] }],
    ['HTTP/1.0', { version: 'HTTP/1.0' }],
    ['HTTP/0.9', { version: 'HTTP/0.9' }],
    ['HTTP/2.0 in the request line', { version: 'HTTP/2.0' }],
    ['a made-up version', { version: 'HTTP/7.3' }],
    [
      'random header bytes',
      { headers: [...h, [randomText(rng, 8).replace(/[:\r\n]/g, '_'), randomText(rng, 16).replace(/[\r\n]/g, '_')]] },
    ],
    [
      'an Accept of junk',
      { headers: [...h, ['Accept', chance(rng, 0.5) ? 'application/openmetrics-text; version=99' : '*/*;q=x']] },
    ],
  ];
}
