// `ringlet bench peak`: this machine's peak fp32 FLOP/s from a fused multiply-add microbenchmark in the
// native addon (12 independent chains of vector FMAs at the widest SIMD level the CPU has), on one core
// and on all cores at once. Training's MFU uses the same single-core figure, measured briefly and cached
// (observability/cpu-peak.ts).
import os from 'node:os';
import { loadNative, nativeUnavailableReason } from '../kernels/native.js';
import { measureCorePeakGflops } from '../observability/cpu-peak.js';

export type PeakResult = {
  simd: string;
  cores: number;
  gflops_per_core: number;
  gflops_total: number;
  gflops_per_thread_all_cores: number[];
};

export function measurePeak(seconds = 1, cores = os.availableParallelism()): PeakResult {
  const native = loadNative();
  if (!native) throw new Error(`bench peak needs the native kernels: ${nativeUnavailableReason()}`);
  const single = measureCorePeakGflops(native, seconds);
  const all = native.fmaPeak(cores, seconds);
  return {
    simd: native.info().simd,
    cores,
    gflops_per_core: single,
    gflops_total: all.reduce((a, b) => a + b, 0),
    gflops_per_thread_all_cores: all,
  };
}
