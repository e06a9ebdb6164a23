// All-reduce bus bandwidth on loopback against raw TCP, in the same run. Each rank is a worker thread with
// its own event loop and its own gRPC endpoint (as a worker process has); the main thread only starts them
// and collects timings. Bus bandwidth follows NCCL's definition: size / time × 2(N-1)/N, the rate at which
// each rank's link carries data. Raw TCP is one socket between two threads moving the same bytes, so it
// is the ceiling a loopback link offers here. The TCP ring is the same topology as the all-reduce with
// nothing else: N threads, each sending to the next and receiving from the previous at once, so it shows
// what the machine's cores and loopback give N concurrent links (the rest is gRPC, copies and sums).
import net from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { CollectiveEndpoint } from '../collective/endpoint.js';
import { Ring } from '../collective/ring-allreduce.js';
import { median } from './median.js';

export interface AllReduceBenchOptions {
  workers: number[]; // ring sizes, e.g. [2, 4]
  sizesMiB: number[]; // e.g. [1, 4, 16, 64]
  iterations: number; // timed all-reduces per size (after one warm-up)
  chunkBytes: number;
  fp16: boolean;
}

export interface AllReduceRow {
  workers: number;
  size_mib: number;
  seconds: number; // median of the timed iterations
  busbw_bytes_per_s: number;
  tcp_bytes_per_s: number;
  busbw_vs_tcp: number;
  tcp_ring_bytes_per_s: number; // per link, N threads in a ring of plain sockets
  busbw_vs_tcp_ring: number;
}

const JOB = 'bench';
const TOKEN = 'bench-token-not-secret';

type Msg = {
  address?: string;
  ring?: string[];
  seconds?: number[];
  tcpPort?: number;
  bytes?: number;
  done?: boolean;
  next?: number;
  linkSeconds?: number;
};

function thread(data: object): Worker {
  const url = new URL(import.meta.url);
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData: data });
  // Run from TypeScript source: a worker thread does not inherit the tsx loader, so register it first.
  const boot = `import('tsx/esm/api').then((m) => m.register()).then(() => import(${JSON.stringify(url.href)}))`;
  return new Worker(boot, { eval: true, workerData: data });
}

