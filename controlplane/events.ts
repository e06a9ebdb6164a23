// The control plane's events: one zod schema per subject, shared by publishers (coordinator, trainer)
// and consumers (evaluator, web UI). The subject names are the contract.
import { z } from 'zod';

export const SUBJECTS = {
  /** A job changed state (pending, running, checkpointing, recovering, finished, failed). */
  jobLifecycle: 'ringlet.job.lifecycle',
  /** A checkpoint was written completely and may be read. */
  checkpointPublished: 'ringlet.checkpoint.published',
} as const;

export const JobLifecycleEvent = z.object({
  job: z.string().min(1),
  state: z.enum(['pending', 'running', 'checkpointing', 'recovering', 'finished', 'failed']),
  step: z.number().int().nonnegative(),
  workers: z.number().int().nonnegative(),
  message: z.string().optional(),
  time: z.iso.datetime(),
});
export type JobLifecycleEvent = z.infer<typeof JobLifecycleEvent>;

export const CheckpointPublishedEvent = z.object({
  job: z.string().min(1),
  run_dir: z.string().min(1),
  checkpoint: z.string().min(1), // path of the checkpoint folder
  step: z.number().int().nonnegative(),
  tokens_seen: z.number().int().nonnegative(),
  val_loss: z.number().optional(),
  time: z.iso.datetime(),
});
export type CheckpointPublishedEvent = z.infer<typeof CheckpointPublishedEvent>;
