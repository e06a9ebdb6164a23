// Autoregressive generation with a key/value cache: the prompt is run once, then each new token costs
// one position of attention over the cache. Text streams out as tokens arrive.
import * as tf from '@tensorflow/tfjs';
import { forward, type KvCache, type Params } from './model.js';
import type { ModelConfig } from './model-config.js';
import { Rng } from './rng.js';
import { sampleToken, type SamplingOptions } from './sample.js';

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number;
  seed: number;
  stopToken: number; // end-of-document
  onToken?: (id: number) => void;
}

export interface Generation {
  tokens: number[]; // generated tokens, the stop token excluded
  promptTokens: number; // prompt tokens the model saw (after truncation to the context)
  truncatedPrompt: boolean;
  stopped: 'end_of_document' | 'max_tokens';
  seconds: number;
}

export function generate(params: Params, c: ModelConfig, prompt: number[], o: GenerateOptions): Generation {
  if (prompt.length === 0) prompt = [o.stopToken]; // an empty prompt starts a fresh document
  const truncatedPrompt = prompt.length > c.context - 1;
  const context = truncatedPrompt ? prompt.slice(prompt.length - (c.context - 1)) : prompt.slice();
  const promptTokens = context.length;
  const rng = new Rng(o.seed);
  const tokens: number[] = [];
  const started = performance.now();
  let cache: KvCache = { k: [], v: [], length: 0 };
  let pending = context; // tokens the cache has not seen yet
  let stopped: Generation['stopped'] = 'max_tokens';

  try {
    while (tokens.length < o.maxTokens) {
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
      o.onToken?.(next);
    }
  } finally {
    disposeCache(cache);
  }
  return { tokens, promptTokens, truncatedPrompt, stopped, seconds: (performance.now() - started) / 1000 };
}

function disposeCache(cache: KvCache): void {
  for (const t of [...cache.k, ...cache.v]) t.dispose();
}
