// The control-plane bus on NATS: events go to a JetStream stream (RINGLET, subjects ringlet.>) so they are
// stored and can be replayed; run state lives in JetStream KV buckets. Same interface and validation as
// InProcessBus (controlplane/bus.ts); a subscriber sees the events published after it subscribed. With
// keys, an event's signature travels in the Ringlet-Signature header (controlplane/signing.ts); credentials
// and TLS come from NatsConfig (controlplane/nats-config.ts). KV state is not signed: no Ringlet process
// acts on what it reads there.
// Clients: @nats-io/transport-node, @nats-io/jetstream and @nats-io/kv (3.x); server: nats-server -js.
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { z } from 'zod';
import { receiver, type Bus, type Subscription } from './bus.js';
import { connectionOptions, type NatsConfig } from './nats-config.js';
import { SIGNATURE_HEADER, signatureFor, type BusKeys } from './signing.js';

export const STREAM = 'RINGLET';
const MAX_EVENT_BYTES = 64 * 1024; // events are small; anything larger is refused on both sides

/** What to check when a connection fails the usual ways. */
function hint(message: string): string {
  if (/authorization violation/i.test(message))
    return ' (the server wants credentials: RINGLET_NATS_USER and RINGLET_NATS_PASSWORD, or RINGLET_NATS_TOKEN)';
  if (/certificate|self.signed|altname/i.test(message))
    return " (TLS: RINGLET_NATS_TLS_CA or --nats-tls-ca must name the CA that signed the server's certificate)";
  // A server that verifies client certificates drops a client without one after the handshake, unanswered.
  if (/timeout/i.test(message)) return ' (no answer: check the address, and whether the server wants a client certificate)';
  return '';
}

export class NatsBus implements Bus {
  private readonly kvs = new Map<string, Promise<KV>>();
  private readonly kvm: Kvm;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly keys: BusKeys,
  ) {
    this.kvm = new Kvm(nc);
  }

  /** Connects with the configured credentials and TLS, and makes sure the event stream exists. */
  static async connect(config: NatsConfig, keys: BusKeys = {}): Promise<NatsBus> {
    let nc: NatsConnection;
    try {
      nc = await connect(connectionOptions(config));
    } catch (err) {
      const message = (err as Error).message;
      throw new Error(`cannot connect to NATS at ${config.servers.join(', ')}: ${message}${hint(message)}`);
    }
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(STREAM);
    } catch {
      await jsm.streams.add({ name: STREAM, subjects: ['ringlet.>'], max_msg_size: MAX_EVENT_BYTES });
    }
    return new NatsBus(nc, jetstream(nc), keys);
  }

  async publish<S extends z.ZodType>(subject: string, schema: S, event: z.infer<S>): Promise<void> {
    const parsed = schema.parse(event);
    const data = JSON.stringify(parsed);
    if (data.length > MAX_EVENT_BYTES) throw new Error(`event on ${subject} is ${data.length} bytes, over ${MAX_EVENT_BYTES}`);
    const signature = signatureFor(this.keys, subject, parsed);
    const h = headers();
    if (signature !== undefined) h.set(SIGNATURE_HEADER, signature);
    await this.js.publish(subject, data, { headers: h });
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
    const receive = receiver(this.keys, subject, schema, handler, onInvalid);
    const messages = await consumer.consume();
    const loop = (async () => {
      for await (const m of messages) {
        let data: unknown;
        try {
          if (m.data.length > MAX_EVENT_BYTES) throw new Error(`${m.data.length} bytes, over ${MAX_EVENT_BYTES}`);
          data = m.json();
        } catch (err) {
          onInvalid(new Error(`invalid event on ${subject}: ${(err as Error).message}`));
          continue;
        }
        await receive(data, m.headers?.get(SIGNATURE_HEADER));
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
