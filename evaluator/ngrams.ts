// Word n-gram statistics of generated text, one definition for the samples suite's figures and the study's
// readability score (each tokenises words its own way and passes the words in).

/** Overlapping n-grams of `tokens`, each joined by one space (words hold no space, so n-grams stay distinct). */
export function ngrams(tokens: string[], n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + n <= tokens.length; i++) out.push(tokens.slice(i, i + n).join(' '));
  return out;
}

/** Unique n-grams over all n-grams (distinct-n, Li et al. 2016); 0 for none. */
export function distinctShare(grams: string[]): number {
  return grams.length === 0 ? 0 : new Set(grams).size / grams.length;
}

/** The share of n-grams equal to one that occurred earlier: near 1 for a text stuck in a loop; 0 for none. */
export function repeatedShare(grams: string[]): number {
  const seen = new Set<string>();
  let repeated = 0;
  for (const g of grams) {
    if (seen.has(g)) repeated++;
    else seen.add(g);
  }
  return grams.length === 0 ? 0 : repeated / grams.length;
}
