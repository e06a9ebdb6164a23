// Model FLOPs utilisation: achieved model FLOP/s (tokens/s × 6N + 12·L·d·T, lm/model-config.ts) over the
// peak FLOP/s of the hardware the job runs on. Peaks are datasheet dense figures; never the sparse ones
// (NVIDIA's datasheets print "with sparsity" figures, twice the dense ones, for tensor-core precisions).
import type { ObservabilityConfig, Precision } from './config.js';

export interface DevicePeak {
  name: string;
  tflops: Partial<Record<Precision, number>>; // dense TFLOP/s per precision
  source: string;
}

export const PEAKS: Record<string, DevicePeak> = {
  'h100-sxm': {
    name: 'NVIDIA H100 SXM5',
    tflops: { fp32: 67, tf32: 495, bf16: 989, fp16: 989, fp8: 1979 },
    source: 'NVIDIA H100 Tensor Core GPU datasheet (dense = half the "with sparsity" figure)',
  },
  'h100-pcie': {
    name: 'NVIDIA H100 PCIe',
    tflops: { fp32: 51, tf32: 378, bf16: 756, fp16: 756, fp8: 1513 },
    source: 'NVIDIA H100 Tensor Core GPU datasheet',
  },
  h200: {
    name: 'NVIDIA H200 SXM',
    tflops: { fp32: 67, tf32: 495, bf16: 989, fp16: 989, fp8: 1979 },
    source: 'NVIDIA H200 Tensor Core GPU datasheet',
  },
  a100: {
    name: 'NVIDIA A100 (SXM4 / PCIe)',
    tflops: { fp32: 19.5, tf32: 156, bf16: 312, fp16: 312 },
    source: 'NVIDIA A100 Tensor Core GPU datasheet',
  },
  l4: {
    name: 'NVIDIA L4',
    tflops: { fp32: 30.3, tf32: 60, bf16: 121, fp16: 121, fp8: 242 },
    source: 'NVIDIA L4 Tensor Core GPU datasheet',
  },
  'v100-sxm': {
    name: 'NVIDIA V100 SXM2',
    tflops: { fp32: 15.7, fp16: 125 },
    source: 'NVIDIA V100 Tensor Core GPU datasheet',
  },
  mi300x: {
    name: 'AMD Instinct MI300X',
    tflops: { fp32: 163.4, tf32: 653.7, bf16: 1307.4, fp16: 1307.4, fp8: 2614.9 },
    source: 'AMD Instinct MI300X data sheet (dense figures)',
  },
};

/**
 * One CPU core's fp32 peak: `ringlet bench peak` (12 independent chains of AVX-512 FMAs) measured 175.7
 * GFLOP/s on one core of this project's 2-core Zen 5 machine (bench/README.md). A measured hardware
 * peak, so MFU stays below 1 whatever the kernels reach. Other machines: run `ringlet bench peak` and set
 * observability.cpu_peak_flops_per_core.
 */
export const CPU_PEAK_FLOPS_PER_CORE = 175.7e9;
export const CPU_PEAK_SOURCE = 'measured: ringlet bench peak, AVX-512 FMA, one core of the reference Zen 5 machine';

/** Maps an nvidia-smi GPU name to a PEAKS key, or null when the table does not know it. */
export function deviceFromGpuName(name: string): string | null {
  const n = name.toLowerCase();
  if (n.includes('h200')) return 'h200';
  if (n.includes('h100')) return n.includes('pcie') ? 'h100-pcie' : 'h100-sxm';
  if (n.includes('a100')) return 'a100';
  if (/\bl4\b/.test(n)) return 'l4';
  if (n.includes('v100')) return 'v100-sxm';
  if (n.includes('mi300x')) return 'mi300x';
  return null;
}

export interface Peak {
  device: string; // a PEAKS key, or cpu
  precision: Precision;
  count: number; // devices (or CPU cores) the peak covers
  flops: number; // FLOP/s of the whole job's hardware
  source: string;
}

/** The peak FLOP/s MFU divides by: config override, else the table (or the CPU figure) × device count. */
export function resolvePeak(config: ObservabilityConfig, device: string, defaultCount: number): Peak {
  const precision = config.precision;
  const count = config.device_count ?? defaultCount;
  if (config.peak_flops !== undefined)
    return { device, precision, count, flops: config.peak_flops * count, source: 'config (observability.peak_flops)' };
  if (device === 'cpu') {
    const perCore = config.cpu_peak_flops_per_core ?? CPU_PEAK_FLOPS_PER_CORE;
    const source =
      config.cpu_peak_flops_per_core !== undefined ? 'config (observability.cpu_peak_flops_per_core)' : CPU_PEAK_SOURCE;
    return { device, precision, count, flops: perCore * count, source };
  }
  const entry = PEAKS[device];
  if (!entry)
    throw new Error(`unknown device "${device}" for the MFU peak; choose cpu or one of: ${Object.keys(PEAKS).join(', ')}`);
  const tflops = entry.tflops[precision];
  if (tflops === undefined)
    throw new Error(
      `${entry.name} has no ${precision} figure; choose one of: ${Object.keys(entry.tflops).join(', ')}, or set observability.peak_flops`,
    );
  return { device, precision, count, flops: tflops * 1e12 * count, source: entry.source };
}

/** MFU: achieved model FLOP/s over the peak. */
export function modelFlopsUtilisation(tokensPerS: number, flopsPerToken: number, peakFlops: number): number {
  return (tokensPerS * flopsPerToken) / peakFlops;
}
