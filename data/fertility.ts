// Tokenizer fertility: how much text one token carries, in UTF-8 bytes, characters (Unicode code points)
// and words, end-of-document tokens not counted. Words per token compares tokenizers across languages
// better than bytes do: Swedish å, ä and ö take two bytes each.
import type { Fertility } from './manifest.js';

/** Sizes of a text in the three units fertility is measured in. */
export interface TextSize {
  bytes: number;
  chars: number;
  words: number;
}

/** Words: whitespace-separated runs that hold at least one letter ("—" and "1906" are not words, "hvad?" is). */
export function countWords(text: string): number {
  let words = 0;
  for (const run of text.split(/\s+/)) if (/\p{L}/u.test(run)) words++;
  return words;
}

export function textSize(text: string): TextSize {
  let chars = 0;
  for (const _ of text) chars++;
  return { bytes: Buffer.byteLength(text), chars, words: countWords(text) };
}

/** Each unit per text token; null for every figure when there are no tokens. */
export function fertility(size: TextSize, textTokens: number): Fertility {
  const per = (n: number) => (textTokens > 0 ? n / textTokens : null);
  return { bytes_per_token: per(size.bytes), chars_per_token: per(size.chars), words_per_token: per(size.words) };
}
