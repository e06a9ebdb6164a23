// An OpenAI-compatible legacy completions endpoint, enough for EleutherAI lm-evaluation-harness
// (`--model local-completions`) and the official `openai` client: prompts as text or token ids, `echo` to
// get the prompt's own token log-probabilities back, `logprobs` for the top alternatives at each position,
// greedy or sampled continuations with stop strings, streamed or whole. A prompt's log-probabilities come
// from the evaluator's scoring core, so they equal what the suites see; as in OpenAI's API the first echoed
// token has none (null): it has no context. Generated tokens carry the log-probability the generator saw.
// Also the tokenizer endpoints of lm-eval's "remote" tokenizer backend (/tokenizer_info, /tokenize,
// /detokenize), so lm-eval needs no Hugging Face tokenizer files. The HTTP side is openai-api.ts.
//
// A completion is a sequence of pieces, each the `choices[]` entry of one streamed chunk; the whole answer
// joins them. Text goes out only once it is final: byte-level tokens can split a UTF-8 character (held
// until whole) and the newest text could be the start of a stop string (held until it cannot).
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { generateTokens, type GeneratedToken } from '../lm/generate.js';
import { EOT_TOKEN } from '../lm/tokenizer.js';
import type { ScoringModel } from './model.js';
import { scoreSequences } from './scoring.js';

export const MAX_PROMPT_CHARS = 200_000;
const tokenIds = z.array(z.int().nonnegative()).max(16_384);
const text = z.string().max(MAX_PROMPT_CHARS, `at most ${MAX_PROMPT_CHARS} characters`);
const only = <T extends z.core.util.Literal>(value: T, why: string) => z.literal(value, { error: why });

/**
 * Every field the endpoint takes; any other is refused (400 naming it), never ignored. OpenAI's `null`
 * means "not given" (openai-api.ts drops null fields before this schema sees them).
 */
export const CompletionRequestSchema = z.strictObject({
  model: z.string().min(1).max(4096),
  prompt: z.union([text, z.array(text).min(1).max(64), tokenIds.min(1), z.array(tokenIds).min(1).max(64)]),
  max_tokens: z.int().min(0).max(512).default(16),
  temperature: z.number().min(0).max(2).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  /** Extension (as llama.cpp's server): sample among the k likeliest tokens; 0 for all. */
  top_k: z.int().min(0).max(1_000_000).default(0),
  /** Extension: divide the logits of tokens already in the context by this (CTRL); 1 for none. */
  repetition_penalty: z.number().gt(0).max(10).default(1),
  logprobs: z.int().min(0).max(20).optional(),
  echo: z.boolean().default(false),
  /** Up to 16 (OpenAI takes 4; lm-eval adds the end-of-text token to a task's own list). */
  stop: z.union([z.string().min(1).max(200), z.array(z.string().min(1).max(200)).max(16)]).optional(),
  seed: z.int().optional(),
  stream: z.boolean().default(false),
  stream_options: z.strictObject({ include_usage: z.boolean().optional() }).optional(),
  n: only(1, 'only n = 1 is supported: one completion per prompt').default(1),
  best_of: only(1, 'only best_of = 1 is supported').optional(),
  frequency_penalty: only(0, 'only 0 is supported; use repetition_penalty (an extension) instead').optional(),
  presence_penalty: only(0, 'only 0 is supported; use repetition_penalty (an extension) instead').optional(),
  logit_bias: z
    .record(z.string(), z.number())
    .refine((bias) => Object.keys(bias).length === 0, 'logit_bias is not supported (only {} is accepted)')
    .optional(),
  suffix: only('', 'suffix is not supported: the model only continues text').optional(),
  /** Opaque to the server, as in OpenAI's API. */
  user: z.string().max(256).optional(),
});
export type CompletionRequest = z.output<typeof CompletionRequestSchema>;

/** A request the model itself refuses (a token id outside its vocabulary, nothing to score): a 400 naming `param`. */
export class InvalidCompletion extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

export interface Logprobs {
  tokens: string[];
  token_logprobs: Array<number | null>;
  top_logprobs: Array<Record<string, number> | null>;
  text_offset: number[];
}

