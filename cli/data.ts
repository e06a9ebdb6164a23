// `ringlet data prepare`: corpus files or folders in, a tokenized dataset folder out.
import { Command } from 'commander';
import { prepareDataset } from '../data/prepare.js';
import { intArg, numberArg, runCommand } from './output.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

const prepareCommand = new Command('prepare')
  .description('extract, clean, deduplicate and split a corpus; train a BPE tokenizer; write token shards')
  .requiredOption('--input <path>', 'ELTeC TEI XML or plain-text file or folder (repeatable)', collect)
  .requiredOption('--out <dir>', 'dataset folder to write')
  .option('--vocab <n>', 'vocabulary size, end-of-document token included', intArg('--vocab'), 8192)
  .option('--seed <n>', 'seed of the train/validation split', intArg('--seed'), 1234)
  .option('--val-fraction <f>', 'share of documents held out for validation', numberArg('--val-fraction'), 0.05)
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, async () => {
      const summary = await prepareDataset({
        inputs: opts.input,
        outDir: opts.out,
        vocab: opts.vocab,
        seed: opts.seed,
        valFraction: opts.valFraction,
        command: process.argv.slice(1),
        progress: !opts.json,
      });
      return { ...summary };
    }),
  );

export const dataCommand = new Command('data').description('prepare training data').addCommand(prepareCommand);
