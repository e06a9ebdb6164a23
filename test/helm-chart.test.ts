// The Helm chart (helm/ringlet), with helm v3.18 from npm (test/helm-fixture.ts): lint; the default, GPU, minimal
// and TLS renderings, every object valid by kubernetes-models; what the chart promises (replicas, GPUs, probes on
// ports and paths the code serves, no secret in a ConfigMap, non-root pods); values.schema.json's refusals; and
// the contract test: every Ringlet container's command line, environment and files, as its pod would have them,
// pass `ringlet ... --check-config`, so a chart that passes a flag the CLI does not know fails here.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { parse as parseYaml } from 'yaml';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { chartFiles } from '../helm/chart-files.js';
import { HealthServer } from '../coordinator/health.js';
import { TrainConfigSchema } from '../train/config.js';
import {
  checkConfig,
  containerRuns,
  inBatches,
  workloads,
  type Container,
  type ContainerRun,
  type Probe,
} from './chart-contract.js';
import {
  CHART,
  NAMESPACE,
  RELEASE,
  ROOT,
  helmBinary,
  renderChart,
  runHelm,
  type K8sObject,
  type RenderOptions,
} from './helm-fixture.js';

const CERT_MANAGER = 'cert-manager.io/v1/Certificate';
const SERVICE_MONITOR = 'monitoring.coreos.com/v1/ServiceMonitor';
const PROMETHEUS_RULE = 'monitoring.coreos.com/v1/PrometheusRule';
const ci = (file: string) => path.join(CHART, 'ci', file);

/** The renderings under test: the default values, and each file under ci/. */
const RENDERINGS: Record<string, RenderOptions> = {
  default: {},
  gpu: { values: [ci('gpu-values.yaml')] },
  minimal: { values: [ci('minimal-values.yaml')] },
  tls: { values: [ci('tls-values.yaml')], apiVersions: [CERT_MANAGER] },
};
const rendered = new Map<string, K8sObject[]>();
const render = (name: string) => {
  if (!rendered.has(name)) rendered.set(name, renderChart(RENDERINGS[name]));
  return rendered.get(name)!;
};

const fullname = `${RELEASE}-ringlet`;
const one = (objects: K8sObject[], kind: string, name: string): K8sObject => {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  assert.equal(found.length, 1, `one ${kind} ${name} in ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found[0];
};
const podOf = (o: K8sObject) =>
  (o.spec as { template: { spec: { containers: Container[]; [k: string]: unknown } } }).template.spec;
const containerOf = (o: K8sObject, name: string) => podOf(o).containers.find((c) => c.name === name)!;
const argValue = (c: Container, flag: string): string | undefined =>
  c.args?.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
const isRinglet = (c: Container) => /\/ringlet:[^/]+$/.test(c.image);

// Every kind the chart renders, with its model; a kind missing here fails the validation test.
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'v1/ConfigMap': ConfigMap,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
  'cert-manager.io/v1/Certificate': Certificate,
};

test('helm is v3.18 from the npm package', () => {
  const r = spawnSync(helmBinary(), ['version', '--short'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^v3\.18\./);
});

test('helm lint --strict passes with the default values and with each file under ci/', () => {
  for (const values of [[], ...fs.readdirSync(path.join(CHART, 'ci')).map((f) => [ci(f)])]) {
    const r = runHelm(['lint', '--strict', CHART, ...values.flatMap((f) => ['--values', f])]);
    assert.equal(r.status, 0, `helm lint ${values.join(' ')}:\n${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stdout, /\[(WARNING|ERROR)\]/, r.stdout);
  }
});

test("the chart's copies of the dashboard and alert rules, and its training config schema, are current", async () => {
  for (const [file, content] of Object.entries(await chartFiles()))
    assert.equal(
      fs.readFileSync(path.join(CHART, file), 'utf8'),
      content,
      `helm/ringlet/${file} is stale: run node --import tsx helm/chart-files.ts`,
    );
});