/** One `choices[]` entry of a streamed chunk; the last piece of each prompt has its finish_reason. */
export interface CompletionPiece {
  index: number;
  text: string;
  logprobs: Logprobs | null;
  finish_reason: 'stop' | 'length' | null;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** The prompts as token ids, checked against the model: every id in its vocabulary, something to do. */
export function completionPrompts(model: ScoringModel, req: CompletionRequest): number[][] {
  const p = req.prompt;
  const encode = (t: string) => model.tokenizer.encode(t);
  const inputs =
    typeof p === 'string'
      ? [encode(p)]
      : p.length > 0 && typeof p[0] === 'number'
        ? [p as number[]]
        : (p as Array<string | number[]>).map((x) => (typeof x === 'string' ? encode(x) : x));
  for (const [index, ids] of inputs.entries()) {
    const bad = ids.find((id) => id >= model.config.vocab);
    if (bad !== undefined)
      throw new InvalidCompletion(`token id ${bad} is outside the vocabulary (size ${model.config.vocab})`, 'prompt');
    if (ids.length === 0 && req.max_tokens === 0)
      throw new InvalidCompletion(`prompt ${index} is empty and max_tokens is 0: nothing to score`, 'prompt');
  }
  return inputs;
}

/** A token's log-probability and its likeliest alternatives ([id, logprob]); null for a token without context. */
type Scored = { logprob: number | null; top: Array<[number, number]> | null };

/** Where the first stop string starts in `text`, or -1. */
function stopAt(text: string, stops: string[]): number {
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i !== -1 && (at === -1 || i < at)) at = i;
  }
  return at;
}

/**
 * How much of `text` is final: not a split UTF-8 character at the end (U+FFFD), and no stop string could
 * begin there once more text comes.
 */
function finalLength(text: string, stops: string[]): number {
  const whole = text.replace(/\uFFFD+$/, '');
  const longest = Math.max(0, ...stops.map((s) => s.length));
  for (let p = Math.max(0, whole.length - longest + 1); p < whole.length; p++) {
    const tail = whole.slice(p);
    if (stops.some((s) => s.startsWith(tail))) return p;
  }
  return whole.length;
}

export interface PieceOptions {
  /** Ends the completion at the next token (the pieces simply stop). */
  signal?: AbortSignal;
  /** Called for each token generated, kept or not. */
  onToken?: () => void;
}

/**
 * The pieces of a completion, prompt by prompt, as they become final; returns the usage. Generation
 * stops at the first stop string (the text cut at the last whole token before it, as OpenAI cuts it), at
 * end of document, at max_tokens, or when `signal` is aborted (then the pieces simply end).
 */
