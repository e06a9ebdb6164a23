// Schema and reader for a prepared dataset's manifest.json, the single description of what
// `ringlet data prepare` produced: where the text came from, what the filters removed, the split,
// the tokenizer, and every token shard with its size and sha256 (shards.ts checks them on read).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT_VERSION = 1;

const count = z.int().nonnegative();
const perSplit = z.object({ train: count, val: count });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256');

/** `--filters`: on removes too-short, garbage and near-duplicate paragraphs; off keeps them (duplicate documents go either way). */
export const FiltersSettingSchema = z.enum(['on', 'off']);
/** `--spelling`: none, or sv-1906 to modernise pre-1906 Swedish spelling (data/swedish-spelling.ts). */
export const SpellingSchemeSchema = z.enum(['none', 'sv-1906']);

/** Text per token, end-of-document tokens not counted (data/fertility.ts); null without text. */
export const FertilitySchema = z.object({
  bytes_per_token: z.number().positive().nullable(),
  chars_per_token: z.number().positive().nullable(),
  /** Words are whitespace-separated runs holding a letter. */
  words_per_token: z.number().nonnegative().nullable(),
});
const UNKNOWN_FERTILITY = { bytes_per_token: null, chars_per_token: null, words_per_token: null };

export const ShardSchema = z.object({
  name: z.string().regex(/^(train|val)-\d{3,}\.bin$/, 'expected a name like train-000.bin'),
  split: z.enum(['train', 'val']),
  tokens: count,
  bytes: count,
  sha256,
});

export const ManifestSchema = z.object({
  format_version: z.literal(MANIFEST_FORMAT_VERSION),
  created_at: z.iso.datetime(),
  /** argv of the command that produced the dataset, as passed to prepareDataset. */
  command: z.array(z.string()),
  seed: z.int(),
  val_fraction: z.number().gt(0).lt(1),
  sources: z.object({
    /** Input paths, resolved to absolute paths. */
    inputs: z.array(z.string()),
    /** Files read (.xml as TEI, .txt as plain text) and their total size on disk. */
    files: count,
    bytes: count,
    /** Files inside input folders that were neither .xml nor .txt (README, metadata...). */
    skipped_files: count,
  }),
  documents: perSplit,
  paragraphs: perSplit,
  /** UTF-8 bytes of the normalised document texts (paragraphs joined by a blank line). */
  bytes: perSplit,
  /** Tokens in the shards, one end-of-document token per document included. */
  tokens: perSplit,
  /** Validation text bytes per validation token, end-of-document tokens not counted; null without validation text. */
  bytes_per_token: z.number().positive().nullable(),
  dtype: z.enum(['uint16', 'uint32']),
  /** Largest number of tokens in one shard. */
  shard_tokens: z.int().positive(),
  shards: z.array(ShardSchema),
  tokenizer: z.object({
    file: z.string(),
    sha256,
    vocab_size: z.int().positive(),
    eot_id: count,
  }),
  /** The text processing asked for; manifests from before these options mean on and none. */
  processing: z
    .object({ filters: FiltersSettingSchema, spelling: SpellingSchemeSchema })
    .default({ filters: 'on', spelling: 'none' }),
  /** What the spelling normalisation changed in the input (before filtering): words rewritten, and the most frequent rewrites. */
  spelling_changes: z
    .object({
      words_changed: count,
      top_rewrites: z.array(z.object({ from: z.string(), to: z.string(), count: z.int().positive() })),
    })
    .default({ words_changed: 0, top_rewrites: [] }),
  /** Tokenizer fertility per split; unknown (null) in manifests written before it was recorded. */
  fertility: z
    .object({ train: FertilitySchema, val: FertilitySchema })
    .default({ train: UNKNOWN_FERTILITY, val: UNKNOWN_FERTILITY }),
  filters: z.object({
    input_documents: count,
    duplicate_documents: count,
    empty_documents: count,
    input_paragraphs: count,
    too_short_paragraphs: count,
    garbage_paragraphs: count,
    near_duplicate_paragraphs: count,
  }),
});

export type Manifest = z.infer<typeof ManifestSchema>;
/** What a manifest.json may hold: older ones lack the fields that have defaults. */
export type ManifestInput = z.input<typeof ManifestSchema>;
export type FiltersSetting = z.infer<typeof FiltersSettingSchema>;
export type SpellingScheme = z.infer<typeof SpellingSchemeSchema>;
export type Fertility = z.infer<typeof FertilitySchema>;
export type ShardEntry = z.infer<typeof ShardSchema>;

/** Reads and validates `dir`/manifest.json, with an error naming the file and what is wrong. */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${file} not found: ${dir} is not a prepared dataset (run \`ringlet data prepare\`)`);
    }
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${file} is not a valid manifest:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
