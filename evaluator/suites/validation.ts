// Validation loss, perplexity and bits per byte on a dataset's val split, in the same evenly spaced windows
// of context+1 tokens that training evaluates on (train/batches.ts fixedWindows), so with --limit equal to
// the run's eval_windows the figures equal the training log's val_loss and val_bpb. Bits per byte divides the nats by the UTF-8 bytes the target tokens stand for,
// which makes models with different tokenizers (English and Swedish, or two vocabularies) comparable.
import { openSplit } from '../../data/shards.js';
import { readManifest } from '../../data/manifest.js';
import { fixedWindows } from '../../train/batches.js';
import { scoreSequences } from '../scoring.js';
import { timed, type SuiteContext, type SuiteResult } from './types.js';

export const DEFAULT_VAL_WINDOWS = 64;

export async function runValidation(datasetDir: string, ctx: SuiteContext): Promise<SuiteResult> {
  const started = performance.now();
  const { model } = ctx;
  const manifest = await readManifest(datasetDir).catch((err: Error) => {
    throw new Error(`validation data ${datasetDir}: ${err.message}`);
  });
  if (manifest.tokenizer.sha256 !== model.tokenizer.sha256)
    throw new Error(
      `validation data ${datasetDir} is tokenized with tokenizer ${manifest.tokenizer.sha256}, the checkpoint uses ${model.tokenizer.sha256}`,
    );
  const { tokens } = await openSplit(datasetDir, 'val');
  const context = model.config.context;
  const picked = fixedWindows(tokens, context, ctx.limit ?? DEFAULT_VAL_WINDOWS);
  const count = picked.batch;
  const windows = Array.from({ length: count }, (_, w) => [
    ...picked.inputs.subarray(w * context, (w + 1) * context),
    picked.targets[(w + 1) * context - 1],
  ]);
  const scored = await scoreSequences(model, windows, { batchSize: ctx.batchSize });
  const byteLengths = model.tokenizer.byteLengths();
  let nats = 0;
  let bytes = 0;
  const itemScores = scored.map((s, w) => {
    let windowNats = 0;
    for (let t = 0; t < s.logprobs.length; t++) {
      windowNats -= s.logprobs[t];
      bytes += byteLengths[windows[w][t + 1]];
    }
    nats += windowNats;
    return -windowNats / s.logprobs.length;
  });
  const targets = count * context;
  const valLoss = nats / targets;
  return timed(started, {
    suite: 'val',
    kind: 'validation',
    metrics: { val_loss: valLoss, perplexity: Math.exp(valLoss), val_bpb: nats / Math.LN2 / bytes, tokens: targets },
    items: count,
    item_ids: windows.map((_, w) => `window-${w}`),
    item_scores: itemScores,
  });
}
