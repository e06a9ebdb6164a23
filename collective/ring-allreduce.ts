// Ring all-reduce over gRPC: sums Float32Array buffers across the ranks of a ring, in place, so that every
// rank ends with bit-identical sums. It knows nothing of models: gradients arrive as plain buffers.
//
// The buffers are fused into buckets (default 1 MiB), reduced from the last to the first: a worker lays its
// gradients out in the model's forward order, and the backward pass finishes them from the end, so with
// `ready` (a shared Int32Array whose [0] is where the final part of the buffer starts, lowered by the
// thread that computes the gradients) each bucket goes as soon as it is final, while the backward pass
// goes on. Each bucket is cut into world_size segments and goes
// through a reduce-scatter (N-1 rounds: send a segment to the next rank, add the one received from the
// previous rank) and an all-gather (N-1 rounds: pass the fully reduced segments on), so each rank sends
// 2(N-1)/N of the bucket. Segments travel in chunks under the gRPC message limit, and a chunk is forwarded
// as soon as it has been reduced, so sending chunk i overlaps receiving and reducing the chunks after it.
// Sums are kept in fp32. With fp16 compression the wire carries halves; a segment's owner rounds its final
// sum to fp16 before the all-gather, so every rank (the owner included) holds the very same values.
import { Encoding, Phase } from '../proto/gen/ringlet/collective/v1/collective.js';
import type { TlsFiles } from './auth.js';
import { RingError, type Inbox } from './endpoint.js';
import { ExchangeStream } from './exchange-stream.js';
import { decodeHalf, encodeHalf, roundToHalf } from './fp16.js';
import { loadNative } from '../kernels/native.js';

export const DEFAULT_BUCKET_BYTES = 1024 * 1024;
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;

export interface RingOptions {
  jobId: string;
  token: string;
  epoch: number;
  rank: number;
  worldSize: number;
  next: string; // host:port of rank (rank+1) % worldSize
  self?: string; // this rank's announced host:port, which the next rank checks (CollectiveEndpoint.open)
  inbox: Inbox; // chunks from rank (rank-1) % worldSize, from CollectiveEndpoint.open
  bucketBytes?: number;
  chunkBytes?: number;
  fp16?: boolean;
  timeoutMs?: number; // longest wait for one chunk
  tls?: TlsFiles;
}

export interface AllReduceStats {
  bytesSent: number;
  buckets: number;
  /** From this rank's first bucket being ready until the previous rank's first chunk arrived: mostly waiting
   * for a slower rank. */
  firstChunkMs: number;
}

export class Ring {
  private stream: ExchangeStream | null = null; // to the next rank, opened with the first chunk
  private readonly controller = new AbortController();
  private readonly bucketElements: number;
  private readonly chunkElements: number;
  private readonly encoding: Encoding;
  private readonly timeoutMs: number;
  private readonly scratch: Float32Array; // one chunk, reused: fp16 chunks are decoded into it
  private lastWrite: Promise<void> = Promise.resolve(); // completes when the latest chunk has been written
  private firstChunkAt = 0; // performance.now() when this all-reduce's first chunk arrived

  constructor(private readonly o: RingOptions) {
    if (o.worldSize < 1 || o.rank < 0 || o.rank >= o.worldSize)
      throw new Error(`rank ${o.rank} is not in a ring of ${o.worldSize}`);
    const elementBytes = o.fp16 ? 2 : 4;
    this.encoding = o.fp16 ? Encoding.ENCODING_FP16 : Encoding.ENCODING_FP32;
    this.bucketElements = Math.max(1, Math.floor((o.bucketBytes ?? DEFAULT_BUCKET_BYTES) / 4));
    this.chunkElements = Math.max(1, Math.floor((o.chunkBytes ?? DEFAULT_CHUNK_BYTES) / elementBytes));
    this.timeoutMs = o.timeoutMs ?? 60_000;
    this.scratch = new Float32Array(this.chunkElements);
  }

