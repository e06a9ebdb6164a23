// The root package's install step for the CUDA device (kernels/cuda/src): nvcc compiles each source file in
// parallel and links kernels/cuda/build/ringlet_cuda.node with the CUDA runtime linked statically; cuBLAS
// is opened at run time (src/cublas.cc), so building needs only nvcc, the toolkit's headers and Node's.
// Beside it, g++ compiles the same sources against the CPU emulator (kernels/cuda/emu) into
// build/ringlet_cuda_emu.node, with an emulated cuBLAS in build/emu-cublas/: it needs no CUDA at all, so
// every CI machine has it and runs the kernels (test/cuda-emulated.test.ts). Both builds share the CPUs.
// It never fails the install: without nvcc or Node's headers, or if a build fails, the status file
// (build/status.json; its `emulated` field for the emulator) says why and the `cuda` backend reports it
// (kernels/cuda/addon.ts). RINGLET_CUDA=0 skips both builds.
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

const emu = path.join(here, 'emu');
const emuAddon = path.join(build, 'ringlet_cuda_emu.node');
const emuCublas = path.join(build, 'emu-cublas');
// The emulator's flags: the nvcc build's warnings, less unknown pragmas (nvcc's `#pragma unroll`). Each file
// gets cuda_runtime.h first, as nvcc gives every .cu file.
const EMU_FLAGS = ['-std=c++20', '-O2', '-pthread', '-fPIC', '-Wall', '-Wextra', '-Werror', '-Wno-unknown-pragmas'];

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

/** At most `limit` commands at a time, shared by both builds. */
function limiter(limit) {
  let running = 0;
  const waiting = [];
  const release = () => {
    running--;
    waiting.shift()?.();
  };
  return async (cmd, args) => {
    if (running >= limit) await new Promise((resolve) => waiting.push(resolve));
    running++;
    try {
      return await run(cmd, args);
    } finally {
      release();
    }
  };
}
const compile = limiter(Math.max(1, os.availableParallelism()));

function firstErrors(out) {
  const lines = out.split('\n').filter((l) => /error|warning/i.test(l));
  return (lines.length ? lines : out.split('\n')).slice(0, 4).join(' | ').trim();
}

const seconds = (started) => Math.round((Date.now() - started) / 100) / 10;

// The slowest files first (CUB's radix sort, the attention templates), so the parallel jobs end together.
const cost = (f) => (f.startsWith('segment_sum') ? 0 : f.startsWith('attention') ? 1 : 2);
const sources = readdirSync(src)
  .filter((f) => f.endsWith('.cu') || f.endsWith('.cc'))
  .sort((a, b) => cost(a) - cost(b));

/** The GPU addon with nvcc; its status fields. */
async function buildCuda(nodeInclude) {
  const nvcc = findNvcc();
  if (!nvcc) return { ok: false, detail: 'nvcc not found (PATH, CUDA_HOME, CUDA_PATH, /usr/local/cuda/bin)' };
  const objDir = path.join(build, 'obj');
  mkdirSync(objDir, { recursive: true });
  const flags = ['-O3', '-std=c++17', ...GENCODE, ...WARNINGS, `-I${nodeInclude}`];
  const started = Date.now();
  const compiled = await Promise.all(
    sources.map((f) => compile(nvcc, [...flags, '-c', path.join(src, f), '-o', path.join(objDir, `${f}.o`)])),
  );
  const failed = compiled.findIndex((r) => r.code !== 0);
  if (failed >= 0) return { ok: false, detail: `nvcc failed on ${sources[failed]}: ${firstErrors(compiled[failed].out)}`, flags };
  const partial = `${addon}.partial`;
  const linked = await compile(nvcc, [
    '-shared',
    '--cudart=static',
    ...GENCODE,
    '-o',
    partial,
    ...sources.map((f) => path.join(objDir, `${f}.o`)),
    '-ldl',
  ]);
  if (linked.code !== 0) return { ok: false, detail: `linking failed: ${firstErrors(linked.out)}`, flags };
  renameSync(partial, addon);
  return { ok: true, detail: 'built', flags, nvcc, seconds: seconds(started) };
}

/** The same sources with g++ against the emulator, and the emulated cuBLAS; the `emulated` status. */
async function buildEmulated(nodeInclude) {
  const include = path.join(emu, 'include');
  const flags = [...EMU_FLAGS, '-fvisibility=hidden', '-DRINGLET_CUDA_EMULATED', `-I${include}`, `-I${nodeInclude}`];
  const objDir = path.join(build, 'emu-obj');
  mkdirSync(objDir, { recursive: true });
  mkdirSync(emuCublas, { recursive: true });
  const started = Date.now();
  const files = [...sources.map((f) => path.join(src, f)), path.join(emu, 'runtime.cc'), path.join(emu, 'simt.cc')];
  const object = (file) => path.join(objDir, `${path.basename(file)}.o`);
  const cublas = path.join(emuCublas, 'libcublas.so.13');
  const jobs = [
    ...files.map((f) => ['g++', [...flags, '-x', 'c++', '-include', 'cuda_runtime.h', '-c', f, '-o', object(f)]]),
    ['g++', [...EMU_FLAGS, '-fvisibility=hidden', `-I${include}`, '-shared', path.join(emu, 'cublas_emu.cc'), '-o', cublas]],
    // cublas.cc opens libcublasLt first, as the real libcublas needs it: here an empty library.
    ['g++', ['-shared', '-x', 'c++', '/dev/null', '-o', path.join(emuCublas, 'libcublasLt.so.13')]],
  ];
  const done = await Promise.all(jobs.map(([cmd, args]) => compile(cmd, args)));
  const failed = done.findIndex((r) => r.code !== 0);
  const what = (i) => (i < files.length ? path.basename(files[i]) : path.basename(jobs[i][1].at(-1)));
  if (failed >= 0) return { ok: false, detail: `g++ failed on ${what(failed)}: ${firstErrors(done[failed].out)}`, flags };
  const partial = `${emuAddon}.partial`;
  const linked = await compile('g++', ['-shared', '-pthread', '-o', partial, ...files.map(object), '-ldl']);
  if (linked.code !== 0) return { ok: false, detail: `linking failed: ${firstErrors(linked.out)}`, flags };
  renameSync(partial, emuAddon);
  return { ok: true, detail: 'built', flags, seconds: seconds(started) };
}

function writeStatus(cuda, emulated) {
  mkdirSync(build, { recursive: true });
  writeFileSync(statusFile, JSON.stringify({ ...cuda, emulated }, null, 2) + '\n');
  if (!cuda.ok) console.warn(`ringlet: CUDA device not built (${cuda.detail}); the cuda backend is unavailable`);
  if (!emulated.ok) console.warn(`ringlet: the CUDA emulator not built (${emulated.detail})`);
}

async function main() {
  if (process.env.RINGLET_CUDA === '0') {
    const off = { ok: false, detail: 'RINGLET_CUDA=0' };
    return writeStatus(off, off);
  }
  const nodeInclude = path.join(path.resolve(path.dirname(process.execPath), '..'), 'include', 'node');
  if (!existsSync(path.join(nodeInclude, 'node_api.h'))) {
    const missing = { ok: false, detail: `Node's headers not found in ${nodeInclude}` };
    return writeStatus(missing, missing);
  }
  rmSync(statusFile, { force: true });
  const [cuda, emulated] = await Promise.all([buildCuda(nodeInclude), buildEmulated(nodeInclude)]);
  writeStatus(cuda, emulated);
}

main().catch((err) => {
  const failed = { ok: false, detail: `build script failed: ${err?.message ?? err}` };
  writeStatus(failed, failed);
});
