// Loads the CUDA device (kernels/cuda/src, built by kernels/cuda/build.mjs at `npm install` wherever nvcc
// exists) and opens it as a `Device` (kernels/cuda/device.ts). The addon loads on any machine; without a
// GPU it says why there is none, in the CUDA runtime's words.
//
// cuBLAS is not linked: the addon dlopens libcublasLt.so.13 and libcublas.so.13 from the first directory
// that has both, searching, in this order (cublasSearchDirs):
//   1. RINGLET_CUBLAS_DIR;
//   2. each entry of LD_LIBRARY_PATH;
//   3. the NVIDIA wheels of the `python3` on PATH (site-packages/nvidia/cu13/lib, then
//      site-packages/nvidia/cublas/lib, then any other site-packages/nvidia/*/lib), where the GPU machines carry cuBLAS;
//   4. the CUDA toolkit's lib64 (CUDA_HOME, CUDA_PATH, /usr/local/cuda).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Device, DeviceInfo } from './device.js';

/** Device methods the addon implements with the same arguments. */
type Direct = Exclude<keyof Device, 'info' | 'upload' | 'download' | 'adamw'>;

/** The addon's functions (kernels/cuda/src/addon.cc). */
interface CudaAddon extends Pick<Device, Direct> {
  /** Devices visible, and the runtime's error when it cannot count them ('' when it can). */
  deviceCount(): { count: number; error: string };
  /** Loads cuBLAS from the first directory that has it; returns its path, or throws naming each directory tried. */
  loadCublas(dirs: string[]): string;
  /** Opens the device (once per process) with cuBLAS from `dirs`; throws "no CUDA device (...)" or "cuBLAS not found (...)". */
  open(dirs: string[]): DeviceInfo;
  upload(dst: number, src: Float32Array | Int32Array, offsetBytes: number): void;
  download(src: number, dst: Float32Array | Int32Array, offsetBytes: number): void;
  /** `table` holds ADAMW_FIELDS numbers per tensor: p, g, m, v, pOut, mOut, vOut, n, wd. */
  adamw(
    table: Float64Array,
    count: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    c1: number,
    c2: number,
    gscale: number,
  ): void;
}

const DIRECT: Record<Direct, true> = {
  alloc: true,
  free: true,
  sync: true,
  memory: true,
  resetPeak: true,
  setProfiling: true,
  takeProfile: true,
  setPrecision: true,
  fill: true,
  copyStrided: true,
  binary: true,
  unary: true,
  cast: true,
  reduce: true,
  addN: true,
  softmax: true,
  gather: true,
  unsortedSegmentSum: true,
  gemm: true,
  rmsnormFwd: true,
  rmsnormBwd: true,
  swigluFwd: true,
  swigluBwd: true,
  rope: true,
  attnFwd: true,
  attnBwd: true,
  linearXent: true,
};
const ADAMW_FIELDS = 9;

const here = path.dirname(fileURLToPath(import.meta.url));
const ADDON = path.join(here, 'build', 'ringlet_cuda.node');
// dist/kernels/cuda/addon.js finds the addon in the source tree it was compiled from.
const ADDON_FROM_DIST = path.join(here, '..', '..', '..', 'kernels', 'cuda', 'build', 'ringlet_cuda.node');

/** Where the addon may be: RINGLET_CUDA_ADDON (another build of it), else the build folder of the sources. */
function addonCandidates(): string[] {
  const own = process.env.RINGLET_CUDA_ADDON;
  return own ? [path.resolve(own)] : [ADDON, ADDON_FROM_DIST];
}

/** kernels/cuda/build.mjs writes build/status.json beside the addon. */
const cudaBuildStatusFile = (addon: string = addonCandidates()[0]): string => path.join(path.dirname(addon), 'status.json');

export interface CudaBuildStatus {
  ok: boolean;
  detail: string;
  /** nvcc's flags, when the build got as far as compiling. */
  flags?: string[];
  /** The same sources built with g++ for the CPU emulator (kernels/cuda/emu). */
  emulated?: { ok: boolean; detail: string };
}

/** The build's status file, or null when there is none. */
export function cudaBuildStatus(addon: string = addonCandidates()[0]): CudaBuildStatus | null {
  try {
    return JSON.parse(readFileSync(cudaBuildStatusFile(addon), 'utf8')) as CudaBuildStatus;
  } catch {
    return null;
  }
}

let loaded: { addon: CudaAddon | null; reason: string } | undefined;

/** The raw addon, or null with the reason (not built, failed to load, RINGLET_CUDA=0). */
function loadAddon(): { addon: CudaAddon | null; reason: string } {
  if (loaded) return loaded;
  if (process.env.RINGLET_CUDA === '0') return (loaded = { addon: null, reason: 'disabled by RINGLET_CUDA=0' });
  const candidates = addonCandidates();
  const file = candidates.find((f) => existsSync(f));
  if (!file) {
    const status = cudaBuildStatus(candidates[0]);
    const reason = status
      ? `the CUDA addon is not built (the build said: ${status.detail})`
      : `the CUDA addon is not built (no ${candidates[0]} and no build status; run npm install)`;
    return (loaded = { addon: null, reason });
  }
  try {
    return (loaded = { addon: createRequire(import.meta.url)(file) as CudaAddon, reason: '' });
  } catch (err) {
    return (loaded = { addon: null, reason: `the CUDA addon failed to load from ${file}: ${(err as Error).message}` });
  }
}

