// The services the fuzzer cannot start through their own commands, served by a child process
// (`ringlet fuzz --serve collective|coordinator`), so that the fuzzer measures the service's memory alone
// and sees a crash as a process that exits. The first stdout line is a JSON object with the addresses;
// the fuzzer steers the service through stdin lines:
// - collective: `epoch` aborts the ring and opens the next ring epoch, announced as {"ring_epoch": E};
//   the ring also moves to the next epoch by itself when a step fails.
// - coordinator: `job` starts a fresh job on new ports, announced like the first, and closes the old one.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { CollectiveEndpoint } from '../../collective/endpoint.js';
import { ExchangeServer } from '../../collective/exchange-server.js';
import { Ring } from '../../collective/ring-allreduce.js';
import { DistributedConfigSchema } from '../../coordinator/config.js';
import { Coordinator } from '../../coordinator/coordinator.js';
import { jsonLog } from '../../coordinator/log.js';
import { JobTelemetry } from '../../coordinator/telemetry.js';
import { TrainConfigSchema } from '../../train/config.js';
import { RING } from './collective-fixture.js';
import { JOB_INFO, jobConfigs } from './coordinator-fixture.js';

const announce = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

function commands(handler: (line: string) => void): void {
  readline.createInterface({ input: process.stdin }).on('line', handler);
  process.stdin.on('end', () => process.exit(0)); // the fuzzer is gone
}

/** Rank 1 of a two-rank ring on a real endpoint; rank 2's place (the next rank) is a sink that drops chunks. */
export async function serveCollective(token: string): Promise<void> {
  const endpoint = new CollectiveEndpoint({
    jobId: RING.jobId,
    token,
    maxChunkBytes: RING.maxChunkBytes,
    maxQueuedBytes: RING.maxQueuedBytes,
  });
  const sink = new ExchangeServer({ host: '127.0.0.1', port: 0, maxMessageBytes: 1 << 20 }, (call) => {
    call.onEnd = () => call.finish({ chunks: 0 });
  });
  const address = await endpoint.start();
  const next = `127.0.0.1:${await sink.listen()}`;
  announce({ collective: address });
  let ring: Ring | null = null;
  commands((line) => line === 'epoch' && ring?.abort('the fuzzer moved to the next ring epoch'));
  const buffer = new Float32Array(RING.bufferElements);
  for (let epoch = 1; ; epoch++) {
    const inbox = endpoint.open(epoch, 0);
    ring = new Ring({
      jobId: RING.jobId,
      token,
      epoch,
      rank: 1,
      worldSize: 2,
      next,
      inbox,
      bucketBytes: RING.bufferElements * 4,
      chunkBytes: RING.maxChunkBytes,
      timeoutMs: RING.chunkTimeoutMs,
    });
    announce({ ring_epoch: epoch });
    try {
      for (let step = 1; ; step++) await ring.allReduce([buffer], step);
    } catch {
      ring.abort('the step failed'); // a worker reports this and the coordinator re-forms the ring: here, the next epoch
    }
  }
}

/** A coordinator with its health endpoints and job metrics, waiting for workers; a fresh job on `job`. */
export async function serveCoordinator(token: string): Promise<void> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-fuzz-job-'));
  process.on('exit', () => fs.rmSync(out, { recursive: true, force: true }));
  const log = jsonLog('coordinator', { job: 'fuzz' });
  const start = async () => {
    const { train: t, dist: d } = jobConfigs(out, token);
    const train = TrainConfigSchema.parse(t);
    const telemetry = await JobTelemetry.start(train.observability, { flopsPerToken: 1, workers: 2 });
    const coordinator = new Coordinator(train, DistributedConfigSchema.parse(d), JOB_INFO, { log, telemetry });
    await coordinator.start();
    announce({ coordinator: coordinator.address, health: coordinator.httpAddress, metrics: telemetry.metricsUrl });
    return coordinator;
  };
  let job = await start();
  let queue = Promise.resolve();
  commands((line) => {
    if (line !== 'job') return;
    // The new job on new ports at once; the old one stops meanwhile (a session a fuzz case broke holds it
    // for the few seconds its shutdown allows).
    queue = queue.then(async () => {
      const old = job;
      job = await start();
      void old.close();
    });
  });
}
