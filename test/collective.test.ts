// The ring all-reduce over real gRPC on loopback: sums, bit-identical results, buckets and chunks, fp16,
// and the rejection of bad chunks (each with a clear status) while the endpoint keeps serving.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import { after, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { CollectiveEndpoint, EPOCH_WINDOW, MAX_EARLY_STREAMS, RingError } from '../collective/endpoint.js';
import { Ring } from '../collective/ring-allreduce.js';
import { SENDER_HEADER, tlsFromFlags, tokenMetadata } from '../collective/auth.js';
import { makeCertificates } from './tls-fixture.js';
import { fromHalf, toHalf } from '../collective/fp16.js';
import {
  CollectiveServiceClient,
  Encoding,
  ExchangeRequest as ExchangeRequestFns,
  Phase,
  type ExchangeRequest,
} from '../proto/gen/ringlet/collective/v1/collective.js';
import { EXCHANGE_PATH, encodeExchangeRequest } from '../collective/wire.js';
import { Rng } from '../lm/rng.js';

const JOB = 'job-test';
const TOKEN = 'secret-token';
const endpoints: CollectiveEndpoint[] = [];
after(async () => Promise.all(endpoints.map((e) => e.stop())));

async function startEndpoints(n: number, maxChunkBytes = 64 * 1024, maxQueuedBytes = 64 << 20): Promise<CollectiveEndpoint[]> {
  const eps = Array.from(
    { length: n },
    () => new CollectiveEndpoint({ jobId: JOB, token: TOKEN, maxChunkBytes, maxQueuedBytes }),
  );
  await Promise.all(eps.map((e) => e.start()));
  endpoints.push(...eps);
  return eps;
}

function rings(eps: CollectiveEndpoint[], epoch: number, o: { bucketBytes?: number; chunkBytes?: number; fp16?: boolean } = {}) {
  const n = eps.length;
  return eps.map(
    (ep, rank) =>
      new Ring({
        jobId: JOB,
        token: TOKEN,
        epoch,
        rank,
        worldSize: n,
        next: eps[(rank + 1) % n].address,
        self: ep.address,
        inbox: ep.open(epoch, (rank - 1 + n) % n, eps[(rank - 1 + n) % n].address),
        timeoutMs: 10_000,
        ...o,
      }),
  );
}

function randomBuffers(seed: number, lengths: number[]): Float32Array[] {
  const rng = new Rng(seed);
  return lengths.map((len) => Float32Array.from({ length: len }, () => rng.next() * 2 - 1));
}

test('the one-copy chunk serializer writes the same bytes as the generated encoder, and they decode to the same chunk', () => {
  const rng = new Rng(7);
  const pick = (max: number) => (rng.next() < 0.2 ? 0 : Math.floor(rng.next() * max));
  for (let i = 0; i < 200; i++) {
    const data = new Uint8Array(pick(3000));
    for (let j = 0; j < data.length; j++) data[j] = Math.floor(rng.next() * 256);
    const chunk: ExchangeRequest = {
      jobId: ['', 'job-ä', JOB, 'x'.repeat(200)][i % 4],
      ringEpoch: pick(2 ** 32),
      fromRank: pick(300),
      step: pick(2 ** 40),
      bucket: pick(70000),
      bucketElements: pick(2 ** 31),
      phase: [Phase.PHASE_UNSPECIFIED, Phase.PHASE_REDUCE_SCATTER, Phase.PHASE_ALL_GATHER, -1 as Phase][i % 4],
      round: pick(130),
      segment: pick(20000),
      offset: pick(2 ** 28),
      encoding: [Encoding.ENCODING_FP32, Encoding.ENCODING_FP16, Encoding.ENCODING_UNSPECIFIED][i % 3],
      data,
    };
    const ours = encodeExchangeRequest(chunk);
    assert.deepEqual(new Uint8Array(ours), ExchangeRequestFns.encode(chunk).finish(), `chunk ${i}`);
    const back = ExchangeRequestFns.decode(ours);
    assert.deepEqual({ ...back, data: new Uint8Array(back.data) }, chunk, `chunk ${i}`);
  }
});

