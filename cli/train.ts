// `ringlet train`: validates the config (file, then flags), trains, prints the summary.
import os from 'node:os';
import { Command } from 'commander';
import { loadTrainConfig } from '../train/config.js';
import { launchLocal } from '../coordinator/launch.js';
import { train } from '../train/run.js';
import { ProgressLog } from '../train/progress.js';
import { tlsFromFlags } from '../collective/auth.js';
import { intArg, numberArg, runCommand } from './output.js';
import { addTlsOptions } from './tls-options.js';
import { visibleGpus } from '../kernels/cuda/gpus.js';

/** The options that make a TrainConfig, shared with `ringlet coordinator`. */
export const addTrainOptions = (command: Command): Command =>
  command
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
    .option('--backend <name>', 'wasm (default), cpu, cuda, tensorflow, tensorflow-gpu or auto')
    .option('--precision <p>', "the cuda backend's matrix products: tf32 (default), bf16 or fp32")
    .option('--batch-size <n>', 'windows per micro-batch', intArg('--batch-size'))
    .option('--grad-accum <n>', 'micro-batches per optimizer step', intArg('--grad-accum'))
    .option('--lr <rate>', 'peak learning rate', numberArg('--lr'))
    .option('--warmup-steps <n>', 'linear warmup steps', intArg('--warmup-steps'))
    .option('--eval-every <n>', 'steps between validation passes', intArg('--eval-every'))
    .option('--log-every <n>', 'steps between log lines', intArg('--log-every'))
    .option('--checkpoint-every <n>', 'steps between checkpoints', intArg('--checkpoint-every'))
    .option('--keep-last <n>', 'checkpoints to keep', intArg('--keep-last'))
    .option('--seed <n>', 'seed for initialisation and data order', intArg('--seed'))
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://HOST:PORT/metrics', intArg('--metrics-port'))
    .option(
      '--metrics-host <host>',
      'address the metrics server binds (default 127.0.0.1; 0.0.0.0 to be scraped from other hosts)',
    )
    .option('--json', 'print a JSON summary as the last line');

export const trainCommand = addTlsOptions(
  addTrainOptions(
    new Command('train').description('train a model on a prepared dataset; SIGINT/SIGTERM write a checkpoint and exit'),
  ),
)
  .option('--resume', 'continue from the latest checkpoint in --out')
  .option('--workers [n]', 'train on n worker processes with a ring all-reduce (no value: one per core)')
  .option(
    '--max-restarts <n>',
    'with --workers: start a dead worker again, at most n times in the job (default 3)',
    intArg('--max-restarts'),
  )
  .option(
    '--replace-wait <s>',
    'with --workers: wait this long for a restarted worker, then go on without it (default 20)',
    numberArg('--replace-wait'),
  )
  .action((opts) =>
    runCommand(opts, async () => {
      const config = loadTrainConfig(opts.config, opts);
      const gpus = config.backend === 'cuda' || config.backend === 'auto' ? visibleGpus() : [];
      // --workers without a value: one per GPU where the job computes on GPUs, else one per core.
      const workers =
        opts.workers === true ? gpus.length || os.availableParallelism() : opts.workers === undefined ? 1 : Number(opts.workers);
      if (!Number.isInteger(workers) || workers < 1)
        throw new Error(`--workers must be a positive integer (got "${opts.workers}")`);
      // With --workers, the coordinator and every worker get the same certificate (all on this machine).
      const tls = tlsFromFlags(opts);
      if (tls && workers === 1) throw new Error('--tls-* secure the gRPC between processes: they need --workers 2 or more');
      if (workers > 1) {
        const launch = {
          workers,
          resume: Boolean(opts.resume),
          tls,
          maxRestarts: opts.maxRestarts,
          replaceWaitS: opts.replaceWait,
          gpus,
        };
        return { ...(await launchLocal(config, launch)) };
      }
      const summary = await train(config, { resume: Boolean(opts.resume), log: new ProgressLog(config.out) });
      return { ...summary, workers: 1, restarts: 0, samples_skipped: 0, samples_repeated: 0 };
    }),
  );
