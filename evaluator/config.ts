// The evaluator service's configuration: one zod schema, filled from a JSON file, then environment
// variables (RINGLET_EVALUATOR_<FIELD>), then command-line flags, each overriding the one before.
import { z } from 'zod';
import { loadConfig } from '../config/layers.js';
import { commaSeparated, readableFile } from '../controlplane/nats-config.js';
import type { BusKeys } from '../controlplane/signing.js';
import { DEFAULT_BLIMP_DIR, DEFAULT_DALAJ_FILE } from './defaults.js';

const list = commaSeparated(z.array(z.string().min(1)));
const num = (schema: z.ZodNumber) => z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), schema);

export const ServiceConfigSchema = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: num(z.int().min(0).max(65535)).default(8470),
    /** Port of the gRPC face (proto/ringlet/evaluator/v1); off unless given. 0 picks a free one. */
    grpc_port: num(z.int().min(0).max(65535)).optional(),
    /** The gRPC face over TLS: this service's certificate and key (PEM). Without them it is plaintext. */
    grpc_tls_cert: readableFile.optional(),
    grpc_tls_key: readableFile.optional(),
    /** With TLS, also require client certificates signed by this CA (mutual TLS). */
    grpc_tls_client_ca: readableFile.optional(),
    /** Bearer token every write (POST) must carry. At least 16 characters; there is no unauthenticated mode. */
    token: z.string().min(16, 'the token must be at least 16 characters'),
    /** SQLite file for results. */
    db: z.string().min(1).default('runs/evaluator.sqlite'),
    /** Folders a checkpoint reference may point into; a reference is resolved against the first. */
    checkpoint_roots: list.default(['.']),
    blimp_dir: z.string().min(1).default(DEFAULT_BLIMP_DIR),
    dalaj_file: z.string().min(1).default(DEFAULT_DALAJ_FILE),
    /** Folder of user suite files (NAME.jsonl). */
    suites_dir: z.string().min(1).optional(),
    /** Largest request body accepted, bytes. */
    max_body_bytes: num(
      z
        .int()
        .min(1024)
        .max(64 << 20),
    ).default(1 << 20),
    /**
     * Join tokens of the jobs whose checkpoint-published events are evaluated: an event must be signed with
     * one of them (controlplane/signing.ts). Required with NATS; on the in-process bus, unset trusts the process.
     */
    bus_tokens: commaSeparated(z.array(z.string().min(8, 'a join token has at least 8 characters'))).default([]),
    /** Suites and item limit for checkpoints that arrive as checkpoint-published events. */
    auto_suites: list.default(['val', 'blimp']),
    auto_limit: num(z.int().min(1)).optional(),
    /** Power drawn while evaluating, for the energy estimate (no meter is read). */
    cpu_watts: num(z.number().positive().max(100_000)).default(15),
    /** Grid carbon intensity for the emissions estimate, gCO2e per kWh. */
    grid_g_per_kwh: num(z.number().min(0).max(5000)).default(250),
    /** Checkpoint that /v1/completions and the tokenizer endpoints serve (lm-evaluation-harness). */
    serve: z.string().min(1).optional(),
    /** Seconds a SIGTERM waits for running evaluations before the process exits anyway. */
    drain_seconds: num(z.number().min(0).max(3600)).default(30),
    /**
     * Seconds a client may take to send a whole HTTP request (headers and body); a slower one, or one that
     * promises a body it never sends, is answered 408. Waiting for an evaluation's result is not limited.
     */
    request_timeout_s: num(z.number().positive().max(3600)).default(30),
  })
  .superRefine((c, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if ((c.grpc_tls_cert === undefined) !== (c.grpc_tls_key === undefined))
      issue(c.grpc_tls_cert === undefined ? 'grpc_tls_cert' : 'grpc_tls_key', 'grpc_tls_cert and grpc_tls_key go together');
    if (c.grpc_tls_cert !== undefined && c.grpc_port === undefined)
      issue('grpc_tls_cert', 'TLS is for the gRPC face, which is off: give grpc_port too');
    if (c.grpc_tls_client_ca !== undefined && c.grpc_tls_cert === undefined)
      issue('grpc_tls_client_ca', 'client certificates need TLS: give grpc_tls_cert and grpc_tls_key too');
  });
export type ServiceConfig = z.output<typeof ServiceConfigSchema>;

const ENV_PREFIX = 'RINGLET_EVALUATOR_';

/** Config from a JSON file, the environment (RINGLET_EVALUATOR_*) and flags (flags win). Errors name the field. */
export function loadServiceConfig(
  file: string | undefined,
  env: NodeJS.ProcessEnv,
  flags: Record<string, unknown>,
): ServiceConfig {
  const fields = Object.keys(ServiceConfigSchema.shape).map((f) => ({ path: [f], env: ENV_PREFIX + f.toUpperCase(), flag: f }));
  return loadConfig(ServiceConfigSchema, { name: 'evaluator config', file, env, flags, fields });
}

/**
 * Whom the evaluator's bus trusts. On NATS anyone who can reach the server can publish, so events must be
 * signed with one of bus_tokens and the evaluator refuses to start without them; on the in-process bus only
 * this process publishes, so it trusts everything unless bus_tokens are given.
 */
export function evaluatorBusKeys(config: ServiceConfig, onNats: boolean): BusKeys {
  if (config.bus_tokens.length > 0) return { trust: config.bus_tokens };
  if (onNats)
    throw new Error(
      'evaluator config is invalid: bus_tokens: on NATS the evaluator evaluates only events signed with a job token; ' +
        'set RINGLET_EVALUATOR_BUS_TOKENS (or bus_tokens in --config) to the join tokens of the jobs to evaluate',
    );
  return {};
}
