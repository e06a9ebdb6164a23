// `ringlet train --workers N` on one machine: the coordinator and N workers as separate processes on
// loopback, each a `ringlet coordinator` / `ringlet worker` child of this one. The coordinator's last
// stdout line is the job's JSON summary; SIGINT/SIGTERM here are passed on to it, and it ends the job
// with a final checkpoint.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { TlsFiles } from '../collective/auth.js';
import type { TrainConfig } from '../train/config.js';
import type { DistributedSummary } from './run.js';

export interface LaunchOptions {
  workers: number;
  resume: boolean;
  extraCoordinatorArgs?: string[];
  tls?: TlsFiles; // mutual TLS for the coordinator and every worker, one certificate for this machine
}

function ringlet(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  // Re-run this very CLI (compiled, or TypeScript through tsx) with the same Node flags.
  return spawn(process.execPath, [...process.execArgv, process.argv[1], ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function launchLocal(train: TrainConfig, o: LaunchOptions): Promise<DistributedSummary> {
  fs.mkdirSync(train.out, { recursive: true });
  const configFile = path.join(path.resolve(train.out), 'train-config.json');
  fs.writeFileSync(configFile, JSON.stringify(train, null, 2));
  const env = { ...process.env, RINGLET_TOKEN: process.env.RINGLET_TOKEN ?? randomBytes(24).toString('hex') };
  const tlsArgs = o.tls ? ['--tls-ca', o.tls.ca, '--tls-cert', o.tls.cert, '--tls-key', o.tls.key] : [];
  const coordinator = ringlet(
    [
      'coordinator',
      '--config',
      configFile,
      '--min-workers',
      String(o.workers),
      '--max-workers',
      String(o.workers),
      ...(o.resume ? ['--resume'] : []),
      ...(o.extraCoordinatorArgs ?? []),
      ...tlsArgs,
      '--json',
    ],
    env,
  );
  const workers: ChildProcess[] = [];
  const forward = (signal: NodeJS.Signals) => coordinator.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  let stdout = '';
  coordinator.stdout!.on('data', (d) => (stdout += d));
  readline.createInterface({ input: coordinator.stderr! }).on('line', (line) => {
    process.stderr.write(`${line}\n`);
    let record: { msg?: string; address?: string } = {};
    try {
      record = JSON.parse(line);
    } catch {
      return;
    }
    if (record.msg === 'listening' && workers.length === 0)
      for (let i = 0; i < o.workers; i++) {
        const w = ringlet(['worker', '--coordinator', record.address!, ...tlsArgs, '--json'], env);
        w.stdout!.resume();
        readline.createInterface({ input: w.stderr! }).on('line', (l) => process.stderr.write(`${l}\n`));
        workers.push(w);
      }
  });
  const code = await new Promise<number | null>((resolve) => coordinator.on('exit', resolve));
  process.removeListener('SIGINT', forward);
  process.removeListener('SIGTERM', forward);
  // Workers leave on their own once told the job is over; any still running are stopped.
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.exitCode !== null || w.signalCode !== null) return resolve();
          const timer = setTimeout(() => w.kill('SIGKILL'), 10_000);
          w.on('exit', () => (clearTimeout(timer), resolve()));
          w.kill('SIGTERM');
        }),
    ),
  );
  const last = stdout.trim().split('\n').at(-1) ?? '';
  let summary: DistributedSummary & { error?: string };
  try {
    summary = JSON.parse(last);
  } catch {
    throw new Error(`the coordinator exited with status ${code} and no summary`);
  }
  if (summary.error) throw new Error(summary.error);
  return summary;
}
