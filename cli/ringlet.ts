#!/usr/bin/env node
// The `ringlet` command line: one subcommand per job, each ending in a JSON summary with --json.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { benchCommand } from './bench.js';
import { chaosCommand } from './chaos.js';
import { coordinatorCommand } from './coordinator.js';
import { workerCommand } from './worker.js';
import { dataCommand } from './data.js';
import { evalCommand } from './eval.js';
import { evaluatorCommand } from './evaluator.js';
import { exportCommand } from './export.js';
import { fuzzCommand } from './fuzz.js';
import { generateCommand } from './generate.js';
import { presetsCommand } from './presets.js';
import { serveCommand } from './serve.js';
import { studyCommand } from './study.js';
import { trainCommand } from './train.js';

/** package.json's version: two folders up from dist/cli/ringlet.js, one from cli/ringlet.ts (tsx). */
function packageVersion(): string {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ringlet' && pkg.version) return pkg.version;
    } catch {}
  }
  return 'unknown';
}

const program = new Command('ringlet')
  .description('pre-train tiny Llama-style language models')
  .version(packageVersion(), '-V, --version', 'print the version and exit')
  .addCommand(dataCommand)
  .addCommand(trainCommand)
  .addCommand(generateCommand)
  .addCommand(presetsCommand)
  .addCommand(benchCommand)
  .addCommand(evalCommand)
  .addCommand(evaluatorCommand)
  .addCommand(serveCommand)
  .addCommand(exportCommand)
  .addCommand(coordinatorCommand)
  .addCommand(workerCommand)
  .addCommand(fuzzCommand)
  .addCommand(chaosCommand)
  .addCommand(studyCommand)
  .showHelpAfterError();

await program.parseAsync(process.argv);
