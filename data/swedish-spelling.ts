// `--spelling sv-1906`: rewrites pre-1906 Swedish spelling into the spelling of the 1906 reform (Staaff's)
// and the usage that followed it, so that "hvad", "af" and "godt" become the "vad", "av" and "gott" a
// model would meet in modern text. Only the sound-spelling changes of the reform are made: hv → v, qv → kv,
// f/fv for the v sound → v, and a final dt → t or tt. Later changes (sjelf → själv, hafva → ha) are left alone.
//
// Every rule is an explicit pattern on a whole word (a maximal run of letters), checked against word counts
// of ELTeC-swe (docs/data.md lists them). English text passes through almost unchanged (hv, qv, fv and a
// vowel + fd do not occur in English words; final f is rewritten only in listed Swedish words): on ELTeC-eng,
// about 60 of 11.6 million words change, dialect and German names ("arf", "veldt").
// Case is kept (Hvad → Vad, HVAD → VAD). Swedish writes common nouns in lower case, so a capitalised word
// inside a sentence is a name and is left alone ("Lindqvist", "Silfverstolpe"); at the start of a sentence
// it is rewritten unless it looks like a name (NAME_ENDINGS) or is in EXCEPTIONS. Rewriting is idempotent.

const VOWEL = '[aeiouyåäöéèü]';

// prettier-ignore
/** Lower-case words never rewritten: names, loans and English words that a rule would otherwise match. */
const EXCEPTIONS = new Set([
  'adolf', 'alf', 'gustaf', 'josef', 'olof', 'rolf', 'rudolf', 'ulf', 'elisif', 'haqvin', 'qvidja',
  'brandt', 'rembrandt', 'arndt', 'berndt', 'berendt', 'windt', 'wejlandt', 'schmidt', 'smidt', 'humboldt',
  'afraid', 'afresh', 'afloat', 'aflame',
]);
/** Endings of capitalised words that mark a surname (Rundqvist, Mannerstedt, Bergfeldt). */
const NAME_ENDINGS = /(qvists?|stedt|stadt|feldt|faldt|hardt)$/;

// prettier-ignore
/** Words whose final f is a v sound, rewritten only as whole words (their endings occur in other words: filosof, katastrof, paragraf). */
const FINAL_F_WORDS = new Set([
  'af', 'deraf', 'däraf', 'häraf', 'hvaraf', 'utaf', 'derutaf', 'därutaf', 'sof', 'rof', 'ref', 'graf', 'prof',
  'behof', 'gif', 'haf', 'ljuf', 'blif', 'grof', 'styf', 'skrif', 'dof', 'döf', 'kraf', 'räf', 'bof', 'sträf',
  'snäf', 'kif', 'slef', 'stäf', 'skruf', 'klöf', 'luf', 'qvaf', 'kvaf', 'arf', 'djerf', 'djärf', 'förderf',
  'fördärf', 'tolf', 'korf', 'sparf', 'slarf', 'skärf', 'kalf',
]);
/** Final syllables with a v sound that also end compounds (begaf, själslif, pennknif, spindelväf). */
const FINAL_F_STEMS =
  /(gaf|blef|skref|dref|klef|lif|bref|knif|staf|väf|tjuf|hvalf|hvarf|löf|slaf|skalf|lof|skof|hof|värf|fördrif)$/;
/** Stems where f before l is a v sound (tafla, treflig, livlig, förtviflan, stöflar); reflex and cauliflower keep theirs. */
const F_BEFORE_L = /(ta|tre|^li|tvi|hö|stö|gru|skri|lju|drö|tä)fl/g;

interface Rule {
  name: string;
  rewrite(word: string): string;
}

const RULES: Rule[] = [
  // af- as a prefix (afsked, afgöra, afvakta → avvakta), not aft- (afton keeps its spelling) nor aff- (affär).
  { name: 'af-', rewrite: (w) => w.replace(/^af(?=[bdghjklmnprsv]|und)(?!ri)(?!gh)/, 'av') },
  { name: 'final f', rewrite: (w) => (FINAL_F_WORDS.has(w) || FINAL_F_STEMS.test(w) ? `${w.slice(0, -1)}v` : w) },
  { name: 'fl', rewrite: (w) => w.replace(F_BEFORE_L, '$1vl') },
  // ff stays (straffvärd, soffdyna): the f there is an f. fd only after a vowel (lefde, behöfde), not in self-denial.
  { name: 'fv', rewrite: (w) => w.replace(/(?<!f)fv/g, 'v') },
  { name: 'fd', rewrite: (w) => w.replace(new RegExp(`(?<=${VOWEL})fd`, 'g'), 'vd') },
  { name: 'hv', rewrite: (w) => w.replace(new RegExp(`hv(?=${VOWEL})`, 'g'), 'v') },
  { name: 'qv', rewrite: (w) => w.replace(/qv/g, 'kv') },
  { name: 'dt', rewrite: finalDt },
];

