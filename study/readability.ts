// A scripted readability score for generated samples and, as their reference, real held-out text.
// Definitions (every rate is 0 for a text with nothing to count):
// - words: runs of letters (Unicode \p{L} with combining marks), joined across an inner apostrophe so that
//   "don't" and "o'er" stay one word as the dictionaries list them; digits, punctuation and hyphens split.
// - dictionary_share: the share of word tokens the language's Hunspell dictionary (nspell with
//   dictionary-en or dictionary-sv) accepts as written or lower-cased, so a sentence-initial capital
//   costs nothing while an all-lower-case proper name may still fail.
// - repetition_rate: the share of word 4-grams (lower-cased, overlapping) equal to a 4-gram that starts
//   earlier in the same text: degenerate loops score near 1, fluent prose near 0.
// - distinct_1, distinct_2: unique lower-cased word unigrams (bigrams) over all unigrams (bigrams).
import { createRequire } from 'node:module';
import { distinctShare, ngrams, repeatedShare } from '../evaluator/ngrams.js';
import { fixCompoundRules, type CompoundRuleFields } from './nspell-compounds.js';
import type { Language, Readability } from './results.js';

const WORD = /[\p{L}\p{M}]+(?:['’][\p{L}\p{M}]+)*/gu;

/** The words of `text` as the readability figures count them. */
export function words(text: string): string[] {
  return text.normalize('NFC').match(WORD) ?? [];
}

interface SpellChecker extends CompoundRuleFields {
  correct(word: string): boolean;
}
export interface Dictionary {
  aff: Uint8Array;
  dic: Uint8Array;
}
// nspell is CommonJS without types; this is the one call the score makes of it.
const nspell = createRequire(import.meta.url)('nspell') as (dictionary: Dictionary) => SpellChecker;

const checkers = new Map<Language, Promise<SpellChecker>>();

/** Each language's checker is built once, on first use: parsing a dictionary takes about a second. */
function spellChecker(language: Language): Promise<SpellChecker> {
  let checker = checkers.get(language);
  if (checker === undefined) {
    const dictionary: Promise<{ default: Dictionary }> = language === 'eng' ? import('dictionary-en') : import('dictionary-sv');
    checker = dictionary.then(({ default: d }) => {
      const spell = nspell(d);
      fixCompoundRules(spell, d);
      return spell;
    });
    checkers.set(language, checker);
  }
  return checker;
}

export async function readability(text: string, language: Language): Promise<Readability> {
  const tokens = words(text);
  const spell = await spellChecker(language);
  const known = tokens.filter((w) => spell.correct(w) || spell.correct(w.toLowerCase())).length;
  const lower = tokens.map((w) => w.toLowerCase());
  return {
    words: tokens.length,
    dictionary_share: rate(known, tokens.length),
    repetition_rate: repeatedShare(ngrams(lower, 4)),
    distinct_1: distinctShare(ngrams(lower, 1)),
    distinct_2: distinctShare(ngrams(lower, 2)),
  };
}

function rate(count: number, total: number): number {
  return total === 0 ? 0 : count / total;
}
