// All-reduce bus bandwidth on loopback against two references measured in the same run. Each rank is a
// worker thread with its own event loop and its own gRPC endpoint (as a worker process has); the main
// thread only starts them and collects timings. Bus bandwidth follows NCCL's definition: size / time ×
// 2(N-1)/N, the rate at which each rank's link carries data, so it compares directly with a link's bytes/s.
// - The TCP ceiling: N threads in a ring of plain sockets, each sending large writes of one buffer to the
//   next while reading from the previous into one reused buffer: the all-reduce's topology and connection
//   count with nothing but the kernel's copies, what this machine's loopback and cores carry at best.
// - The peer (--peer): PyTorch's Gloo all-reduce (bench/peers/gloo_allreduce.py), the CPU collective DDP
//   uses, timed the same way (slowest rank per iteration, then the median).
import net from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { CollectiveEndpoint } from '../collective/endpoint.js';
import { moduleThread } from '../collective/module-thread.js';
import { Ring } from '../collective/ring-allreduce.js';
import { median } from './median.js';
import { runPeerScript } from './peers.js';

export interface AllReduceBenchOptions {
  workers: number[]; // ring sizes, e.g. [2, 4]
  sizesMiB: number[]; // e.g. [1, 4, 16, 64]
  iterations: number; // timed all-reduces per size (after one warm-up)
  chunkBytes: number;
  bucketBytes: number; // 0: the whole buffer in one bucket
  fp16: boolean;
  peer: boolean;
}

export interface AllReduceRow {
  workers: number;
  size_mib: number;
  seconds: number; // median of the timed iterations
  busbw_bytes_per_s: number;
  tcp_ceiling_bytes_per_s: number; // per link, N threads in a ring of plain sockets
  busbw_vs_tcp_ceiling: number;
  gloo_busbw_bytes_per_s?: number;
  busbw_vs_gloo?: number;
}

const TCP_WRITE_BYTES = 16 << 20;
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

const thread = (data: object) => moduleThread(import.meta.url, data);

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
  bucketBytes: number;
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
    bucketBytes: d.bucketBytes || 1 << 30,
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

/**
 * One link of the TCP ceiling: this thread accepts the previous thread's connection and sends it `bytes` in
 * large writes of one reused buffer, while it reads as much from the next thread into one reused buffer
 * (`onread`: no allocation per read). So data flows around the ring as the all-reduce's does, over as many
 * connections, with nothing but the kernel's copies: what N loopback links carry at best on this machine.
 */
async function tcpRingThread(d: { bytes: number }) {
  let accept!: (s: net.Socket) => void;
  const accepted = new Promise<net.Socket>((resolve) => (accept = resolve));
  const server = net.createServer((socket) => accept(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  parentPort!.postMessage({ tcpPort: (server.address() as net.AddressInfo).port });
  const { next } = await new Promise<Msg>((resolve) => parentPort!.once('message', resolve));
  let received = 0;
  let receivedAll!: () => void;
  const allIn = new Promise<void>((resolve) => (receivedAll = resolve));
  const onread = {
    buffer: Buffer.allocUnsafe(4 << 20),
    callback: (n: number) => {
      received += n;
      if (received >= d.bytes) receivedAll();
      return true;
    },
  };
  const reader = await new Promise<net.Socket>((resolve) => {
    const s: net.Socket = net.connect({ port: next!, host: '127.0.0.1', onread }, () => resolve(s));
  });
  const socket = await accepted;
  parentPort!.postMessage({});
  await new Promise<Msg>((resolve) => parentPort!.once('message', resolve)); // all connected: go
  const block = Buffer.alloc(TCP_WRITE_BYTES, 7);
  const t0 = performance.now();
  for (let sent = 0; sent < d.bytes; sent += block.length)
    if (!socket.write(block)) await new Promise((r) => socket.once('drain', r));
  await allIn;
  parentPort!.postMessage({ linkSeconds: (performance.now() - t0) / 1000 });
  reader.destroy();
  socket.destroy();
  server.close();
}

/** Per-link throughput of N threads in a ring of plain TCP sockets, all links busy at once (the slowest link). */
async function tcpRingThroughput(n: number, bytes: number): Promise<number> {
  const threads = Array.from({ length: n }, () => thread({ role: 'tcp-ring', bytes }));
  const ports = (await Promise.all(threads.map(next))).map((m) => m.tcpPort!);
  const connected = Promise.all(threads.map(next));
  threads.forEach((t, i) => t.postMessage({ next: ports[(i + 1) % n] }));
  await connected;
  const done = Promise.all(threads.map(next));
  threads.forEach((t) => t.postMessage({ done: true }));
  const seconds = Math.max(...(await done).map((m) => m.linkSeconds!));
  await Promise.all(threads.map((t) => t.terminate()));
  return bytes / seconds;
}

interface GlooPeer {
  torch_version: string;
  rows: Array<{ workers: number; size_mib: number; busbw_bytes_per_s: number }>;
}

export async function benchAllReduce(o: AllReduceBenchOptions) {
  const rows: AllReduceRow[] = [];
  for (const n of o.workers) {
    const tcpCeiling = await tcpRingThroughput(n, 512 << 20);
    const ranks = Array.from({ length: n }, (_, rank) =>
      thread({
        role: 'rank',
        rank,
        n,
        sizes: o.sizesMiB,
        iterations: o.iterations,
        chunkBytes: o.chunkBytes,
        bucketBytes: o.bucketBytes,
        fp16: o.fp16,
      }),
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
        tcp_ceiling_bytes_per_s: tcpCeiling,
        busbw_vs_tcp_ceiling: busbw / tcpCeiling,
      });
    });
  }
  if (!o.peer) return { rows };
  const gloo = runPeerScript<GlooPeer>('gloo_allreduce.py', {
    workers: o.workers.join(','),
    sizes: o.sizesMiB.join(','),
    iterations: o.iterations,
  });
  for (const row of rows) {
    const peer = gloo.rows.find((r) => r.workers === row.workers && r.size_mib === row.size_mib)!;
    row.gloo_busbw_bytes_per_s = peer.busbw_bytes_per_s;
    row.busbw_vs_gloo = row.busbw_bytes_per_s / peer.busbw_bytes_per_s;
  }
  return { rows, peer: `PyTorch ${gloo.torch_version} Gloo all-reduce, 1 thread per process` };
}

if (!isMainThread) {
  const d = workerData as { role: string };
  if (d.role === 'rank') await rankThread(workerData);
  else if (d.role === 'tcp-ring') await tcpRingThread(workerData);
}
