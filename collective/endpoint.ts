// The receiving side of the ring: a gRPC server hosting CollectiveService.Exchange (on node:http2,
// collective/exchange-server.ts). Each ring epoch has one inbox, fed by exactly one stream from the
// previous rank. Every chunk is checked before it is queued (token, job, epoch, sizes, encoding); what
// only the all-reduce knows (step, bucket shape, order) is checked by the consumer through Inbox.next.
// A rejected stream gets a status naming the problem; the process and the other streams go on.
//
// Epochs and inboxes are bound to the ring the coordinator announced: a stream names its ring epoch and
// sender (the chunk's from_rank and the `ringlet-sender` address) and feeds the epoch's inbox only if that
// is the previous rank the worker was told of. The previous rank may be told of a new ring first and
// stream before this worker has opened the epoch, so a stream for a later epoch is held, unchecked, until
// open() names the sender; only a few such streams, and only a few epochs ahead.
import * as grpc from '@grpc/grpc-js';
import { Encoding, Phase, type ExchangeRequest } from '../proto/gen/ringlet/collective/v1/collective.js';
import { SENDER_HEADER, statusError, tokenMatches, type TlsFiles } from './auth.js';
import { parseHostPort } from './address.js';
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

// How far past the newest opened epoch a stream may be held: the coordinator aborts a ring (one epoch) and
// forms the next (another), and may do that twice before this worker has heard of the second.
export const EPOCH_WINDOW = 4;
// Streams held for epochs not yet opened: one is the previous rank's; the rest leave room for it beside
// others' claims. Each holds at most maxQueuedBytes.
export const MAX_EARLY_STREAMS = 4;

/** Who feeds an epoch's inbox: the previous rank, and its address as announced (undefined: not checked). */
export interface Sender {
  rank: number;
  address?: string;
}

const notPrevious = (claimed: Sender, announced: Sender, epoch: number) =>
  `${describe(claimed)} is not the previous rank (${describe(announced)}) of ring epoch ${epoch}`;
const describe = (s: Sender) => `rank ${s.rank}${s.address === undefined ? '' : ` at ${s.address}`}`;

