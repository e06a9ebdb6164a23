// What a fuzzed service may answer, and which answers are clear. A message gets one of four verdicts:
// ok (accepted), refused (a clear error: a gRPC status that names the problem, an HTTP 4xx that says what
// was wrong, an HTTP/2 error code for a protocol violation), unclear (UNKNOWN, an INTERNAL that is not a
// parse failure, a 5xx, a stack trace, no status at all) or hang (no answer within the deadline). Crashes
// are seen by the runner (the process exits), not here.

export type Answer =
  | { kind: 'grpc'; httpStatus: number; code: number | null; details: string }
  | { kind: 'stream'; messages: number } // a server stream (Watch) still open: the messages it sent so far
  | { kind: 'http'; status: number; contentType: string; body: string; head: boolean } // head: a HEAD request's
  | { kind: 'h2'; frame: 'GOAWAY' | 'RST_STREAM' | 'PING'; code: number } // raw frames' answer (h2-frames.ts)
  | { kind: 'reset'; code: number } // the stream was reset before any response
  | { kind: 'closed' } // the connection closed with no answer at all
  | { kind: 'not-sent'; reason: string } // the client library refused the request: nothing reached the server
  | { kind: 'hang' };

export type Verdict = 'ok' | 'refused' | 'unclear' | 'hang';

// gRPC's own rule (doc/statuscodes.md): a request that cannot be parsed is INTERNAL, and grpc-js says so in
// these words; collective/exchange-server.ts in its own. Any other INTERNAL is the server's failure.
const PARSE_FAILURES = [
  /^Error deserializing request/,
  /^could not parse the message/,
  /^the stream ended inside a message$/,
  /^content-type .* is not application\/grpc$/,
  /^Invalid grpc-timeout value/,
  /^Failed to decompress message$/,
];

const STACK_TRACE = /\n\s+at |\bat .*\((?:file:|node:|\/).*:\d+:\d+\)/;

export interface Judged {
  verdict: Verdict;
  why: string; // for unclear answers: what was wrong
}

export interface Expectation {
  jsonErrors: boolean; // HTTP errors carry {"error": ...}
  mayClose?: boolean; // no whole request was sent, or one Node's server drops (CONNECT, Upgrade): a close is fair
}

export function judge(answer: Answer, o: Expectation): Judged {
  const unclear = (why: string): Judged => ({ verdict: 'unclear', why });
  switch (answer.kind) {
    case 'hang':
      return { verdict: 'hang', why: 'no answer within the deadline' };
    case 'not-sent':
      return { verdict: 'ok', why: '' }; // counted apart by the runner: the server never saw it
    case 'stream':
      // The fuzzer's Watch calls name a worker that already watches or none at all: each must be refused,
      // or (a message) answered; a stream left open with neither is a caller left waiting.
      return answer.messages > 0 ? { verdict: 'ok', why: '' } : unclear('a server stream neither answered nor refused');
    case 'closed':
      return o.mayClose ? { verdict: 'refused', why: '' } : unclear('the connection closed without an answer');
    case 'h2':
    case 'reset':
      // Below gRPC and HTTP, a server refuses a connection or stream with an HTTP/2 error frame. Node's
      // http2 names most protocol errors INTERNAL_ERROR (it destroys the session with the error nghttp2
      // reported), so the frame is the refusal whatever its code; a PING answered means all was taken.
      return { verdict: answer.kind === 'h2' && answer.frame === 'PING' ? 'ok' : 'refused', why: '' };
    case 'grpc': {
      const { code, details } = answer;
      if (code === null) return unclear(`HTTP ${answer.httpStatus} without a grpc-status (${details})`);
      if (STACK_TRACE.test(details)) return unclear(`a stack trace in grpc-message: ${details.slice(0, 300)}`);
      if (code === 0) return { verdict: 'ok', why: '' };
      if (code === 2) return unclear(`UNKNOWN: ${details}`);
      if (code === 13 && !PARSE_FAILURES.some((p) => p.test(details))) return unclear(`INTERNAL: ${details}`);
      if (details.trim() === '') return unclear(`status ${code} with no message`);
      return { verdict: 'refused', why: '' };
    }
    case 'http': {
      const { status, body, contentType } = answer;
      if (STACK_TRACE.test(body)) return unclear(`a stack trace in the body: ${body.slice(0, 300)}`);
      if (status >= 200 && status < 400) return { verdict: 'ok', why: '' };
      if (status >= 500) return unclear(`HTTP ${status}: ${body.slice(0, 300)}`);
      if (status < 400) return unclear(`HTTP ${status}`);
      // Node's HTTP parser refuses a malformed request itself, before any handler: a bare 4xx status line.
      if ((contentType === '' && body === '') || answer.head) return { verdict: 'refused', why: '' };
      if (!o.jsonErrors)
        return body.trim() !== '' || status === 405 ? { verdict: 'refused', why: '' } : unclear(`HTTP ${status} with no body`);
      return jsonError(body)
        ? { verdict: 'refused', why: '' }
        : unclear(`HTTP ${status} without a JSON error: ${body.slice(0, 200)}`);
    }
  }
}

/** A health probe's unexpected answer, for the failure report. */
export function unhealthy(answer: Answer): string {
  return `the health probe got ${JSON.stringify(answer).slice(0, 300)}`;
}

/** {"error": "..."}, or OpenAI's {"error": {"message": "...", ...}} (the evaluator's /v1/completions and /v1/models). */
function jsonError(body: string): boolean {
  try {
    const { error } = JSON.parse(body) as { error?: { message?: unknown } | string };
    const message = typeof error === 'object' && error !== null ? error.message : error;
    return typeof message === 'string' && message.length > 0;
  } catch {
    return false;
  }
}