export async function* completionPieces(
  model: ScoringModel,
  req: CompletionRequest,
  prompts: number[][],
  o: PieceOptions = {},
): AsyncGenerator<CompletionPiece, Usage> {
  const { signal } = o;
  const { tokenizer, config } = model;
  const stops = req.stop === undefined ? [] : typeof req.stop === 'string' ? [req.stop] : req.stop;
  const pieceOf = (id: number) => (id === tokenizer.eotId ? EOT_TOKEN : tokenizer.decode([id]));
  const top = (alternatives: Array<[number, number]>) => Object.fromEntries(alternatives.map(([id, lp]) => [pieceOf(id), lp]));
  const usage: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

  for (const [index, ids] of prompts.entries()) {
    if (signal?.aborted) break;
    let offset = 0; // characters of this choice's text so far, for text_offset
    const logprobsOf = (tokenIds: number[], scored: Scored[]): Logprobs | null => {
      if (req.logprobs === undefined) return null;
      const tokens = tokenIds.map(pieceOf);
      const offsets = tokens.map((t) => (offset += t.length) - t.length);
      return {
        tokens,
        token_logprobs: scored.map((s) => s.logprob),
        top_logprobs: scored.map((s) => (s.top === null ? null : top(s.top))),
        text_offset: offsets,
      };
    };
    if (req.echo) {
      let scored: Scored[] = [];
      if (req.logprobs !== undefined) {
        const [s] = ids.length > 1 ? await scoreSequences(model, [ids], { topLogprobs: req.logprobs }) : [null];
        // Position p (p ≥ 1) is predicted at s.logprobs[p − 1]; position 0 has no context.
        scored = ids.map((_, p) =>
          p === 0 ? { logprob: null, top: null } : { logprob: s!.logprobs[p - 1], top: s!.top?.[p - 1] ?? [] },
        );
      }
      const echoed = typeof req.prompt === 'string' ? req.prompt : tokenizer.decode(ids);
      const logprobs = logprobsOf(ids, scored);
      yield { index, text: echoed, logprobs, finish_reason: req.max_tokens === 0 ? 'length' : null };
    }
    usage.prompt_tokens += ids.length;
    if (req.max_tokens === 0) {
      if (!req.echo) yield { index, text: '', logprobs: logprobsOf([], []), finish_reason: 'length' };
      continue;
    }

    const generated: GeneratedToken[] = [];
    const generatedIds: number[] = [];
    let sent = 0; // tokens whose text has gone out
    let sentText = '';
    const piece = (upTo: number, finish: CompletionPiece['finish_reason']): CompletionPiece => {
      const textNow = tokenizer.decode(generatedIds.slice(0, upTo));
      const p = {
        index,
        text: textNow.slice(sentText.length),
        logprobs: logprobsOf(generatedIds.slice(sent, upTo), generated.slice(sent, upTo)),
        finish_reason: finish,
      };
      sent = upTo;
      sentText = textNow;
      return p;
    };
    const stream = generateTokens(model.params, config, ids, {
      maxTokens: req.max_tokens,
      seed: req.seed ?? 0,
      temperature: req.temperature,
      topK: req.top_k,
      topP: req.top_p,
      repetitionPenalty: req.repetition_penalty,
      stopToken: tokenizer.eotId,
      topLogprobs: req.logprobs ?? 0,
      signal,
    });
    let finish: 'stop' | 'length' = 'length';
    let keep: number | null = null; // tokens kept when a stop string cut the text
    try {
      for (;;) {
        const step = await stream.next();
        if (step.done) {
          if (step.value.stopped === 'cancelled') return usage;
          if (step.value.stopped === 'end_of_document') finish = 'stop';
          break;
        }
        generated.push(step.value);
        generatedIds.push(step.value.id);
        o.onToken?.();
        const textNow = tokenizer.decode(generatedIds);
        const at = stopAt(textNow, stops);
        if (at !== -1) {
          keep = generated.length;
          while (keep > sent && tokenizer.decode(generatedIds.slice(0, keep)).length > at) keep--;
          finish = 'stop';
          break;
        }
        const final = finalLength(textNow, stops);
        let n = generated.length;
        for (; n > sent; n--) {
          const t = tokenizer.decode(generatedIds.slice(0, n));
          if (t.length <= final && !t.endsWith('\uFFFD')) break;
        }
        if (n > sent) yield piece(n, null);
      }
    } finally {
      await stream.return(undefined as never); // frees the cache when we stop before the generator does
    }
    const kept = keep ?? generated.length;
    yield piece(kept, finish);
    usage.completion_tokens += kept;
  }
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  return usage;
}

/** The whole completion: the pieces of each prompt joined into one choice. */
export async function complete(model: ScoringModel, req: CompletionRequest, prompts: number[][], o: PieceOptions = {}) {
  const choices: CompletionPiece[] = [];
  const pieces = completionPieces(model, req, prompts, o);
  let step;
  while (!(step = await pieces.next()).done) {
    const p = step.value;
    const choice = choices[p.index];
    if (!choice) {
      choices[p.index] = { ...p };
      continue;
    }
    choice.text += p.text;
    choice.finish_reason = p.finish_reason;
    if (choice.logprobs && p.logprobs)
      for (const key of ['tokens', 'token_logprobs', 'top_logprobs', 'text_offset'] as const)
        (choice.logprobs[key] as unknown[]).push(...p.logprobs[key]);
  }
  return { ...completionHeader(req), choices, usage: step.value };
}

/** What every completion object (and every streamed chunk of one) starts with. */
export function completionHeader(req: CompletionRequest) {
  return {
    id: `cmpl-${randomUUID()}`,
    object: 'text_completion' as const,
    created: Math.floor(Date.now() / 1000),
    model: req.model,
  };
}

export const TokenizeSchema = z.looseObject({ prompt: z.string().max(1_000_000), add_special_tokens: z.boolean().optional() });
export const DetokenizeSchema = z.looseObject({ tokens: z.array(z.int().nonnegative()).max(1_000_000) });

export function tokenizerInfo(model: ScoringModel) {
  return {
    eos_token: EOT_TOKEN,
    bos_token: null,
    pad_token: null,
    vocab_size: model.tokenizer.vocabSize,
    model_max_length: model.config.context,
    tokenizer_sha256: model.tokenizer.sha256,
  };
}
