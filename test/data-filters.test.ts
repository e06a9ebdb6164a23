// Corpus filters (duplicate documents, near-duplicate, too-short and garbage paragraphs) and the
// deterministic train/validation split.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CorpusFilter, isGarbage, isTooShort } from '../data/filters.js';
import { NearDuplicateIndex } from '../data/near-duplicates.js';
import { splitScore, validationIds } from '../data/split.js';

const LONG_A =
  'It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, his chin nuzzled into his breast ' +
  'in an effort to escape the vile wind, slipped quickly through the glass doors of Victory Mansions.';
const LONG_B =
  'Det var en gång en gammal kvarn vid en å, och i kvarnen bodde en mjölnare med sin hustru och sina sju barn, ' +
  'som alla arbetade från morgon till kväll för att få bröd på bordet när vintern kom.';

test('exact duplicate documents are dropped and counted, first occurrence kept', () => {
  const filter = new CorpusFilter();
  assert.deepEqual(filter.filterDocument(['Chapter one.', LONG_A]), ['Chapter one.', LONG_A]);
  assert.equal(filter.filterDocument(['Chapter one.', LONG_A]), null);
  assert.deepEqual(filter.filterDocument(['Chapter two.', LONG_B]), ['Chapter two.', LONG_B]);
  assert.equal(filter.counts.duplicate_documents, 1);
  assert.equal(filter.counts.input_documents, 3);
  assert.equal(filter.counts.near_duplicate_paragraphs, 0, 'a duplicate document must not count as near-duplicate paragraphs');
});

test('near-duplicate paragraphs are dropped; different and short repeated paragraphs stay', () => {
  const filter = new CorpusFilter();
  const nearA = LONG_A.replace('thirteen', 'fourteen').replace('quickly', 'quietly'); // a few characters changed
  const kept = filter.filterDocument([LONG_A, 'CHAPTER I.', nearA, LONG_B, 'CHAPTER I.', LONG_A.toUpperCase()]);
  assert.deepEqual(kept, [LONG_A, 'CHAPTER I.', LONG_B, 'CHAPTER I.']);
  assert.equal(filter.counts.near_duplicate_paragraphs, 2);
  // Across documents as well.
  assert.deepEqual(filter.filterDocument([`${LONG_B} Slut.`, 'Something new.']), ['Something new.']);
  assert.equal(filter.counts.near_duplicate_paragraphs, 3);
});

test('near-duplicate index: similar text collides, unrelated text of the same length does not', () => {
  const index = new NearDuplicateIndex();
  assert.equal(index.checkAndAdd(LONG_A), false);
  assert.equal(index.checkAndAdd(LONG_B), false);
  assert.equal(index.checkAndAdd(LONG_A.replace('April', 'March')), true);
  const words = LONG_A.split(' ');
  assert.equal(index.checkAndAdd([...words].reverse().join(' ')), false, 'same words in another order share few 5-char shingles');
});

test('too-short and garbage paragraphs are dropped and counted; documents left empty are counted', () => {
  assert.equal(isTooShort('I'), true);
  assert.equal(isTooShort('* * * * *'), true);
  assert.equal(isTooShort('12.'), true);
  assert.equal(isTooShort('Ah'), false);
  assert.equal(isGarbage('“No.”'), false, 'punctuation does not make dialogue garbage');
  assert.equal(isGarbage('Eton, May, 1832.'), false);
  assert.equal(isGarbage('14,010 l. 12 6 | 3.4 5.6 7.8 | 99'), true);
  assert.equal(isGarbage('%%%$$$ab$$$%%%'), true);

  const filter = new CorpusFilter();
  assert.deepEqual(filter.filterDocument(['“No.”', '—', 'x', '14,010 l. | 12 s. | 6 d. | 3.4 | 5.6', 'Real text.']), [
    '“No.”',
    'Real text.',
  ]);
  assert.equal(filter.filterDocument(['* * *', '1234 5678']), null);
  // '1234 5678' has no letter at all, so it counts as too short rather than garbage.
  assert.deepEqual(filter.counts, {
    input_documents: 2,
    duplicate_documents: 0,
    empty_documents: 1,
    input_paragraphs: 7,
    too_short_paragraphs: 4,
    garbage_paragraphs: 1,
    near_duplicate_paragraphs: 0,
  });
});

test('split: deterministic, independent of order, seeded, roughly the fraction asked', () => {
  const ids = Array.from({ length: 2000 }, (_, i) => `corpus/doc-${i}.xml`);
  const a = validationIds(ids, 7, 0.05);
  const b = validationIds([...ids].reverse(), 7, 0.05);
  assert.deepEqual([...a].sort(), [...b].sort());
  assert.ok(a.size > 60 && a.size < 140, `${a.size} of 2000 in validation`);
  const other = validationIds(ids, 8, 0.05);
  assert.notDeepEqual([...a].sort(), [...other].sort());
  for (const id of a) assert.ok(splitScore(7, id) < 0.05);
});

test('split: at least one document on each side when there are two or more', () => {
  for (let seed = 0; seed < 20; seed++) {
    const two = validationIds(['a.txt', 'b.txt'], seed, 0.05);
    assert.equal(two.size, 1, `seed ${seed}`);
    const mostlyVal = validationIds(['a.txt', 'b.txt', 'c.txt'], seed, 0.999);
    assert.equal(mostlyVal.size, 2, `seed ${seed}`);
  }
  assert.equal(validationIds(['only.txt'], 1, 0.05).size, 0);
  assert.throws(() => validationIds(['a', 'b'], 1, 0), /between 0 and 1/);
});
