// Autoregressive generation with a key/value cache: the prompt is run once, then each new token costs
// one position of attention over the cache. Tokens stream out one by one from an async generator, which
// yields to the event loop between tokens: a server sees its client leave, and a consumer that stops
// iterating (or aborts the signal) ends the generation there, with the cache freed.
import * as tf from '@tensorflow/tfjs';
import { forward, type KvCache, type Params } from './model.js';
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
  let cache: KvCache = { k: [], v: [], length: 0 };
  let pending = context; // tokens the cache has not seen yet
  let stopped: Generation['stopped'] = 'max_tokens';

  try {
    while (tokens.length < o.maxTokens) {
      if (o.signal?.aborted) {
        stopped = 'cancelled';
        break;
      }
      // When the cache is full, start again from the newest half of the context (RoPE positions stay in range).
      if (cache.length + pending.length > c.context) {
        disposeCache(cache);
        cache = { k: [], v: [], length: 0 };
        pending = context.slice(context.length - Math.floor(c.context / 2));
      }
      const previous = [...cache.k, ...cache.v];
      // Read the row outside tidy(): tidy walks what it returns, and a typed array's every index with it.
      const row = tf.tidy(() =>
        forward(params, c, tf.tensor2d(pending, [1, pending.length], 'int32'), { cache, lastOnly: true }),
      );
      const logits = row.dataSync() as Float32Array;
      row.dispose();
      previous.forEach((t) => t.dispose());
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
    disposeCache(cache);
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
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const logZ = max + Math.log(sum);
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

function disposeCache(cache: KvCache): void {
  for (const t of [...cache.k, ...cache.v]) t.dispose();
}
