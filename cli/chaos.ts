// `ringlet chaos SCENARIO --data DIR`: fault injection against a small distributed job (chaos/run.ts).
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { Command } from 'commander';
import { SCENARIOS } from '../chaos/scenarios.js';
import { chaosTable, runChaos } from '../chaos/run.js';
import { intArg, runCommand } from './output.js';

export const chaosCommand = new Command('chaos')
  .description(
    `inject faults into a distributed job and report how it recovered (${SCENARIOS.map((s) => s.name).join(', ')}, or all)`,
  )
  .argument('<scenario>', 'scenario name, or all')
  .requiredOption('--data <dir>', 'dataset folder from `ringlet data prepare` (a small one is enough)')
  .option('--trials <n>', 'trials per scenario', intArg('--trials'), 3)
  .option('--seed <n>', 'seed for fault steps and victims', intArg('--seed'), 1)
  .option('--work <dir>', 'folder for the trial runs (default: a new temporary folder)')
  .option('--json', 'print a JSON summary as the last line')
  .action((scenario: string, opts) =>
    runCommand(opts, async () => {
      const work = opts.work ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-chaos-'));
      const result = await runChaos({
        scenario,
        trials: opts.trials,
        seed: opts.seed,
        data: path.resolve(opts.data),
        work: path.resolve(work),
        log: (line) => process.stderr.write(`${line}\n`),
      });
      process.stderr.write(`\n${chaosTable(result.scenarios)}\n\nseed ${result.seed}, work folder ${work}\n`);
      const failed = result.scenarios.filter(
        (s) => s.survived < s.trials || s.samples_skipped || s.samples_repeated || !s.within_tolerance,
      );
      if (failed.length) process.exitCode = 1;
      return { ...result, work };
    }),
  );
