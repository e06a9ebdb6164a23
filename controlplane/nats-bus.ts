// The control-plane bus on NATS: events go to a JetStream stream (RINGLET, subjects ringlet.>) so they are
// stored and can be replayed; run state lives in JetStream KV buckets. Same interface and validation as
// InProcessBus (controlplane/bus.ts); a subscriber sees the events published after it subscribed.
// Clients: @nats-io/transport-node, @nats-io/jetstream and @nats-io/kv (3.x); server: nats-server -js.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { z } from 'zod';
import type { Bus, Subscription } from './bus.js';

export const STREAM = 'RINGLET';
const MAX_EVENT_BYTES = 64 * 1024; // events are small; anything larger is refused on both sides

export class NatsBus implements Bus {
  private readonly kvs = new Map<string, Promise<KV>>();
  private readonly kvm: Kvm;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
  ) {
    this.kvm = new Kvm(nc);
  }

  /** Connects and makes sure the event stream exists. */
  static async connect(servers: string): Promise<NatsBus> {
    const nc = await connect({ servers: servers.split(','), name: 'ringlet' });
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(STREAM);
    } catch {
      await jsm.streams.add({ name: STREAM, subjects: ['ringlet.>'], max_msg_size: MAX_EVENT_BYTES });
    }
    return new NatsBus(nc, jetstream(nc));
  }

  async publish<S extends z.ZodType>(subject: string, schema: S, event: z.infer<S>): Promise<void> {
    const data = JSON.stringify(schema.parse(event));
    if (data.length > MAX_EVENT_BYTES) throw new Error(`event on ${subject} is ${data.length} bytes, over ${MAX_EVENT_BYTES}`);
    await this.js.publish(subject, data);
  }

  async subscribe<S extends z.ZodType>(
    subject: string,
    schema: S,
    handler: (event: z.infer<S>) => Promise<void> | void,
    onInvalid: (error: Error) => void = () => {},
  ): Promise<Subscription> {
    const consumer = await this.js.consumers.get(STREAM, {
      filter_subjects: subject, // one subject, not a list: nats-server 2.9 has no multi-subject filters
      deliver_policy: DeliverPolicy.New,
    });
    const messages = await consumer.consume();
    const loop = (async () => {
      for await (const m of messages) {
        let parsed: ReturnType<S['safeParse']> | { success: false; error: Error };
        try {
          if (m.data.length > MAX_EVENT_BYTES) throw new Error(`${m.data.length} bytes, over ${MAX_EVENT_BYTES}`);
          parsed = schema.safeParse(m.json()) as ReturnType<S['safeParse']>;
        } catch (err) {
          parsed = { success: false, error: err as Error };
        }
        if (parsed.success) await handler(parsed.data as z.infer<S>);
        else onInvalid(new Error(`invalid event on ${subject}: ${parsed.error.message}`));
      }
    })();
    return {
      unsubscribe: async () => {
        await messages.close();
        await loop;
      },
    };
  }

  private bucket(name: string): Promise<KV> {
    let kv = this.kvs.get(name);
    if (!kv) {
      kv = this.kvm.create(name);
      this.kvs.set(name, kv);
    }
    return kv;
  }

  async kvPut(bucket: string, key: string, value: unknown): Promise<void> {
    await (await this.bucket(bucket)).put(key, JSON.stringify(value));
  }

  async kvGet(bucket: string, key: string): Promise<unknown | undefined> {
    const entry = await (await this.bucket(bucket)).get(key);
    return entry && entry.operation === 'PUT' ? entry.json() : undefined;
  }

  async close(): Promise<void> {
    await this.nc.drain();
  }
}
