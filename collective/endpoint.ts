// The receiving side of the ring: a gRPC server hosting CollectiveService.Exchange (on node:http2,
// collective/exchange-server.ts). Each ring epoch has one inbox, fed by exactly one stream from the
// previous rank. Every chunk is checked before it is queued (token, job, epoch, sizes, encoding); what
// only the all-reduce knows (step, bucket shape, order) is checked by the consumer through Inbox.next.
// A rejected stream gets a status naming the problem; the process and the other streams go on.
import * as grpc from '@grpc/grpc-js';
import { Encoding, Phase, type ExchangeRequest } from '../proto/gen/ringlet/collective/v1/collective.js';
import { statusError, tokenMatches, type TlsFiles } from './auth.js';
import { ExchangeServer, type ExchangeCall } from './exchange-server.js';

export interface EndpointOptions {
  jobId: string;
  token: string;
  host?: string; // default 127.0.0.1
  port?: number; // default 0: any free port
  maxChunkBytes: number; // largest `data` a chunk may carry
  maxQueuedBytes: number; // bytes an inbox may hold before its consumer takes them
  tls?: TlsFiles;
}

/** A chunk the consumer expects next; a received chunk that differs is rejected with the field named. */
export interface ChunkExpectation {
  step: number;
  bucket: number;
  bucketElements: number;
  phase: Phase;
  round: number;
  segment: number;
  offset: number;
  elements: number;
  encoding: Encoding;
}

export class RingError extends Error {
  constructor(
    message: string,
    readonly code: grpc.status = grpc.status.ABORTED,
  ) {
    super(message);
    this.name = 'RingError';
  }
}

type Waiter = { resolve: (c: ExchangeRequest) => void; reject: (e: Error) => void };

/** Chunks of one ring epoch from the previous rank, in the order they were sent. */
export class Inbox {
  private readonly queue: ExchangeRequest[] = [];
  private queuedBytes = 0;
  private waiter: Waiter | null = null;
  private failure: Error | null = null;
  private finish: ((err: grpc.ServiceError | null) => void) | null = null;
  bound = false; // a sender's stream feeds this inbox
  fromRank: number | null;

  constructor(
    readonly epoch: number,
    fromRank: number | null,
    private readonly maxQueuedBytes: number,
    private readonly recycle?: (bytes: Uint8Array) => void,
  ) {
    this.fromRank = fromRank;
  }

  bind(finish: (err: grpc.ServiceError | null) => void) {
    this.bound = true;
    this.finish = finish;
  }

  push(chunk: ExchangeRequest): void {
    if (this.failure) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      return w.resolve(chunk);
    }
    this.queuedBytes += chunk.data.length;
    if (this.queuedBytes > this.maxQueuedBytes)
      return this.reject(
        grpc.status.RESOURCE_EXHAUSTED,
        `inbox of ring epoch ${this.epoch} holds more than ${this.maxQueuedBytes} bytes not yet consumed`,
      );
    this.queue.push(chunk);
  }

  /** The consumer has finished with `chunk`'s bytes: its buffer may carry a later message. */
  release(chunk: ExchangeRequest): void {
    this.recycle?.(chunk.data);
  }

  /** The next chunk, checked against `want`; rejects on a mismatch, a failed stream, abort or timeout. */
  async next(want: ChunkExpectation, signal: AbortSignal, timeoutMs: number): Promise<ExchangeRequest> {
    const chunk = await this.take(signal, timeoutMs);
    const problem = mismatch(chunk, want);
    if (problem) {
      this.reject(grpc.status.INVALID_ARGUMENT, problem);
      throw new RingError(problem, grpc.status.INVALID_ARGUMENT);
    }
    return chunk;
  }

  private take(signal: AbortSignal, timeoutMs: number): Promise<ExchangeRequest> {
    const queued = this.queue.shift();
    if (queued) {
      this.queuedBytes -= queued.data.length;
      return Promise.resolve(queued);
    }
    if (this.failure) return Promise.reject(this.failure);
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        done();
        this.waiter = null;
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        this.waiter = null;
        signal.removeEventListener('abort', onAbort);
        reject(new RingError(`no chunk from rank ${this.fromRank} for ${timeoutMs} ms (ring epoch ${this.epoch})`));
      }, timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiter = {
        resolve: (c) => (done(), resolve(c)),
        reject: (e) => (done(), reject(e)),
      };
    });
  }

  /** Ends the bound stream with an error status and fails the consumer. */
  reject(code: grpc.status, details: string): void {
    this.fail(new RingError(details, code));
    this.finish?.(statusError(code, details));
    this.finish = null;
  }

  /** Fails the consumer once it has taken what is queued (all of it is dropped unless keepQueued). */
  fail(err: Error, keepQueued = false): void {
    if (this.failure) return;
    this.failure = err;
    if (!keepQueued) {
      this.queue.length = 0;
      this.queuedBytes = 0;
    }
    this.waiter?.reject(err);
    this.waiter = null;
  }
}