  /** Stops the all-reduce in flight (the coordinator re-forms the ring); it rejects with `reason`. */
  abort(reason: string): void {
    if (!this.controller.signal.aborted) this.controller.abort(new RingError(reason));
    this.stream?.cancel();
  }

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  private out(): ExchangeStream {
    if (!this.stream) {
      this.stream = new ExchangeStream(
        this.o.next,
        this.o.token,
        this.o.tls,
        (err) => {
          if (this.aborted) return;
          const reason = `sending to rank ${(this.o.rank + 1) % this.o.worldSize} at ${this.o.next} failed: ${err.message}`;
          this.controller.abort(new RingError(reason, err.code));
          this.o.inbox.fail(new RingError(reason, err.code));
        },
        this.o.self,
      );
    }
    return this.stream;
  }

  /**
   * Sums `buffers` across the ring in place. Every rank must pass buffers of the same lengths, in order.
   * With `ready` (one buffer only), a bucket starts once `ready[0]` is at or below its first element.
   */
  async allReduce(buffers: Float32Array[], step: number, ready?: Int32Array): Promise<AllReduceStats> {
    const stats: AllReduceStats = { bytesSent: 0, buckets: 0, firstChunkMs: 0 };
    if (this.o.worldSize === 1) return stats;
    if (ready && buffers.length !== 1) throw new Error('a readiness counter needs exactly one buffer');
    this.firstChunkAt = 0;
    if (this.aborted) throw this.controller.signal.reason;
    const total = buffers.reduce((n, b) => n + b.length, 0);
    const single = buffers.length === 1 ? buffers[0] : null;
    const buckets = Math.ceil(total / this.bucketElements);
    let firstReadyAt = performance.now();
    for (let bucket = buckets - 1; bucket >= 0; bucket--) {
      const start = bucket * this.bucketElements;
      const length = Math.min(this.bucketElements, total - start);
      if (ready) await this.untilAborted(readyFrom(ready, start));
      if (bucket === buckets - 1) firstReadyAt = performance.now();
      // A lone buffer is reduced where it lies, a bucket at a time; several are fused (copied in and out).
      const flat = single ? single.subarray(start, start + length) : gather(buffers, start, length);
      stats.bytesSent += await this.reduceBucket(flat, step, bucket);
      if (!single) scatter(flat, buffers, start);
      stats.buckets += 1;
    }
    // write() only queues: the bytes reach the socket when the event loop next polls. A caller that goes
    // straight on to compute (synchronous, the event loop blocked) would hold this rank's last chunks back
    // from the next rank for a whole compute phase (measured with 2 ranks and 220 ms of compute between
    // all-reduces of 5 MB: ~250 ms stalls in a third of the steps; none once a timer turn follows the
    // last write). So the all-reduce ends after its last write has completed and one timer turn.
    await this.untilAborted(this.lastWrite);
    await new Promise((resolve) => setTimeout(resolve, 1));
    stats.firstChunkMs = this.firstChunkAt - firstReadyAt;
    return stats;
  }

