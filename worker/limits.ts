// What a worker accepts from its coordinator, set on the worker alone (flags, RINGLET_* environment, then
// defaults) and never by the wire: the folders the job's data and run may lie in, the nvidia-smi command it
// runs to meter its machine, and how much memory a job may need. A coordinator can be wrong, or not the one
// the worker meant to reach (without TLS nothing proves who answers), so what it sends is checked against
// these (worker/job-check.ts).
import os from 'node:os';
import path from 'node:path';

export interface WorkerLimits {
  dataRoots: string[]; // train.data must resolve under one of these
  runsRoots: string[]; // train.out must resolve under one of these
  nvidiaSmi: string; // the command this worker runs to read its GPUs' power
  maxMemoryBytes: number; // a job whose training needs more (estimated) is refused
}

/** The worker's flags (commander's camelCase) that set its limits. */
export interface LimitFlags {
  dataRoot?: string;
  runsRoot?: string;
  nvidiaSmi?: string;
  maxMemory?: number; // MiB
}

/** Each flag, else its RINGLET_* variable, else the default. Roots are lists joined by ':' (as PATH). */
export function workerLimits(flags: LimitFlags = {}, env: NodeJS.ProcessEnv = process.env): WorkerLimits {
  // By default the working directory (where relative paths such as runs/swe lead) and the temp folder
  // (scratch jobs, tests); `ringlet train --workers` names the job's own folders.
  const roots = (list: string | undefined) =>
    (list ?? [process.cwd(), os.tmpdir()].join(path.delimiter))
      .split(path.delimiter)
      .filter((p) => p !== '')
      .map((p) => path.resolve(p));
  const mib = flags.maxMemory ?? (env.RINGLET_MAX_MEMORY_MIB ? Number(env.RINGLET_MAX_MEMORY_MIB) : undefined);
  if (mib !== undefined && !(Number.isInteger(mib) && mib > 0))
    throw new Error(`--max-memory (RINGLET_MAX_MEMORY_MIB) must be a positive number of MiB, not ${mib}`);
  return {
    dataRoots: roots(flags.dataRoot ?? env.RINGLET_DATA_ROOT),
    runsRoots: roots(flags.runsRoot ?? env.RINGLET_RUNS_ROOT),
    nvidiaSmi: flags.nvidiaSmi ?? env.RINGLET_NVIDIA_SMI ?? 'nvidia-smi',
    // Three quarters of this machine's memory: the rest is for the system, the data and the runtime.
    maxMemoryBytes: mib !== undefined ? mib * 2 ** 20 : Math.floor(os.totalmem() * 0.75),
  };
}
