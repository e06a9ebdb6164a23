// One generation run in a process of its own, for `ringlet bench export`: llama.cpp (node-llama-cpp, one
// thread) on a GGUF file, or Ringlet's lm/generate.ts on a checkpoint. Greedy, the given prompt ids, exactly
// `tokens` tokens (the end-of-document token does not stop it); prints tokens/s and the process's peak
// resident memory as one JSON line. Run: node dist/bench/export-child.js llama|ringlet FILE PROMPT_IDS TOKENS
import { prebuiltLlama } from '../export/llama-cpp.js';
import { setupBackend } from '../kernels/backend.js';
import { readCheckpoint } from '../lm/checkpoint.js';
import { generate } from '../lm/generate.js';
import { paramsFromTensors } from '../lm/model.js';
import { ModelConfigSchema } from '../lm/model-config.js';

const [runtime, file, promptText, tokensText] = process.argv.slice(2);
const prompt = promptText.split(',').map(Number);
const tokens = Number(tokensText);
const peakRssMiB = () => process.resourceUsage().maxRSS / 1024;

async function llamaCpp(): Promise<{ tokens_per_s: number }> {
  const llama = await prebuiltLlama();
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: prompt.length + tokens + 1, threads: 1 });
  const sequence = context.getSequence();
  const started = performance.now();
  let n = 0;
  for await (const _ of sequence.evaluate(prompt as never, { temperature: 0 })) if (++n === tokens) break;
  const seconds = (performance.now() - started) / 1000;
  await llama.dispose();
  return { tokens_per_s: n / seconds };
}

async function ringlet(): Promise<{ tokens_per_s: number }> {
  await setupBackend('wasm');
  const checkpoint = await readCheckpoint(file);
  const config = ModelConfigSchema.parse(checkpoint.meta.config.model);
  const params = paramsFromTensors(config, checkpoint.weights);
  const options = { seed: 0, temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, stopToken: -1 };
  await generate(params, config, prompt, { ...options, maxTokens: 4 }); // the decoder's weight copy and warm-up
  const started = performance.now();
  const g = await generate(params, config, prompt, { ...options, maxTokens: tokens });
  return { tokens_per_s: g.tokens.length / ((performance.now() - started) / 1000) };
}

const result = runtime === 'llama' ? await llamaCpp() : await ringlet();
process.stdout.write(`${JSON.stringify({ ...result, peak_rss_mib: peakRssMiB() })}\n`);