test('every rendered object is valid by kubernetes-models, named once, and labelled by _helpers.tpl', () => {
  for (const name of Object.keys(RENDERINGS)) {
    const objects = render(name);
    assert.ok(objects.length >= 8, `${name}: ${objects.length} objects`);
    const seen = new Set<string>();
    for (const o of objects) {
      const key = `${o.apiVersion}/${o.kind}`;
      const Model = MODELS[key];
      assert.ok(Model, `${name}: no kubernetes-models class for ${key}`);
      assert.doesNotThrow(() => new Model(o as never).validate(), `${name}: ${o.kind} ${o.metadata.name}`);
      const id = `${key}/${o.metadata.namespace ?? NAMESPACE}/${o.metadata.name}`;
      assert.ok(!seen.has(id), `${name}: ${id} rendered twice`);
      seen.add(id);
      const labels = o.metadata.labels ?? {};
      assert.equal(labels['app.kubernetes.io/name'], 'ringlet', `${name}: ${id}`);
      assert.equal(labels['app.kubernetes.io/instance'], RELEASE, `${name}: ${id}`);
      assert.equal(labels['app.kubernetes.io/managed-by'], 'Helm', `${name}: ${id}`);
      assert.equal(labels['app.kubernetes.io/part-of'], 'ringlet', `${name}: ${id}`);
    }
  }
});

test('one coordinator, replaced on update; workers as many as the values say, under a headless Service with a PDB', () => {
  for (const [name, workers] of [
    ['default', 2],
    ['gpu', 4],
    ['minimal', 1],
  ] as const) {
    const objects = render(name);
    const coordinator = one(objects, 'Deployment', `${fullname}-coordinator`);
    const spec = coordinator.spec as { replicas: number; strategy: { type: string } };
    assert.equal(spec.replicas, 1);
    assert.equal(spec.strategy.type, 'Recreate');
    const statefulSet = one(objects, 'StatefulSet', `${fullname}-worker`);
    const ss = statefulSet.spec as { replicas: number; serviceName: string; podManagementPolicy: string };
    assert.equal(ss.replicas, workers, name);
    assert.equal(argValue(containerOf(coordinator, 'coordinator'), '--max-workers'), String(workers), name);
    const headless = one(objects, 'Service', ss.serviceName).spec as { clusterIP: string; publishNotReadyAddresses: boolean };
    assert.equal(headless.clusterIP, 'None');
    assert.equal(headless.publishNotReadyAddresses, true, 'a worker is dialled before it is ready');
    const pdb = objects.filter((o) => o.kind === 'PodDisruptionBudget');
    assert.equal(pdb.length, name === 'minimal' ? 0 : 1, name);
    for (const kind of ['Deployment', 'StatefulSet'])
      for (const o of objects.filter((x) => x.kind === kind && x.metadata.name.endsWith('-evaluator')))
        assert.equal((o.spec as { replicas: number }).replicas, 1);
  }
  const minimal = render('minimal').map((o) => `${o.kind}/${o.metadata.name}`);
  for (const absent of ['evaluator', 'web', 'nats']) assert.ok(!minimal.some((id) => id.endsWith(`-${absent}`)), absent);
});

test('GPUs: each worker asks for exactly one nvidia.com/gpu, and no other container for any', () => {
  const gpuLimit = (c: Container) => c.resources?.limits?.['nvidia.com/gpu'];
  const gpu = render('gpu');
  const worker = containerOf(one(gpu, 'StatefulSet', `${fullname}-worker`), 'worker');
  assert.equal(gpuLimit(worker), 1);
  assert.equal(worker.resources?.limits?.memory, '32Gi', 'the values file limits are kept beside the GPU');
  assert.match(worker.image, /:0\.1\.0-gpu$/);
  const pod = podOf(one(gpu, 'StatefulSet', `${fullname}-worker`)) as { tolerations?: unknown[]; nodeSelector?: object };
  assert.deepEqual(pod.nodeSelector, { 'nvidia.com/gpu.present': 'true' });
  assert.equal(pod.tolerations?.length, 1);
  for (const name of Object.keys(RENDERINGS))
    for (const { object, pod: spec } of workloads(render(name)))
      for (const c of [...(spec.initContainers ?? []), ...spec.containers])
        if (!(name === 'gpu' && c.name === 'worker'))
          assert.equal(gpuLimit(c), undefined, `${name}: ${object.metadata.name}/${c.name}`);
  const refused = runHelm(['template', RELEASE, CHART, '--set', 'workers.gpu.enabled=true']);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /workers\.gpu\.enabled needs trainingConfig\.backend cuda, tensorflow-gpu or auto/);
});

