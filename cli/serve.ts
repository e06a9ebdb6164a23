// `ringlet serve`: the web UI, its API and the OpenAI-compatible endpoints over the runs in --runs
// (web/server/). Config from --config FILE, RINGLET_SERVE_* variables and these flags.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { setupBackend } from '../kernels/backend.js';
import { defaultObservabilityConfig } from '../observability/config.js';
import { EnergyMeter } from '../observability/power.js';
import { loadServeConfig } from '../web/server/config.js';
import { Evaluations } from '../web/server/evaluations.js';
import { GenerationEnergy } from '../web/server/playground.js';
import { RunsIndex } from '../web/server/runs.js';
import { isLoopback, WebServer } from '../web/server/server.js';
import { addCheckConfigOption, checkBackendName, checkedConfig } from './check-config.js';
import { runCommand } from './output.js';

/** dist/web, where `npm run build` puts the UI: beside this file's dist/ when compiled, under the repository with tsx. */
function staticDir(): string {
  const up = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  return path.basename(up) === 'dist' ? path.join(up, 'web') : path.join(up, 'dist', 'web');
}

export const serveCommand = addCheckConfigOption(new Command('serve'))
  .description('serve the web UI (runs, compare, playground), its API and OpenAI-compatible completions for the runs in --runs')
  .option('--config <file>', 'JSON config file (fields as in docs/web.md)')
  .option('--runs <dir>', 'folder of runs (default runs)')
  .option('--host <host>', 'address to listen on (default 127.0.0.1: this machine only)')
  .option('--port <n>', 'port (default 8080; 0 picks a free one)')
  .option('--db <file>', "the evaluator's SQLite store (default <runs>/evaluator.sqlite)")
  .option('--token <token>', 'bearer token evaluation submissions need off loopback (better: RINGLET_EVALUATOR_TOKEN)')
  .option('--poll-ms <ms>', 'how often live views look at the run folders (default 500)')
  .option('--max-loaded-models <n>', 'checkpoints kept loaded for generation (default 4)')
  .option('--backend <name>', 'wasm (default), cpu, cuda, tensorflow, tensorflow-gpu or auto', 'wasm')
  .option('--json', 'print a JSON summary as the last line when the server stops')
  .action((opts) =>
    runCommand(opts, async () => {
      const config = loadServeConfig(opts.config, process.env, {
        host: opts.host,
        port: opts.port,
        runs: opts.runs,
        db: opts.db,
        token: opts.token,
        poll_ms: opts.pollMs,
        max_loaded_models: opts.maxLoadedModels,
      });
      if (opts.checkConfig) {
        checkBackendName(opts.backend);
        return checkedConfig(opts, { serve: config, backend: opts.backend });
      }
      const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      const backend = await setupBackend(opts.backend);
      const db = config.db ?? path.join(config.runs, 'evaluator.sqlite');
      const evaluations = new Evaluations(db, config.runs, log);
      const runs = new RunsIndex(config.runs, evaluations);
      const meter = await EnergyMeter.forMachine(defaultObservabilityConfig());
      const server = new WebServer(runs, evaluations, new GenerationEnergy(meter), {
        host: config.host,
        port: config.port,
        staticDir: staticDir(),
        token: config.token ?? null,
        maxBodyBytes: config.max_body_bytes,
        pollMs: config.poll_ms,
        maxLoadedModels: config.max_loaded_models,
      });
      const url = await server.listen();
      if (!isLoopback(config.host))
        log(
          config.token
            ? `listening beyond loopback (${config.host}): evaluation submissions need the token`
            : `listening beyond loopback (${config.host}) with no token: evaluation submissions are refused`,
        );
      log(`Ringlet UI: ${url}/ (runs in ${path.resolve(config.runs)}, backend ${backend.name})`);
      // The first line on stdout names the address, so a parent process (or a test) can find a free port.
      process.stdout.write(`${JSON.stringify({ listening: url })}\n`);
      const signal = await new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      await server.close();
      evaluations.close();
      await meter.stop();
      return { stopped: signal, url };
    }),
  );
