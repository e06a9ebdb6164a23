// `ringlet serve`'s configuration: one zod schema, filled from a JSON file, then RINGLET_SERVE_* variables,
// then flags (config/layers.ts). The evaluator's token comes from RINGLET_EVALUATOR_TOKEN, as for the
// evaluator itself, so one secret guards writes on both.
import { z } from 'zod';
import { loadConfig } from '../../config/layers.js';

const num = (schema: z.ZodNumber) => z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), schema);

export const ServeConfigSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: num(z.int().min(0).max(65535)).default(8080),
  /** The folder of runs: every folder under it (3 levels deep) with metrics.jsonl or checkpoints/. */
  runs: z.string().min(1).default('runs'),
  /** The evaluator's SQLite store; default <runs>/evaluator.sqlite. */
  db: z.string().min(1).optional(),
  /** Bearer token that evaluation submissions need when the server listens beyond loopback. */
  token: z.string().min(16, 'the token must be at least 16 characters').optional(),
  /** Largest request body accepted, bytes. */
  max_body_bytes: num(
    z
      .int()
      .min(1024)
      .max(64 << 20),
  ).default(1 << 20),
  /** How often live views look at the run folders, milliseconds. */
  poll_ms: num(z.int().min(50).max(60_000)).default(500),
  /** Checkpoints kept loaded for generation. */
  max_loaded_models: num(z.int().min(1).max(64)).default(4),
});
export type ServeConfig = z.output<typeof ServeConfigSchema>;

export function loadServeConfig(file: string | undefined, env: NodeJS.ProcessEnv, flags: Record<string, unknown>): ServeConfig {
  const fields = Object.keys(ServeConfigSchema.shape).map((f) => ({
    path: [f],
    env: f === 'token' ? 'RINGLET_EVALUATOR_TOKEN' : `RINGLET_SERVE_${f.toUpperCase()}`,
    flag: f,
  }));
  return loadConfig(ServeConfigSchema, { name: 'serve config', file, env, flags, fields });
}
