// `ringlet data prepare`: corpus files or folders in, a tokenized dataset folder out.
import { Command, Option } from 'commander';
import { FiltersSettingSchema, readManifest, SpellingSchemeSchema } from '../data/manifest.js';
import { checkPrepareOptions, prepareDataset } from '../data/prepare.js';
import { addCheckConfigOption, checkedConfig } from './check-config.js';
import { intArg, numberArg, runCommand } from './output.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

const prepareCommand = addCheckConfigOption(new Command('prepare'))
  .description('extract, clean, deduplicate and split a corpus; train a BPE tokenizer; write token shards')
  .requiredOption('--input <path>', 'ELTeC TEI XML or plain-text file or folder (repeatable)', collect)
  .requiredOption('--out <dir>', 'dataset folder to write')
  .option('--vocab <n>', 'vocabulary size, end-of-document token included', intArg('--vocab'), 8192)
  .option('--seed <n>', 'seed of the train/validation split', intArg('--seed'), 1234)
  .option('--val-fraction <f>', 'share of documents held out for validation', numberArg('--val-fraction'), 0.05)
  .addOption(
    new Option('--filters <mode>', 'quality filters and near-duplicate paragraph removal (off: the ablation)')
      .choices(FiltersSettingSchema.options)
      .default('on'),
  )
  .addOption(
    new Option('--spelling <scheme>', 'spelling normalisation: sv-1906 modernises pre-1906 Swedish (hvad → vad)')
      .choices(SpellingSchemeSchema.options)
      .default('none'),
  )
  .option('--if-missing', 'do nothing when --out already holds a dataset whose manifest reads (a deployment prepares once)')
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, async () => {
      const options = {
        inputs: opts.input,
        outDir: opts.out,
        vocab: opts.vocab,
        seed: opts.seed,
        valFraction: opts.valFraction,
        filters: opts.filters,
        spelling: opts.spelling,
        command: process.argv.slice(1),
        progress: !opts.json,
      };
      if (opts.checkConfig) {
        checkPrepareOptions(options);
        const { inputs, outDir, vocab, seed, valFraction, filters, spelling } = options;
        return checkedConfig(opts, {
          prepare: { inputs, outDir, vocab, seed, valFraction, filters, spelling, ifMissing: Boolean(opts.ifMissing) },
        });
      }
      if (opts.ifMissing) {
        // A manifest is written last, so one that reads stands for a whole dataset.
        const manifest = await readManifest(opts.out).catch(() => null);
        if (manifest) return { out_dir: opts.out, skipped: true, vocab_size: manifest.tokenizer.vocab_size };
      }
      const summary = await prepareDataset(options);
      return { ...summary };
    }),
  );

export const dataCommand = new Command('data').description('prepare training data').addCommand(prepareCommand);
