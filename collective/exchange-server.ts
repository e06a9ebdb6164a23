// The receiving side of CollectiveService.Exchange: a gRPC server for that one client-streaming method on
// node:http2, speaking gRPC's wire protocol directly (length-prefixed protobuf messages in, one
// ExchangeResponse and the status in the trailers out; any gRPC client talks to it, grpc-js's included).
// grpc-js's server collects each message's HTTP/2 frames in a list and concatenates them, through a chain
// of promises per message: measured on one link (bench/link.ts), 0.9-1.0 ms of CPU per MiB against 0.6
// for a bare HTTP/2 stream. Here each message's bytes are copied once, from the frames into one buffer of
// the announced length, and decoded with the generated code (which keeps `data` as a view). What a chunk
// means is checked by the caller (collective/endpoint.ts); this checks the protocol: the path, the content
// type, uncompressed messages, and the message size limit.
import fs from 'node:fs';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { ExchangeRequest, ExchangeResponse } from '../proto/gen/ringlet/collective/v1/collective.js';
import { SENDER_HEADER, TOKEN_HEADER, type TlsFiles } from './auth.js';
import { pingUntilDead } from './session-keepalive.js';
import { EXCHANGE_PATH } from './wire.js';

// HTTP/2 flow control. With the default 64 KiB receive window a sender stalls whenever the receiver's
// event loop is busy (a worker computing its gradients hands out no window updates): a 5 MB all-reduce
// took a median ~450 ms in training against ~165 ms with a 32 MiB window, same machine and job.
const RECEIVE_WINDOW = 32 << 20;

/** One incoming Exchange stream, as its handler sees it. */
export interface ExchangeCall {
  /** The join token the client sent (the `ringlet-token` header). */
  readonly token: string | undefined;
  /** The address the sending rank says it has (the `ringlet-sender` header). */
  readonly sender: string | undefined;
  /** Each decoded message, in order; after `finish`, none. */
  onChunk: (chunk: ExchangeRequest) => void;
  /** The client closed its side: every message has been delivered. */
  onEnd: () => void;
  /** The client went away (reset, or the connection died) before closing its side. */
  onCancelled: () => void;
  /** Ends the call: OK with the count of chunks taken, or an error status. Later messages are dropped. */
  finish(status: { code: grpc.status; details: string } | { chunks: number }): void;
}

export interface ExchangeServerOptions {
  host: string;
  port: number;
  tls?: TlsFiles;
  maxMessageBytes: number; // a larger message ends its stream with RESOURCE_EXHAUSTED
}

// Messages at least this large get a buffer of their own, which can be recycled (smaller ones come from
// Node's shared pool); at most SPARE_BUFFERS wait for reuse.
const RECYCLED_BYTES = 64 << 10;
const SPARE_BUFFERS = 8;

export class ExchangeServer {
  private readonly server: http2.Http2Server | http2.Http2SecureServer;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly ours = new WeakSet<ArrayBuffer>(); // message buffers this server allocated
  private readonly spare = new Set<ArrayBuffer>(); // ... that their consumer has finished with

  constructor(
    private readonly options: ExchangeServerOptions,
    handler: (call: ExchangeCall) => void,
  ) {
    const settings = { initialWindowSize: RECEIVE_WINDOW, maxConcurrentStreams: 100 };
    // grpc-js lifts Node's per-session memory cap too: past it a session is torn down mid-ring.
    const common = { settings, maxSessionMemory: Number.MAX_SAFE_INTEGER };
    this.server = options.tls
      ? http2.createSecureServer({
          ...common,
          ca: fs.readFileSync(options.tls.ca),
          cert: fs.readFileSync(options.tls.cert),
          key: fs.readFileSync(options.tls.key),
          requestCert: true, // clients must present a certificate signed by the CA: mutual TLS
          rejectUnauthorized: true,
        })
      : http2.createServer(common);
    this.server.on('session', (session: http2.ServerHttp2Session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', () => {}); // a peer that vanishes: its streams report it
      pingUntilDead(session); // one a peer broke with a malformed frame would stay open for good
      session.setLocalWindowSize(RECEIVE_WINDOW); // the connection's window; the settings set each stream's
    });
    this.server.on('stream', (stream, headers) => this.accept(stream, headers, handler));
  }

  /** Listens; resolves with the port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  /**
   * Takes back the buffer under a message's bytes once nothing reads them any more (the ring has summed or
   * copied its chunk), so the next message of that size reuses it instead of making garbage: each received
   * MiB otherwise left a MiB for the collector (16% of a rank's time in a 64 MiB all-reduce).
   */
  recycle(bytes: Uint8Array): void {
    const buffer = bytes.buffer as ArrayBuffer;
    if (this.ours.has(buffer) && this.spare.size < SPARE_BUFFERS) this.spare.add(buffer);
  }

