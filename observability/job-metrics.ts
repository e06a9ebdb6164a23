// What every training job's telemetry starts with, single-process (train-telemetry.ts) or distributed
// (coordinator/telemetry.ts): the metrics with their constant gauges set, power samples feeding the
// energy and emissions counters (PUE and grid intensity applied), and /metrics served when asked.
import type { ObservabilityConfig } from './config.js';
import { createMetrics, serveMetrics, type MetricsServer, type RingletMetrics } from './metrics.js';
import { modelFlopsUtilisation, type Peak } from './mfu.js';
import type { EnergyMeter, EnergyTotals } from './power.js';

export async function startJobMetrics(
  config: ObservabilityConfig,
  energy: EnergyMeter,
  peak: Peak,
  workers: { expected: number; live: number },
): Promise<{ metrics: RingletMetrics; server: MetricsServer | null }> {
  const metrics = createMetrics();
  metrics.peakFlops.set({ device: peak.device, precision: peak.precision }, peak.flops);
  metrics.mfu.set({ device: peak.device, precision: peak.precision, peak_flops: String(peak.flops) }, 0);
  metrics.workersExpected.set(workers.expected);
  metrics.workersLive.set(workers.live);
  metrics.stragglerLag.set(0);
  const totals = energy.totals();
  metrics.pue.set(totals.pue);
  metrics.carbonIntensity.set({ region: config.carbon_region.toUpperCase() }, totals.carbon_intensity_g_per_kwh);
  energy.onSample((readings) => {
    for (const r of readings) {
      const labels = { device: r.device, source: r.source };
      metrics.power.set(labels, r.watts);
      countEnergy(metrics, labels, r.joules * totals.pue, totals.carbon_intensity_g_per_kwh);
    }
  });
  energy.start(config.power_poll_s);
  const server =
    config.metrics_port === undefined ? null : await serveMetrics(config.metrics_port, metrics.registry, config.metrics_host);
  return { metrics, server };
}

/** Adds facility energy (PUE applied) to the energy counter, and its emissions at `gPerKwh` to the emissions one. */
export function countEnergy(
  metrics: RingletMetrics,
  labels: { device: string; source: string },
  joules: number,
  gPerKwh: number,
): void {
  metrics.energy.inc(labels, joules);
  metrics.emissions.inc(labels, (joules / 3.6e6) * gPerKwh);
}

/** The figures of one optimizer step that both telemetries record. */
export interface StepFigures {
  step: number;
  tokens: number;
  samples: number;
  step_s: number;
  tokens_per_s: number;
  loss: number;
  lr: number;
  grad_norm: number;
}

/** Records one optimizer step's training metrics and MFU; returns the MFU. */
export function recordStep(metrics: RingletMetrics, s: StepFigures, flopsPerToken: number, peak: Peak): number {
  metrics.trainTokens.inc(s.tokens);
  metrics.trainSamples.inc(s.samples);
  metrics.trainSteps.inc();
  metrics.trainStep.set(s.step);
  metrics.stepDuration.observe(s.step_s);
  metrics.tokensPerSecond.set(s.tokens_per_s);
  metrics.loss.set(s.loss);
  metrics.learningRate.set(s.lr);
  metrics.gradNorm.set(s.grad_norm);
  metrics.modelFlops.set(s.tokens_per_s * flopsPerToken);
  const mfu = modelFlopsUtilisation(s.tokens_per_s, flopsPerToken, peak.flops);
  metrics.mfu.set({ device: peak.device, precision: peak.precision, peak_flops: String(peak.flops) }, mfu);
  return mfu;
}

/** The closing summary's fields that say how energy, emissions and MFU were computed. */
export function accountingSummary(t: EnergyTotals, peak: Peak, flopsPerToken: number) {
  return {
    energy_kwh: t.energy_kwh,
    pue: t.pue,
    carbon_intensity_g_per_kwh: t.carbon_intensity_g_per_kwh,
    carbon_source: t.carbon_source,
    peak_flops: peak.flops,
    peak_device: peak.device,
    peak_precision: peak.precision,
    peak_source: peak.source,
    peak_detail: peak.detail,
    flops_per_token: flopsPerToken,
  };
}