test('every pod runs as non-root with a read-only root filesystem, no privilege escalation, and resources set', () => {
  for (const name of Object.keys(RENDERINGS))
    for (const { object, pod } of workloads(render(name))) {
      assert.equal(pod.securityContext?.runAsNonRoot, true, `${name}: ${object.metadata.name}`);
      assert.equal(pod.automountServiceAccountToken, false, `${name}: ${object.metadata.name}`);
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const where = `${name}: ${object.metadata.name}/${c.name}`;
        assert.equal(c.securityContext?.readOnlyRootFilesystem, true, where);
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, where);
        assert.deepEqual((c.securityContext?.capabilities as { drop: string[] }).drop, ['ALL'], where);
        assert.ok(c.resources?.requests?.memory && c.resources?.requests?.cpu, `${where}: requests`);
        assert.ok(c.resources?.limits?.memory, `${where}: a memory limit`);
        if (isRinglet(c)) {
          assert.equal(c.command, undefined, `${where}: the image's entrypoint is ringlet; the chart gives arguments only`);
          assert.ok(
            c.volumeMounts?.some((m) => m.mountPath === '/tmp'),
            `${where}: a writable /tmp`,
          );
        }
      }
    }
});

test('no ConfigMap holds a secret: the tokens given reach the Secret alone, and no private key is rendered', () => {
  const tokens = ['join-token-value-4242', 'evaluator-token-value-4242', 'nats-token-value-4242'];
  const objects = renderChart({
    set: [`secrets.joinToken=${tokens[0]}`, `secrets.evaluatorToken=${tokens[1]}`, `secrets.natsToken=${tokens[2]}`],
  });
  const secret = one(objects, 'Secret', `${fullname}-tokens`);
  const decoded = Object.values(secret.data as Record<string, string>).map((v) => Buffer.from(v, 'base64').toString());
  assert.deepEqual(decoded.sort(), [...tokens].sort());
  for (const name of [...Object.keys(RENDERINGS), 'given'])
    for (const o of name === 'given' ? objects : render(name)) {
      if (o.kind === 'Secret') continue;
      const text = JSON.stringify(o);
      for (const token of tokens) assert.ok(!text.includes(token), `${o.kind} ${o.metadata.name} holds a token`);
      assert.doesNotMatch(text, /PRIVATE KEY/, `${o.kind} ${o.metadata.name}`);
      if (o.kind !== 'ConfigMap') continue;
      for (const secretValue of render(name === 'given' ? 'default' : name)
        .filter((s) => s.kind === 'Secret')
        .flatMap((s) => Object.values((s.data as Record<string, string>) ?? {}).map((v) => Buffer.from(v, 'base64').toString())))
        assert.ok(!text.includes(secretValue), `ConfigMap ${o.metadata.name} holds a Secret's value`);
      for (const [key, value] of Object.entries(o.data as Record<string, string>))
        if (key.endsWith('.json')) assert.ok(!/"(token|password|bus_tokens)"/.test(value), `${o.metadata.name}/${key}`);
    }
});

test('ServiceMonitor and PrometheusRule render where the cluster serves their CRDs or a value forces them; never forbids', () => {
  const kinds = (o: RenderOptions) => renderChart(o).map((x) => x.kind);
  assert.ok(!kinds({}).includes('ServiceMonitor') && !kinds({}).includes('PrometheusRule'), 'no CRDs: neither');
  const served = kinds({ apiVersions: [SERVICE_MONITOR, PROMETHEUS_RULE] });
  assert.ok(served.includes('ServiceMonitor') && served.includes('PrometheusRule'), 'CRDs served: both');
  const forced = render('tls').map((x) => x.kind);
  assert.ok(forced.includes('ServiceMonitor') && forced.includes('PrometheusRule'), 'create: always');
  const never = kinds({
    apiVersions: [SERVICE_MONITOR, PROMETHEUS_RULE],
    set: ['monitoring.serviceMonitor.create=never', 'monitoring.prometheusRule.create=never'],
  });
  assert.ok(!never.includes('ServiceMonitor') && !never.includes('PrometheusRule'), 'create: never');

  const objects = renderChart({ apiVersions: [SERVICE_MONITOR, PROMETHEUS_RULE] });
  const rules = one(objects, 'PrometheusRule', `${fullname}-alerts`);
  const source = parseYaml(fs.readFileSync(path.join(ROOT, 'observability/prometheus/ringlet-rules.yml'), 'utf8'));
  assert.deepEqual(rules.spec, source, "the repository's alert rules, unchanged");
  const monitor = one(objects, 'ServiceMonitor', `${fullname}-coordinator`).spec as {
    endpoints: Array<{ port: string; path: string }>;
    selector: { matchLabels: Record<string, string> };
  };
  assert.deepEqual(
    monitor.endpoints.map((e) => [e.port, e.path]),
    [['metrics', '/metrics']],
  );
  const service = one(objects, 'Service', `${fullname}-coordinator`);
  for (const [k, v] of Object.entries(monitor.selector.matchLabels)) assert.equal(service.metadata.labels?.[k], v);
  assert.ok((service.spec as { ports: Array<{ name: string }> }).ports.some((p) => p.name === 'metrics'));

  const dashboard = one(objects, 'ConfigMap', `${fullname}-dashboard`);
  assert.equal(dashboard.metadata.labels?.grafana_dashboard, '1');
  assert.deepEqual(
    JSON.parse((dashboard.data as Record<string, string>)['ringlet-dashboard.json']),
    JSON.parse(fs.readFileSync(path.join(ROOT, 'observability/grafana/ringlet-dashboard.json'), 'utf8')),
  );
});

