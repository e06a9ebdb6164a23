// Prometheus instruments for a Ringlet job on one prom-client Registry, and the HTTP server that exposes
// them. Names start with ringlet_ and carry their unit (_seconds, _bytes, _joules, _total); the
// contract names in docs/observability.md are what dashboards and alert rules query.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics(options: { registry?: Registry; defaultMetrics?: boolean } = {}) {
  const registry = options.registry ?? new Registry();
  const registers = [registry];
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'ringlet_' });
  const stepBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
  return {
    registry,
    // training
    trainTokens: new Counter({ name: 'ringlet_train_tokens_total', help: 'Tokens trained on (all workers)', registers }),
    trainSamples: new Counter({ name: 'ringlet_train_samples_total', help: 'Windows (sequences) trained on', registers }),
    trainSteps: new Counter({ name: 'ringlet_train_steps_total', help: 'Optimizer steps taken by this process', registers }),
    trainStep: new Gauge({ name: 'ringlet_train_step', help: 'Step number of the latest optimizer step', registers }),
    tokensPerSecond: new Gauge({
      name: 'ringlet_train_tokens_per_second',
      help: 'Training throughput since the run (re)started, tokens/s',
      registers,
    }),
    stepDuration: new Histogram({
      name: 'ringlet_train_step_duration_seconds',
      help: 'Wall time of one optimizer step',
      buckets: stepBuckets,
      registers,
    }),
    loss: new Gauge({ name: 'ringlet_train_loss', help: 'Training loss of the latest step (nats/token)', registers }),
    valLoss: new Gauge({
      name: 'ringlet_validation_loss',
      help: 'Validation loss of the latest evaluation (nats/token)',
      registers,
    }),
    learningRate: new Gauge({ name: 'ringlet_train_learning_rate', help: 'Learning rate of the latest step', registers }),
    gradNorm: new Gauge({ name: 'ringlet_train_grad_norm', help: 'Global gradient norm before clipping', registers }),
    modelFlops: new Gauge({
      name: 'ringlet_train_model_flops_per_second',
      help: 'Achieved model FLOP/s: tokens/s × (6N + 12·L·d·T)',
      registers,
    }),
    mfu: new Gauge({
      name: 'ringlet_mfu_ratio',
      help: 'Model FLOPs utilisation: achieved model FLOP/s over the peak (label peak_flops, FLOP/s)',
      labelNames: ['device', 'precision', 'peak_flops'] as const,
      registers,
    }),
    peakFlops: new Gauge({
      name: 'ringlet_peak_flops',
      help: 'Peak FLOP/s that MFU is measured against (dense, whole job)',
      labelNames: ['device', 'precision'] as const,
      registers,
    }),
    // communication
    allreduceBytes: new Counter({
      name: 'ringlet_allreduce_bytes_total',
      help: 'Bytes of gradient all-reduced (the buffer size, per all-reduce)',
      registers,
    }),
    allreduceDuration: new Histogram({
      name: 'ringlet_allreduce_duration_seconds',
      help: 'Wall time of one all-reduce',
      buckets: stepBuckets,
      registers,
    }),
    allreduceBusBandwidth: new Gauge({
      name: 'ringlet_allreduce_bus_bandwidth_bytes_per_second',
      help: 'Bus bandwidth of the latest all-reduce: size × 2(n-1)/n / time (the NCCL tests convention)',
      registers,
    }),
    // operations
    checkpointDuration: new Histogram({
      name: 'ringlet_checkpoint_duration_seconds',
      help: 'Wall time of writing one checkpoint',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    workersLive: new Gauge({ name: 'ringlet_workers_live', help: 'Workers taking part in the job now', registers }),
    workersExpected: new Gauge({ name: 'ringlet_workers_expected', help: 'Workers the job was started with', registers }),
    workerRestarts: new Counter({ name: 'ringlet_worker_restarts_total', help: 'Worker restarts and rejoins', registers }),
    skippedSteps: new Counter({
      name: 'ringlet_skipped_steps_total',
      help: 'Steps skipped on every rank because the reduced gradient was not finite',
      registers,
    }),
    stragglerLag: new Gauge({
      name: 'ringlet_straggler_lag_seconds',
      help: 'Latest step: time between the first and the last worker reaching the step barrier',
      registers,
    }),
    // power, energy, emissions
    power: new Gauge({
      name: 'ringlet_power_watts',
      help: 'Device power over the latest sampling interval (source estimated: TDP × utilisation)',
      labelNames: ['device', 'source'] as const,
      registers,
    }),
    energy: new Counter({
      name: 'ringlet_energy_joules_total',
      help: 'Energy used, device energy × PUE',
      labelNames: ['device', 'source'] as const,
      registers,
    }),
    emissions: new Counter({
      name: 'ringlet_emissions_grams_total',
      help: 'Emissions in grams CO2e: energy × grid carbon intensity',
      labelNames: ['device', 'source'] as const,
      registers,
    }),
    carbonIntensity: new Gauge({
      name: 'ringlet_carbon_intensity_grams_per_kwh',
      help: 'Grid carbon intensity used for emissions, g CO2e per kWh',
      labelNames: ['region'] as const,
      registers,
    }),
    pue: new Gauge({ name: 'ringlet_pue_ratio', help: 'Power usage effectiveness applied to device energy', registers }),
  };
}
export type RingletMetrics = ReturnType<typeof createMetrics>;

/** Bus bandwidth of a ring all-reduce of `bytes` over `ranks` ranks taking `seconds` (NCCL tests' busbw). */
export function busBandwidth(bytes: number, ranks: number, seconds: number): number {
  return seconds > 0 ? (bytes * 2 * (ranks - 1)) / ranks / seconds : 0;
}

export interface MetricsServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Serves GET /metrics on host:port (port 0: a free port). Only GET and HEAD of /metrics answer 200. */
export function serveMetrics(port: number, registry: Registry, host = '127.0.0.1'): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const pathname = (req.url ?? '').split('?')[0];
    if (pathname !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.maxHeadersCount = 50;
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot serve metrics on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'port in use' : err.message}`)),
    );
    server.listen(port, host, () => {
      const actual = (server.address() as AddressInfo).port;
      resolve({
        port: actual,
        url: `http://${host}:${actual}/metrics`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
