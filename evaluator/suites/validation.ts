// Validation loss, perplexity and bits per byte on a dataset's val split, in the same evenly spaced windows
// of context+1 tokens that training evaluates on (train/batches.ts fixedWindows), so with --limit equal to
// the run's eval_windows the figures equal the training log's val_loss and val_bpb. Bits per byte divides the
// nats by the UTF-8 bytes the target tokens stand for, which makes models with different tokenizers (English
// and Swedish, or two vocabularies) comparable. A dataset tokenized with another tokenizer than the model's
// is re-tokenized (val-windows.ts; metric `retokenized` 1). Each window's nats and bytes are kept
// (item_nats, item_bytes), so bits per byte can be bootstrapped over windows.
import { scoreSequences } from '../scoring.js';
import { timed, type SuiteContext, type SuiteResult } from './types.js';
import { datasetValWindows } from './val-windows.js';

export const DEFAULT_VAL_WINDOWS = 64;

export async function runValidation(datasetDir: string, ctx: SuiteContext): Promise<SuiteResult> {
  const started = performance.now();
  const { model } = ctx;
  const context = model.config.context;
  const { windows, bytes, retokenized } = await datasetValWindows(
    datasetDir,
    model.tokenizer,
    context,
    ctx.limit ?? DEFAULT_VAL_WINDOWS,
  );
  const scored = await scoreSequences(model, windows, { batchSize: ctx.batchSize });
  let nats = 0;
  const itemNats = scored.map((s) => {
    let windowNats = 0;
    for (let t = 0; t < s.logprobs.length; t++) windowNats -= s.logprobs[t];
    nats += windowNats;
    return windowNats;
  });
  const totalBytes = bytes.reduce((a, b) => a + b, 0);
  const targets = windows.length * context;
  const valLoss = nats / targets;
  return timed(started, {
    suite: 'val',
    kind: 'validation',
    metrics: {
      val_loss: valLoss,
      perplexity: Math.exp(valLoss),
      val_bpb: nats / Math.LN2 / totalBytes,
      tokens: targets,
      retokenized: retokenized ? 1 : 0,
    },
    items: windows.length,
    item_ids: windows.map((_, w) => `window-${w}`),
    item_scores: itemNats.map((n) => -n / context),
    item_nats: itemNats,
    item_bytes: bytes,
  });
}
