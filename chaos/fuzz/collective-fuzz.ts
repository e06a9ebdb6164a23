// Fuzzing the collective endpoint: the fuzzer plays rank 0 of a two-rank ring whose rank 1 (a real
// CollectiveEndpoint with a real Ring consuming its inbox) runs in a child process. Besides the generic
// gRPC cases, each sequence case moves the ring to a fresh epoch and sends one Exchange stream of chunks
// built from the valid ones: in order, out of order, for wrong epochs, ranks, steps, shapes and encodings,
// with a chunk mutated at the byte level, or two senders at once.
import { randomBytes as secret } from 'node:crypto';
import type { Rng } from '../../lm/rng.js';
import { SENDER_HEADER, TOKEN_HEADER } from '../../collective/auth.js';
import { EXCHANGE_PATH } from '../../collective/wire.js';
import { Encoding, ExchangeRequest, Phase } from '../../proto/gen/ringlet/collective/v1/collective.js';
import { RING, validChunks } from './collective-fixture.js';
import { chance, pick, randomBytes } from './draw.js';
import { genericGrpcCase, sendGeneric, type Sent, type ValidRequest } from './grpc-cases.js';
import { GrpcWire, grpcFrame, probeGrpc } from './grpc-client.js';
import { mutate } from './mutate.js';
import { ServiceProcess, ringletCommand } from './service-process.js';
import type { FuzzService, FuzzTarget } from './target.js';

type Edit = [string, (chunks: ExchangeRequest[], epoch: number) => ExchangeRequest[]];

const each = (change: Partial<ExchangeRequest>) => (chunks: ExchangeRequest[]) => chunks.map((c) => ({ ...c, ...change }));
const first = (change: Partial<ExchangeRequest>) => (chunks: ExchangeRequest[]) => [
  { ...chunks[0], ...change },
  ...chunks.slice(1),
];

// Edits of a valid stream (steps 1 and 2: four chunks). Values stay inside each field's protobuf type, so
// the generated encoder writes them; values outside it come from the byte-level mutations.
const EDITS: Edit[] = [
  ['valid chunks', (c) => c],
  ['NaN and infinite floats', (c) => c.map((x) => ({ ...x, data: new Uint8Array(new Float32Array(32).fill(NaN).buffer) }))],
  ['the two phases swapped', (c) => [c[1], c[0], ...c.slice(2)]],
  ['a chunk twice', (c) => [c[0], c[0], ...c.slice(1)]],
  ['step 2 before step 1', (c) => [...c.slice(2), ...c.slice(0, 2)]],
  ['a step never started', each({ step: 7 })],
  ['step 2^53-1', each({ step: 2 ** 53 - 1 })],
  ['step 0', each({ step: 0 })],
  ['a stale epoch', (c, e) => each({ ringEpoch: e - 1 })(c)],
  ['the next epoch', (c, e) => each({ ringEpoch: e + 1 })(c)],
  ['epoch 2^32-1', each({ ringEpoch: 0xffffffff })],
  ['the epoch changing within the stream', (c, e) => [c[0], { ...c[1], ringEpoch: e + 1 }]],
  ['rank 1 (itself) as the sender', each({ fromRank: 1 })],
  ['rank 2^32-1 as the sender', each({ fromRank: 0xffffffff })],
  ['another job', each({ jobId: 'someone-else' })],
  ['a job id of 64 KiB', each({ jobId: 'j'.repeat(65536) })],
  ['bucket 1 of one', each({ bucket: 1 })],
  ['a larger bucket', each({ bucketElements: RING.bufferElements * 2 })],
  ['a bucket of 2^32-1 elements', each({ bucketElements: 0xffffffff })],
  ['an offset past the bucket', first({ offset: RING.bufferElements })],
  ['offset 2^32-1', first({ offset: 0xffffffff })],
  ['phase unspecified', first({ phase: Phase.PHASE_UNSPECIFIED })],
  ['phase 99', first({ phase: 99 as Phase })],
  ['round 1 of a two-rank ring', first({ round: 1 })],
  ['segment 2 of two', first({ segment: 2 })],
  ['fp16 in an fp32 ring', first({ encoding: Encoding.ENCODING_FP16 })],
  ['encoding unspecified', first({ encoding: Encoding.ENCODING_UNSPECIFIED })],
  ['3 bytes of data', first({ data: new Uint8Array(3) })],
  ['no data', first({ data: new Uint8Array(0) })],
  ['data over the chunk limit', first({ data: new Uint8Array(RING.maxChunkBytes + 4) })],
  ['4 KiB of data where 128 bytes are expected', first({ data: new Uint8Array(RING.maxChunkBytes) })],
];