function mismatch(c: ExchangeRequest, w: ChunkExpectation): string | null {
  if (c.step !== w.step) return `wrong step: chunk is for step ${c.step}, this rank is at step ${w.step}`;
  if (c.bucket !== w.bucket) return `out of order: chunk is for bucket ${c.bucket}, expected bucket ${w.bucket}`;
  if (c.bucketElements !== w.bucketElements)
    return `tensor shape mismatch: chunk's bucket has ${c.bucketElements} elements, this rank's has ${w.bucketElements}`;
  if (c.phase !== w.phase || c.round !== w.round || c.segment !== w.segment || c.offset !== w.offset)
    return (
      `out of order: chunk is phase ${c.phase} round ${c.round} segment ${c.segment} offset ${c.offset}, ` +
      `expected phase ${w.phase} round ${w.round} segment ${w.segment} offset ${w.offset}`
    );
  if (c.encoding !== w.encoding)
    return `encoding mismatch: chunk is ${Encoding[c.encoding]}, the ring uses ${Encoding[w.encoding]}`;
  const bytes = w.elements * (w.encoding === Encoding.ENCODING_FP16 ? 2 : 4);
  if (c.data.length !== bytes) return `tensor shape mismatch: chunk carries ${c.data.length} bytes, expected ${bytes}`;
  return null;
}

/** Checks that need no knowledge of the step in progress; null when the chunk may be queued. */
function checkChunk(c: ExchangeRequest, jobId: string, maxChunkBytes: number): [grpc.status, string] | null {
  if (c.jobId !== jobId) return [grpc.status.NOT_FOUND, `unknown job "${c.jobId}" (this worker runs "${jobId}")`];
  if (c.data.length > maxChunkBytes)
    return [grpc.status.RESOURCE_EXHAUSTED, `oversized chunk: ${c.data.length} bytes, the limit is ${maxChunkBytes}`];
  if (c.encoding !== Encoding.ENCODING_FP32 && c.encoding !== Encoding.ENCODING_FP16)
    return [grpc.status.INVALID_ARGUMENT, `malformed chunk: encoding ${c.encoding} is not FP32 or FP16`];
  if (c.phase !== Phase.PHASE_REDUCE_SCATTER && c.phase !== Phase.PHASE_ALL_GATHER)
    return [grpc.status.INVALID_ARGUMENT, `malformed chunk: phase ${c.phase} is not REDUCE_SCATTER or ALL_GATHER`];
  const size = c.encoding === Encoding.ENCODING_FP16 ? 2 : 4;
  if (c.data.length % size !== 0)
    return [
      grpc.status.INVALID_ARGUMENT,
      `malformed chunk: ${c.data.length} bytes is not a whole number of ${size}-byte elements`,
    ];
  if (c.offset + c.data.length / size > c.bucketElements)
    return [grpc.status.INVALID_ARGUMENT, `malformed chunk: elements past the end of its ${c.bucketElements}-element bucket`];
  return null;
}

export class CollectiveEndpoint {
  private readonly server: ExchangeServer;
  private readonly inboxes = new Map<number, Inbox>();
  private epoch = 0; // streams for older epochs are refused
  address = '';
  /** Largest chunk payload accepted; may be lowered after start (a worker learns the job's chunk size on joining). */
  chunkLimit: number;

  constructor(private readonly options: EndpointOptions) {
    this.chunkLimit = options.maxChunkBytes;
    this.server = new ExchangeServer(
      {
        host: options.host ?? '127.0.0.1',
        port: options.port ?? 0,
        tls: options.tls,
        // A little room over the payload for the chunk's header fields; larger messages are refused.
        maxMessageBytes: options.maxChunkBytes + 4096,
      },
      (call) => this.exchange(call),
    );
  }

  private readonly recycle = (bytes: Uint8Array) => this.server.recycle(bytes);

  async start(): Promise<string> {
    const port = await this.server.listen();
    this.address = `${this.options.host ?? '127.0.0.1'}:${port}`;
    return this.address;
  }

