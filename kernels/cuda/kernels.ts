// Every kernel the cuda backend runs on the device, registered once; kernels/cuda/fallback.ts then covers
// the rest of tfjs's kernels on the CPU.
import * as tf from '@tensorflow/tfjs';
import { ELEMENTWISE_KERNELS } from './elementwise.js';
import { MATMUL_AND_FUSED_KERNELS } from './fused.js';
import { LAYOUT_KERNELS } from './layout.js';
import { REDUCE_KERNELS } from './reduce.js';

export const CUDA_KERNELS = [...ELEMENTWISE_KERNELS, ...LAYOUT_KERNELS, ...REDUCE_KERNELS, ...MATMUL_AND_FUSED_KERNELS];

export function registerCudaKernels(): void {
  for (const config of CUDA_KERNELS) if (tf.getKernel(config.kernelName, 'cuda') === undefined) tf.registerKernel(config);
}
