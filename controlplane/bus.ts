// The control-plane bus: publish/subscribe on subjects, plus a key-value store for run state. On a
// cluster it is NATS (JetStream for events, a KV bucket for state); the embedded default is the
// in-process implementation below, with the same interface, for one process without a server. Either
// signs what it publishes and checks what it delivers when given keys (controlplane/signing.ts).
import type { z } from 'zod';
import { signatureFor, signatureProblem, type BusKeys } from './signing.js';

export interface Subscription {
  unsubscribe(): Promise<void>;
}

export interface Bus {
  /** Publishes `event` on `subject` after validating it with `schema`. */
  publish<S extends z.ZodType>(subject: string, schema: S, event: z.infer<S>): Promise<void>;
  /**
   * Calls `handler` with each event on `subject` that passes `schema` (and, on a bus that trusts tokens, is
   * signed with one); events that fail are reported to onInvalid with the reason.
   */
  subscribe<S extends z.ZodType>(
    subject: string,
    schema: S,
    handler: (event: z.infer<S>) => Promise<void> | void,
    onInvalid?: (error: Error) => void,
  ): Promise<Subscription>;
  kvPut(bucket: string, key: string, value: unknown): Promise<void>;
  kvGet(bucket: string, key: string): Promise<unknown | undefined>;
  close(): Promise<void>;
}

type Delivery = (data: unknown, signature: string | undefined) => Promise<void>;

/** What every bus does with a received event: check its signature under `keys`, validate it, hand it on or say why not. */
export function receiver<S extends z.ZodType>(
  keys: BusKeys,
  subject: string,
  schema: S,
  handler: (event: z.infer<S>) => Promise<void> | void,
  onInvalid: (error: Error) => void,
): Delivery {
  return async (data, signature) => {
    const problem = signatureProblem(keys, subject, data, signature);
    if (problem !== null) return onInvalid(new Error(`refused an event on ${subject}: ${problem}`));
    const parsed = schema.safeParse(data);
    if (parsed.success) await handler(parsed.data);
    else onInvalid(new Error(`invalid event on ${subject}: ${parsed.error.message}`));
  };
}

export class InProcessBus implements Bus {
  private readonly handlers = new Map<string, Set<Delivery>>();
  private readonly kv = new Map<string, unknown>();

  constructor(private readonly keys: BusKeys = {}) {}

  async publish<S extends z.ZodType>(subject: string, schema: S, event: z.infer<S>): Promise<void> {
    const data = schema.parse(event);
    const signature = signatureFor(this.keys, subject, data);
    // Deliver a structured copy, as a wire would, so no subscriber shares the publisher's object.
    await Promise.all([...(this.handlers.get(subject) ?? [])].map((h) => h(structuredClone(data), signature)));
  }

  async subscribe<S extends z.ZodType>(
    subject: string,
    schema: S,
    handler: (event: z.infer<S>) => Promise<void> | void,
    onInvalid: (error: Error) => void = () => {},
  ): Promise<Subscription> {
    const wrapped = receiver(this.keys, subject, schema, handler, onInvalid);
    if (!this.handlers.has(subject)) this.handlers.set(subject, new Set());
    this.handlers.get(subject)!.add(wrapped);
    return { unsubscribe: async () => void this.handlers.get(subject)?.delete(wrapped) };
  }

  async kvPut(bucket: string, key: string, value: unknown): Promise<void> {
    this.kv.set(`${bucket}\0${key}`, structuredClone(value));
  }

  async kvGet(bucket: string, key: string): Promise<unknown | undefined> {
    const value = this.kv.get(`${bucket}\0${key}`);
    return value === undefined ? undefined : structuredClone(value);
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
