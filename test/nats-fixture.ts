// A real nats-server for the bus tests: JetStream on, a free loopback port, a temporary store, and whatever
// extra configuration a test needs (an authorization block, a tls block). Debian's nats-server 2.9, as
// scripts/setup.sh installs it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface NatsServer {
  port: number;
  url: string;
  stop(): void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts nats-server with `extraConfig` (nats-server config syntax) and waits until it accepts connections. */
export async function startNatsServer(extraConfig = ''): Promise<NatsServer> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-nats-'));
  const config = path.join(dir, 'nats.conf');
  fs.writeFileSync(
    config,
    `listen: "127.0.0.1:${port}"\njetstream { store_dir: ${JSON.stringify(path.join(dir, 'store'))} }\n${extraConfig}\n`,
  );
  const server = spawn('nats-server', ['-c', config], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => (c.end(), resolve(true))).on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100) {
      server.kill();
      throw new Error('nats-server did not start (is it installed? see scripts/setup.sh)');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, url: `nats://127.0.0.1:${port}`, stop: () => server.kill() };
}
