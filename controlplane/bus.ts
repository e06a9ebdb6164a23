// The control-plane bus: publish/subscribe on subjects, plus a key-value store for run state. On a
// cluster it is NATS (JetStream for events, a KV bucket for state); the embedded default is the
// in-process implementation below, with the same interface, for one process without a server.
import type { z } from 'zod';

export interface Subscription {
  unsubscribe(): Promise<void>;
}

export interface Bus {
  /** Publishes `event` on `subject` after validating it with `schema`. */
  publish<S extends z.ZodType>(subject: string, schema: S, event: z.infer<S>): Promise<void>;
  /** Calls `handler` with each event on `subject` that passes `schema`; events that fail it are reported to onInvalid. */
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

export class InProcessBus implements Bus {
  private readonly handlers = new Map<string, Set<(data: unknown) => Promise<void>>>();
  private readonly kv = new Map<string, unknown>();

  async publish<S extends z.ZodType>(subject: string, schema: S, event: z.infer<S>): Promise<void> {
    const data = schema.parse(event);
    // Deliver a structured copy, as a wire would, so no subscriber shares the publisher's object.
    await Promise.all([...(this.handlers.get(subject) ?? [])].map((h) => h(structuredClone(data))));
  }

  async subscribe<S extends z.ZodType>(
    subject: string,
    schema: S,
    handler: (event: z.infer<S>) => Promise<void> | void,
    onInvalid: (error: Error) => void = () => {},
  ): Promise<Subscription> {
    const wrapped = async (data: unknown) => {
      const parsed = schema.safeParse(data);
      if (parsed.success) await handler(parsed.data);
      else onInvalid(new Error(`invalid event on ${subject}: ${parsed.error.message}`));
    };
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
