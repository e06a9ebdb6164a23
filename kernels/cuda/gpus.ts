// The GPUs a job may give its workers, one each: the ids CUDA_VISIBLE_DEVICES lists when it is set (indices or
// UUIDs, as CUDA takes them), else 0..count-1 for the devices the CUDA runtime sees. A worker started with
// CUDA_VISIBLE_DEVICES=<id> sees that GPU alone, as its device 0.
import { cudaDeviceCount } from './addon.js';

export function visibleGpus(env: NodeJS.ProcessEnv = process.env, count: () => number = cudaDeviceCount): string[] {
  const n = count();
  if (n === 0) return [];
  const listed = env.CUDA_VISIBLE_DEVICES?.split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
  return listed && listed.length > 0 ? listed.slice(0, n) : Array.from({ length: n }, (_, i) => String(i));
}

/** The environment of worker slot `slot`: pinned to its GPU (round robin when there are more workers than GPUs), or
 *  `env` as it is without GPUs. */
export function workerEnv(env: NodeJS.ProcessEnv, gpus: string[], slot: number): NodeJS.ProcessEnv {
  return gpus.length === 0 ? env : { ...env, CUDA_VISIBLE_DEVICES: gpus[slot % gpus.length] };
}
