// --spelling sv-1906 (data/swedish-spelling.ts): each rule on the words it is meant for, the words it must
// leave alone (names, loans, English), case kept, and rewriting twice changes nothing more.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { modernizeSwedish, modernizeWord, RewriteCounts } from '../data/swedish-spelling.js';

// prettier-ignore
const REWRITTEN: Array<[string, string]> = [
  // hv → v, at the start and inside compounds
  ['hvad', 'vad'], ['hvilken', 'vilken'], ['hvar', 'var'], ['hvem', 'vem'], ['hvarför', 'varför'], ['snöhvit', 'snövit'],
  // qv → kv
  ['qvinna', 'kvinna'], ['qväll', 'kväll'], ['beqväm', 'bekväm'], ['samvetsqval', 'samvetskval'],
  // fv → v; af- as a prefix → av-
  ['öfver', 'över'], ['hafva', 'hava'], ['äfven', 'även'], ['hufvud', 'huvud'], ['afsked', 'avsked'], ['afvakta', 'avvakta'],
  // a final f that is a v sound, in listed words and compounds
  ['af', 'av'], ['haf', 'hav'], ['lif', 'liv'], ['gaf', 'gav'], ['skref', 'skrev'], ['blef', 'blev'], ['deraf', 'derav'],
  ['begaf', 'begav'], ['själslif', 'själsliv'], ['pennknif', 'pennkniv'], ['hvalf', 'valv'],
  // f before d and l
  ['lefde', 'levde'], ['behöfde', 'behövde'], ['tafla', 'tavla'], ['förtviflan', 'förtvivlan'], ['lifligt', 'livligt'],
  // final dt
  ['godt', 'gott'], ['rödt', 'rött'], ['midt', 'mitt'], ['bredt', 'brett'], ['gladt', 'glatt'], ['ondt', 'ont'],
  ['hårdt', 'hårt'], ['bestämdt', 'bestämt'], ['oaktadt', 'oaktat'], ['förbannadt', 'förbannat'], ['oskaddt', 'oskatt'],
];

// prettier-ignore
const UNCHANGED = [
  // modern spellings and words whose f or dt is not the old v or t
  'vad', 'över', 'afton', 'affär', 'efter', 'ofta', 'gift', 'skrift', 'straffvärd', 'soffdyna', 'godtycke',
  'filosof', 'katastrof', 'paragraf', 'fotograf', 'chef', 'reflex',
  // names
  'gustaf', 'olof', 'josef', 'adolf', 'haqvin', 'brandt',
  // English
  'of', 'if', 'half', 'golf', 'elf', 'leaf', 'deaf', 'loaf', 'scarf', 'afraid', 'after', 'afloat', 'africa',
  'rifle', 'trifle', 'cauliflower', 'self', 'selfdenial', 'serfdom', 'thief', 'chief',
];

test('each rule rewrites the old spellings it is for', () => {
  for (const [old, modern] of REWRITTEN) assert.equal(modernizeWord(old), modern, old);
});

test('modern Swedish, names, loans and English words are left alone', () => {
  for (const word of UNCHANGED) assert.equal(modernizeWord(word), word, word);
});

test('case is kept: lower, capitalised at a sentence start, upper', () => {
  assert.equal(modernizeSwedish('Hvad sade du? Hvarför det?').text, 'Vad sade du? Varför det?');
  assert.equal(modernizeSwedish('HVAD HAFVA NI GJORDT').text, 'VAD HAVA NI GJORT');
  assert.equal(modernizeSwedish('— Godt, sade hon. ”Qvinnan blef qvar.”').text, '— Gott, sade hon. ”Kvinnan blev kvar.”');
});

test('capitalised words inside a sentence are names and stay; name endings stay even at a sentence start', () => {
  const text = 'Han talade med Lindqvist och Styfven om Hvasser. Mannerstedt kom. Rundqvist gick.';
  assert.equal(modernizeSwedish(text).text, text);
});

test('every change is reported in lower case, and counted', () => {
  const result = modernizeSwedish('Hvad är det för lif, hvad?');
  assert.equal(result.text, 'Vad är det för liv, vad?');
  assert.deepEqual(result.changes, [
    { from: 'hvad', to: 'vad' },
    { from: 'lif', to: 'liv' },
    { from: 'hvad', to: 'vad' },
  ]);
  const counts = new RewriteCounts();
  counts.add(result.changes);
  assert.equal(counts.wordsChanged, 3);
  assert.deepEqual(counts.top(1), [{ from: 'hvad', to: 'vad', count: 2 }]);
});

test('rewriting is idempotent', () => {
  for (const [old] of REWRITTEN) {
    const once = modernizeWord(old);
    assert.equal(modernizeWord(once), once, old);
  }
  const text = 'Hvad skulle hon göra? Hon hade blifvit qvar i sitt lif, oaktadt allt, och sof godt.';
  const once = modernizeSwedish(text).text;
  assert.deepEqual(modernizeSwedish(once), { text: once, changes: [] });
});
