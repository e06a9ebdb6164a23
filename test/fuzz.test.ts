// The fuzz harness (`ringlet fuzz`, chaos/fuzz/) and the bugs it found, each kept as a regression case.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { tokenMetadata } from '../collective/auth.js';
import { DistributedConfigSchema } from '../coordinator/config.js';
import { Coordinator } from '../coordinator/coordinator.js';
import { CoordinatorServiceClient } from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { TrainConfigSchema } from '../train/config.js';

const TOKEN = 'fuzz-test-token-0123';

async function startCoordinator(): Promise<{
  coordinator: Coordinator;
  client: CoordinatorServiceClient;
  close: () => Promise<void>;
}> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-fuzz-test-'));
  const train = TrainConfigSchema.parse({ data: out, out, training: { batch_size: 2, max_steps: 100 } });
  const dist = DistributedConfigSchema.parse({ token: TOKEN, job_id: 'job', min_workers: 1, max_workers: 2 });
  const info = { windowsPerEpoch: 100, tokensPerStep: 64, startStep: 0, startCursorPosition: 0, restoreCheckpoint: '' };
  const coordinator = new Coordinator(train, dist, info, { log: () => {} });
  await coordinator.start();
  const client = new CoordinatorServiceClient(coordinator.address, grpc.credentials.createInsecure());
  return {
    coordinator,
    client,
    close: async () => {
      client.close();
      await coordinator.close();
      fs.rmSync(out, { recursive: true, force: true });
    },
  };
}

test('a status message quoting a 100 KB worker id is cut, so the caller gets it (it waited for its deadline)', async () => {
  const { client, close } = await startCoordinator();
  try {
    const started = Date.now();
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.heartbeat(
        { jobId: 'job', workerId: 'w'.repeat(100_000), ringEpoch: 0, step: 0, ringError: '' },
        tokenMetadata(TOKEN),
        { deadline: Date.now() + 5000 },
        (e) => resolve(e),
      ),
    );
    assert.equal(err?.code, grpc.status.NOT_FOUND, `answered ${err?.code}: ${err?.details.slice(0, 100)}`);
    assert.match(err.details, /^unknown worker "w+\.\.\. \(\d+ characters\)$/);
    assert.ok(err.details.length < 1100, `${err.details.length} characters`);
    assert.ok(Date.now() - started < 4000);
  } finally {
    await close();
  }
});
