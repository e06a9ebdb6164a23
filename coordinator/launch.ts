// `ringlet train --workers N` on one machine: the coordinator and N workers as separate processes on
// loopback, each a `ringlet coordinator` / `ringlet worker` child of this one. The coordinator's last
// stdout line is the job's JSON summary; SIGINT/SIGTERM here are passed on to it, and it ends the job
// with a final checkpoint.
//
// A worker that dies is started again, as torchrun's --max-restarts does (up to `maxRestarts` for the
// job), and the job is elastic meanwhile: the coordinator waits up to `replaceWaitS` for the replacement
// to restore the ring's size, then goes on with the survivors (min_workers 1); a replacement that comes
// later joins at the next checkpoint. On GPUs, each worker is pinned to one with CUDA_VISIBLE_DEVICES.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { TlsFiles } from '../collective/auth.js';
import type { TrainConfig } from '../train/config.js';
import type { DistributedSummary } from './run.js';
import { jsonLog } from './log.js';
import { workerEnv } from '../kernels/cuda/gpus.js';

const log = jsonLog('launcher');

export interface LaunchOptions {
  workers: number;
  resume: boolean;
  extraCoordinatorArgs?: string[];
  tls?: TlsFiles; // mutual TLS for the coordinator and every worker, one certificate for this machine
  maxRestarts?: number; // worker processes started again after dying, for the whole job (default 3)
  replaceWaitS?: number; // how long the ring waits for a restarted worker before going on without it (default 20)
  gpus?: string[]; // GPU ids (kernels/cuda/gpus.ts): worker i, and its replacements, see gpus[i mod length] alone
}

export const DEFAULT_WORKER_RESTARTS = 3;
const DEFAULT_REPLACE_WAIT_S = 20;

/** The command line that runs this very CLI (compiled, or TypeScript through tsx) with the same Node flags. */
export function ringletArgv(args: string[]): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1], ...args];
}

/** A `ringlet` child process, its output piped; `wrap` puts a command in front (`ip netns exec NS`, say). */
export function ringlet(args: string[], env: NodeJS.ProcessEnv, wrap: string[] = []): ChildProcess {
  const [file, ...rest] = [...wrap, ...ringletArgv(args)];
  return spawn(file, rest, { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
      '1',
      '--max-workers',
      String(o.workers),
      '--replace-wait',
      String(o.replaceWaitS ?? DEFAULT_REPLACE_WAIT_S),
      ...(o.resume ? ['--resume'] : []),
      ...(o.extraCoordinatorArgs ?? []),
      ...tlsArgs,
      '--json',
    ],
    env,
  );
  const workers: ChildProcess[] = [];
  let coordinatorAddress = '';
  let restartsLeft = o.maxRestarts ?? DEFAULT_WORKER_RESTARTS;
  let ending = false; // the coordinator has exited: workers leaving now are not failures
  const startWorker = (slot: number) => {
    // Each worker may read this job's data and write its run folder, and nothing else the coordinator names.
    const roots = ['--data-root', path.resolve(train.data), '--runs-root', path.resolve(train.out)];
    const w = ringlet(
      ['worker', '--coordinator', coordinatorAddress, ...roots, ...tlsArgs, '--json'],
      workerEnv(env, o.gpus ?? [], slot),
    );
    w.stdout!.resume();
    readline.createInterface({ input: w.stderr! }).on('line', (l) => process.stderr.write(`${l}\n`));
    w.on('exit', (code, signal) => {
      if (ending || code === 0) return;
      const how = signal ? `signal ${signal}` : `status ${code}`;
      if (restartsLeft <= 0) return log('warn', 'worker died; no restarts left', { worker_pid: w.pid, exit: how });
      restartsLeft -= 1;
      const replacement = startWorker(slot);
      log('warn', 'worker died; started a replacement', {
        worker_pid: w.pid,
        exit: how,
        replacement_pid: replacement.pid,
        restarts_left: restartsLeft,
      });
    });
    workers.push(w);
    return w;
  };
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
    if (record.msg === 'listening' && workers.length === 0) {
      coordinatorAddress = record.address!;
      for (let slot = 0; slot < o.workers; slot++) startWorker(slot);
    }
  });
  const code = await new Promise<number | null>((resolve) => coordinator.on('exit', resolve));
  ending = true;
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
