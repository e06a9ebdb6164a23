// A gRPC client that sends whatever bytes it is given: one HTTP/2 POST per call, the request's headers and
// body written as they are (length prefixes that lie, half messages, several messages on a unary method),
// and the answer read back as the server sent it: the HTTP status, grpc-status and grpc-message from the
// headers or trailers. grpc-js's client would refuse to send most of what a fuzzer needs to send.
import http2 from 'node:http2';
import { decodeMessage } from '../../collective/exchange-stream.js';
import { unhealthy, type Answer } from './oracle.js';

export interface GrpcRequest {
  path: string; // /package.Service/Method
  headers?: http2.OutgoingHttpHeaders; // added to (or replacing) :method, content-type and te
  body: Buffer; // everything the client sends, gRPC prefixes included
  /** A server stream (Watch): the first message, or nothing for this long, is an answer too. */
  streamingMs?: number;
}

/** One HTTP/2 connection to a gRPC server, opened again when the server drops it. */
export class GrpcWire {
  private session: http2.ClientHttp2Session | null = null;

  constructor(private readonly address: string) {}

  private connection(): http2.ClientHttp2Session {
    if (!this.session || this.session.closed || this.session.destroyed) {
      const session = http2.connect(`http://${this.address}`);
      session.on('error', () => {}); // a refused or dropped connection shows in the call's answer
      session.on('goaway', () => session.destroy());
      this.session = session;
    }
    return this.session;
  }

  /** Sends `request` and resolves with the server's answer, or with a hang after `deadlineMs`. */
  call(request: GrpcRequest, deadlineMs: number): Promise<Answer> {
    return new Promise((resolve) => {
      let stream: http2.ClientHttp2Stream;
      let httpStatus = 0;
      let messages = 0;
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const settle = (answer: Answer) => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t);
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        resolve(answer);
      };
      const status = (headers: http2.IncomingHttpHeaders) => {
        const code = headers['grpc-status'];
        if (code === undefined) return false;
        settle({ kind: 'grpc', httpStatus, code: Number(code), details: decodeMessage(headers['grpc-message']) });
        return true;
      };
      try {
        stream = this.connection().request({
          ':method': 'POST',
          ':path': request.path,
          'content-type': 'application/grpc',
          te: 'trailers',
          ...request.headers,
        });
      } catch (err) {
        // Node refuses some headers before sending (a fuzzed name it cannot encode): nothing reached the server.
        return resolve({ kind: 'not-sent', reason: (err as Error).message });
      }
      timers.push(setTimeout(() => settle({ kind: 'hang' }), deadlineMs));
      stream.on('response', (headers) => {
        httpStatus = Number(headers[':status']);
        if (status(headers)) return;
        if (httpStatus !== 200)
          settle({ kind: 'http', status: httpStatus, contentType: String(headers['content-type'] ?? ''), body: '', head: false });
      });
      stream.on('trailers', (trailers) => status(trailers));
      stream.on('data', (data: Buffer) => {
        messages += data.length > 0 ? 1 : 0;
        if (request.streamingMs !== undefined && messages > 0) settle({ kind: 'stream', messages });
      });
      stream.on('error', () => {});
      stream.on('close', () => {
        // Node's server refuses every new stream on a connection that has sent it too many invalid frames
        // or refused streams (its flood protection): later calls go on a fresh connection.
        if (stream.rstCode === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM) this.close();
        settle(
          httpStatus === 0
            ? { kind: 'reset', code: stream.rstCode ?? 0 }
            : { kind: 'grpc', httpStatus, code: null, details: `stream closed with HTTP/2 code ${stream.rstCode}` },
        );
      });
      stream.end(request.body, () => {
        if (request.streamingMs !== undefined)
          timers.push(setTimeout(() => settle({ kind: 'stream', messages }), request.streamingMs));
      });
    });
  }

  close(): void {
    this.session?.destroy();
    this.session = null;
  }
}

/**
 * A health probe: `request` on a connection of its own (Node's server refuses new streams on a connection
 * that sent it too many bad frames); null when the answer is status `code`, else what came.
 */
export async function probeGrpc(address: string, request: GrpcRequest, code: number, deadlineMs: number): Promise<string | null> {
  const wire = new GrpcWire(address);
  try {
    const answer = await wire.call(request, deadlineMs);
    return answer.kind === 'grpc' && answer.code === code ? null : unhealthy(answer);
  } finally {
    wire.close();
  }
}

/** The 5-byte gRPC prefix (compressed flag, big-endian length) and the message; `length` may lie. */
export function grpcFrame(message: Uint8Array, o: { length?: number; compressed?: boolean } = {}): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame[0] = o.compressed ? 1 : 0;
  frame.writeUInt32BE((o.length ?? message.length) >>> 0, 1);
  frame.set(message, 5);
  return frame;
}
