// Reading corpus files: TEI body extraction, plain-text paragraphs, strict UTF-8 with byte offsets,
// and paragraph normalisation.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { normalizeParagraph } from '../data/normalize.js';
import { readTeiParagraphs } from '../data/tei.js';
import { readTextParagraphs } from '../data/text.js';
import { readUtf8Chunks } from '../data/utf8.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-extract-'));
const write = (name: string, content: string | Buffer): string => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
};

const TEI = `<?xml version="1.0" encoding="UTF-8"?>
<TEI xmlns="http://www.tei-c.org/ns/1.0" xml:id="T1">
  <teiHeader><fileDesc><titleStmt><title>Header title must not appear</title></titleStmt></fileDesc></teiHeader>
  <text>
    <front><div><head>PREFACE.</head><p>Front matter must not appear.</p></div></front>
    <body>
      <div type="chapter">
        <head>CHAPTER I.</head>
        <p>Fish &amp; chips cost 3&#163; &lt;then&gt;,<pb n="2"/> said
           Mr. <hi>Smith</hi>.<ref target="#N1">[1]</ref><note xml:id="N1">A footnote.</note></p>
        <milestone unit="section" rend="stars"/>
        <p>Han sa: ”Gå hem!”<lb/>Och så gick han.</p>
        <quote><l>First line of verse,</l>
          <l>second line of verse.</l></quote>
        <p>After the verse.</p>
        <l>A lone line,</l> <l>and its partner.</l> Stray text after verse.
        <gap unit="graphic"/><fw>Running head</fw>
        <p>See <ref target="https://example.org/">the site</ref>.</p>
      </div>
      <trailer>THE END.</trailer>
    </body>
    <back><div type="notes"><note>Back note must not appear.</note></div></back>
  </text>
</TEI>
`;

test('TEI: keeps body paragraphs only, drops header, front, back, notes and page furniture, decodes entities', async () => {
  const paragraphs = (await readTeiParagraphs(write('doc.xml', TEI))).map(normalizeParagraph);
  assert.deepEqual(paragraphs, [
    'CHAPTER I.',
    'Fish & chips cost 3£ <then>, said Mr. Smith.',
    'Han sa: ”Gå hem!” Och så gick han.',
    'First line of verse,\nsecond line of verse.',
    'After the verse.',
    'A lone line,\nand its partner.',
    'Stray text after verse.',
    'See the site.',
    'THE END.',
  ]);
});

test('TEI: malformed XML is an error naming the file, line and column', async () => {
  const file = write('broken.xml', '<TEI>\n<text><body>\n<p>unclosed paragraph</div></body></text></TEI>\n');
  await assert.rejects(readTeiParagraphs(file), (err: Error) => {
    assert.match(err.message, /malformed XML/);
    assert.ok(err.message.includes(`${file}:3:`), err.message);
    return true;
  });
});

test('TEI: a real ELTeC file yields its chapters without header or notes', async () => {
  const file = path.resolve(import.meta.dirname, '../../shared/data/eltec/eng/ENG18872_Lyall.xml');
  const paragraphs = (await readTeiParagraphs(file)).map(normalizeParagraph);
  assert.ok(paragraphs.length > 100, `${paragraphs.length} paragraphs`);
  const text = paragraphs.join('\n');
  assert.ok(!text.includes('ELTeC'), 'header text leaked into the body');
  assert.ok(!/<[a-z]+[ >]/.test(text), 'markup leaked into the text');
});

test('plain text: paragraphs split on blank lines, wrapped lines joined', async () => {
  const file = write('plain.txt', '\uFEFFFirst paragraph,\r\nwrapped here.\r\n\r\n\r\n  Second one.  \n \t\nThird\nparagraph\n');
  assert.deepEqual((await readTextParagraphs(file)).map(normalizeParagraph), [
    'First paragraph, wrapped here.',
    'Second one.',
    'Third paragraph',
  ]);
});

test('invalid UTF-8 is an error naming the file and the byte offset of the bad sequence', async () => {
  const bytes = Buffer.concat([Buffer.from('Räksmörgås\n\n'), Buffer.from([0xe2, 0x28, 0xa1]), Buffer.from(' tail')]);
  const file = write('bad.txt', bytes);
  const offset = Buffer.byteLength('Räksmörgås\n\n');
  await assert.rejects(readTextParagraphs(file), { message: `${file}: invalid UTF-8 at byte offset ${offset}` });
  // The same error whatever the chunk size, including chunks that cut characters in two.
  for (const chunkBytes of [1, 2, 3, 7]) {
    await assert.rejects(
      (async () => {
        for await (const _ of readUtf8Chunks(file, chunkBytes));
      })(),
      { message: `${file}: invalid UTF-8 at byte offset ${offset}` },
    );
  }
  const truncated = write('truncated.txt', Buffer.concat([Buffer.from('ok'), Buffer.from('😀').subarray(0, 3)]));
  await assert.rejects(readTextParagraphs(truncated), { message: `${truncated}: invalid UTF-8 at byte offset 2` });
  await assert.rejects(
    readTeiParagraphs(write('bad.xml', Buffer.concat([Buffer.from('<TEI>'), Buffer.from([0xff]), Buffer.from('</TEI>')]))),
    {
      message: /invalid UTF-8 at byte offset 5/,
    },
  );
});

test('valid multi-byte text read in tiny chunks comes back whole', async () => {
  const text = 'åäö ÅÄÖ ”citat” 😀 👨‍👩‍👧 end';
  const file = write('multi.txt', text);
  let read = '';
  for await (const chunk of readUtf8Chunks(file, 1)) read += chunk;
  assert.equal(read, text);
});

test('normalisation: NFC, controls and invisible characters removed, spaces collapsed, verse newlines kept', () => {
  assert.equal(normalizeParagraph('e\u0301te\u0301'), '\u00e9t\u00e9');
  assert.equal(normalizeParagraph('  a\u0000b\u00adc\u200bd\ufeff  \t e\u00a0\u2003f  '), 'abcd e f');
  assert.equal(normalizeParagraph(' line one  \n\n   line   two \n'), 'line one\nline two');
  assert.equal(normalizeParagraph('“Quoted” — dash… ‘single’'), '“Quoted” — dash… ‘single’');
  assert.equal(normalizeParagraph(' \u0007 \n \t'), '');
  assert.equal(normalizeParagraph('family 👨\u200d👩\u200d👧'), 'family 👨\u200d👩\u200d👧');
});