test('fp16 conversion rounds to nearest and keeps exact halves', () => {
  for (const v of [0, 1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8]) assert.equal(fromHalf(toHalf(v)), v);
  assert.equal(fromHalf(toHalf(1 + 2 ** -11)), 1); // a tie rounds to even
  assert.equal(fromHalf(toHalf(1e6)), Infinity);
  assert.ok(Math.abs(fromHalf(toHalf(0.1)) - 0.1) < 1e-4);
});

for (const n of [2, 3, 4])
  test(`ring of ${n}: sums match the exact sum and every rank ends bit-identical (several buckets and chunks)`, async () => {
    const eps = await startEndpoints(n, 4096);
    const lengths = [1000, 3, 5000, 1]; // fused into 8 KB buckets, streamed in 4 KB chunks
    const inputs = eps.map((_, r) => randomBuffers(100 + r, lengths));
    const expected = lengths.map((len, i) =>
      Float64Array.from({ length: len }, (_, j) => inputs.reduce((s, b) => s + b[i][j], 0)),
    );
    const work = inputs.map((bufs) => bufs.map((b) => b.slice()));
    const rs = rings(eps, 1, { bucketBytes: 8192, chunkBytes: 4096 });
    const stats = await Promise.all(rs.map((r, rank) => r.allReduce(work[rank], 7)));
    rs.forEach((r) => r.close());
    const total = lengths.reduce((a, b) => a + b, 0);
    assert.ok(stats[0].buckets === Math.ceil((total * 4) / 8192));
    // Bandwidth-optimal: each rank sends about 2(N-1)/N of the data.
    assert.ok(Math.abs(stats[0].bytesSent - (2 * (n - 1) * total * 4) / n) <= 2 * n * 4 * stats[0].buckets);
    for (let i = 0; i < lengths.length; i++)
      for (let j = 0; j < lengths[i]; j++) {
        assert.ok(Math.abs(work[0][i][j] - expected[i][j]) < 1e-5, `element ${i}/${j}`);
        for (let r = 1; r < n; r++) assert.equal(work[r][i][j], work[0][i][j], `rank ${r} differs at ${i}/${j}`);
      }
  });

test('large chunks, whose buffers the endpoint recycles: five all-reduces in a row, each sum exact', async () => {
  const eps = await startEndpoints(3, 256 << 10);
  const rs = rings(eps, 1, { bucketBytes: 2 << 20, chunkBytes: 256 << 10 });
  for (let round = 0; round < 5; round++) {
    const work = eps.map((_, r) => randomBuffers(1000 * round + r, [700_001])); // 2.8 MB: 2 buckets, 3 segments each
    const exact = work[0][0].map((_, j) => work.reduce((s, b) => s + b[0][j], 0));
    await Promise.all(rs.map((r, rank) => r.allReduce(work[rank], round + 1)));
    for (let j = 0; j < exact.length; j += 7) {
      assert.ok(Math.abs(work[0][0][j] - exact[j]) < 1e-5, `round ${round}, element ${j}`);
      assert.equal(work[2][0][j], work[0][0][j], `round ${round}: rank 2 differs at ${j}`);
    }
  }
  rs.forEach((r) => r.close());
});

test('fp16 compression: sums within half precision, still bit-identical on every rank', async () => {
  const eps = await startEndpoints(3);
  const work = eps.map((_, r) => randomBuffers(200 + r, [3001]));
  const exact = work[0][0].map((_, j) => work.reduce((s, b) => s + b[0][j], 0));
  const rs = rings(eps, 1, { fp16: true, chunkBytes: 1000 });
  await Promise.all(rs.map((r, rank) => r.allReduce(work[rank], 1)));
  rs.forEach((r) => r.close());
  for (let j = 0; j < 3001; j++) {
    assert.ok(Math.abs(work[0][0][j] - exact[j]) < 1e-2, `element ${j}: ${work[0][0][j]} vs ${exact[j]}`);
    assert.equal(work[1][0][j], work[0][0][j]);
    assert.equal(work[2][0][j], work[0][0][j]);
  }
});

