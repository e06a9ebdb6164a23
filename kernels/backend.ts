// Picks and initialises the TensorFlow.js backend Ringlet computes on: wasm (default, with the
// kernels it lacks or runs slowly replaced), plain cpu, Ringlet's own cuda (kernels/cuda: an NVIDIA GPU), or
// libtensorflow via tfjs-node(-gpu).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { wasmUnsortedSegmentSumConfig } from './wasm-unsorted-segment-sum.js';
import { fastWasmBatchMatMulConfig } from './wasm-batch-matmul.js';
import { wasmSharedIdentityConfig } from './wasm-identity.js';
import { installNativeKernels } from './native-kernels.js';
import { installLeanGradients } from './lean-gradients.js';
import { loadNative, warnNativeUnavailableOnce } from './native.js';
import { cudaUnavailableReason, openCudaDevice } from './cuda/addon.js';
import { cudaDevice, registerCudaBackend } from './cuda/backend.js';
import type { Device, Precision } from './cuda/device.js';

export const BACKEND_NAMES = ['wasm', 'cpu', 'cuda', 'tensorflow', 'tensorflow-gpu', 'auto'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendOptions {
  /** How the cuda backend's matrix products round their inputs (TF32 by default); the CPU backends compute fp32. */
  precision?: Precision;
  /** The device the cuda backend computes on instead of the addon's GPU: the tests and the GPU check's dry run
   *  give the host Device (kernels/cuda/host-device.ts). */
  device?: Device;
}

export interface BackendInfo {
  /** The tfjs backend now active: 'wasm', 'cpu', 'cuda' or 'tensorflow' (which tfjs-node-gpu also uses). */
  name: string;
  /** What runs, for logs, e.g. "wasm (SIMD, 1 thread) + UnsortedSegmentSum kernel + ...". */
  description: string;
  /** The GPU it computes on (cuda): its name as the driver gives it. */
  device?: string;
  /** The matrix products' precision: the cuda backend's setting, fp32 on the CPU backends. */
  precision: Precision;
}

const TF_NODE_PACKAGES = {
  tensorflow: '@tensorflow/tfjs-node',
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
} as const;
type TfNodeBackend = keyof typeof TF_NODE_PACKAGES;

/** Makes `name` the active tfjs backend and says what it is. */
export async function setupBackend(name: BackendName = 'wasm', options: BackendOptions = {}): Promise<BackendInfo> {
  installLeanGradients(); // every backend: gradients freed as the backward pass goes
  switch (name) {
    case 'wasm':
      return setupWasm();
    case 'cpu':
      return setupCpu();
    case 'cuda':
      return setupCuda(options.precision ?? 'tf32', options.device);
    case 'tensorflow':
    case 'tensorflow-gpu':
      return setupTfNode(name);
    case 'auto':
      return setupAuto(options);
    default:
      throw new Error(`unknown backend "${String(name)}"; expected one of ${BACKEND_NAMES.join(', ')}`);
  }
}

async function setupWasm(): Promise<BackendInfo> {
  installWasmKernels();
  // The Node build finds its .wasm next to its own file (__dirname); naming the folder explicitly
  // keeps that true if Ringlet is ever bundled. It is ignored once the backend has initialised.
  setWasmPaths(wasmDistDir());
  if (!(await tf.setBackend('wasm'))) {
    throw new Error(`the wasm backend failed to initialise (looked for its .wasm files in ${wasmDistDir()})`);
  }
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = getThreadsCount();
  return {
    name: 'wasm',
    precision: 'fp32',
    description:
      `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'})` +
      ' + UnsortedSegmentSum kernel + transposed/batched-matmul fast path + copy-free Identity' +
      nativeDescription(),
  };
}

/** " + native kernels (...)" when the addon is in use, after warning once when it is not. */
function nativeDescription(): string {
  const native = loadNative();
  if (!native) {
    warnNativeUnavailableOnce();
    return ' (native kernels unavailable)';
  }
  const info = native.info();
  return ` + native kernels (OpenBLAS ${info.blasCore} sgemm, ${info.blasThreads} BLAS thread; fused kernels ${info.simd})`;
}

let wasmKernelsInstalled = false;

/**
 * Registers UnsortedSegmentSum and replaces BatchMatMul and Identity on wasm. Run before the backend
 * initialises, tfjs then calls the kept setupFunc of the stock BatchMatMul (run after, that has
 * already happened). Unregistering first avoids tfjs's "already registered" warning.
 */
function installWasmKernels(): void {
  if (wasmKernelsInstalled) return;
  const stockMatMul = tf.getKernel(tf.BatchMatMul, 'wasm');
  const transpose = tf.getKernel(tf.Transpose, 'wasm');
  if (stockMatMul === undefined || transpose === undefined) {
    throw new Error(
      "no wasm BatchMatMul/Transpose kernel is registered with Ringlet's @tensorflow/tfjs: " +
        '@tensorflow/tfjs-backend-wasm must be 4.22.0 and share its @tensorflow/tfjs-core ' +
        '(see `npm ls @tensorflow/tfjs-core`)',
    );
  }
  tf.unregisterKernel(tf.BatchMatMul, 'wasm');
  tf.registerKernel(fastWasmBatchMatMulConfig(stockMatMul, transpose));
  if (tf.getKernel(tf.UnsortedSegmentSum, 'wasm') === undefined) {
    tf.registerKernel(wasmUnsortedSegmentSumConfig);
  }
  tf.unregisterKernel(tf.Identity, 'wasm');
  tf.registerKernel(wasmSharedIdentityConfig);
  // The native sgemm BatchMatMul and fused kernels, when the addon is built; the fast path above stays
  // as their fallback for the products sgemm does not take.
  installNativeKernels('wasm', tf.getKernel(tf.BatchMatMul, 'wasm')!);
  wasmKernelsInstalled = true;
}

function wasmDistDir(): string {
  const main = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
  const dir = path.dirname(main);
  if (!existsSync(path.join(dir, 'tfjs-backend-wasm-simd.wasm'))) {
    throw new Error(`@tensorflow/tfjs-backend-wasm has no tfjs-backend-wasm-simd.wasm in ${dir}`);
  }
  return dir + path.sep;
}

async function setupCpu(): Promise<BackendInfo> {
  const stockMatMul = tf.getKernel(tf.BatchMatMul, 'cpu');
  if (stockMatMul !== undefined) installNativeKernels('cpu', stockMatMul);
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
  // The cpu backend's first tensor prints a banner advertising tfjs-node, which Ringlet already
  // offers as the 'tensorflow' backend; silenced (the PROD flag only gates warnings in tfjs 4.22).
  const prod = tf.env().getBool('PROD');
  tf.env().set('PROD', true);
  tf.tensor1d([0]).dispose();
  tf.env().set('PROD', prod);
  return { name: 'cpu', precision: 'fp32', description: 'cpu (plain JavaScript kernels, 1 thread)' + nativeDescription() };
}

let loadedTfNode: TfNodeBackend | null = null;

async function setupTfNode(name: TfNodeBackend): Promise<BackendInfo> {
  const pkg = TF_NODE_PACKAGES[name];
  if (loadedTfNode !== null && loadedTfNode !== name) {
    throw new Error(
      `backend ${name} cannot load: ${TF_NODE_PACKAGES[loadedTfNode]} is already loaded in this process ` +
        `and both register the tfjs backend "tensorflow"`,
    );
  }
  await importTfNode(name);
  loadedTfNode = name;
  // tfjs-node registers its backend with the @tensorflow/tfjs it resolves; a second copy of tfjs
  // (e.g. after a version mismatch) would hold it where Ringlet's tf cannot see it.
  if (tf.findBackendFactory('tensorflow') === null) {
    throw new Error(
      `${pkg} loaded but its "tensorflow" backend is not registered with Ringlet's @tensorflow/tfjs: ` +
        'two copies of @tensorflow/tfjs are installed (see `npm ls @tensorflow/tfjs`); both must be 4.22.0',
    );
  }
  if (!(await tf.setBackend('tensorflow'))) throw new Error(`backend ${name}: ${pkg} failed to initialise`);
  return { name: 'tensorflow', precision: 'fp32', description: `tensorflow (libtensorflow through ${pkg})` };
}

async function importTfNode(name: TfNodeBackend): Promise<void> {
  const pkg: string = TF_NODE_PACKAGES[name];
  try {
    // A variable specifier: the packages are optional and absent from most installs.
    await import(pkg);
  } catch (err) {
    if (isPackageMissing(err, pkg)) throw new MissingBackendPackageError(name, pkg, err);
    throw new Error(`backend ${name}: loading ${pkg} failed: ${(err as Error).message}`, { cause: err });
  }
}

class MissingBackendPackageError extends Error {
  constructor(backend: TfNodeBackend, pkg: string, cause: unknown) {
    super(
      `backend ${backend} needs ${pkg}, which is not installed (it downloads libtensorflow at install time; ` +
        'install it on a machine with network access to storage.googleapis.com)',
      { cause },
    );
  }
}

function isPackageMissing(err: unknown, pkg: string): boolean {
  const { code, message } = err as { code?: string; message?: string };
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String(message).includes(`'${pkg}'`);
}

/**
 * The cuda backend on the addon's device (the first the process sees: a worker is pinned to its GPU with
 * CUDA_VISIBLE_DEVICES). Without a device, the addon or cuBLAS, a clear error saying which and why.
 */
async function setupCuda(precision: Precision, given?: Device): Promise<BackendInfo> {
  // The backend keeps the device it was registered with: a second setup reuses it.
  let device = cudaDevice();
  if (device && given && device !== given) throw new Error('backend cuda: already registered on another device');
  if (!device) {
    try {
      device = given ?? openCudaDevice();
    } catch (err) {
      throw new Error(`backend cuda: ${(err as Error).message}`, { cause: err });
    }
    registerCudaBackend(device);
  }
  device.setPrecision(precision);
  if (!(await tf.setBackend('cuda'))) throw new Error('backend cuda: the backend failed to initialise');
  const info = device.info();
  return {
    name: 'cuda',
    device: info.name,
    precision,
    description: `cuda (${info.name}, compute capability ${info.computeCapability}, ${precision} matrix products through ${info.cublas})`,
  };
}

/** The first backend that works of cuda, tensorflow-gpu, tensorflow and wasm; says in one line why each before it did not. */
async function setupAuto(options: BackendOptions): Promise<BackendInfo> {
  const skipped: string[] = [];
  const cudaReason = cudaUnavailableReason();
  if (cudaReason === '') return setupCuda(options.precision ?? 'tf32');
  skipped.push(`cuda (${cudaReason})`);
  for (const name of ['tensorflow-gpu', 'tensorflow'] as const) {
    try {
      return await setupTfNode(name);
    } catch (err) {
      const why = err instanceof MissingBackendPackageError ? 'not installed' : (err as Error).message;
      skipped.push(`${name} (${why})`);
    }
  }
  const wasm = await setupWasm();
  process.stderr.write(`ringlet: backend auto chose wasm; skipped ${skipped.join('; ')}\n`);
  return { ...wasm, description: `${wasm.description} (auto; skipped ${skipped.join('; ')})` };
}
