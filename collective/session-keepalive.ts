// HTTP/2 sessions that a peer has broken, and how Ringlet's servers drop them. When a client sends a frame
// nghttp2 must reject (a PUSH_PROMISE, a frame longer than the maximum), Node's server answers GOAWAY and
// then stops reading the socket: it never sees the client close, so the session, its streams and its socket
// stay open for good (measured on Node 20: every such connection kept; grpc-js's tryShutdown waited for them
// forever, so a coordinator or evaluator that had received one could not stop). A ping finds them: a broken
// session never answers one, a live peer does within seconds even while it computes (its ring runs on a
// thread of its own).
import type http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

export const KEEPALIVE_MS = 60_000; // how often an idle session is pinged
export const KEEPALIVE_TIMEOUT_MS = 20_000; // an unanswered ping after this long: the session is dropped

/** The same keepalive for a grpc-js server, which pings each session and drops those that do not answer. */
export const GRPC_SERVER_KEEPALIVE = {
  'grpc.keepalive_time_ms': KEEPALIVE_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
};

/** Pings `session` every `everyMs` and destroys it when a ping goes unanswered for `timeoutMs`. */
export function pingUntilDead(session: http2.ServerHttp2Session, everyMs = KEEPALIVE_MS, timeoutMs = KEEPALIVE_TIMEOUT_MS): void {
  const timer = setInterval(() => {
    if (session.destroyed || session.closed) return clearInterval(timer);
    const deadline = setTimeout(() => session.destroy(), timeoutMs);
    deadline.unref();
    const sent = session.ping((err) => (err ? session.destroy() : clearTimeout(deadline)));
    if (!sent) clearTimeout(deadline); // a ping is already waiting for its answer
  }, everyMs);
  timer.unref();
  session.once('close', () => clearInterval(timer));
}

/** Stops a grpc-js server: calls in flight get `graceMs` to finish, then every session is dropped. */
export async function shutdownGrpcServer(server: grpc.Server, graceMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
  ]);
  clearTimeout(timer);
  server.forceShutdown();
}
