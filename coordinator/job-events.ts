// What the coordinator tells the control-plane bus (controlplane/events.ts): each change of the job's
// state, with the job's state in the `ringlet-jobs` KV bucket, and each checkpoint the ranks agreed on.
// A bus that fails is logged and never stops the job.
import path from 'node:path';
import { CheckpointPublishedEvent, JobLifecycleEvent, SUBJECTS } from '../controlplane/events.js';
import type { Bus } from '../controlplane/bus.js';
import type { JsonLog } from './log.js';

export type JobState = JobLifecycleEvent['state'];

export class JobEvents {
  constructor(
    private readonly bus: Bus,
    private readonly jobId: string,
    private readonly log: JsonLog,
  ) {}

  async state(
    state: JobState,
    o: { step: number; workers: number; message?: string; ringEpoch: number; restore: { path: string; step: number } },
  ): Promise<void> {
    const event: JobLifecycleEvent = {
      job: this.jobId,
      state,
      step: o.step,
      workers: o.workers,
      ...(o.message ? { message: o.message } : {}),
      time: new Date().toISOString(),
    };
    try {
      await this.bus.publish(SUBJECTS.jobLifecycle, JobLifecycleEvent, event);
      await this.bus.kvPut('ringlet-jobs', this.jobId, { ...event, ring_epoch: o.ringEpoch, restore: o.restore });
    } catch (err) {
      this.log('warn', 'publishing the lifecycle event failed', { error: String(err) });
    }
  }

  checkpoint(o: { runDir: string; checkpoint: string; step: number; tokensSeen: number; valLoss?: number }): void {
    void this.bus
      .publish(SUBJECTS.checkpointPublished, CheckpointPublishedEvent, {
        job: this.jobId,
        run_dir: path.resolve(o.runDir),
        checkpoint: path.resolve(o.checkpoint),
        step: o.step,
        tokens_seen: o.tokensSeen,
        ...(Number.isFinite(o.valLoss) ? { val_loss: o.valLoss } : {}),
        time: new Date().toISOString(),
      })
      .catch((err) => this.log('warn', 'publishing the checkpoint event failed', { error: String(err) }));
  }
}
