// `ringlet data prepare`: turns TEI and plain-text files into a dataset folder holding
// manifest.json, tokenizer.json and token shards (train-000.bin, val-000.bin, ...).
// Memory stays flat as the corpus grows: documents are handled one at a time and text lives in
// temporary files between passes.
//   1. read each document (sorted by id) → normalise → modernise spelling (--spelling) → filter
//      (--filters) → append to a scratch file;
//   2. split the kept documents by id into train and validation files;
//   3. train the tokenizer on the train file only;
//   4. encode each document into shards, end-of-document token after each, checking on every
//      validation document that decode(encode(text)) === text and that the ids equal those of the
//      `tokenizers` binding (lm/tokenizer.ts encodes in TypeScript);
//   5. write manifest.json last. An earlier manifest in the folder is removed first, so a folder
//      with a manifest always holds a complete dataset, even after a failed run.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { Tokenizer as ReferenceTokenizer } from 'tokenizers';
import { DocumentFileWriter, paragraphChunks, readDocuments } from './document-file.js';
import { fertility, textSize, type TextSize } from './fertility.js';
import { CorpusFilter, type FilterCounts } from './filters.js';
import {
  FiltersSettingSchema,
  MANIFEST_FILE,
  MANIFEST_FORMAT_VERSION,
  ManifestSchema,
  SpellingSchemeSchema,
  type Fertility,
  type FiltersSetting,
  type Manifest,
  type ShardEntry,
  type SpellingScheme,
} from './manifest.js';
import { normalizeParagraph } from './normalize.js';
import { DEFAULT_SHARD_TOKENS, ShardWriter, dtypeForVocab } from './shards.js';
import { listSources, type SourceDocument } from './sources.js';
import { validationIds, type SplitName } from './split.js';
import { modernizeSwedish, RewriteCounts } from './swedish-spelling.js';
import { readTeiParagraphs } from './tei.js';
import { readTextParagraphs } from './text.js';
import { MIN_VOCAB_SIZE, trainTokenizer } from './train-tokenizer.js';
import { fsyncDir, writeFileAtomic } from '../lm/atomic-write.js';
import type { Tokenizer } from '../lm/tokenizer.js';

export const TOKENIZER_FILE = 'tokenizer.json';
/** Rewrites the manifest and the summary list. */
const TOP_REWRITES = 20;

export interface PrepareOptions {
  inputs: string[];
  outDir: string;
  vocab: number;
  seed: number;
  valFraction: number;
  /** argv of the command, recorded in the manifest. */
  command: string[];
  /** Show progress bars on stderr (only when it is a terminal). */
  progress?: boolean;
  /** Most tokens per shard file; default 2^24. */
  shardTokens?: number;
  /** Quality filters and near-duplicate removal; default on. */
  filters?: FiltersSetting;
  /** Spelling normalisation; default none. */
  spelling?: SpellingScheme;
}

export interface PrepareSummary extends FilterCounts {
  out_dir: string;
  documents: number;
  train_documents: number;
  val_documents: number;
  train_tokens: number;
  val_tokens: number;
  /** Validation text bytes per token (end-of-document tokens not counted); null without validation text. */
  bytes_per_token: number | null;
  fertility: { train: Fertility; val: Fertility };
  filters: FiltersSetting;
  spelling: SpellingScheme;
  spelling_words_changed: number;
  spelling_top_rewrites: Manifest['spelling_changes']['top_rewrites'];
  vocab_size: number;
  peak_rss_bytes: number;
  /** decode(encode(text)) === text held for every validation document (prepare throws otherwise). */
  roundtrip_ok: true;
  seconds: number;
}

interface KeptDocument {
  id: string;
  paragraphs: number;
  size: TextSize;
}

interface SplitTotals {
  documents: number;
  paragraphs: number;
  size: TextSize;
  tokens: number;
  /** Tokens of the text alone, end-of-document tokens not counted. */
  textTokens: number;
}

const SPLITS: readonly SplitName[] = ['train', 'val'];
const REFERENCE_BATCH = 256; // paragraphs per call to the binding

