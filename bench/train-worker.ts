// One worker process of `ringlet bench train --workers N` (bench/train-throughput.ts): it opens a
// collective endpoint, joins the ring the benchmark announces, trains on its own batches and averages its
// gradients with the other workers through the ring all-reduce before each AdamW step.
import { CollectiveEndpoint } from '../collective/endpoint.js';
import { DEFAULT_CHUNK_BYTES, Ring } from '../collective/ring-allreduce.js';
import { runThroughput, type ThroughputOptions, type WorkerMessage } from './train-throughput.js';

const JOB = 'bench-train';
const TOKEN = 'bench-token-not-secret'; // loopback only, for the length of one benchmark

const { options, rank, workers } = JSON.parse(process.argv[2]) as { options: ThroughputOptions; rank: number; workers: number };
const send = (m: WorkerMessage) => process.send!(m);
const endpoint = new CollectiveEndpoint({
  jobId: JOB,
  token: TOKEN,
  maxChunkBytes: DEFAULT_CHUNK_BYTES,
  maxQueuedBytes: 1 << 30,
});
try {
  send({ address: await endpoint.start() });
  const addresses = await new Promise<string[]>((resolve) =>
    process.once('message', (m: WorkerMessage) => resolve((m as { ring: string[] }).ring)),
  );
  const ring = new Ring({
    jobId: JOB,
    token: TOKEN,
    epoch: 1,
    rank,
    worldSize: workers,
    next: addresses[(rank + 1) % workers],
    inbox: endpoint.open(1, (rank - 1 + workers) % workers),
  });
  const result = await runThroughput(options, {
    rank,
    workers,
    allReduce: (buffers, step) => ring.allReduce(buffers, step),
  });
  ring.close();
  send({ result });
} catch (err) {
  send({ error: (err as Error).stack ?? String(err) });
} finally {
  await endpoint.stop();
  process.disconnect();
}
