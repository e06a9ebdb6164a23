// One CPU core's peak fp32 FLOP/s on this machine: what CPU MFU divides by. It is measured with the native
// addon's FMA microbenchmark (the code behind `ringlet bench peak`) the first time, then cached per CPU model
// and kernel variant in the user's cache folder, so every run divides by its own machine's peak and only the
// first pays the ~0.4 s measurement. Without the addon nothing can be measured, and the reference machine's
// figure is used, labelled `reference` wherever the peak is named.
import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { loadNative, nativeUnavailableReason, type NativeKernels } from '../kernels/native.js';
import { writeFileAtomic } from '../lm/atomic-write.js';

/** One core of this project's 2-core Zen 5 machine, by `ringlet bench peak` (bench/README.md). */
export const REFERENCE_CPU_PEAK_FLOPS_PER_CORE = 175.7e9;

export type CpuPeakSource = 'measured' | 'cached' | 'reference';
export interface CpuPeak {
  flopsPerCore: number;
  source: CpuPeakSource;
  detail: string; // where the figure comes from, for logs and the summary
}

/**
 * GFLOP/s of one core: the best of three short runs of 12 independent FMA chains at the addon's SIMD level,
 * the figure least disturbed by other processes. Each run also calibrates for ~0.05 s.
 */
export function measureCorePeakGflops(native: NativeKernels, seconds = 0.15): number {
  return Math.max(...[0, 1, 2].map(() => native.fmaPeak(1, seconds / 3)[0]));
}

// What the cache file holds: one entry per key (a machine whose home is shared with others, or that
// forces a narrower SIMD level with RINGLET_SIMD, has several).
const CacheSchema = z
  .object({
    version: z.literal(1),
    peaks: z.record(z.string(), z.object({ gflops_per_core: z.number().positive().max(1e5), measured_at: z.string() }).strict()),
  })
  .strict();
type Cache = z.infer<typeof CacheSchema>;

/** $XDG_CACHE_HOME/ringlet/cpu-peak.json, else ~/.cache/ringlet/cpu-peak.json. */
export function cpuPeakCacheFile(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'ringlet', 'cpu-peak.json');
}

/** The cache key: the CPU model, the SIMD level the FMA loop runs at, and the one thread it runs on. */
export function cpuPeakKey(simd: string): string {
  return `${os.cpus()[0]?.model.trim() || 'unknown CPU'} | ${simd} | 1 thread`;
}

export interface CpuPeakOptions {
  cacheFile?: string; // default cpuPeakCacheFile()
  warn?: (message: string) => void; // default: a line on stderr
}

/** This machine's per-core peak: from the cache, else measured now and cached, else the reference's. */
export async function hostCpuPeak(options: CpuPeakOptions = {}): Promise<CpuPeak> {
  const native = loadNative();
  if (!native)
    return {
      flopsPerCore: REFERENCE_CPU_PEAK_FLOPS_PER_CORE,
      source: 'reference',
      detail:
        `borrowed from one core of the reference Zen 5 machine; this machine's peak cannot be measured ` +
        `without the native kernels (${nativeUnavailableReason()})`,
    };
  const file = options.cacheFile ?? cpuPeakCacheFile();
  const warn = options.warn ?? ((message: string) => process.stderr.write(`ringlet: ${message}\n`));
  const key = cpuPeakKey(native.info().simd);
  const cache = await readCache(file, warn);
  const hit = cache.peaks[key];
  if (hit)
    return {
      flopsPerCore: hit.gflops_per_core * 1e9,
      source: 'cached',
      detail: `FMA microbenchmark on ${key}, measured ${hit.measured_at}, cached in ${file}`,
    };
  const gflops = measureCorePeakGflops(native);
  cache.peaks[key] = { gflops_per_core: gflops, measured_at: new Date().toISOString() };
  try {
    await mkdir(path.dirname(file), { recursive: true });
    // Atomic: runs started side by side each measure and write; a reader sees one whole file or the other.
    await writeFileAtomic(file, JSON.stringify(cache, null, 2) + '\n');
  } catch (err) {
    warn(`could not cache the CPU peak in ${file} (${(err as Error).message}); the next run measures again`);
  }
  return { flopsPerCore: gflops * 1e9, source: 'measured', detail: `FMA microbenchmark on ${key}, measured now` };
}

/** The cache, or an empty one when there is none; a corrupt one is reported and then measured over. */
async function readCache(file: string, warn: (message: string) => void): Promise<Cache> {
  const empty: Cache = { version: 1, peaks: {} };
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      warn(`cannot read the CPU peak cache ${file}: ${(err as Error).message}`);
    return empty;
  }
  try {
    return CacheSchema.parse(JSON.parse(text));
  } catch (err) {
    const reason =
      err instanceof z.ZodError
        ? err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')
        : (err as Error).message;
    warn(`ignoring the corrupt CPU peak cache ${file} (${reason}); measuring the peak again`);
    return empty;
  }
}
