// One link of the ring, one way, through each layer the ring's bytes cross, so the cost of each layer shows:
// plain TCP (large writes, one reused read buffer), a bare HTTP/2 stream (node:http2, 32 MiB windows), and
// a grpc-js client stream, and the ring's own sender (gRPC frames on node:http2, collective/exchange-stream.ts,
// with 1 MiB or 4 MiB chunks, on one connection or split over two); the last four send into the ring's
// receiver (CollectiveEndpoint on its gRPC server, collective/exchange-server.ts: validation and inbox).
// A sender thread streams `--mib` MiB to a receiver thread; each variant reports MB/s (first byte to last,
// at the receiver) and each side's CPU time per MiB (the thread's own utime + stime from
// /proc/thread-self/stat), which moves less than wall time on a shared machine.
// Variants run in turn, `--repeats` rounds, so a drift in the machine's speed touches all of them alike.
// Run: node --import tsx bench/link.ts [--mib 256] [--repeats 3]
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { CollectiveEndpoint } from '../collective/endpoint.js';
import { ExchangeStream } from '../collective/exchange-stream.js';
import { moduleThread } from '../collective/module-thread.js';
import { tokenMetadata } from '../collective/auth.js';
import { CollectiveServiceClient, Encoding, Phase } from '../proto/gen/ringlet/collective/v1/collective.js';
import { median } from './median.js';

const TOKEN = 'bench-token-not-secret';
const JOB = 'bench-link';

interface Variant {
  name: string;
  transport: 'tcp' | 'http2' | 'grpc-js' | 'ring';
  chunkBytes: number;
  connections: number;
}

const VARIANTS: Variant[] = [
  { name: 'TCP, 16 MiB writes', transport: 'tcp', chunkBytes: 16 << 20, connections: 1 },
  { name: 'HTTP/2 stream, 1 MiB writes', transport: 'http2', chunkBytes: 1 << 20, connections: 1 },
  { name: 'grpc-js client, 1 MiB chunks', transport: 'grpc-js', chunkBytes: 1 << 20, connections: 1 },
  { name: 'the ring: gRPC frames on node:http2, 1 MiB', transport: 'ring', chunkBytes: 1 << 20, connections: 1 },
  { name: 'the ring, 4 MiB chunks', transport: 'ring', chunkBytes: 4 << 20, connections: 1 },
  { name: 'the ring, 1 MiB chunks, 2 connections', transport: 'ring', chunkBytes: 1 << 20, connections: 2 },
];

/** The fields of the link's `bucket`-th chunk: each chunk is a whole one-segment bucket of step 1. */
function chunkHeader(bucket: number, elements: number) {
  return {
    step: 1,
    bucket,
    bucketElements: elements,
    phase: Phase.PHASE_REDUCE_SCATTER,
    round: 0,
    segment: 0,
    offset: 0,
    encoding: Encoding.ENCODING_FP32,
  };
}