test("an all-reduce's stats tell the wait for the previous rank's first chunk apart from the rest", async () => {
  const eps = await startEndpoints(2);
  const rs = rings(eps, 1);
  const work = eps.map((_, r) => randomBuffers(300 + r, [5000]));
  // Rank 1 starts 300 ms late, as a slower rank would: rank 0 waits that long for its first chunk.
  const early = rs[0].allReduce(work[0], 1);
  await new Promise((r) => setTimeout(r, 300));
  const [s0, s1] = await Promise.all([early, rs[1].allReduce(work[1], 1)]);
  rs.forEach((r) => r.close());
  assert.ok(s0.firstChunkMs >= 250, `rank 0 waited ${s0.firstChunkMs} ms`);
  assert.ok(s1.firstChunkMs < 250, `rank 1's first chunk was already there: ${s1.firstChunkMs} ms`);
  assert.deepEqual(work[0][0], work[1][0]);
});

test("a ring whose sends are refused fails with the receiver's status and message, and so does a dead peer", async () => {
  const [ep] = await startEndpoints(1);
  const other = await startEndpoints(1);
  const refused = new Ring({
    jobId: JOB,
    token: 'not-the-token',
    epoch: 1,
    rank: 0,
    worldSize: 2,
    next: ep.address,
    inbox: other[0].open(1, 1),
    timeoutMs: 10_000,
  });
  await assert.rejects(
    refused.allReduce([new Float32Array(64)], 1),
    (err: RingError) =>
      err.code === grpc.status.UNAUTHENTICATED && /sending to rank 1 at .* failed: wrong or missing join token/.test(err.message),
  );
  refused.close();
  const port = Number(other[0].address.split(':')[1]);
  await other[0].stop();
  const dead = new Ring({
    jobId: JOB,
    token: TOKEN,
    epoch: 1,
    rank: 0,
    worldSize: 2,
    next: `127.0.0.1:${port}`,
    inbox: ep.open(1, 1),
    timeoutMs: 10_000,
  });
  await assert.rejects(
    dead.allReduce([new Float32Array(64)], 1),
    (err: RingError) => err.code === grpc.status.UNAVAILABLE && /ECONNREFUSED/.test(err.message),
  );
  dead.close();
});

/** Sends `body` on a bare HTTP/2 POST to `ep` and returns the gRPC status and message it ends with. */
async function rawExchange(ep: CollectiveEndpoint, body: Buffer, path = EXCHANGE_PATH) {
  const session = http2.connect(`http://${ep.address}`);
  const stream = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    'ringlet-token': TOKEN,
  });
  const status = await new Promise<{ code: number; message: string }>((resolve) => {
    const take = (h: http2.IncomingHttpHeaders) =>
      h['grpc-status'] !== undefined &&
      resolve({ code: Number(h['grpc-status']), message: decodeURIComponent(String(h['grpc-message'] ?? '')) });
    stream.on('response', take);
    stream.on('trailers', take);
    stream.resume();
    stream.end(body);
  });
  session.close();
  return status;
}

