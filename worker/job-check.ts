// The checks a worker makes on what its coordinator sends, against its own limits (worker/limits.ts):
// the Join reply's configs (their size, their schema, the folders they name, the model's memory) and each
// ring assignment (its shape). What a worker runs or reads on its own machine is never taken from them.
import type { Assignment, JoinResponse } from '../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { parseHostPort } from '../collective/address.js';
import { DistributedConfigSchema, type DistributedConfig } from '../coordinator/config.js';
import { parameterCount, type ModelConfig } from '../lm/model-config.js';
import { defaultObservabilityConfig } from '../observability/config.js';
import { TrainConfigSchema, describeIssues, type TrainConfig } from '../train/config.js';
import { confinePath } from './confine.js';
import type { WorkerLimits } from './limits.js';
import type { z } from 'zod';

// A job's configs are a few KiB of JSON; this leaves room for long paths and every option.
export const MAX_CONFIG_JSON_CHARS = 64 << 10;
// Largest message a worker takes from its coordinator: an assignment lists MAX_WORLD_SIZE addresses.
export const MAX_COORDINATOR_MESSAGE_BYTES = 1 << 20;
// The most workers a job may have (the coordinator's max_workers allows no more).
export const MAX_WORLD_SIZE = 1024;

function parseJson<S extends z.ZodType>(field: string, json: string, schema: S, extra: object = {}): z.infer<S> {
  if (json.length > MAX_CONFIG_JSON_CHARS)
    throw new Error(
      `the coordinator's ${field} has ${json.length} characters; a worker accepts at most ${MAX_CONFIG_JSON_CHARS}`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`the coordinator's ${field} is not JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(typeof raw === 'object' && raw !== null ? { ...raw, ...extra } : raw);
  if (!parsed.success) throw new Error(describeIssues(parsed.error, `${field} from the coordinator`));
  return parsed.data;
}

/**
 * The job's training and ring configs from a Join reply, once they pass the worker's limits: each JSON
 * string bounded, each config valid, `data` and `out` inside the worker's folders. The machine settings of
 * observability (the nvidia-smi command, the powercap folder) are the worker's own, whatever the reply says:
 * the coordinator's are for its own machine, and a command from the wire would run anything it named.
 */
export async function acceptJobConfig(
  reply: JoinResponse,
  token: string,
  limits: WorkerLimits,
): Promise<{ train: TrainConfig; dist: DistributedConfig }> {
  const train = parseJson('train_config_json', reply.trainConfigJson, TrainConfigSchema);
  const dist = parseJson('distributed_config_json', reply.distributedConfigJson, DistributedConfigSchema, { token });
  train.observability = {
    ...train.observability,
    nvidia_smi: limits.nvidiaSmi,
    powercap_root: defaultObservabilityConfig().powercap_root,
  };
  await confinePath(train.data, limits.dataRoots, 'train.data', '--data-root (RINGLET_DATA_ROOT)');
  await confinePath(train.out, limits.runsRoots, 'train.out', '--runs-root (RINGLET_RUNS_ROOT)');
  return { train, dist };
}

/**
 * Bytes that training `model` on micro-batches of `batchSize` windows holds at its peak, roughly: weights,
 * gradients and AdamW's two moments (4 floats per parameter), and the activations one micro-batch keeps for
 * the backward pass: per token and layer about 8·d_model + 3·ffn_hidden floats (norms, projections,
 * SwiGLU) and 2·n_heads·context (attention scores and probabilities), and 2·vocab for the logits and softmax.
 */
export function trainingMemoryBytes(model: ModelConfig, batchSize: number): number {
  const perToken =
    model.n_layers * (8 * model.d_model + 3 * model.ffn_hidden + 2 * model.n_heads * model.context) + 2 * model.vocab;
  return 4 * (4 * parameterCount(model).total + batchSize * model.context * perToken);
}

/** Throws when the job's model would need more memory to train than the worker accepts. */
export function checkModelFits(model: ModelConfig, batchSize: number, limits: WorkerLimits): void {
  const need = trainingMemoryBytes(model, batchSize);
  if (need <= limits.maxMemoryBytes) return;
  const gib = (b: number) => (b / 2 ** 30).toFixed(b < 2 ** 30 ? 2 : 0);
  throw new Error(
    `the job's model (${parameterCount(model).total} parameters, micro-batches of ${batchSize} × ${model.context} tokens) ` +
      `needs about ${gib(need)} GiB to train, more than the ${gib(limits.maxMemoryBytes)} GiB this worker accepts (--max-memory)`,
  );
}

/** Why assignment `a` is not a ring this worker (listening at `self`) can be in; null when it is. */
export function assignmentProblem(a: Assignment, self: string): string | null {
  if (a.worldSize < 1 || a.worldSize > MAX_WORLD_SIZE) return `world size ${a.worldSize} is not in 1..${MAX_WORLD_SIZE}`;
  if (a.rank >= a.worldSize) return `rank ${a.rank} is not below the world size ${a.worldSize}`;
  if (a.ring.length !== a.worldSize) return `the ring lists ${a.ring.length} addresses for a world size of ${a.worldSize}`;
  const bad = a.ring.findIndex((address) => !parseHostPort(address));
  if (bad >= 0) return `ring[${bad}] "${a.ring[bad].slice(0, 100)}" is not host:port`;
  if (a.ring[a.rank] !== self) return `ring[${a.rank}] is ${a.ring[a.rank]}, not this worker's address ${self}`;
  return null;
}
