// An OpenAI-compatible legacy completions endpoint, enough for EleutherAI lm-evaluation-harness
// (`--model local-completions`): prompts as text or token ids, `echo` to get the prompt's own token
// log-probabilities back, `logprobs` for the top alternatives at each position, greedy or sampled
// continuations with stop strings. Log-probabilities come from the evaluator's scoring core, so they equal
// what the suites see; as in OpenAI's API the first echoed token has none (null): it has no context.
// Also the tokenizer endpoints of lm-eval's "remote" tokenizer backend (/tokenizer_info, /tokenize,
// /detokenize), so lm-eval needs no Hugging Face tokenizer files.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { generate } from '../lm/generate.js';
import { EOT_TOKEN } from '../lm/tokenizer.js';
import type { ScoringModel } from './model.js';
import { scoreSequences } from './scoring.js';

const tokenIds = z.array(z.int().nonnegative()).max(16_384);
export const CompletionRequestSchema = z.looseObject({
  model: z.string().min(1).max(4096),
  prompt: z.union([
    z.string().max(200_000),
    z.array(z.string().max(200_000)).min(1).max(64),
    tokenIds.min(1),
    z.array(tokenIds).min(1).max(64),
  ]),
  max_tokens: z.int().min(0).max(512).default(16),
  temperature: z.number().min(0).max(2).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  logprobs: z.int().min(0).max(20).nullable().default(null),
  echo: z.boolean().default(false),
  stop: z
    .union([z.string().max(200), z.array(z.string().max(200)).max(4)])
    .nullable()
    .optional(),
  seed: z.int().optional(),
  n: z.literal(1).default(1),
});
export type CompletionRequest = z.output<typeof CompletionRequestSchema>;

interface Logprobs {
  tokens: string[];
  token_logprobs: Array<number | null>;
  top_logprobs: Array<Record<string, number> | null>;
  text_offset: number[];
}

function prompts(req: CompletionRequest, model: ScoringModel): number[][] {
  const p = req.prompt;
  const encode = (text: string) => model.tokenizer.encode(text);
  if (typeof p === 'string') return [encode(p)];
  if (p.length > 0 && typeof p[0] === 'number') return [p as number[]];
  return (p as Array<string | number[]>).map((x) => (typeof x === 'string' ? encode(x) : x));
}

/** Generated tokens cut at the first stop string (the stop string itself excluded, as OpenAI does). */
function cutAtStop(model: ScoringModel, tokens: number[], stops: string[]): { tokens: number[]; stopped: boolean } {
  if (stops.length === 0) return { tokens, stopped: false };
  for (let n = 1; n <= tokens.length; n++) {
    const text = model.tokenizer.decode(tokens.slice(0, n));
    const at = Math.min(...stops.map((s) => (text.includes(s) ? text.indexOf(s) : Infinity)));
    if (at !== Infinity) {
      let keep = n;
      while (keep > 0 && model.tokenizer.decode(tokens.slice(0, keep)).length > at) keep--;
      return { tokens: tokens.slice(0, keep), stopped: true };
    }
  }
  return { tokens, stopped: false };
}

export async function complete(model: ScoringModel, req: CompletionRequest) {
  const { tokenizer, config } = model;
  const inputs = prompts(req, model);
  for (const ids of inputs)
    for (const id of ids)
      if (id >= config.vocab) throw new RangeError(`token id ${id} is outside the vocabulary (size ${config.vocab})`);
  const stops = req.stop == null ? [] : typeof req.stop === 'string' ? [req.stop] : req.stop;
  const pieceOf = (id: number) => (id === tokenizer.eotId ? EOT_TOKEN : tokenizer.decode([id]));

  const choices = [];
  let promptTokens = 0;
  let completionTokens = 0;
  for (const [index, ids] of inputs.entries()) {
    if (ids.length === 0 && req.max_tokens === 0)
      throw new RangeError(`prompt ${index} is empty and max_tokens is 0: nothing to score`);
    let generated: number[] = [];
    let finish: 'length' | 'stop' = 'length';
    if (req.max_tokens > 0) {
      const g = await generate(model.params, config, ids, {
        maxTokens: req.max_tokens,
        seed: req.seed ?? 0,
        temperature: req.temperature,
        topK: 0,
        topP: req.top_p,
        repetitionPenalty: 1,
        stopToken: tokenizer.eotId,
      });
      const cut = cutAtStop(model, g.tokens, stops);
      generated = cut.tokens;
      if (g.stopped === 'end_of_document' || cut.stopped) finish = 'stop';
    }
    const full = [...ids, ...generated];
    const shown = req.echo ? full : generated;
    const firstShown = req.echo ? 0 : ids.length;
    let logprobs: Logprobs | null = null;
    if (req.logprobs !== null) {
      const [scored] = await scoreSequences(model, [full], { topLogprobs: req.logprobs });
      const tokens = shown.map(pieceOf);
      const offsets: number[] = [];
      let at = 0;
      for (const t of tokens) {
        offsets.push(at);
        at += t.length;
      }
      logprobs = {
        tokens,
        // Position p (p ≥ 1) of `full` is predicted at logprobs[p − 1]; position 0 has no context.
        token_logprobs: shown.map((_, j) => (firstShown + j === 0 ? null : scored.logprobs[firstShown + j - 1])),
        top_logprobs: shown.map((_, j) => {
          const p = firstShown + j;
          if (p === 0) return null;
          return Object.fromEntries((scored.top?.[p - 1] ?? []).map(([id, lp]) => [pieceOf(id), lp]));
        }),
        text_offset: offsets,
      };
    }
    const promptText = typeof req.prompt === 'string' ? req.prompt : tokenizer.decode(ids);
    choices.push({
      index,
      text: (req.echo ? promptText : '') + tokenizer.decode(generated),
      logprobs,
      finish_reason: finish,
    });
    promptTokens += ids.length;
    completionTokens += generated.length;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return {
    id: `cmpl-${randomUUID()}`,
    object: 'text_completion',
    created: Math.floor(Date.now() / 1000),
    model: req.model,
    choices,
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
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
