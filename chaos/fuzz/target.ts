// What the runner needs of a fuzzed service: its process (for memory and crashes), a way to send one
// case of messages made from a seeded generator, and a health probe that any working service answers.
import type { Rng } from '../../lm/rng.js';
import type { Sent } from './grpc-cases.js';
import type { ServiceProcess } from './service-process.js';

export interface FuzzTarget {
  readonly process: ServiceProcess;
  /** HTTP errors of this service carry a JSON body {"error": ...} (the evaluator's API does; Prometheus' does not). */
  readonly jsonErrors: boolean;
  /** Makes one case (one or more messages) with `rng`, sends it, and returns every message's answer. */
  send(rng: Rng, deadlineMs: number): Promise<Sent[]>;
  /** Sends a request a working service always answers the same way: null when it did, else what came. */
  probe(deadlineMs: number): Promise<string | null>;
  close(): Promise<void>;
}

export interface FuzzService {
  name: string;
  /** Starts the service (in its own process) and returns it once it listens. */
  start(): Promise<FuzzTarget>;
}
