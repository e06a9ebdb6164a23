// What a single-process training run reports about itself beyond its loss: Prometheus metrics (served
// on observability.metrics_port), MFU against a stated peak, power, energy and emissions, and spans.
// train/run.ts calls it at a handful of points; the coordinator uses the parts directly (docs/observability.md).
import os from 'node:os';
import { flopsPerToken, type ModelConfig } from '../lm/model-config.js';
import type { ObservabilityConfig, Precision } from './config.js';
import { accountingSummary, recordStep, startJobMetrics, type StepFigures } from './job-metrics.js';
import type { MetricsServer, RingletMetrics } from './metrics.js';
import { peakDeviceOfGpu, modelFlopsUtilisation, resolvePeak, type Peak, type PeakSource } from './mfu.js';
import { EnergyMeter, type EnergyTotals } from './power.js';
import { startTracing, withSpan, type Tracing } from './tracing.js';

/** Energy so far, this invocation and the whole run (resumed runs carry the checkpoint's totals). */
export interface RunEnergy {
  energy_j: number;
  emissions_g: number;
  run_energy_j: number;
  run_emissions_g: number;
  power_w: number;
  energy_estimated: boolean;
}

/** What a run carried in from the checkpoint it resumes (its metrics' energy_j and emissions_g; none: 0). */
export type CarriedEnergy = { energy_j: number; emissions_g: number };

export function carriedEnergy(metrics?: { energy_j?: number; emissions_g?: number }): CarriedEnergy {
  return { energy_j: metrics?.energy_j ?? 0, emissions_g: metrics?.emissions_g ?? 0 };
}

/** The meter's totals for this invocation, and for the whole run with what it carried in. */
export function runEnergy(t: EnergyTotals, carried: CarriedEnergy): RunEnergy {
  return {
    energy_j: t.energy_j,
    emissions_g: t.emissions_g,
    run_energy_j: carried.energy_j + t.energy_j,
    run_emissions_g: carried.emissions_g + t.emissions_g,
    power_w: t.power_w,
    energy_estimated: t.estimated,
  };
}

/** The fields a training summary gains: run energy and emissions, and the peak MFU was measured against. */
export type TelemetrySummary = Omit<RunEnergy, 'power_w'> & {
  mfu: number; // over this invocation, against peak_flops
  energy_kwh: number;
  pue: number;
  carbon_intensity_g_per_kwh: number;
  carbon_source: string;
  peak_flops: number;
  peak_device: string;
  peak_precision: string;
  peak_source: PeakSource; // configured, datasheet, measured, cached, or reference (borrowed: no native kernels)
  peak_detail: string;
  flops_per_token: number;
};

export class TrainTelemetry {
  private constructor(
    readonly metrics: RingletMetrics,
    readonly peak: Peak,
    readonly flopsPerToken: number,
    private readonly energy: EnergyMeter,
    private readonly carried: CarriedEnergy,
    private readonly server: MetricsServer | null,
    private readonly tracing: Tracing | null,
  ) {}

  static async start(options: {
    config: ObservabilityConfig;
    model: ModelConfig;
    /** The backend asked for and the one running; `device` names the GPU the cuda backend computes on. */
    backend: { requested: string; name: string; device?: string; precision?: Precision };
    carried?: { energy_j?: number; emissions_g?: number };
  }): Promise<TrainTelemetry> {
    const { config } = options;
    const tracing = await startTracing('ringlet-train');
    const energy = await EnergyMeter.forMachine(config);
    const { backend } = options;
    const gpu =
      backend.name === 'cuda'
        ? backend.device
        : backend.name === 'tensorflow' && backend.requested !== 'tensorflow'
          ? energy.gpuNames[0]
          : undefined;
    const device = config.device !== 'auto' ? config.device : gpu ? peakDeviceOfGpu(gpu) : 'cpu';
    const cpuCores = backend.name === 'tensorflow' ? os.availableParallelism() : 1; // wasm and cpu run one thread
    const peak = await resolvePeak(config, device, device === 'cpu' ? cpuCores : 1, backend.precision);
    const { metrics, server } = await startJobMetrics(config, energy, peak, { expected: 1, live: 1 });
    const carried = carriedEnergy(options.carried);
    return new TrainTelemetry(metrics, peak, flopsPerToken(options.model), energy, carried, server, tracing);
  }

  get metricsUrl(): string | null {
    return this.server?.url ?? null;
  }

  describePeak(): string {
    const p = this.peak;
    if (Number.isNaN(p.flops)) return `MFU not measured (${p.device}, ${p.precision}: ${p.detail})`;
    return `MFU against ${(p.flops / 1e9).toFixed(1)} GFLOP/s (${p.device} ×${p.count}, ${p.precision}; ${p.source}: ${p.detail})`;
  }

  /** Records one optimizer step; returns the step's MFU and the energy so far. */
  step(r: StepFigures): { mfu: number } & RunEnergy {
    const mfu = recordStep(this.metrics, r, this.flopsPerToken, this.peak);
    return { mfu, ...runEnergy(this.energy.totals(), this.carried) };
  }

  mfu(tokensPerS: number): number {
    return modelFlopsUtilisation(tokensPerS, this.flopsPerToken, this.peak.flops);
  }

  evaluation(valLoss: number): void {
    this.metrics.valLoss.set(valLoss);
  }

  /** Times and traces one checkpoint write. */
  async checkpoint<T>(step: number, write: () => Promise<T>): Promise<T> {
    const end = this.metrics.checkpointDuration.startTimer();
    try {
      return await withSpan('checkpoint', { 'ringlet.step': step }, write);
    } finally {
      end();
    }
  }

  /** Energy so far, sampled now. */
  async energyNow(): Promise<RunEnergy> {
    await this.energy.sample();
    return runEnergy(this.energy.totals(), this.carried);
  }

  /** Final sample, then the summary's fields (MFU at the run's mean tokens/s); stops the server, flushes spans. */
  async close(tokensPerS = 0): Promise<TelemetrySummary> {
    const t = await this.energy.stop();
    await this.server?.close();
    await this.tracing?.flush();
    const { power_w: _power, ...energy } = runEnergy(t, this.carried);
    return {
      mfu: this.mfu(tokensPerS),
      ...energy,
      ...accountingSummary(t, this.peak, this.flopsPerToken),
    };
  }
}
