// The ring's sending side of CollectiveService.Exchange: one gRPC client stream on node:http2, speaking
// gRPC's wire protocol directly (an HTTP/2 POST to /ringlet.collective.v1.CollectiveService/Exchange,
// length-prefixed protobuf messages, the status in the trailers). grpc-js copies every message once more
// to frame it, and the message itself must be a fresh Buffer that its retry buffer may hold; measured on
// one link (bench/link.ts) the sender then spent 0.74 ms of CPU per MiB against 0.31 ms for these frames,
// which write a chunk's floats to the socket from the gradient buffer itself. The receiver
// (collective/endpoint.ts on collective/exchange-server.ts) validates its chunks as any other sender's.
// The caller must leave a chunk's bytes untouched until its write completes: the ring does (a rank
// changes a region only after the next rank has received it, and ends an all-reduce once its last write
// has completed).
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { ExchangeRequest } from '../proto/gen/ringlet/collective/v1/collective.js';
import { SENDER_HEADER, TOKEN_HEADER, type TlsFiles } from './auth.js';
import { RingError } from './endpoint.js';
import { EXCHANGE_PATH, exchangeFrame } from './wire.js';

export class ExchangeStream {
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private failed = false;
  private ended = false;

  /**
   * Opens the stream to `address` (host:port); `onError` is told, once, why it failed. `sender`: this
   * rank's announced address, which the receiver checks against the ring it was told of.
   */
  constructor(
    address: string,
    token: string,
    tls: TlsFiles | undefined,
    private readonly onError: (err: RingError) => void,
    sender?: string,
  ) {
    this.session = tls
      ? http2.connect(`https://${address}`, {
          ca: fs.readFileSync(tls.ca),
          cert: fs.readFileSync(tls.cert),
          key: fs.readFileSync(tls.key),
          // No SNI for an IP address (RFC 6066); the certificate is still checked against it.
          ...(net.isIP(new URL(`https://${address}`).hostname.replace(/^\[|\]$/g, '')) ? { servername: '' } : {}),
        })
      : http2.connect(`http://${address}`);
    this.session.on('error', (err) => this.fail(grpc.status.UNAVAILABLE, err.message));
    this.stream = this.session.request({
      ':method': 'POST',
      ':path': EXCHANGE_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      [TOKEN_HEADER]: token,
      ...(sender === undefined ? {} : { [SENDER_HEADER]: sender }),
    });
    // The status comes in the trailers, or in the headers of a trailers-only answer (an early rejection).
    const status = (headers: http2.IncomingHttpHeaders) => {
      const code = headers['grpc-status'];
      if (code === undefined || code === '0') return;
      this.fail(Number(code) as grpc.status, decodeMessage(headers['grpc-message']));
    };
    this.stream.on('response', (headers) => {
      if (headers[':status'] !== 200) this.fail(grpc.status.UNKNOWN, `HTTP status ${headers[':status']}`);
      else status(headers);
    });
    this.stream.on('trailers', status);
    this.stream.on('error', (err) => this.fail(grpc.status.UNAVAILABLE, err.message));
    this.stream.on('close', () => {
      if (!this.ended) this.fail(grpc.status.UNAVAILABLE, `stream closed (HTTP/2 code ${this.stream.rstCode})`);
    });
    this.stream.resume(); // the reply message (a count of chunks) is not needed
  }

  /** Sends `message`; `done` runs once its bytes (including `data`, written in place) have been written. */
  write(message: ExchangeRequest, done: () => void): void {
    const { head, data } = exchangeFrame(message);
    this.stream.write(head);
    if (data.length === 0) this.stream.write(Buffer.alloc(0), () => done());
    else this.stream.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength), () => done());
  }

  /** Ends the stream (the receiver answers OK) and the connection once it has flushed. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.stream.end(() => this.session.close());
  }

  /** Drops the stream and the connection now (the ring is aborted). */
  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
    this.session.destroy();
  }

  private fail(code: grpc.status, details: string): void {
    if (this.failed || this.ended) return;
    this.failed = true;
    this.onError(new RingError(details, code));
  }
}

/** grpc-message is percent-encoded (gRPC over HTTP/2); a malformed one is shown as it came. */
export function decodeMessage(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