test('the Exchange server speaks gRPC: other methods, compressed messages and cut messages get a status', async () => {
  const [ep] = await startEndpoints(1);
  const frame = (flag: number, length: number, bytes: number) => {
    const b = Buffer.alloc(5 + bytes);
    b[0] = flag;
    b.writeUInt32BE(length, 1);
    return b;
  };
  assert.deepEqual(await rawExchange(ep, frame(0, 0, 0), '/ringlet.collective.v1.CollectiveService/Other'), {
    code: grpc.status.UNIMPLEMENTED,
    message: 'unknown method /ringlet.collective.v1.CollectiveService/Other',
  });
  assert.deepEqual(await rawExchange(ep, frame(1, 4, 4)), {
    code: grpc.status.UNIMPLEMENTED,
    message: 'compressed messages are not accepted',
  });
  assert.deepEqual(await rawExchange(ep, frame(0, 100, 10)), {
    code: grpc.status.INTERNAL,
    message: 'the stream ended inside a message',
  });
  const tooLarge = await rawExchange(ep, frame(0, 1 << 30, 0));
  assert.equal(tooLarge.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.match(tooLarge.message, /larger than max \(1073741824 vs \d+\)/);
  // A message with an error detail outside ASCII arrives intact through gRPC's percent-encoding.
  const unknownJob = await sendRaw(ep, [{ jobId: 'jobb-ä%' }]);
  assert.equal(unknownJob?.details, 'unknown job "jobb-ä%" (this worker runs "job-test")');
});

/**
 * Opens a raw stream to `ep` (claiming to be `sender` when given), sends `chunks` and keeps the stream open
 * until `end()`; `status` is what it ends with.
 */
function openRaw(ep: CollectiveEndpoint, chunks: Partial<ExchangeRequest>[], o: { token?: string; sender?: string } = {}) {
  const client = new CollectiveServiceClient(ep.address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 64 << 20,
  });
  const metadata = tokenMetadata(o.token ?? TOKEN);
  if (o.sender !== undefined) metadata.set(SENDER_HEADER, o.sender);
  let stream: grpc.ClientWritableStream<ExchangeRequest>;
  const status = new Promise<grpc.ServiceError | null>((resolve) => {
    stream = client.exchange(metadata, (err) => {
      client.close();
      resolve(err);
    });
    for (const c of chunks) stream.write({ ...chunk(), ...c });
  });
  return { status, end: () => stream.end() };
}

/** Opens a raw stream to `ep`, sends `chunks`, and returns the status it ends with. */
function sendRaw(ep: CollectiveEndpoint, chunks: Partial<ExchangeRequest>[], token = TOKEN): Promise<grpc.ServiceError | null> {
  const raw = openRaw(ep, chunks, { token });
  raw.end();
  return raw.status;
}

const chunk = (): ExchangeRequest => ({
  jobId: JOB,
  ringEpoch: 5,
  fromRank: 1,
  step: 3,
  bucket: 0,
  bucketElements: 8,
  phase: Phase.PHASE_REDUCE_SCATTER,
  round: 0,
  segment: 1,
  offset: 4,
  encoding: Encoding.ENCODING_FP32,
  data: Buffer.alloc(16),
});

async function expectStatus(p: Promise<grpc.ServiceError | null>, code: grpc.status, pattern: RegExp) {
  const err = await p;
  assert.ok(err, 'expected the stream to be rejected');
  assert.equal(err.code, code, `${grpc.status[err.code]}: ${err.details}`);
  assert.match(err.details, pattern);
}

