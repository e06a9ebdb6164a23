// What every kernel of the cuda backend is written against: its arguments with the backend typed, and the
// config that registers it.
import type { KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import type { CudaBackend } from './backend.js';

export interface CudaKernelArgs {
  inputs: NamedTensorInfoMap;
  backend: CudaBackend;
  attrs: NamedAttrMap;
}

export type CudaKernelFunc = (args: CudaKernelArgs) => TensorInfo | TensorInfo[];

export function cudaKernel(kernelName: string, kernelFunc: CudaKernelFunc): KernelConfig {
  return { kernelName, backendName: 'cuda', kernelFunc: kernelFunc as unknown as KernelFunc };
}

/** The inputs of a kernel that takes a list (Concat, AddN, Pack). */
export const inputList = (inputs: NamedTensorInfoMap) => inputs as unknown as TensorInfo[];
