// A ring across real network hosts: the coordinator in one network namespace and a worker in each of two
// others (chaos/netns.ts), each with its own IP address on a bridge, talking mutual TLS with a certificate
// that names those addresses. The workers join by the coordinator's address, as on a cluster. Mid-run one
// worker's link goes down: the job must survive it as it survives a kill -9, with every window trained
// once and the ranks agreeing bit for bit. Needs root (it skips without, except in CI, where it fails).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, test } from 'node:test';
import { LinkLab } from '../chaos/netns.js';
import { scenarioNamed } from '../chaos/scenarios.js';
import { TINY_MODEL, prepareTinyDataset } from './tiny-dataset.js';
import { makeCertificates } from './tls-fixture.js';

const root = path.resolve(import.meta.dirname, '..');
const STEPS = 24;
const CUT_AT_STEP = 6; // past the first checkpoint (every 4)
const HEARTBEAT_TIMEOUT_MS = 2000;
const PORT = 7070; // each host has a network stack of its own: nothing else listens there

type LogRecord = Record<string, unknown> & { msg?: string; component?: string };

const children: ChildProcess[] = [];
let lab: LinkLab | null = null;
// On failure too, and when the test runner is stopped: no process, namespace, veth or bridge outlives the test.
function cleanUp(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  lab?.destroy();
  lab = null;
}
after(cleanUp);
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    cleanUp();
    process.exit(1);
  });

