// How a mixture of experts routes a dataset's validation windows (the same evenly spaced windows as the
// val suite): per layer, each expert's share of the tokens' assignments (`layer0.expert2`), the share
// the training capacity would drop, and the counts themselves in `routing`. Run once per language's
// dataset, it gives each language's share of every expert's tokens.
import { openSplit } from '../../data/shards.js';
import { readManifest } from '../../data/manifest.js';
import { routingRecord } from '../../lm/moe.js';
import { evaluate } from '../../train/evaluate.js';
import { fixedWindows } from '../../train/batches.js';
import { timed, type SuiteContext, type SuiteResult } from './types.js';
import { DEFAULT_VAL_WINDOWS } from './validation.js';

export async function runRouting(datasetDir: string, ctx: SuiteContext): Promise<SuiteResult> {
  const started = performance.now();
  const { model } = ctx;
  if (!model.config.moe)
    throw new Error(`suite routing needs a mixture-of-experts checkpoint; ${model.path} is a dense model (no model.moe)`);
  const manifest = await readManifest(datasetDir).catch((err: Error) => {
    throw new Error(`routing data ${datasetDir}: ${err.message}`);
  });
  if (manifest.tokenizer.sha256 !== model.tokenizer.sha256)
    throw new Error(
      `routing data ${datasetDir} is tokenized with tokenizer ${manifest.tokenizer.sha256}, the checkpoint uses ${model.tokenizer.sha256}`,
    );
  const { tokens } = await openSplit(datasetDir, 'val');
  const windows = fixedWindows(tokens, model.config.context, ctx.limit ?? DEFAULT_VAL_WINDOWS);
  const e = evaluate(model.params, model.config, windows, ctx.batchSize, model.tokenizer.byteLengths());
  const routing = e.routing!;
  const metrics: Record<string, number> = { val_loss: e.loss, val_bpb: e.bpb, tokens: windows.targets.length };
  routing.tokens.forEach((row, l) => {
    const assignments = row.reduce((a, b) => a + b, 0);
    row.forEach((n, expert) => (metrics[`layer${l}.expert${expert}`] = n / assignments));
  });
  metrics.dropped_share = routingRecord(routing).dropped_share;
  return timed(started, {
    suite: 'routing',
    kind: 'routing',
    metrics,
    items: windows.batch,
    // Routing is a property of the whole set of windows, not a score per window: nothing to pair.
    item_ids: [],
    item_scores: [],
    routing,
  });
}
