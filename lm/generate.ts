// Autoregressive generation with a key/value cache: the prompt is run once, then each new token costs
// one position of attention over the cache. Tokens stream out one by one from an async generator, which
// yields to the event loop between tokens: a server sees its client leave, and a consumer that stops
// iterating (or aborts the signal) ends the generation there, with the cache freed.
// Where the native kernels run, the forward pass is lm/decode.ts's decoder (plain arrays, a cache written
// in place); elsewhere (no addon, tfjs-node backends, RINGLET_FUSED=0 or RINGLET_DECODER=0, a mixture of
// experts) it is the TensorFlow.js model of lm/model.ts. Both compute the same function.
import * as tf from '@tensorflow/tfjs';
import { loadNative } from '../kernels/native.js';
import { nativeBackendActive } from '../kernels/native-kernels.js';
import { decoderFor, type Decoder } from './decode.js';
import { forward, type KvCache, type Params } from './model.js';
import { fusedKernelsActive } from './ops.js';
import type { ModelConfig } from './model-config.js';
import { Rng } from './rng.js';
import { sampleToken, type SamplingOptions } from './sample.js';

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number;
  seed: number;
  stopToken: number; // end-of-document
  /** How many of the likeliest alternatives to report with each token (0: none). */
  topLogprobs?: number;
  /** Ends the generation at the next token once aborted ('cancelled'). */
  signal?: AbortSignal;
}

/** One generated token, with its log-probability under the model (the logits' log-softmax, before temperature and filters). */
export interface GeneratedToken {
  id: number;
  logprob: number;
  /** The likeliest tokens at this position, [id, logprob] in descending order; empty unless topLogprobs > 0. */
  top: Array<[number, number]>;
}

export interface Generation {
  tokens: number[]; // generated tokens, the stop token excluded
  promptTokens: number; // prompt tokens the model saw (after truncation to the context)
  truncatedPrompt: boolean;
  stopped: 'end_of_document' | 'max_tokens' | 'cancelled';
  seconds: number;
  /** From the start to the first generated token (the prompt's forward pass included). */
  firstTokenSeconds: number | null;
}

