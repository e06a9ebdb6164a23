// Fuzzing the metrics endpoint as a job serves it: the coordinator's /metrics (observability/metrics.ts
// serveMetrics, fed by coordinator/telemetry.ts), in the coordinator's own process. Prometheus' text format
// answers errors in plain text, so a clear error here is a 4xx with a body (or 405 with Allow), not JSON.
import type { Rng } from '../../lm/rng.js';
import { startCoordinatorProcess } from './coordinator-fuzz.js';
import type { Sent } from './grpc-cases.js';
import { httpExchange, probeHttp } from './http-client.js';
import { httpCase, type HttpService } from './http-cases.js';
import type { ServiceProcess } from './service-process.js';
import type { FuzzService, FuzzTarget } from './target.js';

const SERVICE: HttpService = {
  maxBodyBytes: 1024, // /metrics takes no body: anything is too much
  routes: [
    { method: 'GET', path: '/metrics' },
    { method: 'HEAD', path: '/metrics' },
    { method: 'GET', path: '/metrics?name[]=ringlet_train_step' },
  ],
};

class MetricsTarget implements FuzzTarget {
  readonly jsonErrors = false;

  constructor(
    readonly process: ServiceProcess,
    private readonly address: { host: string; port: number },
  ) {}

  async send(rng: Rng, deadlineMs: number): Promise<Sent[]> {
    const c = httpCase(rng, SERVICE);
    return [
      {
        what: c.what,
        answer: await httpExchange(this.address, c.request, { head: c.head, end: c.incomplete, deadlineMs }),
        mayClose: c.incomplete || c.dropped,
      },
    ];
  }

  probe(deadlineMs: number): Promise<string | null> {
    return probeHttp(this.address, '/metrics', deadlineMs, 'ringlet_');
  }

  close(): Promise<void> {
    return this.process.stop();
  }
}

export const metricsService: FuzzService = {
  name: 'metrics',
  async start() {
    const { child, line } = await startCoordinatorProcess();
    const url = new URL(line.metrics);
    return new MetricsTarget(child, { host: url.hostname, port: Number(url.port) });
  },
};
