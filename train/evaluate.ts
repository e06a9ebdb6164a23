// Validation figures: mean loss in nats per token, and bits per byte, which does not depend on the
// tokenizer (so English and Swedish models, or two vocabularies, compare fairly); with experts, also how
// the windows' tokens were routed.
import * as tf from '@tensorflow/tfjs';
import { lossOn, type Params } from '../lm/model.js';
import type { ModelConfig } from '../lm/model-config.js';
import { newRouting, routingCounts, type RoutingCounts } from '../lm/moe.js';
import { chunkBatch, type Batch, type TokenArray } from './batches.js';

export function evaluate(
  params: Params,
  model: ModelConfig,
  windows: Batch,
  batchSize: number,
  tokenBytes: Uint32Array,
): { loss: number; bpb: number; routing: RoutingCounts | null } {
  // Every assignment is computed, as outside training; the drops counted are those the training capacity
  // would make in micro-batches of batchSize windows.
  const routing = model.moe ? newRouting(false) : undefined;
  let nats = 0;
  for (const b of chunkBatch(windows, batchSize)) {
    nats += tf.tidy(() => {
      const inputs = tf.tensor2d(b.inputs, [b.batch, b.context], 'int32');
      const targets = tf.tensor2d(b.targets, [b.batch, b.context], 'int32');
      return lossOn(params, model, inputs, targets, routing).dataSync()[0] * b.targets.length;
    });
  }
  let bytes = 0;
  for (const id of windows.targets) bytes += tokenBytes[id];
  return {
    loss: nats / windows.targets.length,
    bpb: nats / Math.LN2 / bytes,
    routing: routing ? routingCounts(routing.layers, model.n_layers) : null,
  };
}

/**
 * The validation loss of a unigram model fitted on the training split (add-one smoothed): the loss a model
 * reaches by learning token frequencies alone. A trained model must go clearly below it.
 */
export function unigramLoss(trainTokens: TokenArray, valTokens: TokenArray, vocab: number): number {
  const counts = new Float64Array(vocab).fill(1);
  for (const id of trainTokens) counts[id] += 1;
  const total = trainTokens.length + vocab;
  let nats = 0;
  for (const id of valTokens) nats -= Math.log(counts[id] / total);
  return nats / valTokens.length;
}
