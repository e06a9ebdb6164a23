// nspell 2.1.5 turns each Hunspell COMPOUNDRULE into a regular expression without anchors and without
// escaping the words it splices in (wooorm/nspell#21). dictionary-sv's rule "0*" then matches the empty
// string, and its compound part "." matches any character, so every string passes as Swedish.
// This replaces the rules with matchers that read them as Hunspell does: the whole word is a sequence
// of parts, each a word carrying the rule's flag. Sets rather than a fixed regular expression, since
// one Swedish flag has 71,000 words and V8 took seconds to compile such an alternation.
import type { Dictionary } from './readability.js';

/** The fields of an nspell instance that hold its compound rules (internal, stable in the pinned 2.1.5). */
export interface CompoundRuleFields {
  // nspell only calls test() on each rule.
  compoundRules: { test(word: string): boolean }[];
  compoundRuleCodes: Record<string, string[]>;
}

export function fixCompoundRules(spell: CompoundRuleFields, dictionary: Dictionary): void {
  const rules = compoundRuleSources(new TextDecoder().decode(dictionary.aff));
  if (rules.length !== spell.compoundRules.length) {
    throw new Error(`nspell holds ${spell.compoundRules.length} compound rules, the .aff file ${rules.length}`);
  }
  // nspell's expressions ignored case; the parts are lower-cased here to the same end.
  const parts = new Map<string, Set<string>>();
  for (const [flag, words] of Object.entries(spell.compoundRuleCodes)) {
    parts.set(flag, new Set(words.map((w) => w.toLowerCase())));
  }
  spell.compoundRules = rules.map((rule) => {
    const elements = parseRule(rule).map((e) => ({ ...e, parts: parts.get(e.flag) ?? new Set<string>() }));
    return { test: (word: string) => matches(elements, word.toLowerCase()) };
  });
}

interface Element {
  flag: string;
  /** '' exactly once, '?' at most once, '*' any number of times. */
  repeat: '' | '?' | '*';
}

function parseRule(rule: string): Element[] {
  const elements: Element[] = [];
  for (const c of rule) {
    if (c === '*' || c === '?') elements[elements.length - 1].repeat = c;
    else elements.push({ flag: c, repeat: '' });
  }
  return elements;
}

function matches(elements: (Element & { parts: Set<string> })[], word: string): boolean {
  const failed = new Set<number>(); // element × position pairs already known not to finish the word
  const from = (e: number, pos: number): boolean => {
    if (e === elements.length) return pos === word.length;
    const key = e * (word.length + 1) + pos;
    if (failed.has(key)) return false;
    const { repeat, parts } = elements[e];
    let ok = repeat !== '' && from(e + 1, pos);
    for (let end = pos + 1; !ok && end <= word.length; end++) {
      if (parts.has(word.slice(pos, end))) ok = from(repeat === '*' ? e : e + 1, end);
    }
    if (!ok) failed.add(key);
    return ok;
  };
  return from(0, 0);
}

/** The rule strings of the .aff file's COMPOUNDRULE table, in order ("COMPOUNDRULE n" heads the table). */
function compoundRuleSources(aff: string): string[] {
  const rows = aff.split(/\r?\n/).filter((line) => line.startsWith('COMPOUNDRULE'));
  return rows.slice(1).map((line) => line.split(/\s+/)[1]);
}
