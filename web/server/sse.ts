// Server-Sent Events on a node:http response: named events with JSON data, a comment every 15 s so
// proxies keep an idle stream open, and `closed` / `signal` for the producer to stop when the client goes.
import type http from 'node:http';

export interface EventStream {
  send(event: string, data: unknown): void;
  end(): void;
  /** Aborted when the client disconnects (or end() was called). */
  readonly signal: AbortSignal;
}

export function openEventStream(res: http.ServerResponse, status = 200): EventStream {
  res.writeHead(status, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no', // nginx: do not buffer the stream
  });
  res.flushHeaders();
  const gone = new AbortController();
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  heartbeat.unref();
  const stop = () => {
    clearInterval(heartbeat);
    gone.abort();
  };
  res.on('close', stop);
  return {
    send(event, data) {
      if (!gone.signal.aborted) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    end() {
      stop();
      res.end();
    },
    signal: gone.signal,
  };
}