  private messageBuffer(length: number): Buffer {
    if (length < RECYCLED_BYTES) return Buffer.allocUnsafe(length);
    for (const buffer of this.spare)
      if (buffer.byteLength === length) {
        this.spare.delete(buffer);
        return Buffer.from(buffer);
      }
    const fresh = Buffer.allocUnsafeSlow(length);
    this.ours.add(fresh.buffer as ArrayBuffer);
    return fresh;
  }

  /** Stops listening and drops every connection. */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.destroy();
    return closed;
  }

  private accept(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, handler: (call: ExchangeCall) => void) {
    stream.on('error', () => {}); // reported through 'close' below
    const trailersOnly = (code: grpc.status, details: string) => {
      if (!stream.headersSent && !stream.destroyed)
        stream.respond(
          {
            ':status': 200,
            'content-type': 'application/grpc',
            'grpc-status': String(code),
            'grpc-message': percentEncode(details),
          },
          { endStream: true },
        );
      stream.resume(); // drop whatever else the client sends
    };
    if (headers[':path'] !== EXCHANGE_PATH) return trailersOnly(grpc.status.UNIMPLEMENTED, `unknown method ${headers[':path']}`);
    if (!String(headers['content-type'] ?? '').startsWith('application/grpc'))
      return trailersOnly(grpc.status.INTERNAL, `content-type ${headers['content-type']} is not application/grpc`);
    const header = (name: string) => (typeof headers[name] === 'string' ? (headers[name] as string) : undefined);
    let finished = false;
    let ended = false;
    const call: ExchangeCall = {
      token: header(TOKEN_HEADER),
      sender: header(SENDER_HEADER),
      onChunk: () => {},
      onEnd: () => {},
      onCancelled: () => {},
      finish: (status) => {
        if (finished) return;
        finished = true;
        if ('code' in status) return trailersOnly(status.code, status.details);
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': '' }));
        const reply = ExchangeResponse.encode({ chunks: status.chunks }).finish();
        const frame = Buffer.allocUnsafe(5 + reply.length);
        frame[0] = 0;
        frame.writeUInt32BE(reply.length, 1);
        frame.set(reply, 5);
        stream.end(frame);
      },
    };
    handler(call);
    if (finished) return;

    // Length-prefixed messages: a 5-byte prefix (compressed flag, big-endian length), then the message.
    const prefix = Buffer.alloc(5);
    let prefixFilled = 0;
    let message: Buffer | null = null;
    let messageFilled = 0;
    stream.on('data', (data: Buffer) => {
      for (let pos = 0; pos < data.length && !finished;) {
        if (!message) {
          const n = Math.min(5 - prefixFilled, data.length - pos);
          data.copy(prefix, prefixFilled, pos, pos + n);
          prefixFilled += n;
          pos += n;
          if (prefixFilled < 5) break;
          prefixFilled = 0;
          if (prefix[0] !== 0)
            return call.finish({ code: grpc.status.UNIMPLEMENTED, details: 'compressed messages are not accepted' });
          const length = prefix.readUInt32BE(1);
          if (length > this.options.maxMessageBytes)
            return call.finish({
              code: grpc.status.RESOURCE_EXHAUSTED,
              details: `received message larger than max (${length} vs ${this.options.maxMessageBytes})`,
            });
          message = this.messageBuffer(length);
          messageFilled = 0;
        }
        const n = Math.min(message.length - messageFilled, data.length - pos);
        data.copy(message, messageFilled, pos, pos + n);
        messageFilled += n;
        pos += n;
        if (messageFilled < message.length) break;
        const bytes = message;
        message = null;
        let chunk: ExchangeRequest;
        try {
          chunk = ExchangeRequest.decode(bytes);
        } catch (err) {
          return call.finish({ code: grpc.status.INTERNAL, details: `could not parse the message: ${(err as Error).message}` });
        }
        call.onChunk(chunk);
      }
    });
    stream.on('end', () => {
      ended = true;
      if (finished) return;
      if (message || prefixFilled > 0)
        return call.finish({ code: grpc.status.INTERNAL, details: 'the stream ended inside a message' });
      call.onEnd();
    });
    stream.on('close', () => {
      if (!ended && !finished) {
        finished = true;
        call.onCancelled();
      }
    });
  }
}

/** grpc-message as gRPC over HTTP/2 encodes it: UTF-8, with '%' and bytes outside printable ASCII as %XX. */
function percentEncode(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8'))
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}