const SENDERS: Array<[string, string]> = [
  ['an address that is not host:port', 'not an address'],
  ['port 99999', '127.0.0.1:99999'],
  ['some other address', '127.0.0.1:1'],
  ['a 10 KB address', `${'h'.repeat(10_000)}:1`],
  ['an empty address', ''],
];

class CollectiveTarget implements FuzzTarget {
  readonly jsonErrors = false;
  private readonly wire: GrpcWire;
  private readonly auth: Record<string, string>;
  private epoch = 1;

  constructor(
    readonly process: ServiceProcess,
    private readonly address: { host: string; port: number },
    token: string,
  ) {
    this.wire = new GrpcWire(`${address.host}:${address.port}`);
    this.auth = { [TOKEN_HEADER]: token };
  }

  /** The ring moved to a fresh epoch, waiting for step 1 from rank 0. */
  private async freshEpoch(): Promise<number> {
    this.process.latest((l) => typeof l.ring_epoch === 'number');
    this.process.command('epoch');
    const line = await this.process.announcement<{ ring_epoch: number }>((l) => Number(l.ring_epoch) > this.epoch, 10_000);
    this.epoch = line.ring_epoch;
    return this.epoch;
  }

  private stream(chunks: Array<ExchangeRequest | Buffer>): Buffer {
    return Buffer.concat(chunks.map((c) => (Buffer.isBuffer(c) ? c : grpcFrame(ExchangeRequest.encode(c).finish()))));
  }

  private exchange(what: string, body: Buffer, deadlineMs: number, headers: Record<string, string> = {}): Promise<Sent> {
    return this.wire
      .call({ path: EXCHANGE_PATH, headers: { ...this.auth, ...headers }, body }, deadlineMs)
      .then((answer) => ({ what, answer }));
  }

  async send(rng: Rng, deadlineMs: number): Promise<Sent[]> {
    const kind = pick(rng, ['generic', 'generic', 'edit', 'edit', 'mutant', 'sender', 'two senders']);
    if (kind === 'generic') {
      const valid: ValidRequest = {
        path: EXCHANGE_PATH,
        message: ExchangeRequest.encode(validChunks(this.epoch, 1)[0]).finish(),
        auth: this.auth,
      };
      return [await sendGeneric({ wire: this.wire, address: this.address }, genericGrpcCase(rng, valid), deadlineMs)];
    }
    const epoch = await this.freshEpoch();
    const valid = [...validChunks(epoch, 1, rng.next()), ...validChunks(epoch, 2)];
    if (kind === 'edit') {
      const [what, edit] = pick(rng, EDITS);
      return [await this.exchange(what, this.stream(edit(valid, epoch)), deadlineMs)];
    }
    if (kind === 'mutant') {
      const at = rng.int(valid.length);
      const { bytes, how } = mutate(rng, ExchangeRequest.encode(valid[at]).finish());
      const stream = valid.map((c, i) => (i === at ? grpcFrame(bytes) : c));
      return [await this.exchange(`chunk ${at} of a valid stream mutated (${how})`, this.stream(stream), deadlineMs)];
    }
    if (kind === 'sender') {
      // The address a stream says it comes from (ringlet-sender), checked against the announced previous rank.
      const [what, sender] = pick(rng, SENDERS);
      return [await this.exchange(`a valid stream from ${what}`, this.stream(valid), deadlineMs, { [SENDER_HEADER]: sender })];
    }
    // Two streams claim the same epoch at once: one is the sender, the other a duplicate rank.
    const garbage = chance(rng, 0.5) ? [grpcFrame(randomBytes(rng, 1 + rng.int(64)))] : [];
    return Promise.all([
      this.exchange('the first of two senders of one epoch', this.stream(valid), deadlineMs),
      this.exchange('the second of two senders of one epoch', this.stream([...valid.slice(0, 2), ...garbage]), deadlineMs),
    ]);
  }

  probe(deadlineMs: number): Promise<string | null> {
    // An empty stream with the right token: the endpoint answers OK with no chunks.
    const request = { path: EXCHANGE_PATH, headers: this.auth, body: Buffer.alloc(0) };
    return probeGrpc(`${this.address.host}:${this.address.port}`, request, 0, deadlineMs);
  }

  async close(): Promise<void> {
    this.wire.close();
    await this.process.stop();
  }
}

export const collectiveService: FuzzService = {
  name: 'collective',
  async start() {
    const token = secret(24).toString('hex');
    const child = new ServiceProcess(ringletCommand(['fuzz', '--serve', 'collective']), { RINGLET_TOKEN: token });
    const { collective } = await child.announcement<{ collective: string }>((l) => 'collective' in l, 60_000);
    const [host, port] = [
      collective.slice(0, collective.lastIndexOf(':')),
      Number(collective.slice(collective.lastIndexOf(':') + 1)),
    ];
    return new CollectiveTarget(child, { host, port }, token);
  },
};
