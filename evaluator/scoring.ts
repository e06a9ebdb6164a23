// The scoring core: next-token log-probabilities of whole token sequences, batched through lm/model.ts.
// Every suite (and /v1/completions) goes through scoreSequences, so they all treat long sequences,
// padding and batching the same way.
//
// A sequence of L tokens yields L-1 log-probabilities: entry i is log p(seq[i+1] | seq[0..i]). Callers
// put the end-of-document token first (withDocumentStart) so the first real token is scored too.
// Sequences longer than the model's context are scored with a sliding window: the first window scores its
// `context` targets, each later window moves on by half a context and scores only its new targets, so
// every token is scored exactly once with at least half a context of history (as in the usual strided
// perplexity). Results do not depend on the batch a sequence lands in beyond float rounding, and are
// identical from run to run: the order of work is fixed and the kernels are deterministic.
import * as tf from '@tensorflow/tfjs';
import { forward, type Params } from '../lm/model.js';
import type { ModelConfig } from '../lm/model-config.js';

export interface SequenceScores {
  /** log p of each token after the first, natural log. */
  logprobs: Float64Array;
  /** With topLogprobs > 0: for each scored position, the likeliest tokens as [id, logprob], best first. */
  top?: Array<Array<[number, number]>>;
  /** Windows the sequence needed (more than 1 when it is longer than the context). */
  windows: number;
}

export interface ScoreOptions {
  /** Windows per forward pass. */
  batchSize?: number;
  /** How many alternatives to report per position (OpenAI `logprobs`); 0 for none. */
  topLogprobs?: number;
  /** Called after each batch with the windows done and the total. */
  onProgress?: (done: number, total: number) => void;
}

export const DEFAULT_BATCH_SIZE = 16;

interface Window {
  sequence: number;
  start: number; // first input position
  length: number; // inputs (and targets) in the window
  scoreFrom: number; // first target offset in the window that is scored
}

/** Cuts a sequence of `tokens` tokens into windows of at most `context` inputs; see the file comment. */
export function slidingWindows(sequence: number, tokens: number, context: number): Window[] {
  const targets = tokens - 1;
  if (targets <= 0) return [];
  if (targets <= context) return [{ sequence, start: 0, length: targets, scoreFrom: 0 }];
  const stride = Math.max(1, Math.floor(context / 2));
  const windows: Window[] = [{ sequence, start: 0, length: context, scoreFrom: 0 }];
  let done = context; // targets scored so far
  while (done < targets) {
    const end = Math.min(done + stride, targets);
    const start = end - context;
    windows.push({ sequence, start, length: context, scoreFrom: done - start });
    done = end;
  }
  return windows;
}

/** The end-of-document token, then `ids`: the model's view of a text that starts a document. */
export function withDocumentStart(eotId: number, ids: readonly number[]): number[] {
  return [eotId, ...ids];
}

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Log-probabilities of every token of every sequence after its first. Async only to let the event loop
 * run between batches (health checks answer while a service scores); the work itself is synchronous.
 */
export async function scoreSequences(
  model: { params: Params; config: ModelConfig },
  sequences: ReadonlyArray<readonly number[]>,
  options: ScoreOptions = {},
): Promise<SequenceScores[]> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const topK = options.topLogprobs ?? 0;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be an integer >= 1, got ${batchSize}`);
  const { config, params } = model;
  for (const [i, seq] of sequences.entries())
    for (const id of seq)
      if (!Number.isInteger(id) || id < 0 || id >= config.vocab)
        throw new Error(`sequence ${i}: token id ${id} is outside the vocabulary (size ${config.vocab})`);

  const results: SequenceScores[] = sequences.map((seq) => ({
    logprobs: new Float64Array(Math.max(0, seq.length - 1)),
    top: topK > 0 ? new Array(Math.max(0, seq.length - 1)) : undefined,
    windows: 0,
  }));
  const windows = sequences.flatMap((seq, i) => slidingWindows(i, seq.length, config.context));
  for (const w of windows) results[w.sequence].windows++;
  // Longest first so that a batch holds windows of similar length (little padding); ties keep input order.
  const order = windows.map((_, i) => i).sort((a, b) => windows[b].length - windows[a].length || a - b);

  for (let at = 0; at < order.length; at += batchSize) {
    const batch = order.slice(at, at + batchSize).map((i) => windows[i]);
    const T = batch[0].length;
    const B = batch.length;
    const inputs = new Int32Array(B * T); // padding (id 0) sits after each window's end, where causality hides it
    const targets = new Int32Array(B * T);
    batch.forEach((w, b) => {
      const seq = sequences[w.sequence];
      for (let t = 0; t < w.length; t++) {
        inputs[b * T + t] = seq[w.start + t];
        targets[b * T + t] = seq[w.start + t + 1];
      }
    });
    let picked: Float32Array = new Float32Array(0);
    let topValues: Float32Array | null = null;
    let topIndices: Int32Array | null = null;
    tf.tidy(() => {
      const logits = forward(params, config, tf.tensor2d(inputs, [B, T], 'int32'));
      const logp = tf.logSoftmax(logits);
      const flat = tf
        .range(0, B * T, 1, 'int32')
        .mul(tf.scalar(config.vocab, 'int32'))
        .add(tf.tensor1d(targets, 'int32'));
      picked = tf.gather(logp.reshape([-1]), flat).dataSync() as Float32Array;
      if (topK > 0) {
        const top = tf.topk(logp, Math.min(topK, config.vocab));
        topValues = top.values.dataSync() as Float32Array;
        topIndices = top.indices.dataSync() as Int32Array;
      }
    });
    batch.forEach((w, b) => {
      const r = results[w.sequence];
      for (let t = w.scoreFrom; t < w.length; t++) {
        const position = w.start + t;
        r.logprobs[position] = picked[b * T + t];
        if (r.top && topValues && topIndices) {
          const k = topValues.length / (B * T);
          const row: Array<[number, number]> = [];
          for (let j = 0; j < k; j++) row.push([topIndices[(b * T + t) * k + j], topValues[(b * T + t) * k + j]]);
          r.top[position] = row;
        }
      }
    });
    options.onProgress?.(Math.min(at + batchSize, order.length), order.length);
    await nextTick();
  }
  return results;
}

/** Sum of log-probabilities from position `from` on (e.g. a continuation after its context). */
export function sumFrom(logprobs: Float64Array, from = 0): number {
  let sum = 0;
  for (let i = from; i < logprobs.length; i++) sum += logprobs[i];
  return sum;
}