test('NetworkPolicies: the ring from workers and the coordinator, the evaluator from its clients, metrics from monitoring', () => {
  type Rule = { ports: Array<{ port: string }>; from?: Array<Record<string, { matchLabels: Record<string, string> }>> };
  const objects = render('default');
  const rules = (component: string) =>
    (one(objects, 'NetworkPolicy', `${fullname}-${component}`).spec as { ingress: Rule[]; policyTypes: string[] }).ingress;
  const from = (component: string, port: string) =>
    rules(component)
      .filter((r) => r.ports.some((p) => p.port === port))
      .flatMap((r) => r.from ?? [{ anyone: { matchLabels: {} } }])
      .map((peer) =>
        peer.podSelector
          ? `pods:${peer.podSelector.matchLabels['app.kubernetes.io/component'] ?? JSON.stringify(peer.podSelector.matchLabels)}`
          : peer.namespaceSelector
            ? `namespace:${peer.namespaceSelector.matchLabels['kubernetes.io/metadata.name']}`
            : 'anyone',
      )
      .sort();
  assert.deepEqual(from('worker', 'ring'), ['pods:coordinator', 'pods:worker']);
  assert.deepEqual(from('coordinator', 'grpc'), ['pods:worker']);
  assert.deepEqual(from('coordinator', 'metrics'), ['namespace:monitoring']);
  assert.deepEqual(from('evaluator', 'http'), ['namespace:monitoring', 'pods:{"ringlet.dev/evaluator-client":"true"}']);
  assert.deepEqual(from('nats', 'client'), ['pods:coordinator', 'pods:evaluator']);
  // Every port a policy names is a port of the pods it selects, or the policy would let nothing in.
  for (const policy of objects.filter((o) => o.kind === 'NetworkPolicy')) {
    const component = policy.metadata.labels?.['app.kubernetes.io/component'];
    const workload = workloads(objects).find((w) => w.object.metadata.labels?.['app.kubernetes.io/component'] === component)!;
    const ports = workload.pod.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
    for (const rule of (policy.spec as { ingress: Rule[] }).ingress)
      for (const p of rule.ports) assert.ok(ports.includes(p.port), `${policy.metadata.name}: port ${p.port} of ${ports}`);
  }
});

test('mTLS: the certificate names the addresses the workers dial; cert-manager is required when asked for', () => {
  const objects = render('tls');
  const cert = one(objects, 'Certificate', `${fullname}-ring`).spec as {
    dnsNames: string[];
    secretName: string;
    usages: string[];
  };
  const worker = containerOf(one(objects, 'StatefulSet', `${fullname}-worker`), 'worker');
  const coordinatorHost = argValue(worker, '--coordinator')!.replace(/:\d+$/, '');
  assert.ok(cert.dnsNames.includes(coordinatorHost), `${coordinatorHost} in ${cert.dnsNames}`);
  const workerHost = argValue(worker, '--host')!;
  assert.ok(
    cert.dnsNames.some((n) => n.startsWith('*.') && workerHost.endsWith(n.slice(1))),
    `${workerHost} under ${cert.dnsNames}`,
  );
  assert.deepEqual(cert.usages.sort(), ['client auth', 'server auth']);
  for (const [kind, name, container] of [
    ['Deployment', `${fullname}-coordinator`, 'coordinator'],
    ['StatefulSet', `${fullname}-worker`, 'worker'],
  ]) {
    const o = one(objects, kind, name);
    const c = containerOf(o, container);
    assert.equal(argValue(c, '--tls-key'), '/etc/ringlet/tls/tls.key');
    const volume = (podOf(o).volumes as Array<{ name: string; secret?: { secretName: string } }>).find((v) => v.name === 'tls');
    assert.equal(volume?.secret?.secretName, cert.secretName);
  }
  const refused = runHelm(['template', RELEASE, CHART, '--values', ci('tls-values.yaml')]);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /does not serve cert-manager\.io\/v1 Certificate/);
});

