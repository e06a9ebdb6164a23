// One distributed job under supervision, as a cluster would run it: a coordinator and N workers as
// separate `ringlet` processes on loopback, each started again when it dies (the coordinator with
// --resume on the same ports, as a Deployment restarts it; a worker plain, as a StatefulSet does). The
// chaos scenarios (chaos/scenarios.ts) hurt these processes; the coordinator's log says what followed.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import readline from 'node:readline';
import { ringlet } from '../coordinator/launch.js';
import type { LinkLab } from './netns.js';

export type LogRecord = Record<string, unknown> & { msg?: string; component?: string; time?: string };

export interface SupervisedJob {
  /** Every log record of the coordinator and the workers so far, with the time this process read it. */
  readonly logs: Array<LogRecord & { seen: number }>;
  workers(): ChildProcess[]; // by slot
  coordinator(): ChildProcess;
  /** The highest step the coordinator has committed (its `step` log lines; log_every must be 1). */
  step(): number;
  /** Settles with the final coordinator's summary once the job ends (or the supervisor gives up). */
  readonly done: Promise<{
    code: number | null;
    summary: Record<string, unknown>;
    coordinatorRestarts: number;
    workerRestarts: number;
    stderrTail: string; // the coordinator's last lines that were not log records (a crash's stack, say)
  }>;
}

/**
 * A free port below the kernel's ephemeral range. The coordinator keeps its port across restarts (the workers
 * dial it), and while it is down a port from the ephemeral range (what listen(0) gives) can be taken as the local
 * end of some outgoing connection, so the restarted coordinator could not bind it again (EADDRINUSE).
 */
async function freePort(): Promise<number> {
  const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const low = 10000;
  const high = Math.max(low + 1000, (ephemeralLow || 32768) - 1);
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    const bound = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (bound) return port;
  }
  throw new Error(`no free port in ${low}-${high} after 100 tries`);
}

const MAX_PROCESS_RESTARTS = 10; // per job: beyond this a scenario has broken something for good

export async function superviseJob(o: {
  coordinatorArgs: string[]; // training and distributed flags, without ports or --resume
  workers: number;
  env: NodeJS.ProcessEnv;
  lab?: LinkLab; // each worker slot in its own network namespace; the coordinator on the lab's bridge
  onLog?: (r: LogRecord) => void;
}): Promise<SupervisedJob> {
  const [port, httpPort] = [await freePort(), await freePort()];
  const host = o.lab?.coordinatorHost ?? '127.0.0.1';
  const address = `${host}:${port}`;
  const logs: Array<LogRecord & { seen: number }> = [];
  const workers: ChildProcess[] = [];
  let coordinator: ChildProcess;
  let step = 0;
  let coordinatorRestarts = 0;
  let workerRestarts = 0;
  let ended = false;
  let stderrTail = '';
  let settle: (r: Awaited<SupervisedJob['done']>) => void;
  const done = new Promise<Awaited<SupervisedJob['done']>>((resolve) => (settle = resolve));

  const record = (line: string): LogRecord | null => {
    let r: LogRecord;
    try {
      r = JSON.parse(line);
    } catch {
      return null;
    }
    logs.push({ ...r, seen: Date.now() });
    o.onLog?.(r);
    return r;
  };
  const startWorker = (slot: number) => {
    const own = o.lab ? ['--host', o.lab.workerHost(slot)] : [];
    const args = ['worker', '--coordinator', address, ...own, '--connect-timeout', '120000', '--json'];
    const w = ringlet(args, o.env, o.lab?.inSlot(slot));
    w.stdout!.resume();
    readline.createInterface({ input: w.stderr! }).on('line', (line) => record(line));
    workers[slot] = w;
    w.on('exit', (code) => {
      if (ended || code === 0) return;
      if (++workerRestarts > MAX_PROCESS_RESTARTS) return;
      startWorker(slot);
    });
  };
  const startCoordinator = (resume: boolean) => {
    const c = ringlet(
      [
        'coordinator',
        ...o.coordinatorArgs,
        '--host',
        host,
        '--port',
        String(port),
        '--http-port',
        String(httpPort),
        ...(resume ? ['--resume'] : []),
        '--json',
      ],
      o.env,
    );
    coordinator = c;
    let stdout = '';
    c.stdout!.on('data', (d) => (stdout += d));
    readline.createInterface({ input: c.stderr! }).on('line', (line) => {
      const r = record(line);
      if (!r) stderrTail = (stderrTail + line + '\n').slice(-2000);
      if (r?.msg === 'step') step = Math.max(step, Number(r.step));
    });
    c.on('exit', (code, signal) => {
      if (signal === null && stdout.trim() !== '') {
        // It ended on its own with a summary: the job finished (0) or failed (1, the reason in the summary).
        // Killed, or crashed before a summary: a new one resumes from the last checkpoint, on the same ports.
        ended = true;
        for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
        let summary: Record<string, unknown> = {};
        try {
          summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
        } catch {
          summary = { error: `no summary: ${stdout.slice(-200)}` };
        }
        return settle({ code, summary, coordinatorRestarts, workerRestarts, stderrTail });
      }
      if (++coordinatorRestarts > MAX_PROCESS_RESTARTS) {
        ended = true;
        for (const w of workers) w.kill('SIGKILL');
        return settle({
          code,
          summary: { error: 'the coordinator kept dying' },
          coordinatorRestarts,
          workerRestarts,
          stderrTail,
        });
      }
      startCoordinator(true);
    });
  };
  startCoordinator(false);
  for (let i = 0; i < o.workers; i++) startWorker(i);
  return {
    logs,
    workers: () => workers,
    coordinator: () => coordinator,
    step: () => step,
    done,
  };
}