test('bad chunks are rejected with a clear status, and the endpoint goes on serving the ring', async () => {
  const eps = await startEndpoints(2, 1024);
  const target = eps[0];
  await expectStatus(sendRaw(target, [{}], 'wrong-token'), grpc.status.UNAUTHENTICATED, /join token/);
  const badSender = openRaw(target, [{}], { sender: 'not an address' });
  badSender.end();
  await expectStatus(badSender.status, grpc.status.INVALID_ARGUMENT, /ringlet-sender "not an address" is not host:port/);
  await expectStatus(sendRaw(target, [{ jobId: 'other-job' }]), grpc.status.NOT_FOUND, /unknown job "other-job"/);
  await expectStatus(
    sendRaw(target, [{ data: Buffer.alloc(1028), bucketElements: 4096 }]),
    grpc.status.RESOURCE_EXHAUSTED,
    /oversized chunk/,
  );
  // Past the gRPC message limit the library itself refuses the message.
  await expectStatus(
    sendRaw(target, [{ data: Buffer.alloc(1 << 20), bucketElements: 1 << 20 }]),
    grpc.status.RESOURCE_EXHAUSTED,
    /./,
  );
  await expectStatus(
    sendRaw(target, [{ data: Buffer.alloc(6) }]),
    grpc.status.INVALID_ARGUMENT,
    /whole number of 4-byte elements/,
  );
  await expectStatus(sendRaw(target, [{ encoding: Encoding.ENCODING_UNSPECIFIED }]), grpc.status.INVALID_ARGUMENT, /encoding/);
  await expectStatus(sendRaw(target, [{ offset: 6 }]), grpc.status.INVALID_ARGUMENT, /past the end/);

  // Bytes that are not a protobuf message at all.
  const raw = new grpc.Client(target.address, grpc.credentials.createInsecure());
  const garbage = await new Promise<grpc.ServiceError | null>((resolve) => {
    const s = raw.makeClientStreamRequest(
      '/ringlet.collective.v1.CollectiveService/Exchange',
      (b: Buffer) => b,
      (b: Buffer) => b,
      tokenMetadata(TOKEN),
      (err) => resolve(err),
    );
    s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
    s.end();
  });
  raw.close();
  assert.ok(garbage && garbage.code !== grpc.status.OK, 'garbage bytes must be rejected');

  // A ring is running at epoch 5 on rank 0 (expecting rank 1): a chunk for the wrong step, then stale epochs.
  const inbox = target.open(5, 1);
  const ring = new Ring({
    jobId: JOB,
    token: TOKEN,
    epoch: 5,
    rank: 0,
    worldSize: 2,
    next: eps[1].address,
    inbox,
    timeoutMs: 5000,
  });
  const reducing = ring.allReduce([new Float32Array(8)], 4).catch((e: Error) => e);
  await expectStatus(
    sendRaw(target, [{ step: 3, segment: 1, offset: 4 }]),
    grpc.status.INVALID_ARGUMENT,
    /wrong step: chunk is for step 3, this rank is at step 4/,
  );
  assert.match(String(await reducing), /wrong step/);
  ring.abort('test over');
  ring.close();
  const inbox6 = target.open(6, 1);
  await expectStatus(sendRaw(target, [{ ringEpoch: 4 }]), grpc.status.FAILED_PRECONDITION, /stale ring epoch 4/);
  const ring6 = new Ring({
    jobId: JOB,
    token: TOKEN,
    epoch: 6,
    rank: 0,
    worldSize: 2,
    next: eps[1].address,
    inbox: inbox6,
    timeoutMs: 5000,
  });
  const shape = ring6.allReduce([new Float32Array(8)], 3).catch((e: Error) => e);
  await expectStatus(
    sendRaw(target, [{ ringEpoch: 6, bucketElements: 16, offset: 8, data: Buffer.alloc(32) }]),
    grpc.status.INVALID_ARGUMENT,
    /tensor shape mismatch/,
  );
  assert.match(String(await shape), /tensor shape mismatch/);
  ring6.abort('test over');
  ring6.close();
  // A duplicate sender for an epoch that already has one.
  const inbox7 = target.open(7, 1);
  const holder = sendRaw(target, [{ ringEpoch: 7, step: 1 }]);
  await new Promise((r) => setTimeout(r, 100));
  void inbox7;
  await expectStatus(sendRaw(target, [{ ringEpoch: 7 }]), grpc.status.ALREADY_EXISTS, /duplicate rank/);
  // ... and for an epoch not yet opened, a second stream claiming the same sender.
  await expectStatus(
    sendRaw(target, [{ ringEpoch: 8, fromRank: 0 }]).then(() => sendRaw(target, [{ ringEpoch: 8, fromRank: 0 }])),
    grpc.status.ALREADY_EXISTS,
    /duplicate rank: rank 0 already streams for ring epoch 8/,
  );
  target.open(9, 1);
  await expectStatus(sendRaw(target, [{ ringEpoch: 9, fromRank: 0 }]), grpc.status.PERMISSION_DENIED, /not the previous rank/);
  await holder;

  // After all that, the same endpoints still run a correct all-reduce.
  const rs = rings(eps, 10);
  const work = [[Float32Array.of(1, 2, 3)], [Float32Array.of(10, 20, 30)]];
  await Promise.all(rs.map((r, rank) => r.allReduce(work[rank], 1)));
  rs.forEach((r) => r.close());
  assert.deepEqual([...work[0][0]], [11, 22, 33]);
  assert.deepEqual([...work[1][0]], [11, 22, 33]);
});

