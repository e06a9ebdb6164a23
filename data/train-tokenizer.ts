// Trains Ringlet's byte-level BPE tokenizer with the `tokenizers` binding and writes a Hugging Face
// tokenizer.json with exactly `vocabSize` ids (layout documented in lm/tokenizer.ts: bytes 0-255,
// merges, <|endoftext|> last). The binding's train() takes no vocabulary size (its default trainer
// stops at 30000 tokens), but BPE merges are learned in order, so the first vocabSize-257 merges
// that yield new tokens are exactly what a trainer told to stop there would have kept.
// The binding's trainer writes a few blank lines (its progress bars) to stdout.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { BPE, Tokenizer as HfTokenizer, byteLevelPreTokenizer } from 'tokenizers';
import { z } from 'zod';
import { writeFileAtomic } from '../lm/atomic-write.js';
import { EOT_TOKEN, Tokenizer, byteLevelSymbols } from '../lm/tokenizer.js';

export const MIN_VOCAB_SIZE = 257; // the 256 bytes and <|endoftext|>

const TrainedSchema = z.object({
  model: z.looseObject({
    type: z.literal('BPE'),
    merges: z.array(z.tuple([z.string(), z.string()])),
  }),
});

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

/** Trains on the text in `textFile` (read line by line by the binding) and writes `outFile`. */
export async function trainTokenizer(opts: { textFile: string; vocabSize: number; outFile: string }): Promise<Tokenizer> {
  const { textFile, vocabSize, outFile } = opts;
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE) {
    throw new Error(`vocabulary size must be an integer >= ${MIN_VOCAB_SIZE}, got ${vocabSize}`);
  }
  const trainer = new HfTokenizer(BPE.empty());
  trainer.setPreTokenizer(byteLevelPreTokenizer(false, true));
  trainer.train([textFile]);
  const scratch = await mkdtemp(path.join(path.dirname(outFile), '.tmp-tokenizer-'));
  let trained: z.infer<typeof TrainedSchema>;
  try {
    trainer.save(path.join(scratch, 'trained.json'), false);
    trained = TrainedSchema.parse(JSON.parse(await readFile(path.join(scratch, 'trained.json'), 'utf8')));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }

  const byteSymbols = byteLevelSymbols();
  const vocab: Record<string, number> = {};
  byteSymbols.forEach((symbol, byte) => (vocab[symbol] = byte));
  const eotId = vocabSize - 1;
  let nextId = byteSymbols.length;
  const merges: [string, string][] = [];
  for (const [left, right] of trained.model.merges) {
    if (nextId === eotId) break;
    merges.push([left, right]);
    const merged = left + right;
    // Two different pairs can spell the same token; the later merge then adds no id.
    if (!Object.hasOwn(vocab, merged)) vocab[merged] = nextId++;
  }
  if (nextId < eotId) {
    throw new Error(
      `tokenizer training learned only ${nextId - byteSymbols.length} new tokens; vocabulary size ${vocabSize} ` +
        `needs ${vocabSize - MIN_VOCAB_SIZE} (too little training text, or above the trainer's 30000-token limit)`,
    );
  }

  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: eotId, content: EOT_TOKEN, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: BYTE_LEVEL,
    post_processor: null,
    decoder: BYTE_LEVEL,
    model: { ...trained.model, vocab, merges },
  };
  await writeFileAtomic(outFile, JSON.stringify(json));
  const tokenizer = Tokenizer.load(outFile);
  if (tokenizer.vocabSize !== vocabSize || tokenizer.eotId !== eotId) {
    throw new Error(
      `${outFile}: expected ${vocabSize} ids with ${EOT_TOKEN} = ${eotId}, got ${tokenizer.vocabSize} and ${tokenizer.eotId}`,
    );
  }
  return tokenizer;
}
