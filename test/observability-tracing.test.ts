// OpenTelemetry: an OTLP receiver in its own process receives the spans of training steps and of a gRPC
// call; with no OTEL_* configuration tracing stays off.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TINY_MODEL, prepareTinyDataset } from './tiny-dataset.js';
import { tracingRequested } from '../observability/tracing.js';

const root = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-obs-trace-'));
const dataset = path.join(work, 'data');
let receiver: ChildProcess;
let received = '';
let endpoint = '';

interface OtlpSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
}

/** Spans the receiver has printed, with their service names. */
function spans(): Array<OtlpSpan & { service: string }> {
  const out = [];
  for (const line of received.split('\n').slice(1)) {
    if (!line.trim()) continue;
    for (const rs of JSON.parse(line).resourceSpans) {
      const service = rs.resource.attributes.find((a: { key: string }) => a.key === 'service.name')?.value.stringValue;
      for (const ss of rs.scopeSpans) for (const span of ss.spans) out.push({ ...span, service });
    }
  }
  return out;
}

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

before(async () => {
  receiver = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/observability-otlp-receiver.ts')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  receiver.stdout!.on('data', (d) => (received += d));
  await prepareTinyDataset(root, work);
  for (let i = 0; i < 100 && !/^listening \d+/.test(received); i++) await new Promise((r) => setTimeout(r, 100));
  endpoint = `http://127.0.0.1:${/^listening (\d+)/.exec(received)![1]}`;
});

after(() => {
  receiver.kill('SIGTERM');
  fs.rmSync(work, { recursive: true, force: true });
});

test('the OTLP receiver gets the spans of training steps: forward/backward and optimizer inside each step', async () => {
  const config = path.join(work, 'config.json');
  fs.writeFileSync(config, JSON.stringify({ model: TINY_MODEL, training: { batch_size: 4, eval_windows: 8 } }));
  const args = [
    '--import',
    'tsx',
    'cli/ringlet.ts',
    'train',
    '--config',
    config,
    '--data',
    dataset,
    '--out',
    path.join(work, 'run'),
  ];
  const r = await run([...args, '--max-steps', '3', '--json'], { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
  assert.equal(r.code, 0, r.output);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const all = spans().filter((s) => s.service === 'ringlet-train');
  const steps = all.filter((s) => s.name === 'train_step');
  assert.equal(steps.length, 3);
  assert.deepEqual(steps.map((s) => s.attributes.find((a) => a.key === 'ringlet.step')?.value.intValue).map(Number), [1, 2, 3]);
  for (const step of steps) {
    const children = all.filter((s) => s.parentSpanId === step.spanId).map((s) => s.name);
    assert.deepEqual(children.sort(), ['forward_backward', 'optimizer'], `children of step span ${step.spanId}`);
  }
  assert.equal(all.filter((s) => s.name === 'checkpoint').length, 1);
  assert.equal(all.filter((s) => s.name === 'evaluate').length, 1);
});

test('gRPC calls are traced on both sides, the server span a child of the client span', async () => {
  const r = await run(['--import', 'tsx', '--import', './observability/register.ts', 'test/observability-grpc-fixture.ts'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_SERVICE_NAME: 'grpc-fixture',
  });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /reply ping/);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const grpcSpans = spans().filter((s) => s.service === 'grpc-fixture' && s.name === 'grpc.ringlet.test.Echo/Say');
  const client = grpcSpans.find((s) => s.kind === 3);
  const server = grpcSpans.find((s) => s.kind === 2);
  assert.ok(client && server, JSON.stringify(grpcSpans));
  assert.equal(server.parentSpanId, client.spanId);
  assert.equal(server.traceId, client.traceId);
});

test('tracing is off unless the OTEL_* environment asks for an exporter', () => {
  assert.equal(tracingRequested({}), false);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }), true);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }), true);
  assert.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'otlp' }), true);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x', OTEL_SDK_DISABLED: 'true' }), false);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x', OTEL_TRACES_EXPORTER: 'none' }), false);
});
