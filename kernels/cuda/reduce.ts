// Reductions of the cuda backend (Sum, Mean, Max, Min, Prod) over any axes: the reduced axes are moved
// innermost by a transposed copy when they are not already, then the device reduces rows of [outer, inner].
import * as tf from '@tensorflow/tfjs';
import { backend_util, util } from '@tensorflow/tfjs';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import type { ReduceOp } from './device.js';
import { cudaKernel } from './cuda-kernel.js';
import { runOnCpu } from './fallback.js';
import { transposed } from './layout.js';

/** What each reduction gives over no elements (TensorFlow's identities; a mean of nothing is NaN). */
const EMPTY_VALUE: Record<ReduceOp, number> = { sum: 0, mean: NaN, max: -Infinity, min: Infinity, prod: 1 };

/** `axisAttr`: Max names its axes `reductionIndices`, the others `axis`. */
function reduction(kernelName: string, op: ReduceOp, axisAttr: 'axis' | 'reductionIndices' = 'axis'): KernelConfig {
  return cudaKernel(kernelName, (args) => {
    const { backend } = args;
    const x = args.inputs.x as TensorInfo;
    const attrs = args.attrs as unknown as Record<string, number | number[]> & { keepDims: boolean };
    // int32 sums and extrema stay int32, as on the cpu backend; a mean is float32.
    if (!(x.dtype === 'float32' || (x.dtype === 'int32' && op !== 'mean'))) return runOnCpu(kernelName, args);
    const rank = x.shape.length;
    const axes = util.parseAxisParam(attrs[axisAttr], x.shape);
    const perm = backend_util.getAxesPermutation(axes, rank);
    const source = perm ? transposed(backend, x, perm) : x;
    if (!source) return runOnCpu(kernelName, args);
    const innerAxes = perm ? backend_util.getInnerMostAxes(axes.length, rank) : axes;
    const [outShape, reduceShape] = backend_util.computeOutAndReduceShapes(source.shape, innerAxes);
    const out = backend.makeTensorInfo(attrs.keepDims ? backend_util.expandShapeToKeepDim(outShape, axes) : outShape, x.dtype);
    const outer = util.sizeFromShape(outShape);
    const inner = util.sizeFromShape(reduceShape);
    if (outer > 0 && inner === 0) backend.device.fill(backend.ptr(out), x.dtype, EMPTY_VALUE[op], outer);
    else if (outer > 0) backend.device.reduce(op, x.dtype, backend.ptr(source), backend.ptr(out), outer, inner);
    if (source !== x) backend.disposeData(source.dataId);
    return out;
  });
}

export const REDUCE_KERNELS: KernelConfig[] = [
  reduction(tf.Sum, 'sum'),
  reduction(tf.Mean, 'mean'),
  reduction(tf.Max, 'max', 'reductionIndices'),
  reduction(tf.Min, 'min'),
  reduction(tf.Prod, 'prod'),
];
