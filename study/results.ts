// What one study cell leaves behind: study/results/cells/<cell id>.json, written by `ringlet study run`
// when the cell's training and evaluations are done, read by `ringlet study report`. Everything the report
// states comes from these files, so each keeps the per-item scores that its confidence intervals resample.
import { z } from 'zod';

export const LANGUAGES = ['eng', 'swe'] as const;
export const LanguageSchema = z.enum(LANGUAGES);
export type Language = z.infer<typeof LanguageSchema>;

/** One validation window of held-out text: its nats under the model and the UTF-8 bytes its targets stand for. */
const WindowSchema = z.tuple([z.number(), z.number().positive()]); // [nats, bytes]

export const HeldOutSchema = z
  .object({
    dataset: z.string(), // the dataset whose val split (novels no training split holds) was scored
    retokenized: z.boolean(), // the model's tokenizer differs from that dataset's
    bpb: z.number().positive(), // Σ nats / ln 2 / Σ bytes over the windows
    windows: z.array(WindowSchema).min(1),
  })
  .strict();
export type HeldOut = z.infer<typeof HeldOutSchema>;

/** A minimal-pair or choice benchmark: accuracy, and 1/0 per item, ids aligned across cells for pairing. */
export const BenchmarkSchema = z
  .object({
    suite: z.enum(['blimp', 'dalaj']),
    accuracy: z.number().min(0).max(1),
    item_ids: z.array(z.string()),
    item_scores: z.array(z.number()),
    groups: z.record(z.string(), z.object({ items: z.number().int(), accuracy: z.number() }).strict()).optional(),
  })
  .strict();
export type Benchmark = z.infer<typeof BenchmarkSchema>;

export const ReadabilitySchema = z
  .object({
    words: z.number().int().min(0),
    dictionary_share: z.number().min(0).max(1), // words the language's spelling dictionary accepts
    repetition_rate: z.number().min(0).max(1), // word 4-grams that occurred earlier in the same text
    distinct_1: z.number().min(0).max(1),
    distinct_2: z.number().min(0).max(1),
  })
  .strict();
export type Readability = z.infer<typeof ReadabilitySchema>;

export const SampleSchema = z
  .object({ language: LanguageSchema, prompt: z.string(), text: z.string(), readability: ReadabilitySchema })
  .strict();

/** Tokens each expert received per layer on one language's held-out windows ([layer][expert]). */
export const RoutingSchema = z
  .object({ tokens: z.array(z.array(z.number().int().min(0))), dropped: z.number().int().min(0) })
  .strict();

export const CurvePointSchema = z
  .object({ step: z.number().int(), tokens: z.number().int(), bytes: z.number(), val_bpb: z.number() })
  .strict();

export const CellResultSchema = z
  .object({
    format_version: z.literal(1),
    id: z.string(), // "<group>/<dataset>-<preset>-s<seed>"
    hash: z.string().regex(/^[0-9a-f]{64}$/), // sha256 of the cell's resolved configuration
    group: z.string(),
    dataset: z.string(),
    languages: z.array(LanguageSchema).min(1), // the languages its training data holds
    preset: z.string(),
    overrides: z.record(z.string(), z.unknown()),
    seed: z.number().int(),
    params: z.object({ total: z.number().int(), active: z.number().int() }).strict(),
    budget_bytes: z.number().positive(), // training text in UTF-8 bytes, the same for every language
    train: z
      .object({
        steps: z.number().int(),
        tokens: z.number().int(),
        bytes: z.number(), // tokens × the training split's bytes per token
        seconds: z.number(),
        tokens_per_s: z.number(),
        val_bpb: z.number(), // the run's own validation split, at the end
      })
      .strict(),
    curve: z.array(CurvePointSchema),
    held_out: z.partialRecord(LanguageSchema, HeldOutSchema),
    benchmarks: z.array(BenchmarkSchema),
    samples: z.array(SampleSchema),
    routing: z.partialRecord(LanguageSchema, RoutingSchema).optional(), // MoE cells only
    eval_seconds: z.number().min(0), // scoring the final checkpoint: held-out text, benchmarks, samples, routing
    finished_at: z.string(),
  })
  .strict();
export type CellResult = z.infer<typeof CellResultSchema>;

/**
 * One prepared dataset of the plan: study/results/datasets/<name>.json, with its tokenizer's fertility and,
 * as the samples' reference, the readability of real held-out text cut to the samples' length.
 */
export const DatasetResultSchema = z
  .object({
    format_version: z.literal(1),
    name: z.string(),
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    languages: z.array(LanguageSchema).min(1),
    vocab: z.number().int(),
    filters: z.enum(['on', 'off']),
    spelling: z.string(),
    train_tokens: z.number().int(),
    train_bytes: z.number().int(),
    fertility: z.object({ bytes_per_token: z.number(), chars_per_token: z.number(), words_per_token: z.number() }).strict(), // the validation split's, end-of-document tokens not counted
    filter_counts: z.record(z.string(), z.number()),
    reference_readability: z.array(ReadabilitySchema), // excerpts of the val split, one per sample's length
  })
  .strict();
export type DatasetResult = z.infer<typeof DatasetResultSchema>;
