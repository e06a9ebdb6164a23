// How `ringlet coordinator` and `ringlet evaluator` reach NATS: servers, credentials (user and password, or a
// token) and TLS (the CA that signed the server's certificate; a client certificate and key where the
// server verifies clients). One zod schema, filled from --nats-config FILE (JSON), then RINGLET_NATS_*
// variables, then flags, each overriding the one before. Secrets (password, token) have no flag: a flag
// shows in `ps` and in shell history.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { z } from 'zod';
import { layered, parseConfig } from '../config/layers.js';

/** A path that must name a readable file, checked where the config enters (here and in the evaluator's config). */
export const readableFile = z
  .string()
  .min(1)
  .refine(
    (file) => {
      try {
        fs.accessSync(file, fs.constants.R_OK);
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    },
    { error: (issue) => `cannot read the file ${String(issue.input)}` },
  );

/** `schema` (an array) that also takes a comma-separated string, as environment variables and flags give lists. */
export function commaSeparated<S extends z.ZodType>(schema: S) {
  return z.preprocess(
    (v) =>
      typeof v === 'string'
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : v,
    schema,
  );
}

/** A server as a URL: the client takes HOST:PORT as nats://HOST:PORT. */
const serverUrl = (server: string) => (server.includes('://') ? server : `nats://${server}`);

export const NatsConfigSchema = z
  .strictObject({
    /** Server URLs, comma-separated in the environment and flags. */
    servers: commaSeparated(
      z
        .array(
          z
            .string()
            .refine(
              (s) => /^(nats:\/\/)?[^\s/]+$/.test(s) && URL.canParse(serverUrl(s)),
              'expected nats://HOST:PORT or HOST:PORT',
            ),
        )
        .min(1),
    ),
    user: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    token: z.string().min(1).optional(),
    /** CA of the server's certificate. Any tls_* field makes the client require TLS. */
    tls_ca: readableFile.optional(),
    /** Client certificate and key, for a server that verifies clients (`tls { verify: true }`). */
    tls_cert: readableFile.optional(),
    tls_key: readableFile.optional(),
  })
  .superRefine((c, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if ((c.user === undefined) !== (c.password === undefined))
      issue(c.user === undefined ? 'user' : 'password', 'user and password go together');
    if (c.token !== undefined && c.user !== undefined) issue('token', 'give a token or a user and password, not both');
    if ((c.tls_cert === undefined) !== (c.tls_key === undefined))
      issue(c.tls_cert === undefined ? 'tls_cert' : 'tls_key', 'tls_cert and tls_key go together');
  });
export type NatsConfig = z.output<typeof NatsConfigSchema>;

// Each field's environment variable and commander flag; `servers` keeps the name RINGLET_NATS_URL had.
const SOURCES: Record<keyof NatsConfig, { env: string; flag?: string }> = {
  servers: { env: 'RINGLET_NATS_URL', flag: 'nats' },
  user: { env: 'RINGLET_NATS_USER', flag: 'natsUser' },
  password: { env: 'RINGLET_NATS_PASSWORD' },
  token: { env: 'RINGLET_NATS_TOKEN' },
  tls_ca: { env: 'RINGLET_NATS_TLS_CA', flag: 'natsTlsCa' },
  tls_cert: { env: 'RINGLET_NATS_TLS_CERT', flag: 'natsTlsCert' },
  tls_key: { env: 'RINGLET_NATS_TLS_KEY', flag: 'natsTlsKey' },
};

/**
 * NATS settings from flags (commander's names: nats, natsConfig, natsUser, natsTlsCa, ...) and the
 * environment, or undefined when no server is named anywhere: then the command uses the in-process bus.
 */
export function loadNatsConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): NatsConfig | undefined {
  const fields = Object.entries(SOURCES).map(([key, { env: name, flag }]) => ({ path: [key], env: name, flag }));
  const file = typeof flags.natsConfig === 'string' ? flags.natsConfig : undefined;
  const raw = layered({ name: 'NATS config', file, env, flags, fields });
  if (raw.servers === undefined) {
    const given = Object.keys(raw);
    if (given.length === 0) return undefined;
    throw new Error(`NATS settings (${given.join(', ')}) are given but no server: set --nats or RINGLET_NATS_URL`);
  }
  return parseConfig(NatsConfigSchema, raw, 'NATS config');
}

/** The NATS client's options for `config`. */
export function connectionOptions(config: NatsConfig): NodeConnectionOptions {
  const wantsTls = config.tls_ca !== undefined || config.tls_cert !== undefined;
  return {
    servers: config.servers,
    name: 'ringlet',
    user: config.user,
    pass: config.password,
    token: config.token,
    // With tls_* the client requires TLS (no silent plaintext); without, it still upgrades when the server
    // requires TLS, checking the certificate against the system's CAs.
    tls: wantsTls ? requiredTls(config) : undefined,
  };
}

function requiredTls(config: NatsConfig): NodeConnectionOptions['tls'] {
  const ips = config.servers
    .map((s) => new URL(serverUrl(s)).hostname.replace(/^\[|\]$/g, ''))
    .filter((host) => net.isIP(host) !== 0);
  const options: NonNullable<NodeConnectionOptions['tls']> & Pick<tls.ConnectionOptions, 'checkServerIdentity'> = {
    caFile: config.tls_ca,
    certFile: config.tls_cert,
    keyFile: config.tls_key,
    // The client gives Node no host name for a server dialled by IP address, and Node then checks the
    // certificate against "localhost"; a certificate that names one of the configured IPs is accepted too.
    checkServerIdentity: (host, cert) => {
      const names = (h: string) => tls.checkServerIdentity(h, cert) === undefined;
      return names(host) || ips.some(names) ? undefined : tls.checkServerIdentity(host, cert);
    },
  };
  return options;
}