/** Sums `work[rank]` across `rs` and checks the result against the exact sum on every rank. */
async function assertExactSums(rs: Ring[], work: Float32Array[], step: number) {
  const exact = work[0].map((_, j) => work.reduce((sum, w) => sum + w[j], 0));
  await Promise.all(rs.map((r, rank) => r.allReduce([work[rank]], step)));
  for (const w of work) assert.deepEqual([...w], [...exact]);
}

test('streams for epochs not yet opened are held only a few epochs ahead, a few at a time, each within its byte limit', async () => {
  const [target, peer] = await startEndpoints(2, 1024, 8 * 1024);
  rings([target, peer], 100).forEach((r) => r.close()); // both ranks are at ring epoch 100
  // A token holder streams ahead of the ring. Its first stream sends more than an inbox may hold unconsumed.
  const kib = { bucketElements: 256, segment: 0, offset: 0, data: Buffer.alloc(1024) };
  const overflow = openRaw(
    target,
    Array.from({ length: 9 }, () => ({ ringEpoch: 101, fromRank: 1, ...kib })),
  );
  await expectStatus(overflow.status, grpc.status.RESOURCE_EXHAUSTED, /inbox of ring epoch 101 holds more than 8192 bytes/);
  // Three more epochs within the window are held; every epoch past it is refused.
  const held = [102, 103, 104].map((ringEpoch) => openRaw(target, [{ ringEpoch, fromRank: 1, step: 1 }]));
  await new Promise((r) => setTimeout(r, 100)); // each on its own connection: let them all arrive
  for (let ringEpoch = 101 + EPOCH_WINDOW; ringEpoch <= 100 + 3 * EPOCH_WINDOW; ringEpoch++)
    await expectStatus(
      sendRaw(target, [{ ringEpoch, fromRank: 1 }]),
      grpc.status.FAILED_PRECONDITION,
      new RegExp(`ring epoch ${ringEpoch} has not been announced: this worker is at ring epoch 100`),
    );
  // With MAX_EARLY_STREAMS held, one more is refused even within the window.
  assert.equal(MAX_EARLY_STREAMS, 4);
  await expectStatus(
    sendRaw(target, [{ ringEpoch: 102, fromRank: 0 }]),
    grpc.status.RESOURCE_EXHAUSTED,
    /4 streams already wait for ring epochs this worker has not been told of/,
  );
  // The ring moves to epoch 102: the held stream for it does not name the previous rank's address and is
  // refused; the real senders reduce exactly.
  const rs = rings([target, peer], 102);
  await expectStatus(
    held[0].status,
    grpc.status.PERMISSION_DENIED,
    /rank 1 is not the previous rank \(rank 1 at 127\.0\.0\.1:\d+\) of ring epoch 102/,
  );
  await assertExactSums(rs, [Float32Array.of(1, 2, 3), Float32Array.of(10, 20, 30)], 1);
  rs.forEach((r) => r.close());
  // Once the ring is past them, the other held streams end as stale.
  rings([target, peer], 105).forEach((r) => r.close());
  for (const h of held.slice(1)) await expectStatus(h.status, grpc.status.FAILED_PRECONDITION, /ring epoch 10[34] is over/);
});