/** CPU milliseconds this thread has used (utime + stime, clock ticks of 10 ms). */
function threadCpuMs(): number {
  const fields = fs.readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

type Msg = { port?: number; ports?: number[]; cpuMs?: number; seconds?: number };
const message = (w: Worker | typeof parentPort) =>
  new Promise<Msg>((resolve) => (w as Worker).once('message', resolve as (m: unknown) => void));

/** Receiver thread: listens, takes `bytes`, reports its CPU time. */
async function receiver(v: Variant, bytes: number) {
  let received = 0;
  let allIn!: () => void;
  const done = new Promise<void>((resolve) => (allIn = resolve));
  let firstByteAt = 0;
  const count = (n: number) => {
    if (received === 0) firstByteAt = performance.now();
    received += n;
    if (received >= bytes) allIn();
  };
  let ports = [0];
  let stop: () => Promise<void>;
  if (v.transport === 'tcp') {
    // onread (one reused buffer, no allocation per read) takes a connecting socket: this side connects.
    const { port: senderPort } = await message(parentPort!);
    await new Promise<void>((resolve) => {
      const onread = { buffer: Buffer.allocUnsafe(4 << 20), callback: (n: number) => (count(n), true) };
      net.connect({ port: senderPort!, host: '127.0.0.1', onread }, resolve);
    });
    stop = async () => {};
  } else if (v.transport === 'http2') {
    const server = http2.createServer({ settings: { initialWindowSize: 32 << 20 } });
    server.on('session', (s) => s.setLocalWindowSize(32 << 20));
    server.on('stream', (stream) => stream.on('data', (d: Buffer) => count(d.length)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ports = [(server.address() as net.AddressInfo).port];
    stop = () => new Promise((resolve) => server.close(() => resolve()));
  } else {
    // One endpoint per connection, as each link of a ring has its own (an endpoint holds one sender per epoch).
    const endpoints = Array.from(
      { length: v.connections },
      () => new CollectiveEndpoint({ jobId: JOB, token: TOKEN, maxChunkBytes: v.chunkBytes, maxQueuedBytes: 1 << 30 }),
    );
    ports = await Promise.all(endpoints.map(async (e) => Number((await e.start()).split(':')[1])));
    const elements = v.chunkBytes / 4;
    const consume = async (endpoint: CollectiveEndpoint) => {
      const inbox = endpoint.open(1, 0);
      const signal = new AbortController().signal;
      for (let bucket = 0; received < bytes; bucket++) {
        const chunk = await inbox.next({ ...chunkHeader(bucket, elements), elements }, signal, 60_000);
        count(chunk.data.length);
        inbox.release(chunk);
      }
    };
    for (const e of endpoints) void consume(e);
    stop = async () => void (await Promise.all(endpoints.map((e) => e.stop())));
  }
  parentPort!.postMessage({ ports });
  const cpu0 = threadCpuMs();
  await done;
  parentPort!.postMessage({ cpuMs: threadCpuMs() - cpu0, seconds: (performance.now() - firstByteAt) / 1000 });
  await message(parentPort!);
  await stop();
}

/** Sender thread: streams `bytes` to the receiver, reports seconds and CPU time. */
async function sender(v: Variant, bytes: number) {
  const { ports } = await message(parentPort!);
  const cpu0 = threadCpuMs();
  const block = Buffer.alloc(v.chunkBytes, 1);
  const perConnection = bytes / v.connections;
  if (v.transport === 'tcp') {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    parentPort!.postMessage({ port: (server.address() as net.AddressInfo).port });
    const socket = await accepted;
    for (let sent = 0; sent < bytes; sent += block.length)
      if (!socket.write(block)) await new Promise((r) => socket.once('drain', r));
    await message(parentPort!);
    parentPort!.postMessage({ cpuMs: threadCpuMs() - cpu0 });
    socket.destroy();
    server.close();
    return;
  }
  if (v.transport === 'http2') {
    const session = http2.connect(`http://127.0.0.1:${ports![0]}`, { settings: { initialWindowSize: 32 << 20 } });
    const stream = session.request({ ':method': 'POST' });
    for (let sent = 0; sent < bytes; sent += block.length)
      if (!stream.write(block)) await new Promise((r) => stream.once('drain', r));
    await message(parentPort!);
    parentPort!.postMessage({ cpuMs: threadCpuMs() - cpu0 });
    stream.close();
    session.close();
    return;
  }
  const data = new Uint8Array(block.buffer, block.byteOffset, block.byteLength);
  const elements = v.chunkBytes / 4;
  await Promise.all(
    Array.from({ length: v.connections }, async (_, c) => {
      const send =
        v.transport === 'ring'
          ? new ExchangeStream(`127.0.0.1:${ports![c]}`, TOKEN, undefined, (err) => {
              throw err;
            })
          : new CollectiveServiceClient(`127.0.0.1:${ports![c]}`, grpc.credentials.createInsecure(), {
              'grpc.max_send_message_length': v.chunkBytes + 4096,
            }).exchange(tokenMetadata(TOKEN), () => {});
      const inFlight: Array<Promise<void>> = [];
      for (let sent = 0, bucket = 0; sent < perConnection; sent += v.chunkBytes, bucket++) {
        const chunk = { jobId: JOB, ringEpoch: 1, fromRank: 0, ...chunkHeader(bucket, elements), data };
        // At most 4 chunks in flight, as a ring with 1 MiB chunks has at most a few.
        if (inFlight.length === 4) await inFlight.shift();
        inFlight.push(
          new Promise<void>((resolve) =>
            send instanceof ExchangeStream ? send.write(chunk, resolve) : send.write(chunk, () => resolve()),
          ),
        );
      }
    }),
  );
  await message(parentPort!);
  parentPort!.postMessage({ cpuMs: threadCpuMs() - cpu0 });
}

const thread = (data: object) => moduleThread(import.meta.url, data);

async function run(v: Variant, bytes: number) {
  const rx = thread({ role: 'receiver', v, bytes });
  const tx = thread({ role: 'sender', v, bytes });
  if (v.transport === 'tcp') {
    tx.postMessage({});
    rx.postMessage({ port: (await message(tx)).port });
  } else tx.postMessage({ ports: (await message(rx)).ports });
  if (v.transport === 'tcp') await message(rx); // connected
  const { cpuMs: rxCpu, seconds } = await message(rx); // from the first byte to the last
  const txDone = message(tx);
  tx.postMessage({}); // the receiver has everything: the sender may stop
  const { cpuMs: txCpu } = await txDone;
  rx.postMessage({});
  await Promise.all([tx.terminate(), rx.terminate()]);
  const mib = bytes / (1 << 20);
  return { mbps: bytes / seconds! / 1e6, rxCpuPerMiB: rxCpu! / mib, txCpuPerMiB: txCpu! / mib };
}

if (isMainThread) {
  const { values } = parseArgs({
    options: { mib: { type: 'string', default: '256' }, repeats: { type: 'string', default: '3' } },
  });
  const bytes = Number(values.mib) << 20;
  const results = new Map<string, Array<Awaited<ReturnType<typeof run>>>>();
  for (let r = 0; r < Number(values.repeats); r++)
    for (const v of VARIANTS) results.set(v.name, [...(results.get(v.name) ?? []), await run(v, bytes)]);
  const rows = VARIANTS.map((v) => {
    const rs = results.get(v.name)!;
    return {
      variant: v.name,
      mb_per_s: Math.round(median(rs.map((x) => x.mbps))),
      mb_per_s_all: rs.map((x) => Math.round(x.mbps)),
      receiver_cpu_ms_per_mib: Number(median(rs.map((x) => x.rxCpuPerMiB)).toFixed(3)),
      sender_cpu_ms_per_mib: Number(median(rs.map((x) => x.txCpuPerMiB)).toFixed(3)),
    };
  });
  for (const row of rows)
    process.stderr.write(
      `${row.variant.padEnd(46)} ${String(row.mb_per_s).padStart(5)} MB/s (${row.mb_per_s_all.join(', ')})  ` +
        `CPU per MiB: sender ${row.sender_cpu_ms_per_mib.toFixed(2)} ms, receiver ${row.receiver_cpu_ms_per_mib.toFixed(2)} ms\n`,
    );
  console.log(JSON.stringify({ mib: Number(values.mib), repeats: Number(values.repeats), rows }));
} else {
  const d = workerData as { role: string; v: Variant; bytes: number };
  if (d.role === 'receiver') await receiver(d.v, d.bytes);
  else await sender(d.v, d.bytes);
}