/** `claimed` is `announced` (an announced sender without an address is known by its rank alone). */
function isSender(announced: Sender, claimed: Sender): boolean {
  return announced.rank === claimed.rank && (announced.address === undefined || announced.address === claimed.address);
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

  constructor(
    readonly epoch: number,
    readonly sender: Sender, // announced (open), or as a stream claimed it (held before open)
    private readonly maxQueuedBytes: number,
    private readonly recycle?: (bytes: Uint8Array) => void,
  ) {}

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
        reject(new RingError(`no chunk from ${describe(this.sender)} for ${timeoutMs} ms (ring epoch ${this.epoch})`));
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
  private readonly inboxes = new Map<number, Inbox>(); // opened epochs
  private early: Inbox[] = []; // streams for epochs not yet opened, each bound to what it claimed
  private epoch = 0; // streams for older epochs are refused; 0: no epoch opened yet
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

  /**
   * The inbox of `epoch`, fed by rank `fromRank` (the previous rank) from `fromAddress` (its address as the
   * coordinator announced it; undefined: not checked); inboxes of older epochs fail and their streams end.
   * A stream held for this epoch is kept if it is that sender's, and refused otherwise.
   */
  open(epoch: number, fromRank: number, fromAddress?: string): Inbox {
    const from: Sender = { rank: fromRank, address: fromAddress };
    this.retire(epoch);
    let inbox = this.inboxes.get(epoch);
    if (inbox && !isSender(from, inbox.sender)) {
      inbox.reject(grpc.status.PERMISSION_DENIED, notPrevious(inbox.sender, from, epoch));
      inbox = undefined;
    }
    if (!inbox) {
      const held = this.early.filter((e) => e.epoch === epoch);
      this.early = this.early.filter((e) => e.epoch !== epoch);
      inbox = held.find((e) => isSender(from, e.sender)) ?? new Inbox(epoch, from, this.options.maxQueuedBytes, this.recycle);
      for (const other of held)
        if (other !== inbox) other.reject(grpc.status.PERMISSION_DENIED, notPrevious(other.sender, from, epoch));
      this.inboxes.set(epoch, inbox);
    }
    return inbox;
  }

  /** Forgets every epoch (a worker joining a restarted coordinator, whose epochs start afresh). */
  reset(): void {
    for (const inbox of [...this.inboxes.values(), ...this.early])
      inbox.reject(grpc.status.ABORTED, 'the ring is being re-formed after a coordinator restart');
    this.inboxes.clear();
    this.early = [];
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
    for (const inbox of this.early)
      if (inbox.epoch < this.epoch)
        inbox.reject(grpc.status.FAILED_PRECONDITION, `ring epoch ${inbox.epoch} is over (now ${this.epoch})`);
    this.early = this.early.filter((inbox) => inbox.epoch >= this.epoch);
  }

  /** The inbox a stream claiming `epoch` and `sender` may feed, or why it may not. */
  private claim(epoch: number, sender: Sender): Inbox | [grpc.status, string] {
    if (epoch < this.epoch) return [grpc.status.FAILED_PRECONDITION, `stale ring epoch ${epoch} (now ${this.epoch})`];
    const opened = this.inboxes.get(epoch);
    if (opened) {
      if (!isSender(opened.sender, sender)) return [grpc.status.PERMISSION_DENIED, notPrevious(sender, opened.sender, epoch)];
      if (opened.bound) return [grpc.status.ALREADY_EXISTS, `duplicate rank: ring epoch ${epoch} already has a sender`];
      return opened;
    }
    // An epoch this worker has not been told of: the previous rank may have been told first.
    if (this.epoch > 0 && epoch > this.epoch + EPOCH_WINDOW)
      return [
        grpc.status.FAILED_PRECONDITION,
        `ring epoch ${epoch} has not been announced: this worker is at ring epoch ${this.epoch} ` +
          `and holds streams at most ${EPOCH_WINDOW} epochs ahead`,
      ];
    if (this.early.some((e) => e.epoch === epoch && e.sender.rank === sender.rank && e.sender.address === sender.address))
      return [grpc.status.ALREADY_EXISTS, `duplicate rank: ${describe(sender)} already streams for ring epoch ${epoch}`];
    if (this.early.length >= MAX_EARLY_STREAMS)
      return [
        grpc.status.RESOURCE_EXHAUSTED,
        `${MAX_EARLY_STREAMS} streams already wait for ring epochs this worker has not been told of`,
      ];
    const held = new Inbox(epoch, sender, this.options.maxQueuedBytes, this.recycle);
    this.early.push(held);
    return held;
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
    if (call.sender !== undefined && !parseHostPort(call.sender))
      return finish(
        statusError(grpc.status.INVALID_ARGUMENT, `${SENDER_HEADER} "${call.sender.slice(0, 100)}" is not host:port`),
      );
    let inbox: Inbox | null = null;
    let chunks = 0;
    call.onChunk = (chunk: ExchangeRequest) => {
      if (finished) return;
      const bad = checkChunk(chunk, this.options.jobId, Math.min(this.chunkLimit, this.options.maxChunkBytes));
      if (bad) return finish(statusError(...bad));
      if (!inbox) {
        const claimed = this.claim(chunk.ringEpoch, { rank: chunk.fromRank, address: call.sender });
        if (Array.isArray(claimed)) return finish(statusError(...claimed));
        inbox = claimed;
        inbox.bind(finish);
      } else if (chunk.ringEpoch !== inbox.epoch || chunk.fromRank !== inbox.sender.rank)
        return finish(statusError(grpc.status.INVALID_ARGUMENT, 'malformed chunk: epoch or rank changed within a stream'));
      chunks += 1;
      inbox.push(chunk);
    };
    call.onEnd = () => {
      inbox?.fail(new RingError(`${describe(inbox.sender)} closed its stream (ring epoch ${inbox.epoch})`), true);
      finish(null);
    };
    call.onCancelled = () => {
      inbox?.fail(new RingError(`${describe(inbox.sender)} went away (ring epoch ${inbox.epoch})`));
      // A held stream that went away frees its place for the real sender's.
      this.early = this.early.filter((e) => e !== inbox);
      finished = true;
    };
  }

  async stop(): Promise<void> {
    for (const inbox of [...this.inboxes.values(), ...this.early]) inbox.fail(new RingError('endpoint stopped'));
    this.inboxes.clear();
    this.early = [];
    await this.server.close();
  }
}
