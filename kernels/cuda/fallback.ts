// The CPU fallback of the cuda backend: a kernel with no CUDA implementation (or a case one does not take,
// such as int32 arithmetic) downloads its inputs into a private tfjs cpu backend, runs the cpu kernel there
// and uploads its outputs. Correct but slow, so each op says so once on stderr, and every run is counted
// (cpuFallbackCounts; `bench train` reports them; the goal for training, evaluation and generation is none).
import * as tf from '@tensorflow/tfjs';
import type { DataId, KernelBackend, KernelConfig, KernelFunc, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import type { CudaBackend } from './backend.js';

const counts = new Map<string, number>();

/** Op name → how many times it ran on the CPU fallback in this process. */
export function cpuFallbackCounts(): Record<string, number> {
  return Object.fromEntries(counts);
}

/** The ops that ran on the CPU fallback since the counts were `before` (an earlier cpuFallbackCounts()), and how often. */
export function cpuFallbacksSince(before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(cpuFallbackCounts())
      .map(([op, n]) => [op, n - (before[op] ?? 0)] as const)
      .filter(([, n]) => n > 0),
  );
}

let cpu: KernelBackend | null = null;

/** A cpu backend of our own (not the engine's 'cpu', which may not be initialised), made by tfjs's factory. */
function privateCpu(): KernelBackend {
  if (!cpu) {
    const factory = tf.findBackendFactory('cpu');
    if (!factory) throw new Error('the cuda backend CPU fallback needs the tfjs cpu backend, which is not registered');
    cpu = factory() as KernelBackend;
    (cpu as unknown as { firstUse: boolean }).firstUse = false; // no "install tfjs-node" banner
  }
  return cpu;
}

/** Runs kernel `kernelName` of the cpu backend on the cuda tensors of `args`, returning cuda tensors. */
export function runOnCpu(kernelName: string, args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const config = tf.getKernel(kernelName, 'cpu');
  if (!config) throw new Error(`${kernelName} has neither a CUDA kernel nor a CPU one`);
  if (!counts.has(kernelName)) process.stderr.write(`ringlet: ${kernelName} has no CUDA kernel; running it on the CPU (slow)\n`);
  counts.set(kernelName, (counts.get(kernelName) ?? 0) + 1);
  const cuda = args.backend as CudaBackend;
  const host = privateCpu();
  const held: DataId[] = [];
  const toHost = (t: TensorInfo): TensorInfo => {
    const info = (host as unknown as CudaBackend).makeTensorInfo(t.shape, t.dtype, cuda.readSync(t.dataId));
    held.push(info.dataId);
    return info;
  };
  // Concat, AddN and Pack take an array of tensors; the rest a map of names.
  const inputs = Array.isArray(args.inputs)
    ? (args.inputs as TensorInfo[]).map(toHost)
    : Object.fromEntries(Object.entries(args.inputs).map(([name, t]) => [name, toHost(t as TensorInfo)]));
  try {
    const out = config.kernelFunc({ inputs: inputs as NamedTensorInfoMap, backend: host, attrs: args.attrs });
    const outs = Array.isArray(out) ? out : [out];
    held.push(...outs.map((o) => o.dataId));
    const uploaded = outs.map((o) => cuda.makeTensorInfo(o.shape, o.dtype, host.readSync(o.dataId)));
    return Array.isArray(out) ? uploaded : uploaded[0];
  } finally {
    for (const dataId of new Set(held)) host.disposeData(dataId, true);
  }
}

/** Registers the CPU fallback on 'cuda' for every kernel the cpu backend has and cuda does not. */
export function registerCpuFallbacks(): void {
  for (const { kernelName } of tf.getKernelsForBackend('cpu')) {
    if (tf.getKernel(kernelName, 'cuda') !== undefined) continue;
    const config: KernelConfig = { kernelName, backendName: 'cuda', kernelFunc: (args) => runOnCpu(kernelName, args) };
    tf.registerKernel(config);
  }
}
