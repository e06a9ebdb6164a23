// `ringlet train`: validates the config (file, then flags), trains, prints the summary.
import { Command } from 'commander';
import { loadTrainConfig } from '../train/config.js';
import { train } from '../train/run.js';
import { ProgressLog } from '../train/progress.js';
import { intArg, numberArg, runCommand } from './output.js';

export const trainCommand = new Command('train')
  .description('train a model on a prepared dataset; SIGINT/SIGTERM write a checkpoint and exit')
  .option('--data <dir>', 'dataset folder from `ringlet data prepare`')
  .option('--out <dir>', 'run folder for checkpoints and metrics.jsonl')
  .option('--preset <name>', 'model preset (see `ringlet presets`)')
  .option('--config <file>', 'JSON config file; flags override it')
  .option('--max-steps <n>', 'optimizer steps (the schedule horizon)', intArg('--max-steps'))
  .option(
    '--time-limit <seconds>',
    'stop after this long; without --max-steps the schedule fits this time',
    numberArg('--time-limit'),
  )
  .option('--until-step <n>', 'stop this run at step n; the schedule still ends at --max-steps', intArg('--until-step'))
  .option('--resume', 'continue from the latest checkpoint in --out')
  .option('--backend <name>', 'wasm (default), cpu, tensorflow, tensorflow-gpu or auto')
  .option('--batch-size <n>', 'windows per micro-batch', intArg('--batch-size'))
  .option('--grad-accum <n>', 'micro-batches per optimizer step', intArg('--grad-accum'))
  .option('--lr <rate>', 'peak learning rate', numberArg('--lr'))
  .option('--warmup-steps <n>', 'linear warmup steps', intArg('--warmup-steps'))
  .option('--eval-every <n>', 'steps between validation passes', intArg('--eval-every'))
  .option('--log-every <n>', 'steps between log lines', intArg('--log-every'))
  .option('--checkpoint-every <n>', 'steps between checkpoints', intArg('--checkpoint-every'))
  .option('--keep-last <n>', 'checkpoints to keep', intArg('--keep-last'))
  .option('--seed <n>', 'seed for initialisation and data order', intArg('--seed'))
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, async () => {
      const config = loadTrainConfig(opts.config, opts);
      const summary = await train(config, { resume: Boolean(opts.resume), log: new ProgressLog(config.out) });
      return { ...summary };
    }),
  );
