// The ring's transport on its own thread: a worker_thread holds the collective endpoint (the gRPC server
// the previous rank streams to) and the ring all-reduce (the gRPC client to the next rank), and reduces
// buffers that live in SharedArrayBuffers. The thread that computes gradients (TensorFlow.js's backward
// pass holds it for hundreds of milliseconds at a time) then no longer holds back sending, receiving or
// summing: with a readiness counter, the ring reduces each bucket as soon as the backward pass has
// finished it. This class is the computing thread's handle; the thread runs the same Ring and
// CollectiveEndpoint as a single-threaded caller would, so every validation of the endpoint still holds.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { CollectiveEndpoint, RingError, type EndpointOptions } from './endpoint.js';
import { moduleThread } from './module-thread.js';
import { Ring, type AllReduceStats, type RingOptions } from './ring-allreduce.js';

/**
 * A ring to form on the thread: RingOptions without the inbox, which the thread opens for `fromRank` at
 * `fromAddress` (the previous rank's address in the announced ring; workers always give it), and without
 * `self`: the ring names this rank by its endpoint's address, the one it joined the coordinator with.
 */
export type RingFormation = Omit<RingOptions, 'inbox' | 'self'> & { fromRank: number; fromAddress?: string };

type Request =
  | { op: 'form'; ring: RingFormation }
  | { op: 'allReduce'; id: number; buffer: Float32Array; step: number; ready?: Int32Array }
  | { op: 'abort'; reason: string }
  | { op: 'chunkLimit'; bytes: number }
  | { op: 'reset' }
  | { op: 'close' }
  | { op: 'stop' };

type Reply =
  | { address: string }
  | { id: number; stats: AllReduceStats }
  | { id: number; error: { message: string; code: grpc.status; ring: boolean; aborted: boolean } }
  | { stopped: true };

export class RingThread {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (s: AllReduceStats) => void; reject: (e: Error) => void }>();
  private isAborted = false;
  private stopped: (() => void) | null = null;

  private constructor(
    private readonly thread: Worker,
    readonly address: string,
  ) {
    thread.on('message', (m: Reply) => this.onReply(m));
    thread.on('error', (err) => this.failAll(err));
    thread.on('exit', () => this.failAll(new RingError('the ring thread exited')));
  }

  /** Starts the thread and its endpoint; resolves once the endpoint listens (`address`). */
  static async start(endpoint: EndpointOptions): Promise<RingThread> {
    const thread = moduleThread(import.meta.url, { endpoint });
    const address = await new Promise<string>((resolve, reject) => {
      thread.once('message', (m: { address: string }) => resolve(m.address));
      thread.once('error', reject);
    });
    return new RingThread(thread, address);
  }

  /** Largest chunk payload the endpoint accepts (a worker learns the job's chunk size on joining). */
  set chunkLimit(bytes: number) {
    this.post({ op: 'chunkLimit', bytes });
  }

  /** Forgets every ring epoch (a worker joining a restarted coordinator, whose epochs start afresh). */
  reset(): void {
    this.post({ op: 'reset' });
  }

  /** Retires older epochs, opens this epoch's inbox and replaces the ring; all-reduces after this use it. */
  form(ring: RingFormation): void {
    this.isAborted = false;
    this.post({ op: 'form', ring });
  }

  /**
   * Sums `buffer` (on a SharedArrayBuffer) across the ring in place, on the ring's thread. With `ready`
   * (also shared), each bucket starts once `ready[0]` is at or below its first element.
   */
  allReduce(buffer: Float32Array, step: number, ready?: Int32Array): Promise<AllReduceStats> {
    if (!(buffer.buffer instanceof SharedArrayBuffer)) throw new Error('the ring thread reduces SharedArrayBuffers only');
    const id = this.nextId++;
    const done = new Promise<AllReduceStats>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.post({ op: 'allReduce', id, buffer, step, ready });
    return done;
  }

  /** Stops the all-reduce in flight (the coordinator re-forms the ring); it rejects with `reason`. */
  abort(reason: string): void {
    this.isAborted = true;
    this.post({ op: 'abort', reason });
  }

  /** True once aborted here, or once the ring failed on its own (a peer's stream broke). */
  get aborted(): boolean {
    return this.isAborted;
  }

  /** Closes the current ring's outbound stream and channel. */
  close(): void {
    this.post({ op: 'close' });
  }

  /** Stops the endpoint and ends the thread. */
  async stop(): Promise<void> {
    const stopped = new Promise<void>((resolve) => (this.stopped = resolve));
    this.post({ op: 'stop' });
    await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 5000))]);
    await this.thread.terminate();
  }

  private post(request: Request): void {
    this.thread.postMessage(request);
  }

  private onReply(m: Reply): void {
    if ('stopped' in m) return this.stopped?.();
    if (!('id' in m)) return;
    const waiter = this.pending.get(m.id);
    this.pending.delete(m.id);
    if (!waiter) return;
    if ('stats' in m) return waiter.resolve(m.stats);
    if (m.error.aborted) this.isAborted = true;
    waiter.reject(m.error.ring ? new RingError(m.error.message, m.error.code) : new Error(m.error.message));
  }

  private failAll(err: Error): void {
    this.isAborted = true;
    for (const w of this.pending.values()) w.reject(err);
    this.pending.clear();
    this.stopped?.();
  }
}

/** The thread: one endpoint for its life, one Ring per ring epoch. */
async function serve(options: EndpointOptions): Promise<void> {
  const port = parentPort!;
  const endpoint = new CollectiveEndpoint(options);
  let ring: Ring | null = null;
  port.postMessage({ address: await endpoint.start() } satisfies Reply);
  port.on('message', (m: Request) => {
    switch (m.op) {
      case 'form': {
        const { fromRank, fromAddress, ...o } = m.ring;
        endpoint.retire(o.epoch);
        ring?.close();
        ring = new Ring({ ...o, self: endpoint.address, inbox: endpoint.open(o.epoch, fromRank, fromAddress) });
        return;
      }
      case 'allReduce': {
        const current = ring;
        if (!current) {
          const error = { message: 'no ring formed', code: grpc.status.FAILED_PRECONDITION, ring: false, aborted: false };
          return port.postMessage({ id: m.id, error } satisfies Reply);
        }
        current.allReduce([m.buffer], m.step, m.ready).then(
          (stats) => port.postMessage({ id: m.id, stats } satisfies Reply),
          (err: Error) => {
            const ringError = err instanceof RingError;
            const error = {
              message: err.message,
              code: ringError ? err.code : grpc.status.UNKNOWN,
              ring: ringError,
              aborted: current.aborted,
            };
            port.postMessage({ id: m.id, error } satisfies Reply);
          },
        );
        return;
      }
      case 'abort':
        return ring?.abort(m.reason);
      case 'chunkLimit':
        endpoint.chunkLimit = m.bytes;
        return;
      case 'reset':
        return endpoint.reset();
      case 'close':
        ring?.close();
        ring = null;
        return;
      case 'stop':
        ring?.abort('endpoint stopped');
        ring?.close();
        void endpoint.stop().then(() => port.postMessage({ stopped: true } satisfies Reply));
        return;
    }
  });
}

if (!isMainThread && (workerData as { endpoint?: EndpointOptions })?.endpoint)
  await serve((workerData as { endpoint: EndpointOptions }).endpoint);
