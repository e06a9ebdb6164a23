// One assignment's training, from its restored state to the end of the job or until its ring epoch is
// over: each step the rank's slice of the global batch (train/shard.ts), its gradients into the shared
// flat buffer while the ring all-reduce runs beside the backward pass, the AdamW update, a step report
// whose reply is awaited only when needed, and at checkpoint steps the barrier (worker/rank-checkpoint.ts).
import type { RingThread } from '../collective/ring-thread.js';
import type { Assignment, ReportStepResponse } from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { learningRate } from '../train/schedule.js';
import { chunkBatch } from '../train/batches.js';
import { FlatGradients, applyGradients } from '../train/step.js';
import { cursorPosition, shardAssignment, sliceBatch, windowRanges } from '../train/shard.js';
import { withSpan } from '../observability/tracing.js';
import type { JsonLog } from '../coordinator/log.js';
import type { CoordinatorLink } from './coordinator-link.js';
import type { HostEnergy } from './host-energy.js';
import type { Job, TrainingState } from './job.js';
import { checkpointAtBarrier, evaluateOnRank, type RunEnergy } from './rank-checkpoint.js';

/** The ring epoch this assignment trains in is over (aborted, or a newer one was announced). */
export class Aborted extends Error {}

export interface AssignmentRun {
  jobId: string;
  workerId: string;
  job: Job;
  state: TrainingState;
  assignment: Assignment;
  ring: RingThread; // formed for this assignment's ring epoch
  link: CoordinatorLink;
  hostEnergy: HostEnergy;
  runEnergy: RunEnergy; // the coordinator's latest figures, carried into checkpoints
  superseded: () => boolean; // a newer ring epoch has been announced
  log: JsonLog;
}

