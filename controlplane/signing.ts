// Signed control-plane events. Anyone who can reach a NATS server can publish on it, so a bus that holds a
// job's join token signs each event with HMAC-SHA256 keyed by that token, and a bus that is told which
// tokens to trust refuses events that no trusted token signed. The MAC covers the subject and a canonical
// JSON encoding of the event (object keys sorted at every level): the same event serialised another way
// verifies the same, and a change to any field, or a move to another subject, does not. There is no
// timestamp or nonce: a replayed event re-announces a checkpoint its job really published.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Who signs and whom a subscriber trusts; given when a bus is constructed. */
export interface BusKeys {
  /** The join token this process signs every event it publishes with (the coordinator's). */
  sign?: string;
  /** Join tokens whose signatures a subscriber accepts. When given, unsigned or wrongly signed events are refused. */
  trust?: readonly string[];
}

/** Where a signature travels on NATS: a message header, so the event's JSON is the same for every reader. */
export const SIGNATURE_HEADER = 'Ringlet-Signature';

// Domain separation: a MAC made with the join token for anything else can never pass for an event's.
const DOMAIN = 'ringlet-event-v1';

/** JSON with the keys of every object sorted, so equal values have one encoding. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function mac(token: string, subject: string, event: unknown): Buffer {
  return createHmac('sha256', token)
    .update(`${DOMAIN}\n${subject}\n${canonicalJson(event)}`)
    .digest();
}

/** The hex signature of `event` on `subject` when `keys` hold a signing token, else undefined. */
export function signatureFor(keys: BusKeys, subject: string, event: unknown): string | undefined {
  return keys.sign === undefined ? undefined : mac(keys.sign, subject, event).toString('hex');
}

/** Why a received event must be refused under `keys`, or null when it may be delivered. */
export function signatureProblem(keys: BusKeys, subject: string, event: unknown, signature: string | undefined): string | null {
  if (keys.trust === undefined) return null;
  if (!signature) return 'it is not signed, and this subscriber accepts only events signed with a trusted job token';
  const given = Buffer.from(signature, 'hex');
  const signed = keys.trust.some((token) => {
    const expected = mac(token, subject, event);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  return signed ? null : 'its signature matches none of the trusted job tokens';
}