/** `ringlet ARGS` inside a network namespace (`wrap` is `ip netns exec NS`); its stderr log records go to `onLog`. */
function ringletOn(wrap: string[], args: string[], env: NodeJS.ProcessEnv, onLog: (r: LogRecord) => void) {
  const [file, ...rest] = [...wrap, process.execPath, '--import', 'tsx', path.join(root, 'cli/ringlet.ts'), ...args];
  const child = spawn(file, rest, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  child.stdout!.on('data', (d) => (stdout += d));
  readline.createInterface({ input: child.stderr! }).on('line', (line) => {
    let record: LogRecord;
    try {
      record = JSON.parse(line);
    } catch {
      return; // not a log record
    }
    onLog(record);
  });
  const exit = new Promise<{ code: number | null; summary: Record<string, any> }>((resolve) =>
    child.on('exit', (code) => {
      let summary = {};
      try {
        summary = JSON.parse(stdout.trim().split('\n').at(-1) || '{}');
      } catch {
        /* killed before its summary */
      }
      resolve({ code, summary });
    }),
  );
  return { child, exit };
}

test(
  'a ring over 3 network hosts with mutual TLS survives the cut of a worker link: nothing skipped or repeated, ranks identical',
  { timeout: 120_000 },
  async (t) => {
    const unavailable = scenarioNamed('link-cut').unavailable!();
    try {
      if (unavailable) throw new Error(unavailable);
      lab = LinkLab.create(2, { coordinatorNamespace: true });
    } catch (err) {
      const why = `network namespaces cannot be created here: ${(err as Error).message}`;
      if (process.env.CI === 'true') throw new Error(`${why} (CI runs as root, so this test must run there)`);
      t.skip(why);
      return;
    }
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-multi-host-'));
    const data = await prepareTinyDataset(root, work);
    const config = path.join(work, 'config.json');
    const training = { batch_size: 4, grad_accum: 2, eval_windows: 8, log_every: 1, eval_every: 1000, max_steps: STEPS };
    fs.writeFileSync(config, JSON.stringify({ model: TINY_MODEL, training }));
    const hosts = [lab.coordinatorHost, lab.workerHost(0), lab.workerHost(1)];
    const tls = makeCertificates(hosts);
    const tlsFlags = ['--tls-ca', tls.ca, '--tls-cert', tls.cert, '--tls-key', tls.key];
    const env = { ...process.env, RINGLET_TOKEN: `multi-host-${process.pid}` };
    const address = `${lab.coordinatorHost}:${PORT}`;
    const out = path.join(work, 'run');

    const logs: Array<LogRecord & { seen: number }> = [];
    let cutAt = 0;
    let cutStep = 0;
    const workers: ReturnType<typeof ringletOn>[] = [];
    const coordinator = ringletOn(
      lab.inCoordinator(),
      [
        'coordinator',
        ...['--config', config, '--data', data, '--out', out, '--lr', '0.01', '--warmup-steps', '2', '--checkpoint-every', '4'],
        ...['--host', lab.coordinatorHost, '--port', String(PORT), '--min-workers', '1', '--max-workers', '2'],
        ...['--rendezvous-timeout', '60', '--replace-wait', '1'],
        ...['--heartbeat-interval', '250', '--heartbeat-timeout', String(HEARTBEAT_TIMEOUT_MS)],
        ...tlsFlags,
        '--json',
      ],
      env,
      (r) => {
        logs.push({ ...r, seen: Date.now() });
        if (r.msg === 'step' && !cutAt && Number(r.step) >= CUT_AT_STEP) {
          cutAt = Date.now();
          cutStep = Number(r.step);
          lab!.cut(1);
        }
        // The link stays down to the end: the coordinator must still exit once the job is done, though its
        // connection to the cut worker cannot flush (cli/output.ts exitWhenDone).
      },
    );
    for (let slot = 0; slot < 2; slot++) {
      const own = ['--host', lab.workerHost(slot), '--connect-timeout', '60000'];
      workers.push(
        ringletOn(lab.inSlot(slot), ['worker', '--coordinator', address, ...own, ...tlsFlags, '--json'], env, () => {}),
      );
    }
    const started = Date.now();
    const r = await coordinator.exit;
    const wallS = (Date.now() - started) / 1000;
    const lastLogs = logs
      .filter((l) => l.msg !== 'step')
      .slice(-20)
      .map((l) => JSON.stringify(l).slice(0, 400))
      .join('\n');
    assert.equal(r.code, 0, `${JSON.stringify(r.summary)}\n${lastLogs}`);

    // The ring did span the hosts: its first form lists both workers at their own addresses, over TLS.
    const first = logs.find((l) => l.msg === 'ring formed')!;
    assert.deepEqual(
      [...(first.ring as string[])].map((a) => a.replace(/:\d+$/, '')).sort(),
      [lab.workerHost(0), lab.workerHost(1)].sort(),
    );
    assert.ok(cutAt > 0 && cutStep < STEPS, `the cut must land mid-run (at step ${cutStep})`);
    const lost = logs.find((l) => l.msg === 'worker lost' && l.seen >= cutAt);
    assert.ok(lost, `the coordinator noticed the cut\n${lastLogs}`);
    assert.ok(String(lost.name).endsWith(`/${workers[1].child.pid}`), `the lost worker is the cut one: ${JSON.stringify(lost)}`);
    assert.match(String(lost.reason), /no heartbeat/);
    const reformed = logs.find((l) => l.msg === 'ring formed' && l.seen >= cutAt);
    assert.equal(reformed?.world_size, 1, `the ring went on with the worker on the intact link\n${lastLogs}`);
    const s = r.summary;
    assert.equal(s.step, STEPS);
    assert.ok(s.restarts >= 1, 'the ring was re-formed');
    assert.equal(s.samples_skipped, 0);
    assert.equal(s.samples_repeated, 0);
    assert.equal(s.ranks_identical, true);

    const detectS = (lost.seen - cutAt) / 1000;
    const resumed = logs.find((l) => l.msg === 'step' && l.seen >= cutAt && Number(l.step) > cutStep);
    const recoverS = resumed ? (resumed.seen - cutAt) / 1000 : NaN;
    const figures = {
      hosts,
      steps: s.step,
      cut_at_step: cutStep,
      detect_s: detectS,
      recover_s: recoverS,
      ring_reforms: s.restarts,
      workers_at_end: s.workers,
      samples_skipped: s.samples_skipped,
      samples_repeated: s.samples_repeated,
      final_val_loss: s.val_loss,
      wall_s: wallS,
    };
    console.log(`multi-host ring, link cut: ${JSON.stringify(figures)}`);
    // The survivor leaves with the job; the cut-off worker cannot hear that the job ended, and is stopped
    // as a cluster would stop it.
    workers[1].child.kill('SIGTERM');
    const [survivor] = await Promise.all(
      workers.map(({ child, exit }) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        return exit.finally(() => clearTimeout(kill));
      }),
    );
    assert.equal(survivor.code, 0, 'the worker on the intact link finished with the job');
  },
);