/** Trains to the end of the job (true) or until the ring epoch is over (throws Aborted). */
export async function trainAssignment(r: AssignmentRun): Promise<boolean> {
  const { job, state: s, assignment: a, ring } = r;
  const { train: cfg, model } = job;
  const t = cfg.training;
  const o = cfg.optimizer;
  const globalBatch = t.batch_size * t.grad_accum;
  const tokensPerStep = globalBatch * model.context;
  const { start, end } = shardAssignment(globalBatch, a.worldSize, a.rank);
  const flat = new FlatGradients(s.params); // every gradient in one shared buffer, which the ring sums in place
  const gradientBytes = flat.buffer.byteLength;
  let stopAfter = 0;
  let horizon: { steps: number; from: number } | null = null;
  const lastStep = () => Math.min(s.horizonSteps ?? Infinity, t.until_step ?? Infinity, stopAfter || Infinity);

  // The step report's reply (stop, schedule horizon, energy) is awaited only when it is needed: before the
  // next step's all-reduce, or before a checkpoint or evaluation. So its round trip (2-49 ms, median ~14,
  // of a ~300 ms micro step with 2 workers on 2 cores) overlaps the next step's gradients.
  // Everything the reply decides (whether step s was the last, the learning rate of step s+1) is still
  // decided after it arrives, as if it had been awaited at once.
  let pendingReport: Promise<ReportStepResponse> | null = null;
  const settleReport = async () => {
    if (!pendingReport) return;
    const reply = await pendingReport;
    pendingReport = null;
    if (reply.stopAfterStep) stopAfter = reply.stopAfterStep;
    if (reply.runEnergyJ > 0) Object.assign(r.runEnergy, { energy_j: reply.runEnergyJ, emissions_g: reply.runEmissionsG });
    if (reply.horizonSteps && !horizon) horizon = { steps: reply.horizonSteps, from: reply.horizonFromStep };
  };
  const currentHorizon = (): { steps: number; from: number } | null => horizon; // set inside settleReport()
  const isFinal = () => {
    const h = currentHorizon();
    return s.step >= lastStep() || (h !== null && s.step >= h.steps && s.step + 1 >= h.from);
  };
  const checkpoint = (final: boolean) => checkpointAtBarrier({ ...r, final });

  while (s.step < lastStep()) {
    if (ring.aborted || r.superseded()) throw new Aborted(`ring epoch ${a.ringEpoch} is over`);
    const computeStarted = performance.now();
    const { batch, cursor } = job.sampler.next(globalBatch, s.cursor);
    const mine = sliceBatch(batch, start, end);
    // The all-reduce starts now, on the ring's thread: it reduces each bucket of gradients as soon as the
    // backward pass of the last micro-batch has finished it, while the rest of the backward pass runs.
    flat.reset();
    const reduction = withSpan('allreduce', { 'ringlet.step': s.step + 1, 'ringlet.bytes': gradientBytes }, () =>
      ring.allReduce(flat.buffer, s.step + 1, flat.ready),
    );
    reduction.catch(() => {}); // a failed all-reduce surfaces where it is awaited
    // Each micro-batch's mean gradient weighs by its share of the global batch: the ring's sum is then
    // the global batch's mean gradient, whatever the number of workers.
    const microBatches = mine.batch > 0 ? chunkBatch(mine, t.batch_size) : [];
    let loss = 0;
    microBatches.forEach((mb, i) => {
      const w = mb.batch / globalBatch;
      loss += flat.add(model, mb, w, i === microBatches.length - 1) * w;
    });
    flat.markAllReady();
    const computeMs = performance.now() - computeStarted;
    await settleReport();
    // The previous step's reply may say that it was the last (a stop requested while this step computed):
    // this step's gradients are dropped, as every rank's are, since every rank reads the same reply fields,
    // and so is the all-reduce under way.
    if (isFinal()) {
      ring.abort('the job is stopping');
      break;
    }
    const h = currentHorizon();
    const horizonSteps = h && s.step + 1 >= h.from ? h.steps : s.horizonSteps;
    const lr = learningRate(s.tokensSeen, {
      lr: o.lr,
      minLr: o.min_lr ?? o.lr / 10,
      warmupTokens: o.warmup_steps * tokensPerStep,
      totalTokens: horizonSteps === null ? Infinity : horizonSteps * tokensPerStep,
    });
    // What the step waits for the all-reduce beyond its own compute (the rest overlapped the backward pass).
    const reduceStarted = performance.now();
    await reduction;
    const allreduceMs = performance.now() - reduceStarted;
    if (ring.aborted) throw new Aborted('aborted during the all-reduce');
    // A gradient that is not finite is skipped by applyGradients on every rank alike (they all hold the
    // same sum); the report's grad norm tells the coordinator, which ends the job after too many in a row.
    const grads = flat.tensors();
    const gradNorm = applyGradients(s.optimizer, grads, lr, o.grad_clip);
    for (const g of grads.values()) g.dispose();
    const position = cursorPosition(s.cursor, job.sampler.windows);
    s.step += 1;
    s.tokensSeen += tokensPerStep;
    s.cursor = cursor;
    if (horizonSteps !== s.horizonSteps && horizonSteps !== null) s.horizonSteps = horizonSteps;

    pendingReport = r.link.reportStep({
      jobId: r.jobId,
      workerId: r.workerId,
      ringEpoch: a.ringEpoch,
      rank: a.rank,
      step: s.step,
      loss,
      gradNorm,
      lr,
      computeMs,
      allreduceMs,
      allreduceBytes: a.worldSize > 1 ? gradientBytes : 0,
      windows: windowRanges(position + start, end - start, job.sampler.windows),
      ...(await r.hostEnergy.reading()),
    });
    pendingReport.catch(() => {}); // a failed report surfaces where it is awaited
    const checkpointDue = s.step % cfg.checkpoint.every === 0;
    const evalDue = a.rank === 0 && s.step % t.eval_every === 0;
    if (checkpointDue || evalDue || s.step >= lastStep()) {
      await settleReport();
      const final = isFinal();
      if (final || checkpointDue) await checkpoint(final);
      else evaluateOnRank(job, s, r.log);
      if (final) return true;
    }
    await new Promise((resolve) => setImmediate(resolve)); // let watch events and heartbeats through
  }
  await settleReport();
  await checkpoint(true);
  return true;
}
