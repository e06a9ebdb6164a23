// Turns a split's token stream into training windows. The stream is cut into non-overlapping windows of
// context+1 tokens (inputs and the targets one position on); each epoch visits them in a seeded random
// order. The cursor (epoch, index into that order) is all a checkpoint needs to resume without replaying
// or skipping a window.
import { Rng } from '../lm/rng.js';

export type TokenArray = Uint16Array | Uint32Array;

export interface DataCursor {
  epoch: number;
  index: number; // next window of this epoch's order
}

export interface Batch {
  inputs: Int32Array; // [batch, context]
  targets: Int32Array; // [batch, context]
  batch: number;
  context: number;
}

export class WindowSampler {
  readonly windows: number;
  private order: Uint32Array | null = null;
  private orderEpoch = -1;

  constructor(
    private readonly tokens: TokenArray,
    private readonly context: number,
    private readonly seed: number,
  ) {
    this.windows = Math.floor((tokens.length - 1) / context);
    if (this.windows < 1)
      throw new Error(`the training split has ${tokens.length} tokens, fewer than one window of context ${context} + 1`);
  }

  private epochOrder(epoch: number): Uint32Array {
    if (this.orderEpoch !== epoch) {
      const order = new Uint32Array(this.windows);
      for (let i = 0; i < order.length; i++) order[i] = i;
      this.order = new Rng(this.seed * 1000003 + epoch).shuffle(order);
      this.orderEpoch = epoch;
    }
    return this.order!;
  }

  /** The next `batch` windows after `cursor`, and the cursor after them. */
  next(batch: number, cursor: DataCursor): { batch: Batch; cursor: DataCursor } {
    const ids: number[] = [];
    let { epoch, index } = cursor;
    while (ids.length < batch) {
      if (index >= this.windows) {
        epoch += 1;
        index = 0;
      }
      ids.push(this.epochOrder(epoch)[index++]);
    }
    return {
      batch: windowBatch(
        this.tokens,
        ids.map((w) => w * this.context),
        this.context,
      ),
      cursor: { epoch, index },
    };
  }
}

/** Evenly spaced windows over a split, the same every time: the validation set. */
export function fixedWindows(tokens: TokenArray, context: number, count: number): Batch {
  const available = Math.floor((tokens.length - 1) / context);
  if (available < 1)
    throw new Error(`the validation split has ${tokens.length} tokens, fewer than one window of context ${context} + 1`);
  const n = Math.min(count, available);
  const stride = Math.floor(available / n);
  const starts = Array.from({ length: n }, (_, i) => i * stride * context);
  return windowBatch(tokens, starts, context);
}

export function windowBatch(tokens: TokenArray, starts: number[], context: number): Batch {
  const inputs = new Int32Array(starts.length * context);
  const targets = new Int32Array(starts.length * context);
  starts.forEach((start, b) => {
    for (let t = 0; t < context; t++) {
      inputs[b * context + t] = tokens[start + t];
      targets[b * context + t] = tokens[start + t + 1];
    }
  });
  return { inputs, targets, batch: starts.length, context };
}

/** Splits a batch of windows into batches of at most `size` windows. */
export function chunkBatch(b: Batch, size: number): Batch[] {
  const out: Batch[] = [];
  for (let i = 0; i < b.batch; i += size) {
    const n = Math.min(size, b.batch - i);
    const range = [i * b.context, (i + n) * b.context] as const;
    out.push({ inputs: b.inputs.slice(...range), targets: b.targets.slice(...range), batch: n, context: b.context });
  }
  return out;
}
