// The training run's configuration: one schema in sections, validated once where it enters (a JSON file,
// then flags on top). Errors name the field's path and the allowed range.
import { z } from 'zod';
import { loadConfig } from '../config/layers.js';
import { ModelConfigFields } from '../lm/model-config.js';
import { ObservabilityConfigSchema } from '../observability/config.js';

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const TrainConfigSchema = z
  .object({
    data: z.string().min(1), // dataset folder written by `ringlet data prepare`
    out: z.string().min(1), // run folder: checkpoints, metrics.jsonl
    backend: z.enum(['wasm', 'cpu', 'cuda', 'tensorflow', 'tensorflow-gpu', 'auto']).default('wasm'),
    // The cuda backend's matrix products: TF32 or bf16 tensor cores with fp32 accumulation, or full fp32.
    // Tensors stay float32 either way; the CPU backends always compute fp32.
    precision: z.enum(['tf32', 'bf16', 'fp32']).default('tf32'),
    model: z
      .object({ preset: z.string().default('micro') })
      .extend(ModelConfigFields.omit({ vocab: true }).partial().shape) // overrides of the preset
      .strict()
      .prefault({}),
    optimizer: z
      .object({
        lr: z.number().positive().max(1).default(2e-3),
        min_lr: z.number().min(0).max(1).optional(), // default lr/10
        warmup_steps: int(0, 1e7).default(50),
        weight_decay: z.number().min(0).max(1).default(0.1),
        beta1: z.number().min(0).lt(1).default(0.9),
        beta2: z.number().min(0).lt(1).default(0.95),
        eps: z.number().positive().max(1).default(1e-8),
        grad_clip: z.number().min(0).max(1e6).default(1), // global-norm clip; 0 turns it off
      })
      .strict()
      .prefault({}),
    training: z
      .object({
        batch_size: int(1, 4096).default(16), // windows per micro-batch
        grad_accum: int(1, 4096).default(1), // micro-batches per optimizer step
        max_steps: int(1, 1e9).optional(), // the schedule's horizon; without it, estimated from time_limit
        time_limit: z.number().positive().max(1e7).optional(), // seconds of training in this invocation
        until_step: int(1, 1e9).optional(), // stop this invocation at this step; the schedule still runs to max_steps
        eval_every: int(1, 1e9).default(100),
        eval_windows: int(1, 1e6).default(64),
        log_every: int(1, 1e9).default(10),
        seed: int(0, 2 ** 31 - 1).default(1337),
        // Steps whose reduced gradient is not finite are skipped on every rank; this many in a row end the job.
        max_nonfinite_steps: int(1, 1e6).default(5),
      })
      .strict()
      .prefault({}),
    checkpoint: z
      .object({
        every: int(1, 1e9).default(200), // steps between checkpoints
        keep_last: int(1, 1000).default(3),
      })
      .strict()
      .prefault({}),
    observability: ObservabilityConfigSchema.prefault({}), // metrics, MFU peak, power and emissions
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.training.max_steps === undefined && c.training.time_limit === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['training', 'max_steps'],
        message: 'give max_steps (--max-steps) or time_limit (--time-limit)',
      });
    if (c.optimizer.min_lr !== undefined && c.optimizer.min_lr > c.optimizer.lr)
      ctx.addIssue({ code: 'custom', path: ['optimizer', 'min_lr'], message: `must not exceed lr (${c.optimizer.lr})` });
  });
export type TrainConfig = z.infer<typeof TrainConfigSchema>;

/** Flags that set a config field, by the field's path. */
export const TRAIN_FLAGS: Record<string, string[]> = {
  data: ['data'],
  out: ['out'],
  backend: ['backend'],
  precision: ['precision'],
  preset: ['model', 'preset'],
  lr: ['optimizer', 'lr'],
  warmupSteps: ['optimizer', 'warmup_steps'],
  batchSize: ['training', 'batch_size'],
  gradAccum: ['training', 'grad_accum'],
  maxSteps: ['training', 'max_steps'],
  timeLimit: ['training', 'time_limit'],
  untilStep: ['training', 'until_step'],
  evalEvery: ['training', 'eval_every'],
  logEvery: ['training', 'log_every'],
  seed: ['training', 'seed'],
  checkpointEvery: ['checkpoint', 'every'],
  keepLast: ['checkpoint', 'keep_last'],
  metricsPort: ['observability', 'metrics_port'],
  metricsHost: ['observability', 'metrics_host'],
};

export { describeIssues } from '../config/layers.js';

/** Reads an optional JSON config file, lays flag values over it, and validates the result. */
export function loadTrainConfig(file: string | undefined, flags: Record<string, unknown>): TrainConfig {
  const fields = Object.entries(TRAIN_FLAGS).map(([flag, path]) => ({ path, flag }));
  return loadConfig(TrainConfigSchema, { name: file ? `config (${file} and flags)` : 'config', file, flags, fields });
}