  /** The inbox of `epoch`, fed by `fromRank`; inboxes of older epochs fail and their streams end. */
  open(epoch: number, fromRank: number): Inbox {
    this.retire(epoch);
    let inbox = this.inboxes.get(epoch);
    if (!inbox) {
      inbox = new Inbox(epoch, fromRank, this.options.maxQueuedBytes, this.recycle);
      this.inboxes.set(epoch, inbox);
    } else if (inbox.fromRank !== fromRank) {
      inbox.reject(
        grpc.status.PERMISSION_DENIED,
        `rank ${inbox.fromRank} is not the previous rank (${fromRank}) of ring epoch ${epoch}`,
      );
      inbox = new Inbox(epoch, fromRank, this.options.maxQueuedBytes, this.recycle);
      this.inboxes.set(epoch, inbox);
    }
    return inbox;
  }

  /** Forgets every epoch (a worker joining a restarted coordinator, whose epochs start afresh). */
  reset(): void {
    for (const inbox of this.inboxes.values())
      inbox.reject(grpc.status.ABORTED, 'the ring is being re-formed after a coordinator restart');
    this.inboxes.clear();
    this.epoch = 0;
  }

  /** Refuses streams of epochs before `epoch` and fails their inboxes. */
  retire(epoch: number): void {
    this.epoch = Math.max(this.epoch, epoch);
    for (const [e, inbox] of this.inboxes)
      if (e < this.epoch) {
        inbox.reject(grpc.status.FAILED_PRECONDITION, `ring epoch ${e} is over (now ${this.epoch})`);
        this.inboxes.delete(e);
      }
  }

  private exchange(call: ExchangeCall): void {
    let finished = false;
    const finish = (err: grpc.ServiceError | null) => {
      if (finished) return;
      finished = true;
      call.finish(err ? { code: err.code, details: err.details } : { chunks });
    };
    if (!call.token || !tokenMatches(call.token, this.options.token))
      return finish(statusError(grpc.status.UNAUTHENTICATED, 'wrong or missing join token'));
    let inbox: Inbox | null = null;
    let chunks = 0;
    call.onChunk = (chunk: ExchangeRequest) => {
      if (finished) return;
      const bad = checkChunk(chunk, this.options.jobId, Math.min(this.chunkLimit, this.options.maxChunkBytes));
      if (bad) return finish(statusError(...bad));
      if (chunk.ringEpoch < this.epoch)
        return finish(statusError(grpc.status.FAILED_PRECONDITION, `stale ring epoch ${chunk.ringEpoch} (now ${this.epoch})`));
      if (!inbox) {
        let target = this.inboxes.get(chunk.ringEpoch);
        if (!target) {
          // The sender learnt of the new epoch before this worker did: hold its chunks until open().
          target = new Inbox(chunk.ringEpoch, null, this.options.maxQueuedBytes, this.recycle);
          this.inboxes.set(chunk.ringEpoch, target);
        }
        if (target.bound)
          return finish(
            statusError(grpc.status.ALREADY_EXISTS, `duplicate rank: ring epoch ${chunk.ringEpoch} already has a sender`),
          );
        if (target.fromRank === null) target.fromRank = chunk.fromRank;
        if (target.fromRank !== chunk.fromRank)
          return finish(
            statusError(
              grpc.status.PERMISSION_DENIED,
              `rank ${chunk.fromRank} is not the previous rank (${target.fromRank}) of ring epoch ${chunk.ringEpoch}`,
            ),
          );
        inbox = target;
        inbox.bind(finish);
      } else if (chunk.ringEpoch !== inbox.epoch || chunk.fromRank !== inbox.fromRank)
        return finish(statusError(grpc.status.INVALID_ARGUMENT, 'malformed chunk: epoch or rank changed within a stream'));
      chunks += 1;
      inbox.push(chunk);
    };
    call.onEnd = () => {
      inbox?.fail(new RingError(`rank ${inbox.fromRank} closed its stream (ring epoch ${inbox.epoch})`), true);
      finish(null);
    };
    call.onCancelled = () => {
      inbox?.fail(new RingError(`rank ${inbox.fromRank} went away (ring epoch ${inbox.epoch})`));
      finished = true;
    };
  }

  async stop(): Promise<void> {
    for (const inbox of this.inboxes.values()) inbox.fail(new RingError('endpoint stopped'));
    this.inboxes.clear();
    await this.server.close();
  }
}
