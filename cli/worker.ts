// `ringlet worker --coordinator HOST:PORT`: one worker actor of a distributed job (see docs/distributed.md).
import { Command } from 'commander';
import { tlsFromFlags } from '../collective/auth.js';
import { parseHostPort } from '../collective/address.js';
import { workerLimits } from '../worker/limits.js';
import { Worker } from '../worker/worker.js';
import { addCheckConfigOption, checkedConfig, checkReadable } from './check-config.js';
import { intArg, runCommand } from './output.js';
import { addTlsOptions } from './tls-options.js';

export const workerCommand = addCheckConfigOption(addTlsOptions(new Command('worker')))
  .description('join a distributed training job and train on a shard of its data')
  .requiredOption('--coordinator <host:port>', "the coordinator's gRPC address")
  .option('--job-id <id>', 'job to join (default: RINGLET_JOB_ID or "ringlet")')
  .option('--token <token>', 'shared join token (better: RINGLET_TOKEN)')
  .option('--host <host>', 'address of this worker ring endpoint (default 127.0.0.1)')
  .option('--port <n>', 'ring endpoint port (0: any free port)', intArg('--port'))
  .option('--http-port <n>', 'serve /healthz, /readyz and /status on this port (0: any free port)', intArg('--http-port'))
  .option('--connect-timeout <ms>', 'keep trying to reach the coordinator this long', intArg('--connect-timeout'))
  // What the worker accepts from the coordinator (docs/distributed.md, "What a worker trusts").
  .option(
    '--data-root <dirs>',
    "folders the job's data may lie in, ':'-separated (RINGLET_DATA_ROOT; default: . and the temp folder)",
  )
  .option('--runs-root <dirs>', "folders the job's run folder may lie in, ':'-separated (RINGLET_RUNS_ROOT; same default)")
  .option('--nvidia-smi <command>', 'the nvidia-smi this worker runs to meter its GPUs (RINGLET_NVIDIA_SMI; default nvidia-smi)')
  .option(
    '--max-memory <MiB>',
    'largest estimated training memory of a job it accepts (RINGLET_MAX_MEMORY_MIB; default 3/4 of RAM)',
    intArg('--max-memory'),
  )
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, async () => {
      const token = opts.token ?? process.env.RINGLET_TOKEN;
      if (!token) throw new Error('give the join token with --token or RINGLET_TOKEN');
      const tls = tlsFromFlags(opts);
      const options = {
        coordinator: opts.coordinator,
        token,
        jobId: opts.jobId ?? process.env.RINGLET_JOB_ID ?? 'ringlet',
        host: opts.host,
        port: opts.port,
        tls,
        connectTimeoutMs: opts.connectTimeout,
        httpPort: opts.httpPort,
        limits: workerLimits(opts),
      };
      if (opts.checkConfig) {
        if (!parseHostPort(options.coordinator))
          throw new Error(`--coordinator: "${options.coordinator}" is not host:port with a port in 1-65535`);
        checkReadable({ '--tls-ca': tls?.ca, '--tls-cert': tls?.cert, '--tls-key': tls?.key });
        return checkedConfig(opts, { worker: options });
      }
      const worker = new Worker(options);
      const onSignal = (signal: string) => void worker.leave(signal);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const r = await worker.run();
      return { step: r.step, pid: process.pid };
    }),
  );
