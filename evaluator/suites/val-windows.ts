// A dataset's validation windows in a model's tokenizer: what the val suite scores, and what any suite that
// scores held-out text (routing) can reuse. With the dataset's own tokenizer the windows are the shards'
// own, picked as training picks them (train/batches.ts fixedWindows). With another tokenizer the val text
// is re-tokenized: each document is decoded with the dataset's tokenizer (exact: prepare checks the round
// trip on every validation document), encoded with the model's, and followed by the model's end-of-document
// token, and the same windows are picked from that stream. Bytes are counted from the model's tokens, which
// stand for the text's UTF-8 bytes, so bits per byte stay comparable across tokenizers.
import path from 'node:path';
import { readManifest } from '../../data/manifest.js';
import { dtypeForVocab, openSplit } from '../../data/shards.js';
import { Tokenizer } from '../../lm/tokenizer.js';
import { fixedWindows, type TokenArray } from '../../train/batches.js';

export interface ValWindows {
  /** Each window's context + 1 token ids in the model's tokenizer: the inputs, then the last target. */
  windows: number[][];
  /** UTF-8 bytes of the text each window's `context` targets stand for (end-of-document targets count 0). */
  bytes: number[];
  /** Whether the val text was re-tokenized (the dataset's tokenizer is not the model's). */
  retokenized: boolean;
}

/** Up to `count` evenly spaced windows of `context` + 1 tokens of `datasetDir`'s val split, in `tokenizer`'s ids. */
export async function datasetValWindows(
  datasetDir: string,
  tokenizer: Tokenizer,
  context: number,
  count: number,
): Promise<ValWindows> {
  const manifest = await readManifest(datasetDir).catch((err: Error) => {
    throw new Error(`validation data ${datasetDir}: ${err.message}`);
  });
  const { tokens } = await openSplit(datasetDir, 'val');
  const retokenized = manifest.tokenizer.sha256 !== tokenizer.sha256;
  let stream: TokenArray = tokens;
  if (retokenized) {
    const file = path.join(datasetDir, manifest.tokenizer.file);
    const own = Tokenizer.load(file);
    if (own.sha256 !== manifest.tokenizer.sha256)
      throw new Error(
        `validation data ${datasetDir}: ${file} has sha256 ${own.sha256}, the manifest says ${manifest.tokenizer.sha256}`,
      );
    stream = retokenize(tokens, own, tokenizer);
  }
  const picked = fixedWindows(stream, context, count);
  const byteLengths = tokenizer.byteLengths();
  const windows: number[][] = [];
  const bytes: number[] = [];
  for (let w = 0; w < picked.batch; w++) {
    const targets = picked.targets.subarray(w * context, (w + 1) * context);
    windows.push([...picked.inputs.subarray(w * context, (w + 1) * context), targets[context - 1]]);
    bytes.push(targets.reduce((sum, id) => sum + byteLengths[id], 0));
  }
  return { windows, bytes, retokenized };
}

/** The documents of a token stream (each ended by `from`'s end-of-document id) in `to`'s ids, each ended by `to`'s. */
export function retokenize(tokens: TokenArray, from: Tokenizer, to: Tokenizer): TokenArray {
  const out: number[] = [];
  let start = 0;
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] !== from.eotId) continue;
    for (const id of to.encode(from.decode(Array.from(tokens.subarray(start, i))))) out.push(id);
    out.push(to.eotId);
    start = i + 1;
  }
  return dtypeForVocab(to.vocabSize) === 'uint16' ? Uint16Array.from(out) : Uint32Array.from(out);
}
