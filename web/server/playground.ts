// The playground's generation: a checked request, the checkpoint from a small cache of loaded models, and
// the tokens streamed as Server-Sent Events as lm/generate.ts makes them, the same generation code every
// other caller uses. A client that leaves aborts the generation at the next token.
import { z } from 'zod';
import { generateTokens } from '../../lm/generate.js';
import { EOT_TOKEN } from '../../lm/tokenizer.js';
import type { EnergyMeter } from '../../observability/power.js';
import type { ScoringModel } from '../../evaluator/model.js';
import type { DoneEvent, PlaygroundRequest, TokenEvent } from '../api.js';
import type { EventStream } from './sse.js';

export const MAX_PROMPT_CHARS = 100_000;

export const PlaygroundRequestSchema = z.strictObject({
  checkpoint: z.string().min(1).max(4096),
  prompt: z
    .string()
    .min(1, 'the prompt is empty: write something for the model to continue')
    .max(MAX_PROMPT_CHARS, `the prompt is longer than ${MAX_PROMPT_CHARS} characters`),
  max_tokens: z.int().min(1).max(1024).default(200),
  temperature: z.number().min(0).max(2).default(0.8),
  top_k: z
    .int()
    .min(0)
    .max(1 << 20)
    .default(50),
  top_p: z.number().gt(0).max(1).default(0.95),
  repetition_penalty: z.number().gt(0).max(10).default(1.1),
  seed: z
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .default(0),
  top_logprobs: z.int().min(0).max(20).default(0),
}) satisfies z.ZodType<PlaygroundRequest, unknown>;

/** Machine energy over each generation, shared out among the generations running at the same time. */
export class GenerationEnergy {
  private running = 0;

  constructor(private readonly meter: EnergyMeter) {}

  async measure<T>(work: () => Promise<T>): Promise<{ value: T; joules: number; estimated: boolean }> {
    await this.meter.sample();
    const before = this.meter.totals().energy_j;
    this.running++;
    let peak = this.running;
    const watch = setInterval(() => (peak = Math.max(peak, this.running)), 100).unref();
    try {
      const value = await work();
      await this.meter.sample();
      const totals = this.meter.totals();
      return { value, joules: (totals.energy_j - before) / peak, estimated: totals.estimated };
    } finally {
      clearInterval(watch);
      this.running--;
    }
  }
}

/** Streams one generation to `stream`: `token` events, then `done` (or `error`). */
export async function streamGeneration(
  model: ScoringModel,
  request: PlaygroundRequest,
  stream: EventStream,
  energy: GenerationEnergy,
): Promise<DoneEvent> {
  const { tokenizer, config } = model;
  if (request.top_k > config.vocab)
    throw new RangeError(`top_k ${request.top_k} is larger than the vocabulary (${config.vocab})`);
  const prompt = tokenizer.encode(request.prompt);
  const pieceOf = (id: number) => (id === tokenizer.eotId ? EOT_TOKEN : tokenizer.decode([id]));
  const started = performance.now();
  let firstTokenMs = 0;
  const {
    value: generation,
    joules,
    estimated,
  } = await energy.measure(async () => {
    const tokens = generateTokens(model.params, config, prompt, {
      maxTokens: request.max_tokens,
      seed: request.seed,
      temperature: request.temperature,
      topK: request.top_k,
      topP: request.top_p,
      repetitionPenalty: request.repetition_penalty,
      stopToken: tokenizer.eotId,
      topLogprobs: request.top_logprobs,
      signal: stream.signal,
    });
    const ids: number[] = [];
    let shown = '';
    for (;;) {
      const next = await tokens.next();
      if (next.done) return next.value;
      const t = next.value;
      if (ids.length === 0) firstTokenMs = performance.now() - started;
      ids.push(t.id);
      // Byte-level tokens can split a UTF-8 character: send text only once it is whole.
      const text = tokenizer.decode(ids);
      const whole = !text.endsWith('\uFFFD');
      const event: TokenEvent = {
        index: ids.length - 1,
        id: t.id,
        text: whole ? text.slice(shown.length) : '',
        logprob: t.logprob,
        top: t.top.map(([id, logprob]) => ({ text: pieceOf(id), logprob })),
      };
      if (whole) shown = text;
      stream.send('token', event);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  const n = generation.tokens.length;
  return {
    tokens: n,
    prompt_tokens: generation.promptTokens,
    stopped: generation.stopped,
    seconds,
    tokens_per_s: n > 0 ? n / generation.seconds : 0,
    first_token_ms: firstTokenMs, // from the request's tokenisation to the first token sent
    energy_j_per_1k_tokens: n > 0 ? (joules / n) * 1000 : null,
    energy_estimated: estimated,
  };
}