test('values.schema.json refuses bad values at install, naming them; good ones pass', () => {
  const refusals: Array<[string[], RegExp]> = [
    [['workers.replicas=two'], /workers\.replicas: Invalid type\. Expected: integer, given: string/],
    [['coordinator.ports.metrics=-9464'], /coordinator\.ports\.metrics: Must be greater than or equal to 1/],
    [['evaluator.port=70000'], /evaluator\.port: Must be less than or equal to 65535/],
    [['trainingConfig.observability.precision=fp7'], /trainingConfig\.observability\.precision: .*must be one of.*"bf16"/],
    [['trainingConfig.training.batch_size=0'], /trainingConfig\.training\.batch_size: Must be greater than or equal to 1/],
    [['trainingConfig.data=/elsewhere'], /trainingConfig: Additional property data is not allowed/],
    [['workers.replica=3'], /workers: Additional property replica is not allowed/],
    [['nats.mode=embedded'], /nats\.mode: .*must be one of/],
    [['secrets.evaluatorToken=short'], /secrets\.evaluatorToken/],
    [['job.id=no spaces'], /job\.id: Does not match pattern/],
  ];
  for (const [set, message] of refusals) {
    const r = runHelm(['template', RELEASE, CHART, ...set.flatMap((s) => ['--set', s])]);
    assert.notEqual(r.status, 0, `${set} was accepted`);
    assert.match(r.stderr, /values don't meet the specifications of the schema/, `${set}: ${r.stderr}`);
    assert.match(r.stderr, message, `${set}: ${r.stderr}`);
  }
  const accepted = runHelm([
    'template',
    RELEASE,
    CHART,
    ...['workers.replicas=3', 'trainingConfig.observability.precision=bf16', 'coordinator.ports.metrics=9100'].flatMap((s) => [
      '--set',
      s,
    ]),
  ]);
  assert.equal(accepted.status, 0, accepted.stderr);
});

/** Every Ringlet container of a rendering, made runnable under a scratch folder. */
function ringletRuns(objects: K8sObject[], scratch: string): ContainerRun[] {
  return workloads(objects).flatMap(({ object, pod }) =>
    containerRuns(objects, object, pod, scratch).filter((run) => isRinglet(run.container)),
  );
}

/** A probe's port as a number: a container port's name, or the number itself. */
function probePort(c: Container, probe: Probe): number {
  const port = probe.httpGet!.port;
  const found = typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort;
  assert.ok(found, `${c.name}: probe port ${port} is not a port of the container`);
  return found;
}

const probes = (c: Container) => [c.startupProbe, c.livenessProbe, c.readinessProbe].filter((p): p is Probe => p !== undefined);

test(
  'contract: each Ringlet container of every rendering passes ringlet --check-config as its pod would run it',
  { timeout: 600_000 },
  async () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-chart-'));
    try {
      for (const name of Object.keys(RENDERINGS)) {
        const objects = render(name);
        const runs = ringletRuns(objects, path.join(scratch, name));
        const commands = runs.map((r) => `${r.container.name}:${r.args[0]}`).sort();
        assert.ok(commands.includes('coordinator:coordinator') && commands.includes('worker:worker'), `${name}: ${commands}`);
        // What is not Ringlet is NATS's server, checked below: nothing is left unchecked.
        for (const { object, pod } of workloads(objects))
          for (const c of [...(pod.initContainers ?? []), ...pod.containers])
            assert.ok(isRinglet(c) || c.name === 'nats', `${name}: ${object.metadata.name}/${c.name} runs ${c.image}`);
        const results = await inBatches(runs, 3, checkConfig);
        runs.forEach((run, i) => {
          const r = results[i];
          const where = `${name}: ${run.workload}/${run.container.name} (ringlet ${run.args.join(' ')})`;
          assert.equal(r.status, 0, `${where}\n${r.stderr}${r.stdout}`);
          assert.equal(r.summary?.config_ok, true, `${where}\n${r.stdout}`);
          for (const arg of run.args) {
            assert.doesNotMatch(arg, /\$\(/, `${where}: ${arg} refers to a variable the container does not define`);
            const value = arg.slice(arg.indexOf('=') + 1);
            if (value.startsWith('/'))
              assert.ok(
                run.mountPaths.some((m) => run.podPath(value) === m || run.podPath(value).startsWith(`${m}/`)),
                `${where}: ${run.podPath(value)} lies on none of its volumes (${run.mountPaths})`,
              );
          }
          assertResolved(name, run, r.summary!.config as Record<string, Record<string, unknown>>, objects);
        });
      }
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  },
);

/** The resolved config agrees with what the manifests say around the command: ports, probes, paths. */
function assertResolved(name: string, run: ContainerRun, config: Record<string, Record<string, unknown>>, objects: K8sObject[]) {
  const c = run.container;
  const where = `${name}: ${run.workload}/${c.name}`;
  const port = (portName: string) => c.ports?.find((p) => p.name === portName)?.containerPort;
  const probed = probes(c).map((p) => probePort(c, p));
  if (run.args[0] === 'coordinator') {
    const { train, distributed } = config as unknown as {
      train: { data: string; out: string; observability: { metrics_port: number; metrics_host: string } };
      distributed: { port: number; http_port: number; max_workers: number; token: string };
    };
    assert.equal(distributed.port, port('grpc'), where);
    assert.equal(train.observability.metrics_port, port('metrics'), where);
    assert.equal(train.observability.metrics_host, '0.0.0.0', `${where}: metrics scraped from other pods`);
    assert.deepEqual(new Set(probed), new Set([distributed.http_port]), `${where}: probes on the health port`);
    assert.equal(distributed.token, '[redacted]');
    assert.match(run.podPath(train.data), /^\/ringlet\/data\/[^/]+$/, where);
    assert.match(run.podPath(train.out), /^\/ringlet\/runs\/[^/]+$/, where);
    const workerSet = objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === `${fullname}-worker`)!;
    assert.equal(distributed.max_workers, (workerSet.spec as { replicas: number }).replicas, where);
    const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === `${fullname}-coordinator`)!;
    const servicePorts = (service.spec as { ports: Array<{ name: string; port: number }> }).ports;
    assert.equal(servicePorts.find((p) => p.name === 'grpc')?.port, distributed.port, `${where}: the Service's gRPC port`);
  } else if (run.args[0] === 'worker') {
    const worker = config.worker as { host: string; port: number; httpPort: number; coordinator: string };
    assert.equal(worker.port, port('ring'), where);
    assert.deepEqual(new Set(probed), new Set([worker.httpPort]), `${where}: probes on the health port`);
    assert.match(worker.host, new RegExp(`^pod-0\\.${fullname}-worker\\.${NAMESPACE}\\.svc\\.cluster\\.local$`), where);
    const coordinatorPort = Number(worker.coordinator.split(':').pop());
    const coordinator = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === `${fullname}-coordinator`)!;
    assert.equal(String(coordinatorPort), argValue(containerOf(coordinator, 'coordinator'), '--port'), where);
  } else if (run.args[0] === 'evaluator') {
    const evaluator = config.evaluator as { port: number; host: string; token: string; bus_tokens: string[] };
    assert.equal(evaluator.port, port('http'), where);
    assert.deepEqual(new Set(probed), new Set([evaluator.port]), where);
    assert.equal(evaluator.host, '0.0.0.0');
    assert.equal(evaluator.token, '[redacted]');
  } else if (run.args[0] === 'serve') {
    const serve = config.serve as { port: number; host: string };
    assert.equal(serve.port, port('http'), where);
    assert.deepEqual(new Set(probed), new Set([serve.port]), where);
  } else if (run.args[0] === 'data') {
    assert.equal(run.init, true, `${where}: data prepare runs before the coordinator`);
    assert.ok((config.prepare as { ifMissing: boolean }).ifMissing, `${where}: prepares only a missing dataset`);
  } else assert.fail(`${where}: a Ringlet command the contract does not know: ${run.args[0]}`);
}

