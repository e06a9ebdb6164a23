// Who may talk to a Ringlet service: a shared join token in the `ringlet-token` metadata of every call
// (coordinator and ring alike), compared in constant time, and optionally mutual TLS on the channel.
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { isLoopbackHost, parseHostPort } from './address.js';

export const TOKEN_HEADER = 'ringlet-token';
// On ring streams: the sending rank's address as the coordinator announced it in the ring, which the
// receiver checks against the ring it was told of (collective/endpoint.ts).
export const SENDER_HEADER = 'ringlet-sender';

export interface TlsFiles {
  ca: string; // PEM of the CA that signed every service's certificate
  cert: string; // this process's certificate (PEM)
  key: string; // its private key (PEM)
}

/** The --tls-ca/--tls-cert/--tls-key flags (commander's tlsCa, tlsCert, tlsKey) as TlsFiles: all three, or none. */
export function tlsFromFlags(flags: Record<string, unknown>): TlsFiles | undefined {
  const file = (key: string) => (typeof flags[key] === 'string' && flags[key] !== '' ? (flags[key] as string) : undefined);
  const [ca, cert, key] = [file('tlsCa'), file('tlsCert'), file('tlsKey')];
  const missing = Object.entries({ '--tls-ca': ca, '--tls-cert': cert, '--tls-key': key })
    .filter(([, v]) => v === undefined)
    .map(([flag]) => flag);
  if (missing.length === 3) return undefined;
  if (missing.length > 0)
    throw new Error(`mutual TLS needs --tls-ca, --tls-cert and --tls-key together (missing ${missing.join(', ')})`);
  return { ca: ca!, cert: cert!, key: key! };
}

export function tokenMetadata(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(TOKEN_HEADER, token);
  return md;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** True when the call's metadata carries `token`. */
export function hasToken(metadata: grpc.Metadata, token: string): boolean {
  const given = metadata.get(TOKEN_HEADER)[0];
  return typeof given === 'string' && tokenMatches(given, token);
}

/** `given` equals `token`, compared in constant time. */
export function tokenMatches(given: string, token: string): boolean {
  return timingSafeEqual(digest(given), digest(token));
}

export function serverCredentials(tls: TlsFiles | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    fs.readFileSync(tls.ca),
    [{ cert_chain: fs.readFileSync(tls.cert), private_key: fs.readFileSync(tls.key) }],
    true, // clients must present a certificate signed by the CA: mutual TLS
  );
}

export function channelCredentials(tls: TlsFiles | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(fs.readFileSync(tls.ca), fs.readFileSync(tls.key), fs.readFileSync(tls.cert));
}

/**
 * The warning to log when join tokens cross plaintext to or from `address` (host:port): null with TLS, or
 * when the address is loopback only. `channel` says what the address is, e.g. "the connection to the
 * coordinator at".
 */
export async function plaintextTokenWarning(channel: string, address: string, tls: TlsFiles | undefined): Promise<string | null> {
  if (tls) return null;
  if (await isLoopbackHost(parseHostPort(address)?.host ?? address)) return null;
  return (
    `join token in plaintext on ${channel} ${address}, which is not loopback: anyone on the network path can read ` +
    `the token and join the job, and nothing proves who is at the other end; give --tls-ca, --tls-cert and --tls-key ` +
    `(mutual TLS), or keep to 127.0.0.1`
  );
}

// A status message travels in an HTTP/2 header (grpc-message), and a client drops a response whose headers
// pass its limit (64 KiB in Node) and then waits for its deadline: a message quoting a 100 KB job id made the
// caller hang. Messages are cut to this many characters.
export const MAX_STATUS_DETAILS = 1000;

/**
 * `details` as a status message can carry them: well-formed (grpc-js percent-encodes the message with
 * encodeURI, which throws on a lone surrogate; an error quoting one, spelt in a JSON request, took the
 * evaluator down), and cut to MAX_STATUS_DETAILS characters, saying so.
 */
export function boundedDetails(details: string): string {
  const wellFormed = Buffer.from(details, 'utf8').toString('utf8'); // a lone surrogate becomes U+FFFD
  return wellFormed.length <= MAX_STATUS_DETAILS
    ? wellFormed
    : `${wellFormed.slice(0, MAX_STATUS_DETAILS)}... (${wellFormed.length} characters)`;
}

/** A gRPC error with a status code, as a handler passes it to its callback. */
export function statusError(code: grpc.status, details: string): grpc.ServiceError {
  const bounded = boundedDetails(details);
  return Object.assign(new Error(bounded), { code, details: bounded, metadata: new grpc.Metadata() });
}
