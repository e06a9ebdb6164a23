// The faults `ringlet chaos` injects, each into a running supervised job (chaos/supervisor.ts) at a step
// the trial draws. A scenario hurts processes or files the way the real fault would: signals to real
// processes, real bytes flipped on disk, a real filesystem that fills up.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { listCheckpoints } from '../lm/checkpoint.js';
import type { Rng } from '../lm/rng.js';
import type { LinkLab } from './netns.js';
import type { SupervisedJob } from './supervisor.js';

export interface TrialContext {
  job: SupervisedJob;
  lab: LinkLab | null; // the network namespaces, for scenarios that ask for them
  runDir: string;
  rng: Rng;
  heartbeatTimeoutMs: number;
}

export interface Scenario {
  name: string;
  description: string;
  /** Why this machine cannot run the scenario, or null when it can. */
  unavailable?: () => string | null;
  /** Runs each worker in a network namespace of its own (chaos/netns.ts). */
  network?: boolean;
  /** Sets up the run folder before the job starts (a small filesystem, say); returns its undo. */
  prepare?: (runDir: string) => () => void;
  /** The fault itself, once the job has committed the trial's fault step. */
  inject: (t: TrialContext) => Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `sig` to `pid`; false when the process has already exited (the job may finish mid-fault). */
function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

function livePid(t: TrialContext): number {
  const live = t.job.workers().filter((w) => w.exitCode === null && w.signalCode === null && w.pid);
  return live[t.rng.int(live.length)].pid!;
}

const FULL_DISK_BYTES = 24 << 20;

/** Overwrites 4 bytes in the middle of the newest checkpoint's weights, as a rotting disk would. */
async function corruptNewestCheckpoint(runDir: string): Promise<void> {
  const newest = (await listCheckpoints(runDir)).at(-1);
  if (!newest) throw new Error('no checkpoint to corrupt yet: draw a later fault step');
  const fd = fs.openSync(path.join(newest.path, 'model.safetensors'), 'r+');
  try {
    fs.writeSync(fd, Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, Math.floor(fs.fstatSync(fd).size / 2));
  } finally {
    fs.closeSync(fd);
  }
}

const needsRoot = (what: string) => () => (process.getuid?.() === 0 ? null : `${what} needs root`);

export const SCENARIOS: Scenario[] = [
  {
    name: 'kill-worker',
    description: 'kill -9 of a random worker at a random step; it is started again',
    inject: async (t) => void process.kill(livePid(t), 'SIGKILL'),
  },
  {
    name: 'kill-coordinator',
    description: 'kill -9 of the coordinator; it is started again with --resume, and the workers reconnect',
    inject: async (t) => void t.job.coordinator().kill('SIGKILL'),
  },
  {
    name: 'zombie-worker',
    description: 'SIGSTOP of a worker for longer than the heartbeat timeout, then SIGCONT: it comes back',
    inject: async (t) => {
      const pid = livePid(t);
      signal(pid, 'SIGSTOP');
      await sleep(t.heartbeatTimeoutMs + 1000);
      signal(pid, 'SIGCONT');
    },
  },
  {
    name: 'straggler',
    description: 'one worker runs at half speed for 4 s (stopped 50 ms of every 100 ms)',
    inject: async (t) => {
      const pid = livePid(t);
      for (const end = Date.now() + 4000; Date.now() < end && signal(pid, 'SIGSTOP');) {
        await sleep(50);
        signal(pid, 'SIGCONT');
        await sleep(50);
      }
    },
  },
  {
    name: 'corrupt-checkpoint',
    description: 'bytes of the newest checkpoint flipped on disk, then kill -9 of the coordinator, which must resume',
    inject: async (t) => {
      await corruptNewestCheckpoint(t.runDir);
      t.job.coordinator().kill('SIGKILL');
    },
  },
  {
    name: 'rotten-restore',
    description: 'bytes of the newest checkpoint flipped on disk, then kill -9 of a worker: the ring must restore an older one',
    inject: async (t) => {
      await corruptNewestCheckpoint(t.runDir);
      process.kill(livePid(t), 'SIGKILL');
    },
  },
  {
    name: 'full-disk',
    description: 'the run folder (a 24 MiB tmpfs) fills up around a checkpoint; the space comes back after 3 s',
    unavailable: needsRoot('mounting a tmpfs'),
    prepare: (runDir) => {
      fs.mkdirSync(runDir, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${FULL_DISK_BYTES}`, 'tmpfs', runDir]);
      return () => execFileSync('umount', ['-l', runDir]);
    },
    inject: async (t) => {
      const filler = path.join(t.runDir, 'filler');
      const block = Buffer.alloc(1 << 20, 1);
      const fd = fs.openSync(filler, 'w');
      try {
        for (;;) fs.writeSync(fd, block); // until ENOSPC
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
      // Fill the last partial block too, so even a small append fails.
      for (let n = block.length >> 1; n > 0; n >>= 1)
        try {
          fs.writeSync(fd, block, 0, n);
        } catch {
          /* full at this size: try a smaller one */
        }
      fs.closeSync(fd);
      await sleep(3000);
      fs.rmSync(filler);
    },
  },
  {
    name: 'link-cut',
    description:
      "each worker on a host of its own (a network namespace); one worker's link goes down for longer than the heartbeat timeout, then up",
    network: true,
    unavailable: () =>
      needsRoot('creating network namespaces')() ??
      (spawnSync('ip', ['-V']).status === 0 ? null : 'the ip command (iproute2) is missing'),
    inject: async (t) => {
      const slot = t.rng.int(t.lab!.slots);
      t.lab!.cut(slot);
      await sleep(t.heartbeatTimeoutMs + 1000);
      t.lab!.restore(slot);
    },
  },
];

export function scenarioNamed(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new Error(`unknown chaos scenario "${name}" (known: ${SCENARIOS.map((x) => x.name).join(', ')}, all)`);
  return s;
}
