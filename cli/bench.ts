// `ringlet bench`: benchmarks that print their figures (see bench/README.md).
import { Command } from 'commander';
import { benchTrainThroughput } from '../bench/train-throughput.js';
import { intArg, runCommand } from './output.js';

const trainBench = new Command('train')
  .description('training throughput of a preset: tokens/s and achieved GFLOP/s')
  .option('--preset <name>', 'model preset', 'micro')
  .option('--backend <name>', 'wasm, cpu, tensorflow, tensorflow-gpu or auto', 'wasm')
  .option('--batch-size <n>', 'windows per step', intArg('--batch-size'), 16)
  .option('--steps <n>', 'timed steps', intArg('--steps'), 10)
  .option('--warmup-steps <n>', 'untimed steps first', intArg('--warmup-steps'), 2)
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, () =>
      benchTrainThroughput({
        preset: opts.preset,
        backend: opts.backend,
        batchSize: opts.batchSize,
        steps: opts.steps,
        warmupSteps: opts.warmupSteps,
      }),
    ),
  );

export const benchCommand = new Command('bench').description('measure speed').addCommand(trainBench);