function next(w: Worker): Promise<Msg> {
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

async function rankThread(d: {
  rank: number;
  n: number;
  sizes: number[];
  iterations: number;
  chunkBytes: number;
  fp16: boolean;
}) {
  const endpoint = new CollectiveEndpoint({ jobId: JOB, token: TOKEN, maxChunkBytes: d.chunkBytes, maxQueuedBytes: 1 << 30 });
  parentPort!.postMessage({ address: await endpoint.start() });
  const { ring: addresses } = await new Promise<Msg>((resolve) => parentPort!.once('message', resolve));
  const ring = new Ring({
    jobId: JOB,
    token: TOKEN,
    epoch: 1,
    rank: d.rank,
    worldSize: d.n,
    next: addresses![(d.rank + 1) % d.n],
    inbox: endpoint.open(1, (d.rank - 1 + d.n) % d.n),
    bucketBytes: 1 << 30,
    chunkBytes: d.chunkBytes,
    fp16: d.fp16,
  });
  const seconds: number[] = [];
  let step = 0;
  // Warm up at the largest size first: the heap grows and the code is compiled once, not inside a timing
  // (with only a per-size warm-up, 4 MiB measured 90 ms after 1 MiB and 35 ms after 16 MiB).
  const largest = new Float32Array((Math.max(...d.sizes) * 1024 * 1024) / 4);
  for (let i = 0; i < 2; i++) await ring.allReduce([largest], ++step);
  for (const mib of d.sizes) {
    const buf = new Float32Array((mib * 1024 * 1024) / 4).fill(d.rank + 1);
    for (let i = 0; i <= d.iterations; i++) {
      const t0 = performance.now();
      await ring.allReduce([buf], ++step);
      if (i > 0) seconds.push((performance.now() - t0) / 1000);
    }
  }
  ring.close();
  parentPort!.postMessage({ seconds });
  await new Promise((r) => setTimeout(r, 200));
  await endpoint.stop();
}

async function tcpSinkThread() {
  const server = net.createServer((socket) => {
    let received = 0;
    socket.on('data', (b) => {
      received += b.length;
      if (received >= (workerData as { bytes: number }).bytes) socket.end('k');
    });
  });
  server.listen(0, '127.0.0.1', () => parentPort!.postMessage({ tcpPort: (server.address() as net.AddressInfo).port }));
  parentPort!.once('message', () => server.close());
}

/** One thread of the TCP ring: listens, then sends `bytes` to the next thread while taking as much from the previous. */
async function tcpRingThread(d: { bytes: number }) {
  let received = 0;
  let receivedAll!: () => void;
  const allIn = new Promise<void>((resolve) => (receivedAll = resolve));
  const server = net.createServer((socket) =>
    socket.on('data', (b) => {
      received += b.length;
      if (received >= d.bytes) receivedAll();
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  parentPort!.postMessage({ tcpPort: (server.address() as net.AddressInfo).port });
  const { next } = await new Promise<Msg>((resolve) => parentPort!.once('message', resolve));
  const socket = await new Promise<net.Socket>((resolve) => {
    const s = net.connect(next!, '127.0.0.1', () => resolve(s));
  });
  await new Promise<Msg>((resolve) => parentPort!.once('message', resolve)); // all connected: go
  const block = Buffer.alloc(1 << 20, 7);
  const t0 = performance.now();
  for (let sent = 0; sent < d.bytes; sent += block.length)
    if (!socket.write(block)) await new Promise((r) => socket.once('drain', r));
  await allIn;
  parentPort!.postMessage({ linkSeconds: (performance.now() - t0) / 1000 });
  socket.destroy();
  server.close();
}

/** Per-link throughput of N threads in a ring of plain TCP sockets, all links busy at once (the slowest link). */
async function tcpRingThroughput(n: number, bytes: number): Promise<number> {
  const threads = Array.from({ length: n }, () => thread({ role: 'tcp-ring', bytes }));
  const ports = (await Promise.all(threads.map(next))).map((m) => m.tcpPort!);
  threads.forEach((t, i) => t.postMessage({ next: ports[(i + 1) % n] }));
  await new Promise((r) => setTimeout(r, 50)); // connections established
  const done = Promise.all(threads.map(next));
  threads.forEach((t) => t.postMessage({ done: true }));
  const seconds = Math.max(...(await done).map((m) => m.linkSeconds!));
  await Promise.all(threads.map((t) => t.terminate()));
  return bytes / seconds;
}

/** Raw TCP throughput over loopback: `bytes` from this thread to a sink thread, until it acknowledges. */
async function tcpThroughput(bytes: number): Promise<number> {
  const sink = thread({ role: 'tcp-sink', bytes });
  const { tcpPort } = await next(sink);
  const block = Buffer.alloc(1 << 20, 7);
  const seconds = await new Promise<number>((resolve, reject) => {
    const socket = net.connect(tcpPort!, '127.0.0.1', async () => {
      const t0 = performance.now();
      socket.once('data', () => resolve((performance.now() - t0) / 1000));
      for (let sent = 0; sent < bytes; sent += block.length)
        if (!socket.write(block)) await new Promise((r) => socket.once('drain', r));
    });
    socket.on('error', reject);
  });
  sink.postMessage('stop');
  await sink.terminate();
  return bytes / seconds;
}

export async function benchAllReduce(o: AllReduceBenchOptions): Promise<{ rows: AllReduceRow[]; tcp_bytes_per_s: number }> {
  const tcp = await tcpThroughput(256 << 20);
  const rows: AllReduceRow[] = [];
  for (const n of o.workers) {
    const tcpRing = await tcpRingThroughput(n, 128 << 20);
    const ranks = Array.from({ length: n }, (_, rank) =>
      thread({ role: 'rank', rank, n, sizes: o.sizesMiB, iterations: o.iterations, chunkBytes: o.chunkBytes, fp16: o.fp16 }),
    );
    const addresses = (await Promise.all(ranks.map(next))).map((m) => m.address!);
    const results = Promise.all(ranks.map(next));
    ranks.forEach((r) => r.postMessage({ ring: addresses }));
    const perRank = (await results).map((m) => m.seconds!);
    await Promise.all(ranks.map((r) => r.terminate()));
    o.sizesMiB.forEach((mib, s) => {
      // An all-reduce ends when its slowest rank does: per iteration, the maximum over ranks; then the median.
      const seconds = median(
        Array.from({ length: o.iterations }, (_, i) => Math.max(...perRank.map((t) => t[s * o.iterations + i]))),
      );
      const busbw = ((mib * 1024 * 1024) / seconds) * ((2 * (n - 1)) / n);
      rows.push({
        workers: n,
        size_mib: mib,
        seconds,
        busbw_bytes_per_s: busbw,
        tcp_bytes_per_s: tcp,
        busbw_vs_tcp: busbw / tcp,
        tcp_ring_bytes_per_s: tcpRing,
        busbw_vs_tcp_ring: busbw / tcpRing,
      });
    });
  }
  return { rows, tcp_bytes_per_s: tcp };
}

if (!isMainThread) {
  const d = workerData as { role: string };
  if (d.role === 'rank') await rankThread(workerData);
  else if (d.role === 'tcp-sink') await tcpSinkThread();
  else if (d.role === 'tcp-ring') await tcpRingThread(workerData);
}
