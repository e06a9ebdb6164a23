// The job's metrics as the coordinator sees them (docs/observability.md, "Wiring in the coordinator"):
// one /metrics for the whole job on observability.metrics_port, fed by the step reports of every rank,
// the ring's membership, this machine's power meter (all workers of `ringlet train --workers N` run here),
// and the energy that one worker on each other machine meters and reports with its steps. Built from the
// observability parts; train/run.ts's single-process twin is TrainTelemetry.
import { accountingSummary, countEnergy, recordStep, startJobMetrics } from '../observability/job-metrics.js';
import { busBandwidth, type MetricsServer, type RingletMetrics } from '../observability/metrics.js';
import type { ObservabilityConfig, Precision } from '../observability/config.js';
import { peakDeviceOfGpu, modelFlopsUtilisation, resolvePeak, type Peak } from '../observability/mfu.js';
import { EnergyMeter, machineId, type EnergyTotals } from '../observability/power.js';
import { startTracing, type Tracing } from '../observability/tracing.js';
import {
  carriedEnergy,
  runEnergy,
  type CarriedEnergy,
  type RunEnergy,
  type TelemetrySummary,
} from '../observability/train-telemetry.js';

export interface CommittedStep {
  step: number;
  tokens: number; // global batch tokens
  samples: number; // global batch windows
  step_s: number; // since the previous committed step (or the ring forming)
  tokens_per_s: number;
  loss: number; // global mean: the sum of the ranks' shares
  lr: number;
  grad_norm: number;
  straggler_lag_s: number; // first to last report of the step
  allreduce_bytes: number; // gradient buffer size, the same on every rank
  allreduce_s: number; // the slowest rank's all-reduce
  ranks: number;
}

/** One other machine's energy, as one worker meters it. */
interface HostEnergy {
  host: string;
  source: string;
  reported_j: number; // the worker's latest figure: joules since its meter started
  energy_j: number; // all this worker has metered, across restarts of its meter
}

/** The single-process summary's telemetry fields, and the energy of each machine the job ran on. */
export type JobTelemetrySummary = TelemetrySummary & { energy_by_host_j: Record<string, number> };

export class JobTelemetry {
  private closed: Promise<JobTelemetrySummary> | null = null;
  private lastSampleMs = -Infinity;
  private readonly hosts = new Map<string, HostEnergy>(); // by worker id: a machine's meter lives in one worker

  private constructor(
    readonly metrics: RingletMetrics,
    readonly peak: Peak,
    private readonly flopsPerToken: number,
    private readonly energy: EnergyMeter,
    private readonly carried: CarriedEnergy,
    private readonly server: MetricsServer | null,
    private readonly tracing: Tracing | null,
  ) {}

  /**
   * Starts the meter and, with metrics_port set, the server. The peak covers every worker (CPU: a core each).
   * `carried`: the energy and emissions of the run before this start (from the checkpoint it resumes).
   */
  static async start(
    config: ObservabilityConfig,
    options: {
      flopsPerToken: number;
      workers: number;
      carried?: { energy_j?: number; emissions_g?: number };
      /** The workers compute on GPUs (the cuda backend) in this precision: the peak is the GPU's that nvidia-smi names here. */
      gpu?: { precision: Precision };
    },
  ) {
    const tracing = await startTracing('ringlet-coordinator');
    const energy = await EnergyMeter.forMachine(config);
    const gpuName = options.gpu ? energy.gpuNames[0] : undefined;
    const device = config.device !== 'auto' ? config.device : gpuName ? peakDeviceOfGpu(gpuName) : 'cpu';
    const peak = await resolvePeak(config, device, options.workers, options.gpu?.precision);
    const { metrics: m, server } = await startJobMetrics(config, energy, peak, { expected: options.workers, live: 0 });
    return new JobTelemetry(m, peak, options.flopsPerToken, energy, carriedEnergy(options.carried), server, tracing);
  }

  /** The run's energy and emissions so far, carried ones included, as of the meters' latest samples. */
  runEnergy(): RunEnergy {
    return runEnergy(this.totals(this.energy.totals()), this.carried);
  }

  /**
   * A metering worker's report of its machine's energy: the increase since its previous report goes into the
   * energy and emissions counters (labelled with the machine as `device`) and into the job's totals. A lower
   * figure than before is a meter that started again (the worker re-assigned the role): all of it is new.
   */
  hostEnergy(workerId: string, host: string, energyJ: number, source: string): void {
    const prev = this.hosts.get(workerId);
    const added = prev && energyJ >= prev.reported_j ? energyJ - prev.reported_j : energyJ;
    this.hosts.set(workerId, { host, source, reported_j: energyJ, energy_j: (prev?.energy_j ?? 0) + added });
    if (added <= 0) return;
    countEnergy(this.metrics, { device: host, source }, added, this.energy.totals().carbon_intensity_g_per_kwh);
  }

  /** This machine's meter totals with the other machines' reported energy added (same PUE and grid intensity). */
  private totals(local: EnergyTotals): EnergyTotals {
    const remote = [...this.hosts.values()];
    if (remote.length === 0) return local;
    const energy_j = local.energy_j + remote.reduce((sum, h) => sum + h.energy_j, 0);
    const energy_kwh = energy_j / 3.6e6;
    return {
      ...local,
      energy_j,
      energy_kwh,
      emissions_g: energy_kwh * local.carbon_intensity_g_per_kwh,
      estimated: local.estimated || remote.some((h) => h.source.includes('estimated')),
    };
  }

  get metricsUrl(): string | null {
    return this.server?.url ?? null;
  }

  /** Records a committed step; returns its MFU and the run's energy so far, for the run's metrics.jsonl. */
  step(s: CommittedStep): { mfu: number; energy: RunEnergy } {
    // A fresh energy sample at least every half second of steps, so that the totals the next step report
    // hands to rank 0 (for its checkpoint) are at most that old, whatever the meter's own interval.
    if (performance.now() - this.lastSampleMs >= 500) {
      this.lastSampleMs = performance.now();
      void this.energy.sample();
    }
    const m = this.metrics;
    recordStep(m, s, this.flopsPerToken, this.peak);
    m.stragglerLag.set(s.straggler_lag_s);
    if (s.allreduce_bytes > 0) {
      m.allreduceBytes.inc(s.allreduce_bytes);
      m.allreduceDuration.observe(s.allreduce_s);
      m.allreduceBusBandwidth.set(busBandwidth(s.allreduce_bytes, s.ranks, s.allreduce_s));
    }
    return { mfu: modelFlopsUtilisation(s.tokens_per_s, this.flopsPerToken, this.peak.flops), energy: this.runEnergy() };
  }

  /** Stops the meter and the server once (the summary and the coordinator's close both call it). */
  close(tokensPerS = 0): Promise<JobTelemetrySummary> {
    this.closed ??= (async () => {
      const local = await this.energy.stop();
      const t = this.totals(local);
      // This invocation's energy by machine: this one's meter, then what each other machine's worker reported.
      const byHost: Record<string, number> = { [machineId()]: local.energy_j };
      for (const h of this.hosts.values()) byHost[h.host] = (byHost[h.host] ?? 0) + h.energy_j;
      await this.server?.close();
      await this.tracing?.flush();
      const { power_w: _power, ...energy } = runEnergy(t, this.carried);
      return {
        mfu: modelFlopsUtilisation(tokensPerS, this.flopsPerToken, this.peak.flops),
        ...energy,
        ...accountingSummary(t, this.peak, this.flopsPerToken),
        energy_by_host_j: byHost,
      };
    })();
    return this.closed;
  }
}
