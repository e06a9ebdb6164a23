// `ringlet eval`: scores a checkpoint on suites locally, through the same code as the evaluator service.
import { Command } from 'commander';
import { setupBackend } from '../kernels/backend.js';
import { DEFAULT_BLIMP_DIR, DEFAULT_DALAJ_FILE } from '../evaluator/defaults.js';
import { evaluateCheckpoint, EvaluationRequestSchema, suiteSummary } from '../evaluator/evaluate.js';
import { loadScoringModel } from '../evaluator/model.js';
import { intArg, numberArg, runCommand } from './output.js';

export const evalCommand = new Command('eval')
  .description(
    'score a checkpoint on evaluation suites (val, blimp, dalaj, samples, samples-sv, routing, or a .jsonl suite file)',
  )
  .requiredOption('--checkpoint <path>', 'checkpoint folder or run folder (its latest checkpoint)')
  .requiredOption('--suite <names>', 'comma-separated suites, e.g. val,blimp,dalaj')
  .option('--blimp-dir <dir>', 'folder of BLiMP-format jsonl files', DEFAULT_BLIMP_DIR)
  .option('--dalaj-file <file>', 'DaLAJ-format jsonl file', DEFAULT_DALAJ_FILE)
  .option('--suites-dir <dir>', 'folder of user suite files: suite NAME reads NAME.jsonl there')
  .option('--data <dir>', 'dataset folder for the val and routing suites (default: the one the checkpoint was trained on)')
  .option('--limit <n>', 'items per group at most (per BLiMP paradigm; val windows; sample prompts)', intArg('--limit'))
  .option('--batch-size <n>', 'sequences per forward pass', intArg('--batch-size'), 16)
  .option('--cpu-watts <w>', 'power drawn while evaluating, for the energy estimate', numberArg('--cpu-watts'), 15)
  .option('--grid-intensity <g>', 'grid gCO2e per kWh, for the emissions estimate', numberArg('--grid-intensity'), 250)
  .option(
    '--init-seed <n>',
    "score a freshly initialised model of the checkpoint's config and tokenizer (the untrained baseline)",
    intArg('--init-seed'),
  )
  .option('--backend <name>', 'wasm (default), cpu, cuda, tensorflow, tensorflow-gpu or auto', 'wasm')
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, async () => {
      const parsed = EvaluationRequestSchema.safeParse({
        checkpoint: opts.checkpoint,
        suites: String(opts.suite)
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
        limit: opts.limit,
        batch_size: opts.batchSize,
        data: opts.data,
      });
      if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      const backend = await setupBackend(opts.backend);
      const model =
        opts.initSeed === undefined ? undefined : await loadScoringModel(parsed.data.checkpoint, { initSeed: opts.initSeed });
      const result = await evaluateCheckpoint(
        parsed.data,
        { blimpDir: opts.blimpDir, dalajFile: opts.dalajFile, suitesDir: opts.suitesDir, allowPaths: true },
        { cpuWatts: opts.cpuWatts, gridGramsPerKwh: opts.gridIntensity },
        {
          model,
          onSuite: (name, r) => {
            if (!opts.json) process.stderr.write(`${name}: ${JSON.stringify(suiteSummary(r))}\n`);
          },
        },
      );
      model?.dispose();
      return {
        checkpoint: result.checkpoint.path,
        step: result.checkpoint.step,
        model_sha256: result.checkpoint.model_sha256,
        suites: Object.fromEntries(Object.entries(result.suites).map(([name, r]) => [name, suiteSummary(r)])),
        items: result.items,
        seconds: result.seconds,
        items_per_s: result.items_per_s,
        energy: result.energy,
        backend: backend.name,
      };
    }),
  );
