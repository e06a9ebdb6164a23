// `ringlet coordinator`: serves one distributed training job (see docs/distributed.md). Training settings
// as for `ringlet train`; ring and rendezvous settings from --dist-config, RINGLET_* variables or flags.
import { Command } from 'commander';
import { loadTrainConfig } from '../train/config.js';
import { resolveModelConfig } from '../train/run.js';
import { presetConfig } from '../lm/model-config.js';
import { loadDistributedConfig } from '../coordinator/config.js';
import { createCoordinator } from '../coordinator/run.js';
import { jsonLog } from '../coordinator/log.js';
import { loadNatsConfig } from '../controlplane/nats-config.js';
import { openBus } from '../controlplane/open-bus.js';
import { addCheckConfigOption, checkedConfig, checkReadable } from './check-config.js';
import { exitWhenDone, intArg, numberArg, runCommand } from './output.js';
import { addNatsOptions } from './nats-options.js';
import { addTlsOptions } from './tls-options.js';
import { addTrainOptions } from './train.js';

export const coordinatorCommand = addCheckConfigOption(
  addTrainOptions(
    addNatsOptions(addTlsOptions(new Command('coordinator'))).description(
      'coordinate a distributed training job: rendezvous, ring, checkpoints, recovery',
    ),
  ),
)
  .option('--resume', 'continue from the latest checkpoint in --out')
  .option('--dist-config <file>', 'JSON file of distributed settings (see coordinator/config.ts)')
  .option('--job-id <id>', 'job name workers must give')
  .option('--token <token>', 'shared join token (better: RINGLET_TOKEN)')
  .option('--host <host>', 'address to listen on (default 127.0.0.1)')
  .option('--port <n>', 'gRPC port (0: any free port)', intArg('--port'))
  .option('--http-port <n>', 'health/readiness HTTP port (0: any)', intArg('--http-port'))
  .option('--min-workers <n>', 'workers needed to start and to go on', intArg('--min-workers'))
  .option('--max-workers <n>', 'workers the ring takes at most', intArg('--max-workers'))
  .option('--rendezvous-timeout <s>', 'wait this long for max-workers', numberArg('--rendezvous-timeout'))
  .option('--replace-wait <s>', 'after losing a worker, wait this long for a replacement', numberArg('--replace-wait'))
  .option('--heartbeat-interval <ms>', 'heartbeat period', intArg('--heartbeat-interval'))
  .option('--heartbeat-timeout <ms>', 'drop a worker silent this long', intArg('--heartbeat-timeout'))
  .option('--bucket-bytes <n>', 'all-reduce bucket size', intArg('--bucket-bytes'))
  .option('--chunk-bytes <n>', 'ring chunk size (under the gRPC message limit)', intArg('--chunk-bytes'))
  .option('--fp16', 'compress ring traffic to half precision (sums stay fp32)')
  .action((opts) =>
    runCommand(opts, async () => {
      const train = loadTrainConfig(opts.config, opts);
      const dist = loadDistributedConfig(opts.distConfig, opts);
      const nats = loadNatsConfig(opts, process.env);
      if (opts.checkConfig) {
        checkReadable({ '--tls-ca': dist.tls?.ca, '--tls-cert': dist.tls?.cert, '--tls-key': dist.tls?.key });
        // The preset and its overrides, with the preset's vocabulary standing in for the dataset's (read at start).
        resolveModelConfig(train, presetConfig(train.model.preset).vocab);
        return checkedConfig(opts, { train, distributed: dist, nats: nats ?? null, resume: Boolean(opts.resume) });
      }
      const log = jsonLog('coordinator', { job: dist.job_id });
      // Every event is signed with the join token, so an evaluator that trusts this job can tell it from a forgery.
      const bus = await openBus(nats, { sign: dist.token });
      const { coordinator, summary } = await createCoordinator(train, dist, { resume: Boolean(opts.resume), bus, log });
      const onSignal = (signal: string) => coordinator.requestStop(signal);
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        await coordinator.start();
        return { ...(await summary()) };
      } finally {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
        await coordinator.close();
        await bus.close();
        exitWhenDone();
      }
    }),
  );