export async function prepareDataset(opts: PrepareOptions): Promise<PrepareSummary> {
  const started = Date.now();
  checkPrepareOptions(opts);
  const filters = opts.filters ?? 'on';
  const spelling = opts.spelling ?? 'none';
  const shardTokens = opts.shardTokens ?? DEFAULT_SHARD_TOKENS;
  const showProgress = opts.progress === true && process.stderr.isTTY === true;
  const sources = await listSources(opts.inputs);
  const outDir = path.resolve(opts.outDir);
  await mkdir(outDir, { recursive: true });
  await rm(path.join(outDir, MANIFEST_FILE), { force: true });
  await fsyncDir(outDir);
  const scratch = await mkdtemp(path.join(outDir, '.tmp-prepare-'));
  try {
    const keptFile = path.join(scratch, 'kept.txt');
    const { kept, counts, rewrites } = await extractDocuments(sources.documents, keptFile, { filters, spelling }, showProgress);
    if (kept.length === 0) {
      throw new Error(
        `no usable text in ${sources.inputs.join(', ')}: all ${sources.documents.length} documents were empty ` +
          `or removed by the filters (${JSON.stringify(counts)})`,
      );
    }

    const valIds = validationIds(
      kept.map((d) => d.id),
      opts.seed,
      opts.valFraction,
    );
    const splitOf = (doc: KeptDocument): SplitName => (valIds.has(doc.id) ? 'val' : 'train');
    const splitFiles = { train: path.join(scratch, 'train.txt'), val: path.join(scratch, 'val.txt') };
    await splitDocuments(keptFile, kept, splitOf, splitFiles);
    await rm(keptFile);

    const tokenizerFile = path.join(outDir, TOKENIZER_FILE);
    const tokenizer = await trainTokenizer({ textFile: splitFiles.train, vocabSize: opts.vocab, outFile: tokenizerFile });
    const reference = ReferenceTokenizer.fromFile(tokenizerFile);

    const dtype = dtypeForVocab(tokenizer.vocabSize);
    const shards: ShardEntry[] = [];
    const totals = {} as Record<SplitName, SplitTotals>;
    for (const split of SPLITS) {
      const docs = kept.filter((d) => splitOf(d) === split);
      const writer = new ShardWriter(outDir, split, dtype, shardTokens);
      const check = split === 'val' ? reference : null;
      const textTokens = await encodeSplit(splitFiles[split], docs, tokenizer, check, writer, showProgress, split).catch(
        async (err) => {
          await writer.abort();
          throw err;
        },
      );
      shards.push(...(await writer.close()));
      const sum = (unit: keyof TextSize) => docs.reduce((n, d) => n + d.size[unit], 0);
      totals[split] = {
        documents: docs.length,
        paragraphs: docs.reduce((n, d) => n + d.paragraphs, 0),
        size: { bytes: sum('bytes'), chars: sum('chars'), words: sum('words') },
        tokens: textTokens + docs.length,
        textTokens,
      };
    }

    const fertilities = {
      train: fertility(totals.train.size, totals.train.textTokens),
      val: fertility(totals.val.size, totals.val.textTokens),
    };
    const bytesPerToken = fertilities.val.bytes_per_token;
    const topRewrites = rewrites.top(TOP_REWRITES);
    const manifest: Manifest = ManifestSchema.parse({
      format_version: MANIFEST_FORMAT_VERSION,
      created_at: new Date().toISOString(),
      command: opts.command,
      seed: opts.seed,
      val_fraction: opts.valFraction,
      sources: {
        inputs: sources.inputs,
        files: sources.documents.length,
        bytes: sources.bytes,
        skipped_files: sources.skippedFiles,
      },
      documents: { train: totals.train.documents, val: totals.val.documents },
      paragraphs: { train: totals.train.paragraphs, val: totals.val.paragraphs },
      bytes: { train: totals.train.size.bytes, val: totals.val.size.bytes },
      tokens: { train: totals.train.tokens, val: totals.val.tokens },
      bytes_per_token: bytesPerToken,
      dtype,
      shard_tokens: shardTokens,
      shards,
      tokenizer: { file: TOKENIZER_FILE, sha256: tokenizer.sha256, vocab_size: tokenizer.vocabSize, eot_id: tokenizer.eotId },
      processing: { filters, spelling },
      spelling_changes: { words_changed: rewrites.wordsChanged, top_rewrites: topRewrites },
      fertility: fertilities,
      filters: counts,
    } satisfies Manifest);
    await writeFileAtomic(path.join(outDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await removeStaleShards(outDir, shards);

    return {
      out_dir: outDir,
      documents: kept.length,
      train_documents: totals.train.documents,
      val_documents: totals.val.documents,
      train_tokens: totals.train.tokens,
      val_tokens: totals.val.tokens,
      bytes_per_token: bytesPerToken,
      fertility: fertilities,
      filters,
      spelling,
      spelling_words_changed: rewrites.wordsChanged,
      spelling_top_rewrites: topRewrites,
      vocab_size: tokenizer.vocabSize,
      ...counts,
      peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
      roundtrip_ok: true,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Throws naming the option unless the numbers are in range (what prepareDataset checks before reading anything). */
export function checkPrepareOptions(opts: PrepareOptions): void {
  if (!Number.isInteger(opts.vocab) || opts.vocab < MIN_VOCAB_SIZE) {
    throw new Error(`vocabulary size must be an integer >= ${MIN_VOCAB_SIZE}, got ${opts.vocab}`);
  }
  if (!Number.isSafeInteger(opts.seed)) throw new Error(`seed must be an integer, got ${opts.seed}`);
  if (!(opts.valFraction > 0 && opts.valFraction < 1)) {
    throw new Error(`validation fraction must be between 0 and 1 (exclusive), got ${opts.valFraction}`);
  }
  const shardTokens = opts.shardTokens ?? DEFAULT_SHARD_TOKENS;
  if (!Number.isInteger(shardTokens) || shardTokens <= 0)
    throw new Error(`shard size must be a positive integer, got ${shardTokens}`);
  if (opts.filters !== undefined && !FiltersSettingSchema.safeParse(opts.filters).success)
    throw new Error(`filters must be one of ${FiltersSettingSchema.options.join(', ')}, got ${JSON.stringify(opts.filters)}`);
  if (opts.spelling !== undefined && !SpellingSchemeSchema.safeParse(opts.spelling).success)
    throw new Error(`spelling must be one of ${SpellingSchemeSchema.options.join(', ')}, got ${JSON.stringify(opts.spelling)}`);
}

/**
 * Pass 1: reads, normalises, modernises and filters every document; kept ones go to `keptFile` in order.
 * The filter's near-duplicate index lives only as long as this pass.
 */
async function extractDocuments(
  documents: SourceDocument[],
  keptFile: string,
  processing: { filters: FiltersSetting; spelling: SpellingScheme },
  showProgress: boolean,
): Promise<{ kept: KeptDocument[]; counts: FilterCounts; rewrites: RewriteCounts }> {
  const filter = new CorpusFilter({ quality: processing.filters === 'on' });
  const rewrites = new RewriteCounts();
  const modernize = (paragraph: string): string => {
    if (processing.spelling === 'none') return paragraph;
    const { text, changes } = modernizeSwedish(paragraph);
    rewrites.add(changes);
    return text;
  };
  const bar = progressBar(showProgress, 'reading', documents.length);
  const out = await DocumentFileWriter.create(keptFile);
  const kept: KeptDocument[] = [];
  try {
    for (const doc of documents) {
      const raw = doc.format === 'tei' ? await readTeiParagraphs(doc.file) : await readTextParagraphs(doc.file);
      const normalized = raw
        .map(normalizeParagraph)
        .filter((p) => p.length > 0)
        .map(modernize);
      const paragraphs = filter.filterDocument(normalized);
      if (paragraphs !== null) {
        const text = paragraphs.join('\n\n');
        await out.write(text);
        kept.push({ id: doc.id, paragraphs: paragraphs.length, size: textSize(text) });
      }
      bar.increment();
    }
  } finally {
    bar.stop();
    await out.close();
  }
  return { kept, counts: filter.counts, rewrites };
}

/** Pass 2: copies each kept document into its split's file. */
async function splitDocuments(
  keptFile: string,
  kept: KeptDocument[],
  splitOf: (doc: KeptDocument) => SplitName,
  files: Record<SplitName, string>,
): Promise<void> {
  const writers = { train: await DocumentFileWriter.create(files.train), val: await DocumentFileWriter.create(files.val) };
  try {
    let index = 0;
    for await (const text of readDocuments(keptFile)) await writers[splitOf(kept[index++])].write(text);
    if (index !== kept.length) throw new Error(`internal error: ${keptFile} holds ${index} documents, expected ${kept.length}`);
  } finally {
    await writers.train.close();
    await writers.val.close();
  }
}

/**
 * Pass 3: encodes one split into shards; returns the number of text tokens (end-of-document tokens
 * excluded). With a reference tokenizer, each document must also round-trip and match its ids.
 */
async function encodeSplit(
  file: string,
  docs: KeptDocument[],
  tokenizer: Tokenizer,
  reference: ReferenceTokenizer | null,
  writer: ShardWriter,
  showProgress: boolean,
  split: SplitName,
): Promise<number> {
  const bar = progressBar(showProgress, `encoding ${split}`, docs.length);
  let textTokens = 0;
  let index = 0;
  try {
    for await (const text of readDocuments(file)) {
      // Paragraph by paragraph, which gives the same ids as the whole text with less memory.
      const chunks = paragraphChunks(text);
      const ids: number[][] = [];
      for (const chunk of chunks) {
        const chunkIds = tokenizer.encode(chunk);
        await writer.write(chunkIds);
        textTokens += chunkIds.length;
        if (reference) ids.push(chunkIds);
      }
      await writer.write([tokenizer.eotId]);
      if (reference) await checkEncoding(text, chunks, ids, tokenizer, reference, docs[index].id);
      index++;
      bar.increment();
    }
  } finally {
    bar.stop();
  }
  return textTokens;
}

/** decode(encode(text)) === text for the whole document, and every chunk's ids equal the binding's. */
async function checkEncoding(
  text: string,
  chunks: string[],
  ids: number[][],
  tokenizer: Tokenizer,
  reference: ReferenceTokenizer,
  docId: string,
): Promise<void> {
  const decoded = tokenizer.decode(ids.flat());
  if (decoded !== text)
    throw new Error(`tokenizer round trip failed on validation document ${docId}: ${firstDifference(text, decoded)}`);
  for (let start = 0; start < chunks.length; start += REFERENCE_BATCH) {
    const expected = await reference.encodeBatch(chunks.slice(start, start + REFERENCE_BATCH), { addSpecialTokens: false });
    expected.forEach((encoding, i) => {
      const want = encoding.getIds();
      const got = ids[start + i];
      if (want.length !== got.length || want.some((token, j) => token !== got[j])) {
        throw new Error(
          `tokenizer disagrees with the tokenizers binding on validation document ${docId}, paragraph ${start + i}: ` +
            `${JSON.stringify(got.slice(0, 20))} vs ${JSON.stringify(want.slice(0, 20))}`,
        );
      }
    });
  }
}

function firstDifference(expected: string, actual: string): string {
  let i = 0;
  while (i < expected.length && expected[i] === actual[i]) i++;
  return `decoded text differs at character ${i}: expected ${JSON.stringify(expected.slice(i, i + 20))}, got ${JSON.stringify(actual.slice(i, i + 20))}`;
}

/** Shard files from an earlier run into the same folder that the new manifest does not list. */
async function removeStaleShards(outDir: string, shards: ShardEntry[]): Promise<void> {
  const current = new Set(shards.map((s) => s.name));
  for (const name of await readdir(outDir)) {
    if (/^(train|val)-\d{3,}\.bin$/.test(name) && !current.has(name)) await rm(path.join(outDir, name));
  }
}

interface Progress {
  increment(): void;
  stop(): void;
}

function progressBar(enabled: boolean, label: string, total: number): Progress {
  if (!enabled) return { increment() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label.padEnd(14)} [{bar}] {percentage}% | {value}/{total} documents | {duration}s`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}
