// Generation speed of a preset (random weights) or a checkpoint: tokens/s and time to the first token of
// lm/generate.ts on its two paths, the TensorFlow.js graph (RINGLET_DECODER=0) and the decoder of
// lm/decode.ts, in the same invocation. Each repeat runs both back to back on the same prompt and seed,
// alternating which goes first, with `ringlet generate`'s sampling settings and no stop token, so every run
// makes exactly `tokens` tokens; the speedup is the median of the repeats' ratios (this machine's speed
// drifts within minutes). The first token's time includes the prompt's forward pass; the decoder's one-off
// copy of the weights is timed apart (a server makes it once per loaded model).
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { loadNative } from '../kernels/native.js';
import { readCheckpoint } from '../lm/checkpoint.js';
import { decoderFor } from '../lm/decode.js';
import { generate } from '../lm/generate.js';
import { initParams, paramsFromTensors, type Params } from '../lm/model.js';
import { ModelConfigSchema, modelDimensions, parameterCount, presetConfig, type ModelConfig } from '../lm/model-config.js';
import { Rng } from '../lm/rng.js';
import { median } from './median.js';

export interface GenerateBenchOptions {
  preset: string;
  checkpoint?: string; // its weights and shape instead of the preset's with random weights
  tokens: number; // generated per run
  promptTokens: number; // random prompt tokens (at most context − 1)
  repeats: number;
  backend: string;
}

type Path = 'tfjs' | 'decoder';

interface Run {
  tokens_per_s: number;
  first_token_ms: number;
}

export async function benchGenerate(o: GenerateBenchOptions) {
  if (!(o.repeats >= 1)) throw new Error(`--repeats must be at least 1, got ${o.repeats}`);
  if (!(o.tokens >= 1)) throw new Error(`--tokens must be at least 1, got ${o.tokens}`);
  const backend = await setupBackend(o.backend as never);
  const { params, config, source } = await loadModel(o);
  if (!(o.promptTokens >= 1 && o.promptTokens < config.context))
    throw new Error(`--prompt-tokens must be 1..${config.context - 1} (the context is ${config.context})`);
  const rng = new Rng(11);
  const prompt = Array.from({ length: o.promptTokens }, () => rng.int(config.vocab));

  const rssBefore = process.memoryUsage().rss;
  const buildStarted = performance.now();
  if (config.moe) throw new Error('the decoder has no mixture of experts: bench generate takes dense presets');
  if (!decoderFor(params, config)) throw new Error('the decoder needs the native kernels (kernels/native), which are not loaded');
  const buildMs = performance.now() - buildStarted;
  const rssDecoder = process.memoryUsage().rss - rssBefore;

  const once = async (path: Path, maxTokens: number): Promise<Run> => {
    const before = process.env.RINGLET_DECODER;
    process.env.RINGLET_DECODER = path === 'tfjs' ? '0' : '1';
    try {
      const g = await generate(params, config, prompt, {
        maxTokens,
        seed: 1,
        temperature: 0.8,
        topK: 50,
        topP: 0.95,
        repetitionPenalty: 1.1,
        stopToken: -1,
      });
      return { tokens_per_s: g.tokens.length / g.seconds, first_token_ms: (g.firstTokenSeconds ?? NaN) * 1000 };
    } finally {
      if (before === undefined) delete process.env.RINGLET_DECODER;
      else process.env.RINGLET_DECODER = before;
    }
  };
  // Warm-up: tfjs compiles its kernels and V8 its hot loops on the first tokens.
  await once('tfjs', 8);
  await once('decoder', 8);

  const runs: Record<Path, Run[]> = { tfjs: [], decoder: [] };
  const ratios: number[] = [];
  for (let r = 0; r < o.repeats; r++) {
    const order: Path[] = r % 2 === 0 ? ['tfjs', 'decoder'] : ['decoder', 'tfjs'];
    const pair = {} as Record<Path, Run>;
    for (const path of order) {
      pair[path] = await once(path, o.tokens);
      runs[path].push(pair[path]);
    }
    ratios.push(pair.decoder.tokens_per_s / pair.tfjs.tokens_per_s);
    process.stderr.write(
      `repeat ${r + 1}/${o.repeats}: tfjs ${pair.tfjs.tokens_per_s.toFixed(0)} tokens/s, decoder ${pair.decoder.tokens_per_s.toFixed(0)} tokens/s\n`,
    );
  }
  const summary = (path: Path) => ({
    tokens_per_s: median(runs[path].map((x) => x.tokens_per_s)),
    first_token_ms: median(runs[path].map((x) => x.first_token_ms)),
    first_token_ms_max: Math.max(...runs[path].map((x) => x.first_token_ms)),
    runs: runs[path],
  });
  const result = {
    model: source,
    parameters: parameterCount(config).total,
    ...modelDimensions(config),
    backend: backend.description,
    simd: loadNative()?.info().simd ?? null,
    tokens: o.tokens,
    prompt_tokens: o.promptTokens,
    repeats: o.repeats,
    tfjs: summary('tfjs'),
    decoder: { ...summary('decoder'), build_ms: buildMs, build_rss_bytes: rssDecoder },
    speedup: median(ratios),
    speedups: ratios,
    rss_bytes: process.memoryUsage().rss,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
  printTable(result);
  tf.dispose([...params.values()]);
  return result;
}

async function loadModel(o: GenerateBenchOptions): Promise<{ params: Params; config: ModelConfig; source: string }> {
  if (!o.checkpoint) {
    const config = presetConfig(o.preset);
    return { params: initParams(config, 1), config, source: `${o.preset} (random weights)` };
  }
  const checkpoint = await readCheckpoint(o.checkpoint);
  const config = ModelConfigSchema.parse(checkpoint.meta.config.model);
  return { params: paramsFromTensors(config, checkpoint.weights), config, source: checkpoint.path };
}

function printTable(r: {
  model: string;
  parameters: number;
  tokens: number;
  prompt_tokens: number;
  repeats: number;
  tfjs: { tokens_per_s: number; first_token_ms: number; first_token_ms_max: number };
  decoder: { tokens_per_s: number; first_token_ms: number; first_token_ms_max: number; build_ms: number };
  speedup: number;
  peak_rss_bytes: number;
}): void {
  const row = (name: string, x: typeof r.tfjs) =>
    `${name.padEnd(10)} ${x.tokens_per_s.toFixed(0).padStart(9)} ${x.first_token_ms.toFixed(1).padStart(13)} ${x.first_token_ms_max.toFixed(1).padStart(10)}\n`;
  process.stderr.write(
    `\n${r.model}, ${r.parameters.toLocaleString('en')} parameters: ${r.tokens} tokens after a ${r.prompt_tokens}-token prompt, median of ${r.repeats}\n` +
      `path        tokens/s  first token ms    (max)\n` +
      row('tfjs', r.tfjs) +
      row('decoder', r.decoder) +
      `speedup    ${r.speedup.toFixed(2)}×   (decoder weights copied once in ${r.decoder.build_ms.toFixed(0)} ms; peak RSS ${(r.peak_rss_bytes / 2 ** 20).toFixed(0)} MiB)\n`,
  );
}
