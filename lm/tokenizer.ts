// Ringlet's tokenizer: byte-level BPE read from a Hugging Face tokenizer.json (trained by
// data/train-tokenizer.ts with the `tokenizers` binding). Encoding and decoding run here in
// TypeScript so that both are synchronous (the binding only has async encode/decode, awkward when
// sampling streams token by token); data/prepare.ts checks on every validation document that these
// ids equal the binding's, and tests do the same on varied text.
// Vocabulary layout written by Ringlet: ids 0-255 are the single bytes (id = byte value), ids
// 256..N-2 the merges in the order they were learned, id N-1 the end-of-document token <|endoftext|>.
// Byte-level BPE is lossless: decode(encode(text)) === text for any well-formed string.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const EOT_TOKEN = '<|endoftext|>';

// GPT-2's pre-tokenizer split, as the ByteLevel pre-tokenizer applies it. \s is spelt as
// \p{White_Space}, which is what the Rust side's \s means (JS's \s differs on U+0085 and U+FEFF).
const PIECES =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;
const CACHE_LIMIT = 100_000; // pieces remembered before the cache is cleared
const CACHEABLE_CHARS = 64;

const ByteLevelSchema = z.looseObject({ type: z.literal('ByteLevel') });
const TokenizerJsonSchema = z.looseObject({
  added_tokens: z.array(z.looseObject({ id: z.int().nonnegative(), content: z.string() })),
  normalizer: z.null(),
  pre_tokenizer: ByteLevelSchema.extend({ add_prefix_space: z.literal(false), use_regex: z.literal(true) }),
  decoder: ByteLevelSchema,
  model: z.looseObject({
    type: z.literal('BPE'),
    vocab: z.record(z.string(), z.int().nonnegative()),
    merges: z.array(z.union([z.tuple([z.string(), z.string()]), z.string()])),
  }),
});

/**
 * The byte-level alphabet in byte order: printable bytes stand for themselves and the others are
 * shifted to code points from 256 up, as in GPT-2 (this is what the ByteLevel pre-tokenizer emits).
 */
export function byteLevelSymbols(): string[] {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let shifted = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : 256 + shifted++));
}

export class Tokenizer {
  private readonly cache = new Map<string, number[]>();
  private readonly utf8 = new TextEncoder();

  private constructor(
    /** Number of ids, end-of-document token included. */
    readonly vocabSize: number,
    /** Id of the end-of-document token <|endoftext|>. */
    readonly eotId: number,
    /** sha256 (hex) of the tokenizer.json bytes. */
    readonly sha256: string,
    private readonly byteIds: Int32Array,
    /** Merge rank by pair key (left * vocabSize + right). */
    private readonly ranks: Map<number, number>,
    /** Id made by the merge of each rank. */
    private readonly mergedIds: Int32Array,
    /** The bytes each id stands for. */
    private readonly idBytes: Uint8Array[],
  ) {}

  static load(file: string): Tokenizer {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read tokenizer ${file}: ${(err as Error).message}`);
    }
    const fail = (why: string): never => {
      throw new Error(`${file} is not a Ringlet tokenizer.json: ${why}`);
    };
    let json: z.infer<typeof TokenizerJsonSchema>;
    try {
      json = TokenizerJsonSchema.parse(JSON.parse(bytes.toString('utf8')));
    } catch (err) {
      return fail(err instanceof z.ZodError ? z.prettifyError(err) : (err as Error).message);
    }

    const tokens: string[] = [];
    for (const [token, id] of Object.entries(json.model.vocab)) tokens[id] = token;
    for (const added of json.added_tokens) tokens[added.id] = added.content;
    const vocabSize = tokens.length;
    for (let id = 0; id < vocabSize; id++) if (tokens[id] === undefined) fail(`no token has id ${id}`);
    const eot = json.added_tokens.find((t) => t.content === EOT_TOKEN);
    if (!eot) return fail(`no ${EOT_TOKEN} token`);

    const vocab = json.model.vocab;
    const symbols = byteLevelSymbols();
    const byteIds = Int32Array.from(symbols, (symbol) =>
      Object.hasOwn(vocab, symbol) ? vocab[symbol] : fail(`byte symbol ${symbol} missing`),
    );
    const byteOf = new Map(symbols.map((symbol, b) => [symbol, b]));
    const isAdded = new Set(json.added_tokens.map((t) => t.id));
    const idBytes = tokens.map((token, id) =>
      isAdded.has(id)
        ? new TextEncoder().encode(token)
        : Uint8Array.from(token, (ch) => byteOf.get(ch) ?? fail(`token ${token} is not byte-level`)),
    );

    const ranks = new Map<number, number>();
    const mergedIds = new Int32Array(json.model.merges.length);
    json.model.merges.forEach((merge, rank) => {
      const [left, right] = typeof merge === 'string' ? merge.split(' ') : merge;
      const ids = [vocab[left], vocab[right], vocab[left + right]];
      if (ids.some((id) => id === undefined)) fail(`merge ${left} ${right} uses tokens outside the vocabulary`);
      const key = ids[0] * vocabSize + ids[1];
      if (!ranks.has(key)) ranks.set(key, rank);
      mergedIds[rank] = ids[2];
    });
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    return new Tokenizer(vocabSize, eot.id, sha256, byteIds, ranks, mergedIds, idBytes);
  }

  /** Token ids of `text`; a literal "<|endoftext|>" in the text becomes the end-of-document id. */
  encode(text: string): number[] {
    const ids: number[] = [];
    text.split(EOT_TOKEN).forEach((part, i) => {
      if (i > 0) ids.push(this.eotId);
      for (const [piece] of part.matchAll(PIECES)) {
        for (const id of this.encodePiece(piece)) ids.push(id);
      }
    });
    return ids;
  }

  /** Text of `ids`; bytes that do not form whole UTF-8 characters decode to U+FFFD. */
  decode(ids: readonly number[]): string {
    const parts = ids.map((id) => {
      const bytes = this.idBytes[id];
      if (bytes === undefined) throw new Error(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      return bytes;
    });
    return Buffer.concat(parts).toString('utf8');
  }

  /** UTF-8 bytes of text each id stands for, indexed by id; 0 for <|endoftext|>, which stands for no text. */
  byteLengths(): Uint32Array {
    return Uint32Array.from(this.idBytes, (bytes, id) => (id === this.eotId ? 0 : bytes.length));
  }

  private encodePiece(piece: string): number[] {
    const cached = this.cache.get(piece);
    if (cached) return cached;
    const ids = this.merge(Array.from(this.utf8.encode(piece), (b) => this.byteIds[b]));
    if (piece.length <= CACHEABLE_CHARS) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(piece, ids);
    }
    return ids;
  }

  /** Applies merges lowest rank first, each everywhere it matches left to right, as BPE does. */
  private merge(symbols: number[]): number[] {
    const { ranks, vocabSize } = this;
    while (symbols.length > 1) {
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = ranks.get(symbols[i] * vocabSize + symbols[i + 1]);
        if (rank !== undefined && rank < bestRank) bestRank = rank;
      }
      if (bestRank === Infinity) break;
      const merged = this.mergedIds[bestRank];
      const out: number[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && ranks.get(symbols[i] * vocabSize + symbols[i + 1]) === bestRank) {
          out.push(merged);
          i++;
        } else {
          out.push(symbols[i]);
        }
      }
      symbols = out;
    }
    return symbols;
  }
}