test('a stream that claims an epoch before its real sender is refused, and the real sender still reduces exactly', async () => {
  const [target, peer] = await startEndpoints(2);
  // The epoch both ranks were told of: another rank, or the previous rank's number from another address.
  const rs = rings([target, peer], 30);
  await expectStatus(
    sendRaw(target, [{ ringEpoch: 30, fromRank: 0 }]),
    grpc.status.PERMISSION_DENIED,
    /rank 0 is not the previous rank \(rank 1 at 127\.0\.0\.1:\d+\) of ring epoch 30/,
  );
  const impostor = openRaw(target, [{ ringEpoch: 30, fromRank: 1 }], { sender: '127.0.0.1:1' });
  await expectStatus(impostor.status, grpc.status.PERMISSION_DENIED, /rank 1 at 127\.0\.0\.1:1 is not the previous rank/);
  await assertExactSums(rs, [Float32Array.of(1, 2), Float32Array.of(3, 4)], 1);
  rs.forEach((r) => r.close());

  // The next epoch, before the target has been told of it: the impostor streams first, then the real
  // previous rank (told of the epoch first, as happens when the coordinator's messages race). The target
  // opens the epoch: the real stream is kept, the impostor's refused.
  const early = openRaw(target, [{ ringEpoch: 31, fromRank: 1, step: 1 }], { sender: '127.0.0.1:1' });
  const ring = (ep: CollectiveEndpoint, rank: number, other: CollectiveEndpoint) =>
    new Ring({
      jobId: JOB,
      token: TOKEN,
      epoch: 31,
      rank,
      worldSize: 2,
      next: other.address,
      self: ep.address,
      inbox: ep.open(31, 1 - rank, other.address),
      timeoutMs: 10_000,
    });
  const first = ring(peer, 1, target);
  const work = [Float32Array.of(5, 6, 7), Float32Array.of(0.5, 0.25, 0.125)];
  const sending = first.allReduce([work[1]], 1);
  await new Promise((r) => setTimeout(r, 200)); // its first chunk waits at the target
  const second = ring(target, 0, peer);
  await Promise.all([sending, second.allReduce([work[0]], 1)]);
  assert.deepEqual([...work[0]], [5.5, 6.25, 7.125]);
  assert.deepEqual([...work[1]], [5.5, 6.25, 7.125]);
  await expectStatus(
    early.status,
    grpc.status.PERMISSION_DENIED,
    /rank 1 at 127\.0\.0\.1:1 is not the previous rank \(rank 1 at 127\.0\.0\.1:\d+\) of ring epoch 31/,
  );
  [first, second].forEach((r) => r.close());
});

test('mutual TLS: the ring runs over TLS, and a client without a certificate is refused', async () => {
  const tls = makeCertificates();
  const eps = [0, 1].map(
    (r) => new CollectiveEndpoint({ jobId: JOB, token: TOKEN, maxChunkBytes: 1 << 20, maxQueuedBytes: 1 << 24, tls }),
  );
  await Promise.all(eps.map((e) => e.start()));
  endpoints.push(...eps);
  const rs = eps.map(
    (ep, rank) =>
      new Ring({
        jobId: JOB,
        token: TOKEN,
        epoch: 1,
        rank,
        worldSize: 2,
        next: eps[1 - rank].address,
        inbox: ep.open(1, 1 - rank),
        tls,
      }),
  );
  const work = [[Float32Array.of(1, 2)], [Float32Array.of(3, 4)]];
  await Promise.all(rs.map((r, rank) => r.allReduce(work[rank], 1)));
  rs.forEach((r) => r.close());
  assert.deepEqual([...work[0][0]], [4, 6]);
  assert.deepEqual([...work[1][0]], [4, 6]);
  // Plain text, and TLS without a client certificate, never reach the service.
  for (const credentials of [grpc.credentials.createInsecure(), grpc.credentials.createSsl(fs.readFileSync(tls.ca))]) {
    const client = new CollectiveServiceClient(eps[0].address, credentials);
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const s = client.exchange(tokenMetadata(TOKEN), { deadline: Date.now() + 3000 }, (e) => resolve(e));
      s.write(chunk());
      s.end();
    });
    client.close();
    assert.ok(err && err.code === grpc.status.UNAVAILABLE, `expected the handshake to fail, got ${err?.code} ${err?.details}`);
  }
});

test('mutual TLS takes all three files or none, and names the missing flags', () => {
  assert.equal(tlsFromFlags({}), undefined);
  assert.deepEqual(tlsFromFlags({ tlsCa: 'ca.pem', tlsCert: 'c.pem', tlsKey: 'k.pem' }), {
    ca: 'ca.pem',
    cert: 'c.pem',
    key: 'k.pem',
  });
  assert.throws(() => tlsFromFlags({ tlsCa: 'ca.pem' }), /missing --tls-cert, --tls-key/);
});