/** Streams generated tokens; the generator's return value is the whole Generation. */
export async function* generateTokens(
  params: Params,
  c: ModelConfig,
  prompt: number[],
  o: GenerateOptions,
): AsyncGenerator<GeneratedToken, Generation> {
  if (prompt.length === 0) prompt = [o.stopToken]; // an empty prompt starts a fresh document
  const truncatedPrompt = prompt.length > c.context - 1;
  const context = truncatedPrompt ? prompt.slice(prompt.length - (c.context - 1)) : prompt.slice();
  const promptTokens = context.length;
  const rng = new Rng(o.seed);
  const tokens: number[] = [];
  const started = performance.now();
  let firstTokenSeconds: number | null = null;
  const decoder = generationDecoder(params, c);
  const steps = decoder ? decoderSteps(decoder) : tfjsSteps(params, c);
  let pending = context; // tokens the cache has not seen yet
  let stopped: Generation['stopped'] = 'max_tokens';

  try {
    while (tokens.length < o.maxTokens) {
      if (o.signal?.aborted) {
        stopped = 'cancelled';
        break;
      }
      // When the cache is full, start again from the newest half of the context (RoPE positions stay in range).
      if (steps.length() + pending.length > c.context) {
        steps.clear();
        pending = context.slice(context.length - Math.floor(c.context / 2));
      }
      const logits = steps.next(pending);
      const next = sampleToken(logits, context, o, rng);
      if (next === o.stopToken) {
        stopped = 'end_of_document';
        break;
      }
      tokens.push(next);
      context.push(next);
      pending = [next];
      firstTokenSeconds ??= (performance.now() - started) / 1000;
      yield { id: next, ...logprobsOf(logits, next, o.topLogprobs ?? 0) };
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    steps.dispose();
  }
  if (tokens.length < o.maxTokens && o.signal?.aborted) stopped = 'cancelled';
  return { tokens, promptTokens, truncatedPrompt, stopped, seconds: (performance.now() - started) / 1000, firstTokenSeconds };
}

/** The whole generation at once; `onToken` sees each token as it is made. */
export async function generate(
  params: Params,
  c: ModelConfig,
  prompt: number[],
  o: GenerateOptions & { onToken?: (token: GeneratedToken) => void },
): Promise<Generation> {
  const stream = generateTokens(params, c, prompt, o);
  for (;;) {
    const step = await stream.next();
    if (step.done) return step.value;
    o.onToken?.(step.value);
  }
}

/** log-softmax of the logits at `id`, and the `k` likeliest ids with theirs. */
export function logprobsOf(logits: Float32Array, id: number, k: number): { logprob: number; top: Array<[number, number]> } {
  const logZ = logSumExp(logits);
  const top: Array<[number, number]> = [];
  if (k > 0) {
    const best: number[] = [];
    for (let i = 0; i < logits.length; i++) {
      if (best.length === k && logits[i] <= logits[best[k - 1]]) continue;
      let at = best.length;
      while (at > 0 && logits[best[at - 1]] < logits[i]) at--;
      best.splice(at, 0, i);
      if (best.length > k) best.pop();
    }
    for (const i of best) top.push([i, logits[i] - logZ]);
  }
  return { logprob: logits[id] - logZ, top };
}

const lse = { targets: new Int32Array(1), loss: new Float32Array(1), value: new Float32Array(1) };

/** log Σ exp(logits): through the native softmax cross-entropy kernel when the addon is loaded (a vector
 * pass; JavaScript's Math.exp takes ~45 µs for 4096 logits, a third of a micro token), else in JavaScript. */
function logSumExp(logits: Float32Array): number {
  const native = loadNative();
  if (native) {
    native.xentFwd(logits, lse.targets, lse.loss, lse.value, 1, logits.length);
    return lse.value[0];
  }
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return max + Math.log(sum);
}

/**
 * The decoder where the native kernels are active on a host backend (wasm, cpu; and RINGLET_DECODER is not 0)
 * and the model is dense, else null: the TensorFlow.js path, which on cuda runs on the GPU with its KV cache.
 */
function generationDecoder(params: Params, c: ModelConfig): Decoder | null {
  if (process.env.RINGLET_DECODER === '0' || !fusedKernelsActive() || !nativeBackendActive()) return null;
  return decoderFor(params, c);
}

/** The model's next-token logits as a sequence grows, with the sequence's key/value cache. */
interface Steps {
  /** Positions in the cache. */
  length(): number;
  /** Runs the tokens the cache has not seen; the last one's logits, valid until the next call. */
  next(tokens: number[]): Float32Array;
  /** Empties the cache. */
  clear(): void;
  dispose(): void;
}

function decoderSteps(decoder: Decoder): Steps {
  const cache = decoder.newCache();
  return {
    length: () => cache.length,
    next: (tokens) => decoder.forward(cache, tokens),
    clear: () => {
      cache.length = 0;
    },
    dispose: () => {},
  };
}

function tfjsSteps(params: Params, c: ModelConfig): Steps {
  let cache: KvCache = { k: [], v: [], length: 0 };
  const dispose = () => {
    for (const t of [...cache.k, ...cache.v]) t.dispose();
    cache = { k: [], v: [], length: 0 };
  };
  return {
    length: () => cache.length,
    next(tokens) {
      const previous = [...cache.k, ...cache.v];
      // Read the row outside tidy(): tidy walks what it returns, and a typed array's every index with it.
      const row = tf.tidy(() => forward(params, c, tf.tensor2d(tokens, [1, tokens.length], 'int32'), { cache, lastOnly: true }));
      const logits = row.dataSync() as Float32Array;
      row.dispose();
      previous.forEach((t) => t.dispose());
      return logits;
    },
    clear: dispose,
    dispose,
  };
}
