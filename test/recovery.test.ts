// Recovery at the moments a kill -9 rarely hits: a real worker process trains beside a scripted peer that
// speaks the coordinator's protocol and sums its share of every all-reduce, and that dies exactly where the
// scenario needs it to. Deterministic, where killing a process at the right millisecond is not.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { TINY_MODEL, prepareTinyDataset } from './tiny-dataset.js';
import { tokenMetadata } from '../collective/auth.js';
import { RingThread } from '../collective/ring-thread.js';
import { DistributedConfigSchema } from '../coordinator/config.js';
import { createCoordinator } from '../coordinator/run.js';
import { readManifest } from '../data/manifest.js';
import { openSplit } from '../data/shards.js';
import { Tokenizer } from '../lm/tokenizer.js';
import { listCheckpoints } from '../lm/checkpoint.js';
import { parameterCount } from '../lm/model-config.js';
import { TrainConfigSchema } from '../train/config.js';
import { resolveModelConfig } from '../train/run.js';
import { stepWindows } from '../train/shard.js';
import {
  CheckpointBarrierRequest,
  CoordinatorServiceClient,
  type Assignment,
  type JoinResponse,
  type WatchResponse,
} from '../proto/gen/ringlet/coordinator/v1/coordinator.js';

const root = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-recovery-'));
const TOKEN = 'recovery-test-token';
const children: ChildProcess[] = [];
let dataset = '';
before(async () => void (dataset = await prepareTinyDataset(root, work)));
after(() => children.forEach((c) => c.exitCode === null && c.kill('SIGKILL')));

function unary<Req, Res>(client: CoordinatorServiceClient, method: string, req: Req): Promise<Res> {
  const m = (client as unknown as Record<string, Function>)[method];
  return new Promise((resolve, reject) =>
    m.call(client, req, tokenMetadata(TOKEN), (e: grpc.ServiceError | null, r: Res) => (e ? reject(e) : resolve(r))),
  );
}

test('keep_last 1: a worker lost while rank 0 writes its checkpoint leaves the previous one to restore', async () => {
  const out = path.join(work, 'keep-last');
  const train = TrainConfigSchema.parse({
    data: dataset,
    out,
    model: TINY_MODEL,
    training: { batch_size: 4, grad_accum: 2, max_steps: 12, eval_every: 100, log_every: 1 },
    optimizer: { lr: 0.01, warmup_steps: 2 },
    checkpoint: { every: 4, keep_last: 1 },
  });
  const dist = DistributedConfigSchema.parse({ token: TOKEN, min_workers: 1, max_workers: 2, max_restarts: 3 });
  const logs: Array<Record<string, unknown>> = [];
  const { coordinator, summary } = await createCoordinator(train, dist, {
    resume: false,
    log: (_level, msg, fields) => logs.push({ msg, ...fields }),
  });
  await coordinator.start();

  // Rank 0: a real worker process, which writes the checkpoints.
  const worker = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'cli/ringlet.ts'), 'worker', '--coordinator', coordinator.address, '--json'],
    { cwd: root, env: { ...process.env, RINGLET_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(worker);
  const workerLog: string[] = [];
  readline.createInterface({ input: worker.stderr! }).on('line', (l) => workerLog.push(l));
  while (!logs.some((l) => l.msg === 'worker joined')) await new Promise((r) => setTimeout(r, 50));

  // Rank 1: the scripted peer.
  const client = new CoordinatorServiceClient(coordinator.address, grpc.credentials.createInsecure());
  const ring = await RingThread.start({ jobId: dist.job_id, token: TOKEN, maxChunkBytes: 16 << 20, maxQueuedBytes: 32 << 20 });
  const peer = await unary<object, JoinResponse>(client, 'join', {
    jobId: dist.job_id,
    collectiveAddress: ring.address,
    workerName: 'scripted',
    host: '',
  });
  const watch = client.watch({ jobId: dist.job_id, workerId: peer.workerId }, tokenMetadata(TOKEN));
  watch.on('error', () => {});
  const a = await new Promise<Assignment>((resolve) =>
    watch.on('data', (m: WatchResponse) => m.assignment && resolve(m.assignment)),
  );
  assert.deepEqual([a.rank, a.worldSize], [1, 2]);
  ring.form({
    jobId: dist.job_id,
    token: TOKEN,
    epoch: a.ringEpoch,
    rank: 1,
    worldSize: 2,
    next: a.ring[0],
    fromRank: 0,
    bucketBytes: dist.bucket_bytes,
    chunkBytes: dist.chunk_bytes,
    fp16: false,
    timeoutMs: 30_000,
  });
  const tokens = (await openSplit(dataset, 'train')).tokens.length;
  const plan = { firstStep: 0, firstPosition: 0, globalBatch: 8, windowsPerEpoch: Math.floor((tokens - 1) / TINY_MODEL.context) };
  const tokenizer = await Tokenizer.load(path.join(dataset, (await readManifest(dataset)).tokenizer.file));
  const params = parameterCount(resolveModelConfig(train, tokenizer.vocabSize)).total;
  const zeros = new Float32Array(new SharedArrayBuffer(params * 4));
  const allFinal = new Int32Array(new SharedArrayBuffer(4)); // 0: the whole buffer is final
  for (let step = 1; step <= 8; step++) {
    zeros.fill(0);
    await ring.allReduce(zeros, step, allFinal); // adds nothing: rank 0's gradients, as rank 1 sums them
    await unary(client, 'reportStep', {
      jobId: dist.job_id,
      workerId: peer.workerId,
      ringEpoch: a.ringEpoch,
      rank: 1,
      step,
      loss: 0,
      gradNorm: 1,
      lr: 0,
      computeMs: 1,
      allreduceMs: 1,
      allreduceBytes: zeros.byteLength,
      windows: stepWindows(plan, step, 2, 1),
      hostEnergyJ: 0,
      hostEnergySource: '',
    });
    if (step === 4)
      await unary(
        client,
        'checkpointBarrier',
        CheckpointBarrierRequest.fromPartial({
          jobId: dist.job_id,
          workerId: peer.workerId,
          ringEpoch: a.ringEpoch,
          rank: 1,
          step,
          stateSha256: 'scripted',
        }),
      );
  }
  // Step 8's barrier: rank 0 writes its checkpoint and waits there for this peer, which dies instead.
  while (!(await listCheckpoints(out)).some((c) => c.step === 8)) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 300)); // time for rank 0 to reach the barrier, and to prune if it would
  watch.cancel();
  await ring.stop();
  client.close();

  const s = await summary().catch((e: Error) => assert.fail(`${e.message}\n${workerLog.slice(-15).join('\n')}`));
  await coordinator.close();
  const reformed = logs.filter((l) => l.msg === 'ring formed').at(-1)!;
  assert.equal(reformed.step, 4, 'the survivor restored the last agreed checkpoint, not the one still at its barrier');
  assert.equal(s.step, 12);
  assert.equal(s.restarts, 1);
  assert.deepEqual([s.samples_skipped, s.samples_repeated], [0, 0]);
  await new Promise((resolve) => (worker.exitCode !== null ? resolve(null) : worker.on('exit', resolve)));
  assert.equal(worker.exitCode, 0);
  // Rank 0 prunes once the final barrier agrees, before it exits.
  assert.deepEqual(
    (await listCheckpoints(out)).map((c) => c.step),
    [12],
    'keep_last 1 still holds once the barrier agrees',
  );
});
