// The root package's install step for the CUDA device (kernels/cuda/src): nvcc compiles each source file in
// parallel and links kernels/cuda/build/ringlet_cuda.node with the CUDA runtime linked statically; cuBLAS
// is opened at run time (src/cublas.cc), so building needs only nvcc, the toolkit's headers and Node's.
// It never fails the install: without nvcc or Node's headers, or if the build fails, the status file
// (build/status.json) says why and the `cuda` backend reports it (kernels/cuda/addon.ts).
// RINGLET_CUDA=0 skips the build.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, 'src');
const build = path.join(here, 'build');
const statusFile = path.join(build, 'status.json');
const addon = path.join(build, 'ringlet_cuda.node');

// H100/H200 (sm_90) code, plus PTX that later GPUs compile when the addon loads. Not sm_80 (A100): it
// adds about 40% to the build (measured on 2 cores: 34 s of compiler CPU time with it, 24 s without; 45 s
// against 38 s of wall time), in every CI install, for GPUs the GPU machines do not have.
const GENCODE = ['-gencode=arch=compute_90,code=sm_90', '-gencode=arch=compute_90,code=compute_90'];
const WARNINGS = ['-Xcompiler=-fPIC,-Wall,-Wextra,-Werror,-fvisibility=hidden', '-Werror=all-warnings'];

function finish(ok, detail, extra = {}) {
  mkdirSync(build, { recursive: true });
  writeFileSync(statusFile, JSON.stringify({ ok, detail, ...extra }, null, 2) + '\n');
  if (!ok) console.warn(`ringlet: CUDA device not built (${detail}); the cuda backend is unavailable`);
  process.exit(0);
}

/** nvcc from PATH, then CUDA_HOME, CUDA_PATH, then /usr/local/cuda. */
function findNvcc() {
  const onPath = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' });
  const candidates = [
    onPath.status === 0 ? onPath.stdout.trim() : '',
    process.env.CUDA_HOME && path.join(process.env.CUDA_HOME, 'bin', 'nvcc'),
    process.env.CUDA_PATH && path.join(process.env.CUDA_PATH, 'bin', 'nvcc'),
    '/usr/local/cuda/bin/nvcc',
  ];
  return candidates.find((c) => c && existsSync(c));
}

function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (err) => resolve({ code: -1, out: String(err) }));
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** Runs the jobs (functions returning promises) with at most `limit` at a time; the results in order. */
async function pool(jobs, limit) {
  const results = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

function firstErrors(out) {
  const lines = out.split('\n').filter((l) => /error|warning/i.test(l));
  return (lines.length ? lines : out.split('\n')).slice(0, 4).join(' | ').trim();
}

async function main() {
  if (process.env.RINGLET_CUDA === '0') finish(false, 'RINGLET_CUDA=0');
  const nvcc = findNvcc();
  if (!nvcc) finish(false, 'nvcc not found (PATH, CUDA_HOME, CUDA_PATH, /usr/local/cuda/bin)');
  const nodeInclude = path.join(path.resolve(path.dirname(process.execPath), '..'), 'include', 'node');
  if (!existsSync(path.join(nodeInclude, 'node_api.h'))) finish(false, `Node's headers not found in ${nodeInclude}`);

  rmSync(statusFile, { force: true });
  const objDir = path.join(build, 'obj');
  mkdirSync(objDir, { recursive: true });
  const flags = ['-O3', '-std=c++17', ...GENCODE, ...WARNINGS, `-I${nodeInclude}`];
  const sources = readdirSync(src).filter((f) => f.endsWith('.cu') || f.endsWith('.cc'));
  const started = Date.now();
  // The slowest files first (CUB's radix sort, the attention templates), so the parallel jobs end together.
  const cost = (f) => (f.startsWith('segment_sum') ? 0 : f.startsWith('attention') ? 1 : 2);
  sources.sort((a, b) => cost(a) - cost(b));
  const compiled = await pool(
    sources.map((f) => () => run(nvcc, [...flags, '-c', path.join(src, f), '-o', path.join(objDir, `${f}.o`)])),
    Math.max(1, os.availableParallelism()),
  );
  const failed = compiled.findIndex((r) => r.code !== 0);
  if (failed >= 0) finish(false, `nvcc failed on ${sources[failed]}: ${firstErrors(compiled[failed].out)}`, { flags });
  const partial = `${addon}.partial`;
  const linked = await run(nvcc, [
    '-shared',
    '--cudart=static',
    ...GENCODE,
    '-o',
    partial,
    ...sources.map((f) => path.join(objDir, `${f}.o`)),
    '-ldl',
  ]);
  if (linked.code !== 0) finish(false, `linking failed: ${firstErrors(linked.out)}`, { flags });
  renameSync(partial, addon);
  finish(true, 'built', { flags, nvcc, seconds: Math.round((Date.now() - started) / 100) / 10 });
}

main().catch((err) => finish(false, `build script failed: ${err?.message ?? err}`));
