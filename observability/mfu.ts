// Model FLOPs utilisation: achieved model FLOP/s (tokens/s × 6N + 12·L·d·T, lm/model-config.ts) over the
// peak FLOP/s of the hardware the job runs on. GPU peaks are datasheet dense figures; never the sparse ones
// (NVIDIA's datasheets print "with sparsity" figures, twice the dense ones, for tensor-core precisions).
// The CPU's is measured on this machine (cpu-peak.ts).
import type { ObservabilityConfig, Precision } from './config.js';
import { hostCpuPeak, type CpuPeakSource } from './cpu-peak.js';

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

/** The device of a job on a GPU the table does not know: no peak, so MFU is NaN until one is configured. */
export const UNKNOWN_GPU = 'unknown-gpu';

/** The PEAKS key of a GPU by its name (nvidia-smi's, or the CUDA runtime's), or UNKNOWN_GPU. */
export function peakDeviceOfGpu(name: string): string {
  return deviceFromGpuName(name) ?? UNKNOWN_GPU;
}

/** The datasheet dense TFLOP/s of a GPU (by its name) in a precision, or null when the table lacks either. */
export function datasheetTflops(gpuName: string, precision: Precision): number | null {
  const key = deviceFromGpuName(gpuName);
  return key === null ? null : (PEAKS[key].tflops[precision] ?? null);
}

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

/** Where a peak comes from: the config, a GPU datasheet, or this CPU (observability/cpu-peak.ts). */
export type PeakSource = 'configured' | 'datasheet' | 'unknown' | CpuPeakSource;

export interface Peak {
  device: string; // a PEAKS key, or cpu
  precision: Precision;
  count: number; // devices (or CPU cores) the peak covers
  flops: number; // FLOP/s of the whole job's hardware
  source: PeakSource;
  detail: string; // the datasheet, the config field, or how this CPU's figure was found
}

/**
 * The peak FLOP/s MFU divides by: a configured figure, else the device's datasheet, else (cpu) this machine's
 * measured per-core peak, each × the device count. The precision is the config's, else the one the backend
 * computes in (`computePrecision`).
 */
export async function resolvePeak(
  config: ObservabilityConfig,
  device: string,
  defaultCount: number,
  computePrecision: Precision = 'fp32',
): Promise<Peak> {
  const precision = config.precision ?? computePrecision;
  const count = config.device_count ?? defaultCount;
  const peak = (source: PeakSource, perDevice: number, detail: string): Peak => ({
    device,
    precision,
    count,
    flops: perDevice * count,
    source,
    detail,
  });
  if (config.peak_flops !== undefined) return peak('configured', config.peak_flops, 'observability.peak_flops');
  if (device === 'cpu') {
    if (config.cpu_peak_flops_per_core !== undefined)
      return peak('configured', config.cpu_peak_flops_per_core, 'observability.cpu_peak_flops_per_core');
    const cpu = await hostCpuPeak();
    return peak(cpu.source, cpu.flopsPerCore, cpu.detail);
  }
  // A GPU found at run time that the table lacks must not stop a job: its MFU is NaN (null in JSON), and says why.
  if (device === UNKNOWN_GPU)
    return peak('unknown', NaN, 'a GPU the datasheet table (observability/mfu.ts) lacks: set observability.peak_flops');
  const entry = PEAKS[device];
  if (!entry)
    throw new Error(`unknown device "${device}" for the MFU peak; choose cpu or one of: ${Object.keys(PEAKS).join(', ')}`);
  const tflops = entry.tflops[precision];
  if (tflops === undefined)
    throw new Error(
      `${entry.name} has no ${precision} figure; choose one of: ${Object.keys(entry.tflops).join(', ')}, or set observability.peak_flops`,
    );
  return peak('datasheet', tflops * 1e12, entry.source);
}

/** MFU: achieved model FLOP/s over the peak. */
export function modelFlopsUtilisation(tokensPerS: number, flopsPerToken: number, peakFlops: number): number {
  return (tokensPerS * flopsPerToken) / peakFlops;
}
