// How a mixture of experts routes a dataset's validation windows (the val suite's windows, re-tokenized
// when the dataset's tokenizer is not the model's: val-windows.ts): per layer, each expert's share of the
// tokens' assignments (`layer0.expert2`), the share the training capacity would drop, and the counts
// themselves in `routing`. Run once per language's dataset, it gives each language's share of every
// expert's tokens.
import { routingRecord } from '../../lm/moe.js';
import type { Batch } from '../../train/batches.js';
import { evaluate } from '../../train/evaluate.js';
import { timed, type SuiteContext, type SuiteResult } from './types.js';
import { DEFAULT_VAL_WINDOWS } from './validation.js';
import { datasetValWindows } from './val-windows.js';

export async function runRouting(datasetDir: string, ctx: SuiteContext): Promise<SuiteResult> {
  const started = performance.now();
  const { model } = ctx;
  if (!model.config.moe)
    throw new Error(`suite routing needs a mixture-of-experts checkpoint; ${model.path} is a dense model (no model.moe)`);
  const context = model.config.context;
  const { windows, retokenized } = await datasetValWindows(datasetDir, model.tokenizer, context, ctx.limit ?? DEFAULT_VAL_WINDOWS);
  const batch: Batch = {
    inputs: Int32Array.from(windows.flatMap((w) => w.slice(0, context))),
    targets: Int32Array.from(windows.flatMap((w) => w.slice(1))),
    batch: windows.length,
    context,
  };
  const e = evaluate(model.params, model.config, batch, ctx.batchSize, model.tokenizer.byteLengths());
  const routing = e.routing!;
  const metrics: Record<string, number> = {
    val_loss: e.loss,
    val_bpb: e.bpb,
    tokens: batch.targets.length,
    retokenized: retokenized ? 1 : 0,
  };
  routing.tokens.forEach((row, l) => {
    const assignments = row.reduce((a, b) => a + b, 0);
    row.forEach((n, expert) => (metrics[`layer${l}.expert${expert}`] = n / assignments));
  });
  metrics.dropped_share = routingRecord(routing).dropped_share;
  return timed(started, {
    suite: 'routing',
    kind: 'routing',
    metrics,
    items: windows.length,
    // Routing is a property of the whole set of windows, not a score per window: nothing to pair.
    item_ids: [],
    item_scores: [],
    routing,
  });
}
