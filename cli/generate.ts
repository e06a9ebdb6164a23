// `ringlet generate`: loads a checkpoint and its tokenizer, samples a continuation, streams it to stdout.
import { Command } from 'commander';
import { setupBackend } from '../kernels/backend.js';
import { readCheckpoint } from '../lm/checkpoint.js';
import { generate } from '../lm/generate.js';
import { paramsFromTensors } from '../lm/model.js';
import { ModelConfigSchema } from '../lm/model-config.js';
import { Tokenizer } from '../lm/tokenizer.js';
import { defaultObservabilityConfig } from '../observability/config.js';
import { EnergyMeter } from '../observability/power.js';
import { intArg, numberArg, runCommand } from './output.js';

export const generateCommand = new Command('generate')
  .description('sample text from a checkpoint (a checkpoint folder, or a run folder for its latest)')
  .requiredOption('--checkpoint <path>', 'checkpoint folder or run folder')
  .option('--prompt <text>', 'text to continue', '')
  .option('--max-tokens <n>', 'most tokens to generate', intArg('--max-tokens'), 200)
  .option('--seed <n>', 'sampling seed', intArg('--seed'), 0)
  .option('--temperature <t>', 'softmax temperature; 0 is greedy', numberArg('--temperature'), 0.8)
  .option('--top-k <k>', 'sample among the k likeliest tokens; 0 for all', intArg('--top-k'), 50)
  .option('--top-p <p>', 'nucleus: smallest set of tokens with this much probability', numberArg('--top-p'), 0.95)
  .option('--repetition-penalty <r>', 'divide the logits of tokens already present by r', numberArg('--repetition-penalty'), 1.1)
  .option('--backend <name>', 'wasm (default), cpu, cuda, tensorflow, tensorflow-gpu or auto', 'wasm')
  .option('--json', 'print a JSON summary as the last line instead of streaming')
  .action((opts) =>
    runCommand({ ...opts, omitFromHuman: ['text', 'prompt'] }, async () => {
      if (opts.temperature < 0) throw new Error('--temperature must be >= 0');
      if (!(opts.topP > 0 && opts.topP <= 1)) throw new Error('--top-p must be in (0, 1]');
      if (opts.topK < 0) throw new Error('--top-k must be >= 0');
      if (opts.repetitionPenalty <= 0) throw new Error('--repetition-penalty must be > 0');
      if (opts.maxTokens < 1) throw new Error('--max-tokens must be >= 1');
      const backend = await setupBackend(opts.backend);
      const checkpoint = await readCheckpoint(opts.checkpoint);
      const model = ModelConfigSchema.parse(checkpoint.meta.config.model);
      const tokenizer = await Tokenizer.load(checkpoint.tokenizerPath);
      if (tokenizer.sha256 !== checkpoint.meta.tokenizer_sha256)
        throw new Error(`tokenizer in ${checkpoint.path} does not match the one the checkpoint was trained with`);
      const params = paramsFromTensors(model, checkpoint.weights);

      const prompt = tokenizer.encode(opts.prompt);
      if (prompt.length > model.context - 1)
        process.stderr.write(
          `note: the prompt has ${prompt.length} tokens; keeping the newest ${model.context - 1} (context ${model.context})\n`,
        );
      const stream = !opts.json;
      let printed = '';
      const generated: number[] = [];
      if (stream) process.stdout.write(opts.prompt);
      const meter = await EnergyMeter.forMachine(defaultObservabilityConfig());
      await meter.sample();
      const result = await generate(params, model, prompt, {
        maxTokens: opts.maxTokens,
        seed: opts.seed,
        temperature: opts.temperature,
        topK: opts.topK,
        topP: opts.topP,
        repetitionPenalty: opts.repetitionPenalty,
        stopToken: tokenizer.eotId,
        onToken: ({ id }) => {
          if (!stream) return;
          generated.push(id);
          // Byte-level tokens can split a UTF-8 character; print only text that has become whole.
          const text = tokenizer.decode(generated);
          if (!text.endsWith('\uFFFD')) {
            process.stdout.write(text.slice(printed.length));
            printed = text;
          }
        },
      });
      const energy = await meter.stop();
      const text = tokenizer.decode(result.tokens);
      if (stream) process.stdout.write(`${text.slice(printed.length)}\n`);
      for (const p of params.values()) p.dispose();
      return {
        text,
        prompt: opts.prompt,
        tokens: result.tokens.length,
        prompt_tokens: result.promptTokens,
        prompt_truncated: result.truncatedPrompt,
        stopped: result.stopped,
        tokens_per_s: result.tokens.length / result.seconds,
        checkpoint: checkpoint.path,
        step: checkpoint.meta.step,
        backend: backend.name,
        // Energy of the generation loop (PUE and the world-average grid, docs/observability.md).
        energy_j: energy.energy_j,
        energy_j_per_1k_tokens: result.tokens.length > 0 ? (energy.energy_j / result.tokens.length) * 1000 : 0,
        emissions_g: energy.emissions_g,
        energy_estimated: energy.estimated,
      };
    }),
  );