/**
 * A final dt after a consonant becomes t (ondt → ont, bestämdt → bestämt), ddt becomes tt (oskaddt →
 * oskatt); after a vowel dt becomes tt (godt → gott, bredt → brett), except the unstressed -adt of a
 * participle of two or more syllables, which becomes -at (oaktadt → oaktat, förbannadt → förbannat; gladt → glatt).
 */
function finalDt(w: string): string {
  if (!w.endsWith('dt')) return w;
  const stem = w.slice(0, -2);
  if (stem.endsWith('d')) return `${stem.slice(0, -1)}tt`;
  if (!new RegExp(`${VOWEL}$`).test(stem)) return `${stem}t`;
  const syllables = stem.match(new RegExp(`${VOWEL}+`, 'g'))!.length;
  return stem.endsWith('a') && syllables > 1 ? `${stem}t` : `${stem}tt`;
}

/** The modern spelling of one lower-case word (the word itself when no rule applies). */
export function modernizeWord(lower: string): string {
  if (EXCEPTIONS.has(lower)) return lower;
  return RULES.reduce((w, rule) => rule.rewrite(w), lower);
}

export interface SpellingResult {
  text: string;
  /** Rewritten words, lower case, in order of occurrence. */
  changes: Array<{ from: string; to: string }>;
}

const WORD = /\p{L}+/gu;
// What may stand before the first word of a sentence: sentence punctuation, quotes, dashes, brackets.
const SENTENCE_BREAK = new Set('.!?:;…"”“»«\'’([—–-');

/** Whether the word at `offset` starts the text or follows a sentence break (spaces between them skipped). */
function startsSentence(text: string, offset: number): boolean {
  let i = offset - 1;
  while (i >= 0 && /\s/.test(text[i])) i--;
  return i < 0 || SENTENCE_BREAK.has(text[i]);
}

/** Rewrites every old spelling in a paragraph, keeping each word's case. */
export function modernizeSwedish(text: string): SpellingResult {
  const changes: SpellingResult['changes'] = [];
  const out = text.replace(WORD, (word, offset: number) => {
    const lower = word.toLowerCase();
    const upper = word.toUpperCase();
    let shape: 'lower' | 'upper' | 'title';
    if (word === lower) shape = 'lower';
    else if (word === upper && word.length > 1) shape = 'upper';
    else if (word[0] === upper[0] && word.slice(1) === lower.slice(1)) {
      if (!startsSentence(text, offset) || NAME_ENDINGS.test(lower)) return word;
      shape = 'title';
    } else return word;
    const modern = modernizeWord(lower);
    if (modern === lower) return word;
    changes.push({ from: lower, to: modern });
    if (shape === 'upper') return modern.toUpperCase();
    return shape === 'title' ? modern[0].toUpperCase() + modern.slice(1) : modern;
  });
  return { text: out, changes };
}

/** How often each rewrite was made over a corpus: the manifest's record of what --spelling changed. */
export class RewriteCounts {
  private readonly counts = new Map<string, { from: string; to: string; count: number }>();
  wordsChanged = 0;

  add(changes: SpellingResult['changes']): void {
    for (const { from, to } of changes) {
      const key = `${from}\u0000${to}`;
      const entry = this.counts.get(key) ?? { from, to, count: 0 };
      entry.count++;
      this.counts.set(key, entry);
    }
    this.wordsChanged += changes.length;
  }

  /** The `n` most frequent rewrites, most frequent first (ties in alphabetical order). */
  top(n: number): Array<{ from: string; to: string; count: number }> {
    return [...this.counts.values()].sort((a, b) => b.count - a.count || (a.from < b.from ? -1 : 1)).slice(0, n);
  }
}
