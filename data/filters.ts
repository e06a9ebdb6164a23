// Corpus filters applied one document at a time, each counting what it removed:
// - duplicate documents: same normalised text (sha256) as an earlier document;
// - too-short paragraphs: under 2 characters or without any letter (page numbers, "* * *", "—");
// - garbage paragraphs: dominated by digits and symbols (tables, numbers, markup debris): letters are
//   under half of the characters that are neither space nor punctuation. Punctuation does not count
//   against a paragraph, so a line of dialogue like “No.” stays;
// - near-duplicate paragraphs: paragraphs of at least 100 characters that MinHash/LSH finds
//   similar (Jaccard >= ~0.8) to an earlier kept paragraph. Shorter ones are left alone: a repeated
//   "CHAPTER I." is real text, and short shingle sets give unreliable similarity.
// Documents left without paragraphs are counted as empty. First occurrence wins, so results depend
// on the document order: prepare.ts feeds documents sorted by id.
// With the quality filters off (`--filters off`, the data-processing ablation) only duplicate documents are
// removed: a novel present twice under two ids could land in both splits, which leaks validation text.
import { createHash } from 'node:crypto';
import { NearDuplicateIndex } from './near-duplicates.js';

export const NEAR_DUPLICATE_MIN_CHARS = 100;
export const MIN_LETTER_FRACTION = 0.5;

export interface FilterCounts {
  input_documents: number;
  duplicate_documents: number;
  empty_documents: number;
  input_paragraphs: number;
  too_short_paragraphs: number;
  garbage_paragraphs: number;
  near_duplicate_paragraphs: number;
}

export class CorpusFilter {
  readonly counts: FilterCounts = {
    input_documents: 0,
    duplicate_documents: 0,
    empty_documents: 0,
    input_paragraphs: 0,
    too_short_paragraphs: 0,
    garbage_paragraphs: 0,
    near_duplicate_paragraphs: 0,
  };
  private readonly documentHashes = new Set<string>();
  private readonly nearDuplicates = new NearDuplicateIndex();

  /** `quality`: remove too-short, garbage and near-duplicate paragraphs (default true). */
  constructor(private readonly options: { quality: boolean } = { quality: true }) {}

  /** Kept paragraphs of a document given as normalised, non-empty paragraphs; null when it is dropped. */
  filterDocument(paragraphs: string[]): string[] | null {
    const c = this.counts;
    c.input_documents++;
    c.input_paragraphs += paragraphs.length;
    const hash = createHash('sha256').update(paragraphs.join('\n\n')).digest('hex');
    if (this.documentHashes.has(hash)) {
      c.duplicate_documents++;
      return null;
    }
    this.documentHashes.add(hash);
    const kept = this.options.quality ? this.qualityParagraphs(paragraphs) : paragraphs;
    if (kept.length === 0) {
      c.empty_documents++;
      return null;
    }
    return kept;
  }

  private qualityParagraphs(paragraphs: string[]): string[] {
    const c = this.counts;
    const kept: string[] = [];
    for (const paragraph of paragraphs) {
      if (isTooShort(paragraph)) c.too_short_paragraphs++;
      else if (isGarbage(paragraph)) c.garbage_paragraphs++;
      else if (paragraph.length >= NEAR_DUPLICATE_MIN_CHARS && this.nearDuplicates.checkAndAdd(paragraph))
        c.near_duplicate_paragraphs++;
      else kept.push(paragraph);
    }
    return kept;
  }
}

export function isTooShort(paragraph: string): boolean {
  return paragraph.length < 2 || !/\p{L}/u.test(paragraph);
}

export function isGarbage(paragraph: string): boolean {
  const counted = paragraph.replace(/[\s\p{P}]+/gu, '').length;
  const letters = paragraph.replace(/\P{L}+/gu, '').length;
  return letters < MIN_LETTER_FRACTION * counted;
}
