// The chart's contract with the CLI: every container of every rendered workload, turned into a command line on
// this machine as its pod would run it. Environment variables are resolved as the kubelet resolves them (values
// with $(VAR) references, the rendered Secrets and ConfigMaps, the downward API with stand-in values); each
// volume becomes a scratch folder (ConfigMaps and Secrets written out as files) and every path under a mount is
// rewritten to it. A Secret the chart does not render (an existing one, cert-manager's) gets stand-in contents.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { K8sObject } from './helm-fixture.js';
import { ROOT } from './helm-fixture.js';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
    resourceFieldRef?: { resource: string };
  };
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: Array<{ secretRef?: { name: string }; configMapRef?: { name: string } }>;
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string; readOnly?: boolean }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  securityContext?: Record<string, unknown>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}

export interface Probe {
  httpGet?: { path: string; port: number | string };
}

interface Volume {
  name: string;
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  persistentVolumeClaim?: { claimName: string };
  emptyDir?: object;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  securityContext?: Record<string, unknown>;
  [field: string]: unknown;
}

/** Every object that runs pods, with its pod template's spec. */
export function workloads(objects: K8sObject[]): Array<{ object: K8sObject; pod: PodSpec }> {
  return objects
    .filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind))
    .map((object) => ({ object, pod: (object.spec as { template: { spec: PodSpec } }).template.spec }));
}

/** Stand-ins for the downward API: what the kubelet would put in these fields. */
const FIELD_STAND_INS: Record<string, string> = {
  'metadata.name': 'pod-0',
  'metadata.namespace': 'ringlet-ci',
  'spec.nodeName': 'node-1',
  'status.podIP': '127.0.0.1',
  'status.hostIP': '127.0.0.1',
  'spec.serviceAccountName': 'default',
};

/** A value for a key of a Secret the chart does not render: long enough for every token rule. */
const standInSecret = (name: string, key: string) => `stand-in-for-${name}-${key}`.padEnd(40, '-');

/** $(VAR) references as the kubelet expands them: defined names only, $$ for a literal $. */
export function expandReferences(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match, name: string | undefined) =>
    match === '$$' ? '$' : name !== undefined && name in env ? env[name] : match,
  );
}

/** One container made runnable here. */
export interface ContainerRun {
  workload: string; // Kind/name
  container: Container;
  init: boolean;
  args: string[]; // expanded, paths rewritten
  env: Record<string, string>; // resolved, paths rewritten
  podPath(local: string): string; // a rewritten path back to the path in the pod
  localPath(podPath: string): string; // a path in the pod to its scratch copy
  mountPaths: string[];
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name);
}

function secretData(secret: K8sObject): Record<string, string> {
  const data = Object.entries((secret.data as Record<string, string>) ?? {}).map(([k, v]) => [
    k,
    Buffer.from(v, 'base64').toString('utf8'),
  ]);
  return { ...Object.fromEntries(data), ...((secret.stringData as Record<string, string>) ?? {}) };
}

