// Settings of a distributed job beyond the training config: where the coordinator listens, the ring's
// size limits and timeouts, security. One zod schema, filled from a JSON file, then RINGLET_* environment
// variables, then flags (the last wins), validated once where it enters.
import { z } from 'zod';
import { tlsFromFlags } from '../collective/auth.js';
import { DEFAULT_BUCKET_BYTES, DEFAULT_CHUNK_BYTES } from '../collective/ring-allreduce.js';
import { layered, parseConfig } from '../config/layers.js';

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const DistributedConfigSchema = z
  .object({
    job_id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ".", "_" or "-", at most 64')
      .default('ringlet'),
    token: z.string().min(8, 'the join token must have at least 8 characters'),
    host: z.string().min(1).default('127.0.0.1'), // coordinator's gRPC address
    port: int(0, 65535).default(0), // 0: any free port
    http_port: int(0, 65535).default(0), // health and readiness endpoints; 0: any free port
    min_workers: int(1, 1024).default(1),
    max_workers: int(1, 1024).default(64),
    rendezvous_timeout_s: z.number().positive().max(86400).default(60), // wait for max_workers this long, then go with >= min
    replace_wait_s: z.number().min(0).max(86400).default(0), // after a loss, wait this long for a replacement
    heartbeat_interval_ms: int(50, 600_000).default(1000),
    heartbeat_timeout_ms: int(100, 3_600_000).default(60_000), // a worker silent this long is dropped
    max_restarts: int(0, 10_000).default(20), // ring re-formations before the job fails
    bucket_bytes: int(4096, 1 << 30).default(DEFAULT_BUCKET_BYTES), // small: each bucket goes once the backward pass finishes it
    chunk_bytes: int(1024, 16 << 20).default(DEFAULT_CHUNK_BYTES),
    fp16: z.boolean().default(false),
    ring_timeout_ms: int(100, 3_600_000).default(300_000), // longest wait for one chunk
    straggler_factor: z.number().min(1).max(100).default(1.5), // warn when a rank's compute time exceeds the median by this
    tls: z
      .object({ ca: z.string().min(1), cert: z.string().min(1), key: z.string().min(1) })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.min_workers > c.max_workers)
      ctx.addIssue({ code: 'custom', path: ['min_workers'], message: `must not exceed max_workers (${c.max_workers})` });
  });
export type DistributedConfig = z.infer<typeof DistributedConfigSchema>;

/** Flag names (commander's camelCase) of distributed settings. */
export const DISTRIBUTED_FLAGS: Record<string, keyof DistributedConfig> = {
  jobId: 'job_id',
  token: 'token',
  host: 'host',
  port: 'port',
  httpPort: 'http_port',
  minWorkers: 'min_workers',
  maxWorkers: 'max_workers',
  rendezvousTimeout: 'rendezvous_timeout_s',
  replaceWait: 'replace_wait_s',
  heartbeatInterval: 'heartbeat_interval_ms',
  heartbeatTimeout: 'heartbeat_timeout_ms',
  bucketBytes: 'bucket_bytes',
  chunkBytes: 'chunk_bytes',
  fp16: 'fp16',
};

/** File, then environment (RINGLET_JOB_ID, RINGLET_TOKEN, RINGLET_MIN_WORKERS, ...), then flags. */
export function loadDistributedConfig(
  file: string | undefined,
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): DistributedConfig {
  const flagOf = Object.fromEntries(Object.entries(DISTRIBUTED_FLAGS).map(([flag, key]) => [key, flag]));
  const fields = Object.keys(DistributedConfigSchema.shape)
    .filter((key) => key !== 'tls') // three files, from the --tls-* flags below
    .map((key) => ({ path: [key], env: `RINGLET_${key.toUpperCase()}`, flag: flagOf[key] }));
  const raw = layered({
    name: 'distributed config',
    file,
    env,
    flags,
    fields,
    fromEnv: ([key], text) =>
      key === 'fp16' ? text === '1' || text === 'true' : /^[0-9.]+$/.test(text) && key !== 'token' ? Number(text) : text,
  });
  const tls = tlsFromFlags(flags);
  if (tls) raw.tls = tls;
  return parseConfig(DistributedConfigSchema, raw, 'distributed config');
}
