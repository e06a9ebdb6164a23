// A checkpoint of a ring: every rank hashes its weights for the coordinator to compare; rank 0 also
// evaluates and writes the checkpoint, and prunes old ones only once the barrier has agreed on the new
// one (until then the previous checkpoint is the job's restore point). A checkpoint rank 0 cannot write
// is skipped at the barrier, and the ring trains on.
import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import { pruneCheckpoints, writeCheckpoint } from '../lm/checkpoint.js';
import { evaluate } from '../train/evaluate.js';
import { routingRecord } from '../lm/moe.js';
import type { JsonLog } from '../coordinator/log.js';
import type { Assignment } from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import type { CoordinatorLink } from './coordinator-link.js';
import type { HostEnergy } from './host-energy.js';
import type { Job, TrainingState } from './job.js';

const FINAL_WRITE_ATTEMPTS = 60;
const FINAL_WRITE_RETRY_MS = 1000;

/** The run's energy and emissions as the coordinator's meters last reported them. */
export type RunEnergy = { energy_j?: number; emissions_g?: number };

export function evaluateOnRank(job: Job, s: TrainingState, log: JsonLog): { val_loss: number; val_bpb: number } {
  const e = evaluate(s.params, job.model, job.validation, job.train.training.batch_size, job.byteLengths);
  const routing = e.routing ? { routing: routingRecord(e.routing) } : {};
  log('info', 'eval', { step: s.step, val_loss: e.loss, val_bpb: e.bpb, unigram_loss: job.unigram, ...routing });
  return { val_loss: e.loss, val_bpb: e.bpb };
}

export async function checkpointAtBarrier(c: {
  jobId: string;
  workerId: string;
  job: Job;
  state: TrainingState;
  assignment: Assignment;
  link: CoordinatorLink;
  hostEnergy: HostEnergy;
  runEnergy: RunEnergy;
  log: JsonLog;
  final: boolean;
}): Promise<string> {
  const { job, state: s, assignment: a } = c;
  const hash = createHash('sha256');
  for (const v of s.params.values()) hash.update(new Uint8Array((v.dataSync() as Float32Array).buffer));
  let checkpoint = '';
  let writeError = '';
  let metrics: Record<string, number> = {};
  if (a.rank === 0) {
    // Energy and emissions as the coordinator's meter saw them at this step's report (as train/run.ts
    // stores them), so a resumed run carries them on.
    metrics = { ...evaluateOnRank(job, s, c.log), unigram_loss: job.unigram, ...c.runEnergy };
    const buffers = (vars: Map<string, tf.Variable>) =>
      new Map([...vars].map(([name, v]) => [name, { shape: v.shape, data: v.dataSync() as Float32Array }]));
    const write = () =>
      writeCheckpoint(
        job.train.out,
        {
          step: s.step,
          weights: buffers(s.params),
          optimizer: buffers(s.optimizer.moments()),
          meta: {
            config: { model: job.model, training: job.train },
            tokens_seen: s.tokensSeen,
            data_cursor: { epoch: s.cursor.epoch, index: s.cursor.index },
            rng_state: { data_order_seed: job.train.training.seed },
            schedule_horizon_steps: s.horizonSteps,
            tokenizer_sha256: job.tokenizerSha256,
            backend: job.backend,
            metrics,
          },
          tokenizerJson: job.tokenizerJson,
        },
        null, // pruned below, once the barrier agrees
      );
    // A checkpoint that cannot be written (a full disk: writeCheckpoint leaves nothing half-written) is
    // skipped, and the ring trains on to the next one. The job's last one cannot be skipped: it is tried
    // again while the other ranks wait at the barrier, since re-forming the ring would not free any space.
    for (let attempt = 1; ; attempt++) {
      try {
        checkpoint = await write();
        break;
      } catch (err) {
        const error = (err as Error).message;
        if (c.final && attempt < FINAL_WRITE_ATTEMPTS) {
          c.log('warn', 'cannot write the final checkpoint; trying again', { step: s.step, attempt, error });
          await new Promise((r) => setTimeout(r, FINAL_WRITE_RETRY_MS));
          continue;
        }
        if (c.final) throw err;
        writeError = error;
        c.log('warn', 'cannot write the checkpoint; the ring goes on without it', { step: s.step, error });
        break;
      }
    }
  }
  await c.link.checkpointBarrier({
    jobId: c.jobId,
    workerId: c.workerId,
    ringEpoch: a.ringEpoch,
    rank: a.rank,
    step: s.step,
    checkpoint,
    metrics,
    final: c.final,
    stateSha256: hash.digest('hex'),
    ...(await c.hostEnergy.reading(c.final)),
    writeError,
  });
  if (a.rank === 0 && checkpoint) await pruneCheckpoints(job.train.out, job.train.checkpoint.keep_last, checkpoint);
  return checkpoint;
}
