// Health and readiness over HTTP for the coordinator and the workers: /healthz (the process serves),
// /readyz (200 when it can do its job, else 503), /status (a JSON snapshot). GET only, no request body.
import http from 'node:http';

export interface HealthProbes {
  ready: () => boolean;
  status: () => object;
}

export class HealthServer {
  private readonly server: http.Server;
  address = '';

  constructor(probes: HealthProbes) {
    this.server = http.createServer((req, res) => {
      const send = (code: number, body: object) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'GET') return send(405, { error: 'GET only' });
      if (req.url === '/healthz') return send(200, { ok: true });
      if (req.url === '/readyz') {
        const ready = probes.ready();
        return send(ready ? 200 : 503, { ready, ...probes.status() });
      }
      if (req.url === '/status') return send(200, probes.status());
      send(404, { error: `no such endpoint ${req.url}` });
    });
  }

  async listen(host: string, port: number): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, host, resolve));
    this.address = `${host}:${(this.server.address() as { port: number }).port}`;
    return this.address;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server.listening ? this.server.close(() => resolve()) : resolve()));
    this.server.closeAllConnections();
  }
}