test('contract: a flag the CLI does not know fails the check (a copy of the chart with one misspelt)', async () => {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-chart-copy-'));
  try {
    fs.cpSync(CHART, copy, { recursive: true });
    const template = path.join(copy, 'templates', 'coordinator-deployment.yaml');
    fs.writeFileSync(template, fs.readFileSync(template, 'utf8').replace('--metrics-port=', '--metrics-prot='));
    const objects = renderChart({ chart: copy });
    const run = ringletRuns(objects, path.join(copy, 'scratch')).find((r) => r.args[0] === 'coordinator')!;
    const r = await checkConfig(run);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unknown option '--metrics-prot=9464'|unknown option '--metrics-prot'/);
  } finally {
    fs.rmSync(copy, { recursive: true, force: true });
  }
});

test("contract: the training ConfigMap passes the CLI's zod schema, and NATS's config passes nats-server -t", () => {
  for (const name of Object.keys(RENDERINGS)) {
    const objects = render(name);
    const training = one(objects, 'ConfigMap', `${fullname}-training`).data as Record<string, string>;
    const parsed = TrainConfigSchema.safeParse(JSON.parse(training['config.json']));
    assert.ok(parsed.success, `${name}: ${parsed.error?.message}`);
    assert.equal(typeof JSON.parse(training['distributed.json']), 'object');
  }
  const objects = render('default');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-nats-conf-'));
  try {
    const nats = workloads(objects).find((w) => w.object.metadata.name === `${fullname}-nats`)!;
    const [run] = containerRuns(objects, nats.object, nats.pod, scratch);
    const r = spawnSync('nats-server', [...run.args, '-t'], { env: { PATH: process.env.PATH, ...run.env }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /configuration file .* is valid/);
    const conf = fs.readFileSync(run.localPath('/etc/nats/nats.conf'), 'utf8');
    assert.match(conf, /token: \$NATS_TOKEN/, 'the token comes from the environment, not the ConfigMap');
    const c = run.container;
    assert.deepEqual(
      probes(c).map((p) => probePort(c, p)),
      [Number(/http_port: (\d+)/.exec(conf)![1]), Number(/http_port: (\d+)/.exec(conf)![1])],
    );
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});

/** Starts a Ringlet container's command on loopback and a free port; resolves with its URL once it listens. */
async function startOnLoopback(run: ContainerRun): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'cli/ringlet.ts'), ...run.args, '--host=127.0.0.1', '--port=0'],
    { cwd: ROOT, env: { PATH: process.env.PATH, ...run.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /\{"listening":"([^"]+)"/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`${run.args[0]} exited ${code}: ${stderr}`)));
  });
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        child.removeAllListeners('exit');
        child.on('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

test(
  'probes: every HTTP probe path is one the code answers (health servers and the real evaluator and web UI)',
  { timeout: 120_000 },
  async () => {
    const objects = renderChart({ set: ['nats.mode=none'] });
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-probes-'));
    try {
      const runs = ringletRuns(objects, scratch).filter((r) => !r.init);
      const paths = (r: ContainerRun) => [...new Set(probes(r.container).map((p) => p.httpGet!.path))];
      // The coordinator and the workers serve coordinator/health.ts's HealthServer.
      const health = new HealthServer({ ready: () => true, status: () => ({}) });
      const address = await health.listen('127.0.0.1', 0);
      try {
        for (const run of runs.filter((r) => r.args[0] === 'coordinator' || r.args[0] === 'worker')) {
          assert.ok(paths(run).length >= 2, `${run.workload}: liveness and readiness`);
          for (const p of paths(run)) assert.equal((await fetch(`http://${address}${p}`)).status, 200, `${run.workload} ${p}`);
        }
        assert.equal((await fetch(`http://${address}/nowhere`)).status, 404, 'an unknown path is not answered');
      } finally {
        await health.close();
      }
      for (const run of runs.filter((r) => r.args[0] === 'evaluator' || r.args[0] === 'serve')) {
        const server = await startOnLoopback(run);
        try {
          for (const p of paths(run)) assert.equal((await fetch(`${server.url}${p}`)).status, 200, `${run.workload} ${p}`);
          assert.equal((await fetch(`${server.url}/healthz-nowhere`)).status, 404, `${run.workload}: an unknown path`);
        } finally {
          await server.stop();
        }
      }
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  },
);
