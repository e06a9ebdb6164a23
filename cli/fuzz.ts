// `ringlet fuzz`: sends malformed, truncated, oversized and out-of-order messages to Ringlet's services,
// each a child process of this one, and checks that every answer is a clear error, that no service hangs
// or crashes, and that memory stays bounded (docs/reliability.md, "Fuzzing"). `--serve` is how this
// command starts the services that have no command of their own, in those child processes.
import { Command, Option } from 'commander';
import { failureLine, summarize, table } from '../chaos/fuzz/report.js';
import { fuzzService } from '../chaos/fuzz/run.js';
import { serveCollective, serveCoordinator } from '../chaos/fuzz/serve.js';
import { SERVICES } from '../chaos/fuzz/services.js';
import { intArg, numberArg, runCommand } from './output.js';

const names = SERVICES.map((s) => s.name);

export const fuzzCommand = new Command('fuzz')
  .description('fuzz the collective endpoint, the coordinator, the evaluator (HTTP and gRPC) and the metrics endpoint')
  .addOption(new Option('--service <name>', 'which service').choices([...names, 'all']).default('all'))
  .option('--count <n>', 'messages per service', intArg('--count'), 10_000)
  .option('--seed <n>', 'seed of every message (printed with each failure)', intArg('--seed'), 1)
  .option('--index <i>', 'send only case i of the seed (replays a failure)', intArg('--index'))
  .option('--deadline-ms <ms>', 'an answer later than this is a hang', intArg('--deadline-ms'), 5000)
  .option(
    '--max-rss-growth <mib>',
    "largest growth of a service's resident memory that passes",
    numberArg('--max-rss-growth'),
    64,
  )
  .option('--json', 'print a JSON summary as the last line')
  .addOption(
    new Option('--serve <service>', 'serve one service for a fuzzing parent').choices(['collective', 'coordinator']).hideHelp(),
  )
  .action(async (opts) => {
    if (opts.serve) {
      const token = process.env.RINGLET_TOKEN;
      if (!token) throw new Error('--serve needs the join token in RINGLET_TOKEN');
      return opts.serve === 'collective' ? serveCollective(token) : serveCoordinator(token);
    }
    await runCommand(opts, async () => {
      const chosen = opts.service === 'all' ? SERVICES : SERVICES.filter((s) => s.name === opts.service);
      const results = [];
      for (const service of chosen)
        results.push(
          await fuzzService(service, {
            count: opts.count,
            seed: opts.seed,
            deadlineMs: opts.deadlineMs,
            index: opts.index,
            onFailure: (f) => process.stderr.write(`${failureLine(f)}\n`),
          }),
        );
      const summary = summarize(results, opts.seed, opts.maxRssGrowth);
      // With --json the summary is stdout's last line, so the table goes to stderr.
      (opts.json ? process.stderr : process.stdout).write(`${table(summary)}\n`);
      if (!summary.passed) process.exitCode = 1;
      return { ...summary };
    });
  });
