// `ringlet evaluator`: the evaluator service (HTTP API, automatic evaluation of published checkpoints,
// results in SQLite). Config from --config FILE, RINGLET_EVALUATOR_* variables and these flags.
import { Command } from 'commander';
import { loadNatsConfig } from '../controlplane/nats-config.js';
import { openBus } from '../controlplane/open-bus.js';
import { setupBackend } from '../kernels/backend.js';
import { evaluatorBusKeys, loadServiceConfig } from '../evaluator/config.js';
import { startEvaluator } from '../evaluator/main.js';
import { openApiDocument } from '../evaluator/openapi.js';
import { addNatsOptions } from './nats-options.js';
import { addCheckConfigOption, checkBackendName, checkedConfig } from './check-config.js';
import { runCommand } from './output.js';

export const evaluatorCommand = addCheckConfigOption(addNatsOptions(new Command('evaluator')))
  .description('run the evaluator service: HTTP API, CI gate, lm-eval completions, automatic evaluation of published checkpoints')
  .option('--config <file>', 'JSON config file (fields as in docs/evaluator.md)')
  .option('--host <host>', 'address to listen on (default 127.0.0.1)')
  .option('--port <n>', 'port (default 8470; 0 picks a free one)')
  .option('--grpc-port <n>', 'also serve the gRPC face (proto/ringlet/evaluator/v1) on this port')
  .option('--grpc-tls-cert <pem>', 'serve gRPC over TLS with this certificate')
  .option('--grpc-tls-key <pem>', 'and its key')
  .option('--grpc-tls-client-ca <pem>', 'and require client certificates signed by this CA (mutual TLS)')
  .option('--token <token>', 'bearer token for POST requests (better: RINGLET_EVALUATOR_TOKEN)')
  .option('--db <file>', 'SQLite results file (default runs/evaluator.sqlite)')
  .option('--checkpoint-roots <dirs>', 'comma-separated folders checkpoint references may point into (default .)')
  .option('--blimp-dir <dir>', 'folder of BLiMP-format jsonl files')
  .option('--dalaj-file <file>', 'DaLAJ-format jsonl file')
  .option('--suites-dir <dir>', 'folder of user suite files (NAME.jsonl)')
  .option('--max-body-bytes <n>', 'largest request body accepted')
  .option('--auto-suites <names>', 'suites run on each published checkpoint (default val,blimp)')
  .option('--auto-limit <n>', 'items per group for those runs')
  .option('--cpu-watts <w>', 'power drawn while evaluating, for the energy estimate (default 15)')
  .option('--grid-g-per-kwh <g>', 'grid carbon intensity for the emissions estimate (default 250)')
  .option('--serve <checkpoint>', 'checkpoint served on /v1/completions (lm-evaluation-harness)')
  .option('--drain-seconds <s>', 'how long SIGTERM waits for running evaluations (default 30)')
  .option('--backend <name>', 'wasm (default), cpu, cuda, tensorflow, tensorflow-gpu or auto', 'wasm')
  .option('--openapi', 'print the OpenAPI document and exit')
  .option('--json', 'print a JSON summary as the last line when the service stops')
  .action((opts) =>
    runCommand(opts, async () => {
      if (opts.openapi) {
        process.stdout.write(`${JSON.stringify(openApiDocument(), null, 2)}\n`);
        return {};
      }
      const config = loadServiceConfig(opts.config, process.env, {
        host: opts.host,
        port: opts.port,
        grpc_port: opts.grpcPort,
        grpc_tls_cert: opts.grpcTlsCert,
        grpc_tls_key: opts.grpcTlsKey,
        grpc_tls_client_ca: opts.grpcTlsClientCa,
        token: opts.token,
        db: opts.db,
        checkpoint_roots: opts.checkpointRoots,
        blimp_dir: opts.blimpDir,
        dalaj_file: opts.dalajFile,
        suites_dir: opts.suitesDir,
        max_body_bytes: opts.maxBodyBytes,
        auto_suites: opts.autoSuites,
        auto_limit: opts.autoLimit,
        cpu_watts: opts.cpuWatts,
        grid_g_per_kwh: opts.gridGPerKwh,
        serve: opts.serve,
        drain_seconds: opts.drainSeconds,
      });
      const nats = loadNatsConfig(opts, process.env);
      const busKeys = evaluatorBusKeys(config, nats !== undefined);
      if (opts.checkConfig) {
        checkBackendName(opts.backend);
        return checkedConfig(opts, { evaluator: config, nats: nats ?? null, backend: opts.backend });
      }
      const backend = await setupBackend(opts.backend);
      const bus = await openBus(nats, busKeys);
      const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      const evaluator = await startEvaluator(config, bus, log);
      log(`evaluator listening on ${evaluator.url} (backend ${backend.name}, results in ${config.db})`);
      // The first line on stdout names the address, so a parent process (or a test) can find a free port.
      process.stdout.write(`${JSON.stringify({ listening: evaluator.url, grpc: evaluator.grpcAddress })}\n`);
      const signal = await new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      log(`${signal}: refusing new work, waiting up to ${config.drain_seconds} s for running evaluations`);
      const { drained } = await evaluator.stop();
      await bus.close();
      log(drained ? 'stopped cleanly' : 'stopped with evaluations still running (they are marked failed on the next start)');
      return { stopped: signal, drained, url: evaluator.url };
    }),
  );