/** The number of CUDA devices this process sees; 0 without a GPU, a driver or the addon. */
export function cudaDeviceCount(): number {
  return loadAddon().addon?.deviceCount().count ?? 0;
}

/** Directories to search for cuBLAS, in the order the file's head documents, without repeats. */
export function cublasSearchDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs: string[] = [];
  if (env.RINGLET_CUBLAS_DIR) dirs.push(env.RINGLET_CUBLAS_DIR);
  for (const dir of (env.LD_LIBRARY_PATH ?? '').split(':')) if (dir) dirs.push(dir);
  const site = pythonSitePackages(env);
  if (site)
    dirs.push(path.join(site, 'nvidia', 'cu13', 'lib'), path.join(site, 'nvidia', 'cublas', 'lib'), ...otherWheelLibs(site));
  for (const root of [env.CUDA_HOME, env.CUDA_PATH, '/usr/local/cuda']) if (root) dirs.push(path.join(root, 'lib64'));
  return [...new Set(dirs)];
}

/** Every other site-packages/nvidia/<wheel>/lib, sorted: wherever a future wheel layout puts libcublas.so.13. */
function otherWheelLibs(site: string): string[] {
  try {
    return readdirSync(path.join(site, 'nvidia'))
      .filter((wheel) => wheel !== 'cu13' && wheel !== 'cublas')
      .sort()
      .map((wheel) => path.join(site, 'nvidia', wheel, 'lib'))
      .filter((lib) => existsSync(lib));
  } catch {
    return [];
  }
}

/** site-packages of the `python3` on env's PATH that has NVIDIA's wheels, or null. */
function pythonSitePackages(env: NodeJS.ProcessEnv): string | null {
  const result = spawnSync('python3', ['-c', 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))'], {
    env,
    encoding: 'utf8',
    timeout: 20_000,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const site = result.status === 0 ? result.stdout.trim() : '';
  return site || null;
}

/** Loads cuBLAS from the first of `dirs` that has it and returns its path; throws "cuBLAS not found (...)"
 *  naming each directory tried and why it failed, or "no CUDA device (...)" when the addon is missing. */
export function loadCublas(dirs: string[] = cublasSearchDirs()): string {
  const { addon, reason } = loadAddon();
  if (!addon) throw new Error(`no CUDA device (${reason})`);
  return addon.loadCublas(dirs);
}

/** Why the cuda backend cannot run here ('' when a device and cuBLAS are usable). */
export function cudaUnavailableReason(): string {
  const { addon, reason } = loadAddon();
  if (!addon) return `no CUDA device (${reason})`;
  const { count, error } = addon.deviceCount();
  if (error) return `no CUDA device (cudaGetDeviceCount: ${error})`;
  if (count === 0) return 'no CUDA device (cudaGetDeviceCount found none)';
  try {
    loadCublas();
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}

let opened: Device | undefined;

/** The device (the same object on every call); throws "no CUDA device (...)" or "cuBLAS not found (...)". */
export function openCudaDevice(): Device {
  if (opened) return opened;
  const { addon, reason } = loadAddon();
  if (!addon) throw new Error(`no CUDA device (${reason})`);
  const info = addon.open(cublasSearchDirs());
  opened = wrap(addon, info);
  return opened;
}

function wrap(addon: CudaAddon, info: DeviceInfo): Device {
  const problem = cudaAddonProblem();
  if (problem) throw new Error(problem);
  const direct = Object.fromEntries(
    (Object.keys(DIRECT) as Direct[]).map((name) => [name, (addon[name] as (...args: unknown[]) => unknown).bind(addon)]),
  ) as Pick<Device, Direct>;
  return {
    ...direct,
    info: () => ({ ...info }),
    upload: (dst, src, offsetBytes = 0) => addon.upload(dst, src, offsetBytes),
    download: (src, dst, offsetBytes = 0) => addon.download(src, dst, offsetBytes),
    adamw: (tensors, lr, beta1, beta2, eps, c1, c2, gscale) => {
      const table = new Float64Array(tensors.length * ADAMW_FIELDS);
      tensors.forEach((t, i) => table.set([t.p, t.g, t.m, t.v, t.pOut, t.mOut, t.vOut, t.n, t.wd], i * ADAMW_FIELDS));
      addon.adamw(table, tensors.length, lr, beta1, beta2, eps, c1, c2, gscale);
    },
  };
}

/** Why the addon cannot be used ('' when it loaded and has every function the Device needs). */
export function cudaAddonProblem(): string {
  const { addon, reason } = loadAddon();
  if (!addon) return reason;
  const needed = [...Object.keys(DIRECT), 'deviceCount', 'loadCublas', 'open', 'upload', 'download', 'adamw'];
  const missing = needed.filter((name) => typeof (addon as unknown as Record<string, unknown>)[name] !== 'function');
  return missing.length ? `the CUDA addon lacks ${missing.join(', ')} (rebuild it: npm install)` : '';
}