/** Each container of `pod` (init containers first) as it would run, its volumes laid out under `scratch`. */
export function containerRuns(objects: K8sObject[], workload: K8sObject, pod: PodSpec, scratch: string): ContainerRun[] {
  const id = `${workload.kind}/${workload.metadata.name}`;
  const volumeDir = (name: string) => path.join(scratch, workload.kind, workload.metadata.name, name);
  const unrendered = new Set<string>(); // volumes of Secrets the chart does not render
  // A StatefulSet's claim templates are volumes of its pods too.
  const claims = (
    (workload.spec as { volumeClaimTemplates?: Array<{ metadata: { name: string } }> }).volumeClaimTemplates ?? []
  ).map((t): Volume => ({ name: t.metadata.name, persistentVolumeClaim: { claimName: t.metadata.name } }));
  const volumes = [...(pod.volumes ?? []), ...claims];
  for (const v of volumes) {
    const dir = volumeDir(v.name);
    fs.mkdirSync(dir, { recursive: true });
    let files: Record<string, string> = {};
    let items: Array<{ key: string; path: string }> | undefined;
    if (v.configMap) {
      const cm = find(objects, 'ConfigMap', v.configMap.name);
      if (!cm) throw new Error(`${id}: volume ${v.name} names ConfigMap ${v.configMap.name}, which the chart does not render`);
      files = (cm.data as Record<string, string>) ?? {};
      items = v.configMap.items;
    } else if (v.secret) {
      const secret = find(objects, 'Secret', v.secret.secretName);
      if (secret) files = secretData(secret);
      else unrendered.add(v.name);
      items = v.secret.items;
    } else if (!v.persistentVolumeClaim && !v.emptyDir) {
      throw new Error(`${id}: volume ${v.name} is of a kind this contract does not lay out: ${JSON.stringify(v)}`);
    }
    const entries = items ? items.map((i) => [i.path, files[i.key]] as const) : Object.entries(files);
    for (const [file, content] of entries) fs.writeFileSync(path.join(dir, file), content ?? '');
  }

  const runs: ContainerRun[] = [];
  for (const [init, container] of [
    ...(pod.initContainers ?? []).map((c) => [true, c] as const),
    ...pod.containers.map((c) => [false, c] as const),
  ]) {
    const mounts = (container.volumeMounts ?? [])
      .map((m) => {
        if (!volumes.some((v) => v.name === m.name))
          throw new Error(`${id}/${container.name}: mount ${m.mountPath} names no volume of the pod (${m.name})`);
        return { pod: m.mountPath, local: path.join(volumeDir(m.name), m.subPath ?? ''), volume: m.name };
      })
      .sort((a, b) => b.pod.length - a.pod.length);
    const rewrite = (value: string, from: 'pod' | 'local', to: 'pod' | 'local') =>
      value
        .split(/([,:=])/)
        .map((piece) => {
          const m = mounts.find((x) => piece === x[from] || piece.startsWith(`${x[from]}/`));
          return m ? m[to] + piece.slice(m[from].length) : piece;
        })
        .join('');
    const localPath = (p: string) => rewrite(p, 'pod', 'local');

    const env: Record<string, string> = {};
    for (const source of container.envFrom ?? []) {
      if (source.secretRef) {
        const secret = find(objects, 'Secret', source.secretRef.name);
        if (!secret) throw new Error(`${id}/${container.name}: envFrom names Secret ${source.secretRef.name}, not rendered`);
        Object.assign(env, secretData(secret));
      }
      if (source.configMapRef) {
        const cm = find(objects, 'ConfigMap', source.configMapRef.name);
        if (!cm) throw new Error(`${id}/${container.name}: envFrom names ConfigMap ${source.configMapRef.name}, not rendered`);
        Object.assign(env, cm.data as Record<string, string>);
      }
    }
    for (const e of container.env ?? []) {
      const from = e.valueFrom;
      if (e.value !== undefined) env[e.name] = expandReferences(e.value, env);
      else if (from?.secretKeyRef) {
        const { name, key } = from.secretKeyRef;
        const secret = find(objects, 'Secret', name);
        const value = secret ? secretData(secret)[key] : standInSecret(name, key);
        if (value === undefined) throw new Error(`${id}/${container.name}: ${e.name} names key ${key} that Secret ${name} lacks`);
        env[e.name] = value;
      } else if (from?.configMapKeyRef) {
        const { name, key } = from.configMapKeyRef;
        const value = (find(objects, 'ConfigMap', name)?.data as Record<string, string> | undefined)?.[key];
        if (value === undefined) throw new Error(`${id}/${container.name}: ${e.name} names ${name}/${key}, not rendered`);
        env[e.name] = value;
      } else if (from?.fieldRef) {
        const value = FIELD_STAND_INS[from.fieldRef.fieldPath];
        if (value === undefined) throw new Error(`${id}/${container.name}: no stand-in for field ${from.fieldRef.fieldPath}`);
        env[e.name] = value;
      } else if (from?.resourceFieldRef) env[e.name] = '1';
      else throw new Error(`${id}/${container.name}: ${e.name} has no value this contract can resolve`);
    }
    for (const [name, value] of Object.entries(env)) env[name] = localPath(value);

    const args = [...(container.command ?? []), ...(container.args ?? [])].map((a) => localPath(expandReferences(a, env)));
    // Files the pod would find in a Secret the chart does not render (an existing Secret, cert-manager's).
    for (const arg of args) {
      const file = arg.slice(arg.indexOf('=') + 1);
      const mount = mounts.find((m) => unrendered.has(m.volume) && file.startsWith(`${m.local}/`));
      if (mount) fs.writeFileSync(file, `stand-in for ${rewrite(file, 'local', 'pod')}\n`);
    }
    runs.push({
      workload: id,
      container,
      init,
      args,
      env,
      podPath: (p) => rewrite(p, 'local', 'pod'),
      localPath,
      mountPaths: mounts.map((m) => m.pod),
    });
  }
  return runs;
}

export interface CheckResult {
  status: number | null;
  stdout: string;
  stderr: string;
  summary: Record<string, unknown> | null; // the last line of stdout, parsed
}

/** `ringlet <args> --check-config --json` with the container's environment (and PATH) only. */
export function checkConfig(run: ContainerRun): Promise<CheckResult> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'cli/ringlet.ts'), ...run.args, '--check-config', '--json'],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH, ...run.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) =>
    child.on('close', (status) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      let summary: Record<string, unknown> | null = null;
      try {
        summary = JSON.parse(last);
      } catch {
        summary = null;
      }
      resolve({ status, stdout, stderr, summary });
    }),
  );
}

/** Runs `jobs` at most `width` at a time, in order. */
export async function inBatches<T, R>(items: T[], width: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await job(items[i]);
      }
    }),
  );
  return results;
}
