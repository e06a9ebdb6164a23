// The root package's install step: builds the native kernels (kernels/native) with node-gyp. It never
// fails the install: without OpenBLAS's headers, a compiler or Node's headers, Ringlet runs on the plain
// TensorFlow.js path and says so once at run time (kernels/native.ts). RINGLET_NATIVE=0 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const statusFile = path.join(here, 'build', 'status.json');

function finish(ok, detail) {
  mkdirSync(path.dirname(statusFile), { recursive: true });
  writeFileSync(statusFile, JSON.stringify({ ok, detail }) + '\n');
  if (!ok) console.warn(`ringlet: native kernels not built (${detail}); training will use the plain TensorFlow.js path`);
  process.exit(0);
}

if (process.env.RINGLET_NATIVE === '0') finish(false, 'RINGLET_NATIVE=0');

// npm passes its bundled node-gyp to lifecycle scripts; outside npm, look next to npm itself.
function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    const npmDir = path.dirname(createRequire(import.meta.url).resolve('npm/package.json'));
    candidates.push(path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  } catch {}
  const npmBin = process.env.npm_execpath;
  if (npmBin) candidates.push(path.join(path.dirname(npmBin), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push('/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  return candidates.find((c) => c && existsSync(c));
}

const nodeGyp = findNodeGyp();
if (!nodeGyp) finish(false, 'node-gyp not found');
const args = [nodeGyp, 'rebuild', '--directory', here];
// Node's headers: node-gyp downloads them unless told where they are; this machine's Node ships them
// under <prefix>/include/node, and nothing is downloaded at install time when they are there.
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
rmSync(statusFile, { force: true });
const result = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (result.status !== 0) {
  const lines = `${result.stdout}\n${result.stderr}`.split('\n').filter((l) => /error|not found|No such/i.test(l));
  finish(false, `node-gyp failed: ${lines.slice(0, 3).join(' | ') || `exit ${result.status}`}`);
}
finish(true, 'built');
