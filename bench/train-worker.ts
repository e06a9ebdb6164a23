// One worker process of `ringlet bench train --workers N` (bench/train-throughput.ts): it opens a
// collective endpoint and ring on their own thread (collective/ring-thread.ts), joins the ring the benchmark
// announces, trains on its own batches and averages its gradients with the other workers through the ring
// all-reduce, which overlaps the backward pass, before each AdamW step.
import { RingThread } from '../collective/ring-thread.js';
import { runThroughput, type ThroughputOptions, type WorkerMessage } from './train-throughput.js';

const JOB = 'bench-train';
const TOKEN = 'bench-token-not-secret'; // loopback only, for the length of one benchmark

const { options, rank, workers } = JSON.parse(process.argv[2]) as { options: ThroughputOptions; rank: number; workers: number };
const send = (m: WorkerMessage) => process.send!(m);
const transport = await RingThread.start({ jobId: JOB, token: TOKEN, maxChunkBytes: 16 << 20, maxQueuedBytes: 1 << 30 });
try {
  send({ address: transport.address });
  const addresses = await new Promise<string[]>((resolve) =>
    process.once('message', (m: WorkerMessage) => resolve((m as { ring: string[] }).ring)),
  );
  transport.form({
    jobId: JOB,
    token: TOKEN,
    epoch: 1,
    rank,
    worldSize: workers,
    next: addresses[(rank + 1) % workers],
    fromRank: (rank - 1 + workers) % workers,
  });
  const result = await runThroughput(options, {
    rank,
    workers,
    allReduce: (buffer, step, ready) => transport.allReduce(buffer, step, ready),
  });
  send({ result });
} catch (err) {
  send({ error: (err as Error).stack ?? String(err) });
} finally {
  await transport.stop();
  process.disconnect();
}
