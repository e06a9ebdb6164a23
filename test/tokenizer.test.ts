// Byte-level BPE: training to an exact vocabulary size, lossless round trips, and agreement of the
// TypeScript encoder with the `tokenizers` binding.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { Tokenizer as Reference } from 'tokenizers';
import { paragraphChunks } from '../data/document-file.js';
import { normalizeParagraph } from '../data/normalize.js';
import { readTeiParagraphs } from '../data/tei.js';
import { trainTokenizer } from '../data/train-tokenizer.js';
import { EOT_TOKEN, Tokenizer } from '../lm/tokenizer.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-tokenizer-'));
const eltec = path.resolve(import.meta.dirname, '../../shared/data/eltec');
const tokenizerFile = path.join(dir, 'tokenizer.json');
let tokenizer: Tokenizer;
let reference: Reference;
let englishDocument: string;

const SAMPLES = [
  'The quick brown fox jumps over the lazy dog. "Isn\'t it?" she asked — twice.',
  'Hälsningar från Åre: ”Vi åt smörgåsar” och ’drack’ kaffe. ÅÄÖ åäö é ü ß',
  'Emoji: 😀 👍🏽 👨‍👩‍👧 🇸🇪 and CJK 漢字 and Greek αβγ',
  '   leading, inner    runs\t\ttabs\n\n\n and trailing   ',
  '\n',
  ' ',
  '',
  'Numbers 1234567890 3.14159 1,000,000 and symbols <>&|~^ {} [] ##',
  `An ${EOT_TOKEN} in the middle, and one at the end${EOT_TOKEN}`,
  'Controls \u0000\u0001\u007f and U+FFFD \uFFFD and NEL \u0085 BOM \uFEFF',
  // NEL is whitespace to the binding's regex but not to JavaScript's \s, and BOM the other way round.
  ' \uFEFFword !\uFEFF! a \u0085b \u0085\u0085x',
];

before(async () => {
  const files = [`${eltec}/eng/ENG18872_Lyall.xml`, `${eltec}/swe/SWE1963958_Lybeck.xml`];
  const documents = await Promise.all(
    files.map(async (f) =>
      (await readTeiParagraphs(f))
        .map(normalizeParagraph)
        .filter((p) => p)
        .join('\n\n'),
    ),
  );
  englishDocument = documents[0];
  const trainFile = path.join(dir, 'train.txt');
  // Frequent NEL and BOM sequences give merges that only come out right if whitespace is told apart exactly.
  fs.writeFileSync(trainFile, documents.join('\n') + '\n' + SAMPLES.at(-1)!.repeat(300));
  tokenizer = await trainTokenizer({ textFile: trainFile, vocabSize: 512, outFile: tokenizerFile });
  reference = Reference.fromFile(tokenizerFile);
});

test('the vocabulary has exactly the size asked, bytes first and <|endoftext|> last', () => {
  assert.equal(tokenizer.vocabSize, 512);
  assert.equal(tokenizer.eotId, 511);
  assert.equal(reference.getVocabSize(true), 512);
  assert.equal(reference.tokenToId(EOT_TOKEN), 511);
  assert.deepEqual(tokenizer.encode('A'), [65]);
  assert.deepEqual(tokenizer.encode('\u0000'), [0]);
  assert.equal(tokenizer.decode([0xc3, 0xa5]), 'å');
  const json = JSON.parse(fs.readFileSync(tokenizerFile, 'utf8'));
  assert.equal(json.pre_tokenizer.type, 'ByteLevel');
  assert.equal(json.pre_tokenizer.add_prefix_space, false);
  assert.equal(json.decoder.type, 'ByteLevel');
  assert.equal(Object.keys(json.model.vocab).length, 511, 'bytes and merges; <|endoftext|> is an added token');
});

test('decode(encode(x)) === x for English, Swedish, emoji, whitespace runs and controls', () => {
  for (const text of SAMPLES) assert.equal(tokenizer.decode(tokenizer.encode(text)), text, JSON.stringify(text));
  assert.equal(tokenizer.decode(tokenizer.encode(englishDocument)), englishDocument);
  assert.ok(tokenizer.encode(englishDocument).length < Buffer.byteLength(englishDocument) / 2, 'merges compress the text');
});

test('ids equal those of the tokenizers binding, on samples and on a whole novel', async () => {
  for (const text of [...SAMPLES, englishDocument]) {
    const expected = (await reference.encode(text, null, { addSpecialTokens: false })).getIds();
    assert.deepEqual(tokenizer.encode(text), expected, JSON.stringify(text.slice(0, 60)));
    assert.equal(await reference.decode(expected, false), tokenizer.decode(expected));
  }
});

test('encoding paragraph chunks gives the same ids as encoding the whole document', () => {
  const chunks = paragraphChunks(englishDocument);
  assert.ok(chunks.length > 100);
  assert.equal(chunks.join(''), englishDocument);
  assert.deepEqual(
    chunks.flatMap((c) => tokenizer.encode(c)),
    tokenizer.encode(englishDocument),
  );
});

test('the end-of-document token, byte lengths and the sha256 of the file', () => {
  assert.deepEqual(tokenizer.encode(EOT_TOKEN), [tokenizer.eotId]);
  assert.equal(tokenizer.decode([tokenizer.eotId]), EOT_TOKEN);
  const lengths = tokenizer.byteLengths();
  assert.equal(lengths.length, 512);
  assert.equal(lengths[65], 1);
  assert.equal(lengths[tokenizer.eotId], 0);
  const ids = tokenizer.encode(englishDocument);
  assert.equal(
    ids.reduce((sum, id) => sum + lengths[id], 0),
    Buffer.byteLength(englishDocument),
  );
  assert.equal(Tokenizer.load(tokenizerFile).sha256, tokenizer.sha256);
  assert.throws(() => tokenizer.decode([512]), /outside the vocabulary/);
});

test('training on too little text for the vocabulary asked is a clear error', async () => {
  const tiny = path.join(dir, 'tiny.txt');
  fs.writeFileSync(tiny, 'ab ab ab\n');
  await assert.rejects(
    trainTokenizer({ textFile: tiny, vocabSize: 400, outFile: path.join(dir, 'tiny.json') }),
    /learned only \d+ new tokens/,
  );
  await assert.rejects(
    trainTokenizer({ textFile: tiny, vocabSize: 100, outFile: path.join(dir, 'tiny.json') }),
    /vocabulary size must be an integer >= 257/,
  );
});

test('loading a file that is not a tokenizer.json names the file', () => {
  const bogus = path.join(dir, 'bogus.json');
  fs.writeFileSync(bogus, '{"model": {"type": "WordPiece"}}');
  assert.throws(
    () => Tokenizer.load(bogus),
    (err: Error) => err.message.startsWith(`${bogus} is not a Ringlet tokenizer.json`),
  );
  assert.throws(() => Tokenizer.load(path.join(dir, 'missing.json')), /cannot read tokenizer/);
});