  private async reduceBucket(buf: Float32Array, step: number, bucket: number): Promise<number> {
    const { rank, worldSize: n } = this.o;
    const segStart = (s: number) => Math.floor((s * buf.length) / n);
    const chunksOf = (s: number) => {
      const out: Array<[number, number]> = [];
      for (let off = segStart(s); off < segStart(s + 1); off += this.chunkElements)
        out.push([off, Math.min(this.chunkElements, segStart(s + 1) - off)]);
      return out;
    };
    const mod = (x: number) => ((x % n) + n) % n;
    let sent = 0;
    const send = (phase: Phase, round: number, segment: number, offset: number, elements: number) => {
      const values = buf.subarray(offset, offset + elements);
      // fp32 chunks go to the socket from `buf` itself: this rank changes a region only after the next rank
      // has received it (its sum or its copy comes back through the ring), and waits for its last write.
      const data = this.o.fp16 ? encodeHalf(values) : new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      sent += data.byteLength;
      const message = {
        jobId: this.o.jobId,
        ringEpoch: this.o.epoch,
        fromRank: rank,
        step,
        bucket,
        bucketElements: buf.length,
        phase,
        round,
        segment,
        offset,
        encoding: this.encoding,
        data,
      };
      this.lastWrite = new Promise((resolve) => this.out().write(message, resolve));
    };
    const receive = async (phase: Phase, round: number, segment: number, offset: number, elements: number) => {
      const chunk = await this.o.inbox.next(
        { step, bucket, bucketElements: buf.length, phase, round, segment, offset, elements, encoding: this.encoding },
        this.controller.signal,
        this.timeoutMs,
      );
      if (this.firstChunkAt === 0) this.firstChunkAt = performance.now();
      const target = buf.subarray(offset, offset + elements);
      if (this.o.fp16) {
        const values = this.scratch.subarray(0, elements);
        decodeHalf(chunk.data, values);
        if (phase === Phase.PHASE_REDUCE_SCATTER) addInto(target, values);
        else target.set(values);
      } else if (phase === Phase.PHASE_REDUCE_SCATTER) addInto(target, chunk.data);
      // The floats' bytes, wherever gRPC's framing left them: one copy, no alignment needed.
      else new Uint8Array(target.buffer, target.byteOffset, target.byteLength).set(chunk.data);
      this.o.inbox.release(chunk); // nothing reads its bytes any more
    };

    for (const [off, len] of chunksOf(rank)) send(Phase.PHASE_REDUCE_SCATTER, 0, rank, off, len);
    for (let round = 0; round < n - 1; round++) {
      const segment = mod(rank - round - 1);
      for (const [off, len] of chunksOf(segment)) {
        await receive(Phase.PHASE_REDUCE_SCATTER, round, segment, off, len);
        if (round < n - 2) send(Phase.PHASE_REDUCE_SCATTER, round + 1, segment, off, len);
        else {
          // This rank now owns the complete sum of `segment`: start its all-gather at once.
          if (this.o.fp16) roundToHalf(buf.subarray(off, off + len));
          send(Phase.PHASE_ALL_GATHER, 0, segment, off, len);
        }
      }
    }
    for (let round = 0; round < n - 1; round++) {
      const segment = mod(rank - round);
      for (const [off, len] of chunksOf(segment)) {
        await receive(Phase.PHASE_ALL_GATHER, round, segment, off, len);
        if (round < n - 2) send(Phase.PHASE_ALL_GATHER, round + 1, segment, off, len);
      }
    }
    return sent;
  }

  /** `p`, or the abort's reason if the ring is aborted first (a cancelled stream may never call back). */
  private untilAborted<T>(p: Promise<T>): Promise<T> {
    const signal = this.controller.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    let onAbort!: () => void;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    return Promise.race([p, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
  }

  /** Closes the outbound stream and its connection. */
  close(): void {
    this.stream?.end();
  }
}

/** target += values, element-wise, `values` as floats or as the bytes of floats at any offset (a received
 * chunk): the native kernel (SIMD, unaligned loads; ~10× the JavaScript loop, which converts every element to
 * a double and back), else a loop. Both round each sum to the same float, so ranks with and without the addon
 * still end bit-identical. */
const addInto: (target: Float32Array, values: Float32Array | Uint8Array) => void = (() => {
  const native = loadNative();
  if (native) return (target, values) => native.addInto(target, values, target.length);
  return (target, values) => {
    const v = values instanceof Float32Array ? values : asFloats(values);
    const n = target.length;
    for (let i = 0; i < n; i++) target[i] += v[i];
  };
})();

/** Little-endian float bytes as a Float32Array: a view when aligned, else a copy. */
function asFloats(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Float32Array(bytes.slice().buffer);
}

/** Resolves once `ready[0] <= start` (the thread computing the gradients lowers it and notifies). */
async function readyFrom(ready: Int32Array, start: number): Promise<void> {
  for (let now = Atomics.load(ready, 0); now > start; now = Atomics.load(ready, 0)) {
    const wait = Atomics.waitAsync(ready, 0, now);
    if (wait.async) await wait.value;
  }
}

function gather(buffers: Float32Array[], start: number, length: number): Float32Array {
  const flat = new Float32Array(length);
  let pos = 0; // flat index of the current buffer's first element
  for (const b of buffers) {
    const from = Math.max(start, pos);
    const to = Math.min(start + length, pos + b.length);
    if (from < to) flat.set(b.subarray(from - pos, to - pos), from - start);
    pos += b.length;
  }
  return flat;
}

function scatter(flat: Float32Array, buffers: Float32Array[], start: number): void {
  let pos = 0;
  for (const b of buffers) {
    const from = Math.max(start, pos);
    const to = Math.min(start + flat.length, pos + b.length);
    if (from < to) b.set(flat.subarray(from - start, to - start), from - pos);
    pos += b.length;
  }
}
