// Near-duplicate paragraph detection with MinHash over 5-character shingles and locality-sensitive
// hashing. 120 hash functions in 12 bands of 10 rows: two paragraphs share a band (and the later
// one is called a duplicate) with probability 1-(1-J^10)^12 for Jaccard similarity J of their
// shingle sets: 0.99 at J=0.9, 0.74 at J=0.8, 0.29 at J=0.7, 0.07 at J=0.6, 0.01 at J=0.5.
// The index keeps only one 52-bit number per band per paragraph, never text.

export const SHINGLE_CHARS = 5;
export const BANDS = 12;
export const ROWS_PER_BAND = 10;
const HASHES = BANDS * ROWS_PER_BAND;

export class NearDuplicateIndex {
  private readonly seeds = makeSeeds(HASHES);
  private readonly signature = new Uint32Array(HASHES);
  private readonly bands: Set<number>[] = Array.from({ length: BANDS }, () => new Set<number>());

  /** True when `text` is a near duplicate of a paragraph seen before; otherwise remembers it. */
  checkAndAdd(text: string): boolean {
    const keys = this.bandKeys(text.toLowerCase());
    if (keys.some((key, band) => this.bands[band].has(key))) return true;
    keys.forEach((key, band) => this.bands[band].add(key));
    return false;
  }

  private bandKeys(text: string): number[] {
    const sig = this.signature;
    const seeds = this.seeds;
    sig.fill(0xffffffff);
    const shingles = Math.max(1, text.length - SHINGLE_CHARS + 1);
    for (let start = 0; start < shingles; start++) {
      let shingle = 0x811c9dc5; // FNV-1a over the shingle's UTF-16 code units
      const end = Math.min(text.length, start + SHINGLE_CHARS);
      for (let i = start; i < end; i++) shingle = Math.imul(shingle ^ text.charCodeAt(i), 0x01000193);
      for (let k = 0; k < HASHES; k++) {
        const h = mix32(shingle ^ seeds[k]);
        if (h < sig[k]) sig[k] = h;
      }
    }
    const keys: number[] = [];
    for (let band = 0; band < BANDS; band++) {
      let hi = 0x9e3779b9;
      let lo = 0x85ebca6b;
      for (let r = band * ROWS_PER_BAND; r < (band + 1) * ROWS_PER_BAND; r++) {
        hi = mix32(hi ^ sig[r]);
        lo = mix32(Math.imul(lo, 31) ^ sig[r]);
      }
      keys.push((hi & 0xfffff) * 0x100000000 + lo); // 20 + 32 bits: exact in a double
    }
    return keys;
  }
}

/** MurmurHash3's 32-bit finaliser: a bijection that mixes every input bit into every output bit. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Fixed per-hash seeds (splitmix32 stream), so results do not depend on the run. */
function makeSeeds(count: number): Uint32Array {
  const seeds = new Uint32Array(count);
  let state = 0x2545f491;
  for (let i = 0; i < count; i++) {
    state = (state + 0x9e3779b9) | 0;
    seeds[i] = mix32(state);
  }
  return seeds;
}
