// The observability section of a run's config: where metrics are served, which peak MFU is measured
// against, and how power turns into energy and emissions. One schema; the type comes from it.
import { z } from 'zod';

export const PRECISIONS = ['fp32', 'tf32', 'bf16', 'fp16', 'fp8'] as const;
export type Precision = (typeof PRECISIONS)[number];

export const ObservabilityConfigSchema = z
  .object({
    // Serve Prometheus metrics at http://METRICS_HOST:PORT/metrics (0: any free port); absent: no server.
    metrics_port: z.number().int().min(0).max(65535).optional(),
    // Address the metrics server binds: this machine only by default; 0.0.0.0 (or a pod's address) to be scraped
    // from elsewhere, as in a Kubernetes pod.
    metrics_host: z.string().min(1).default('127.0.0.1'),
    // Accelerator for the MFU peak: a key of PEAKS (observability/mfu.ts), or auto (the GPU nvidia-smi
    // names on GPU backends, else cpu).
    device: z.string().min(1).default('auto'),
    // Devices (GPUs) or cores (CPU) the job runs on; default 1 GPU, or the cores the backend uses.
    device_count: z.number().int().min(1).max(65536).optional(),
    // The precision whose peak MFU divides by; default: the one the backend computes in (fp32 on a CPU).
    precision: z.enum(PRECISIONS).optional(),
    peak_flops: z.number().positive().max(1e20).optional(), // FLOP/s of one device; overrides the table
    cpu_peak_flops_per_core: z.number().positive().max(1e13).optional(), // overrides this CPU's measured peak
    pue: z.number().min(1).max(5).default(1), // power usage effectiveness of the facility
    carbon_intensity_g_per_kwh: z.number().min(0).max(2000).optional(), // overrides the country table
    carbon_region: z.string().min(2).default('WORLD'), // a key of CARBON_INTENSITY (observability/carbon.ts)
    cpu_tdp_watts: z.number().positive().max(10000).optional(), // for the estimate when RAPL is unreadable
    power_poll_s: z.number().min(0.05).max(3600).default(2),
    powercap_root: z.string().min(1).default('/sys/class/powercap'),
    nvidia_smi: z.string().min(1).default('nvidia-smi'), // command looked up on PATH
    gpu_power: z.enum(['auto', 'off']).default('auto'),
  })
  .strict();
export type ObservabilityConfig = z.infer<typeof ObservabilityConfigSchema>;

export const defaultObservabilityConfig = (): ObservabilityConfig => ObservabilityConfigSchema.parse({});
