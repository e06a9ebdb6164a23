// Elementwise kernels of the cuda backend: binary ops with broadcasting, unary float32 functions, Cast,
// Fill and its *Like forms, Range, AddN and Softmax. A case the device does not take (int32 arithmetic of a unary
// op, mixed dtypes, more than MAX_RANK dimensions after collapsing) runs on the CPU fallback.
import * as tf from '@tensorflow/tfjs';
import { backend_util, util } from '@tensorflow/tfjs';
import type { CastAttrs, DataType, FillAttrs, KernelConfig, RangeAttrs, SoftmaxAttrs, TensorInfo } from '@tensorflow/tfjs';
import type { BinaryOp, DeviceDType, UnaryOp } from './device.js';
import { cudaKernel, inputList, type CudaKernelArgs } from './cuda-kernel.js';
import { runOnCpu } from './fallback.js';
import { broadcastStrides, collapse, stridesOf } from './strides.js';

const COMPARISONS = new Set<BinaryOp>(['equal', 'notEqual', 'less', 'greater']);
// int32 in, int32 out, exactly (division and powers of integers keep the cpu kernels' conventions).
const INT32_ARITHMETIC = new Set<BinaryOp>(['add', 'sub', 'mul', 'maximum', 'minimum']);
const isDeviceType = (dtype: DataType): dtype is DeviceDType => dtype === 'float32' || dtype === 'int32' || dtype === 'bool';

function binary(kernelName: string, op: BinaryOp): KernelConfig {
  return cudaKernel(kernelName, (args) => {
    const { backend } = args;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const comparison = COMPARISONS.has(op);
    // Mixed dtypes come only from direct runKernel calls (tfjs upcasts first).
    const supported =
      a.dtype === b.dtype &&
      (a.dtype === 'float32' || comparison ? isDeviceType(a.dtype) : a.dtype === 'int32' && INT32_ARITHMETIC.has(op));
    if (!supported) return runOnCpu(kernelName, args);
    const outShape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const walk = collapse(outShape, [
      broadcastStrides(a.shape, outShape),
      broadcastStrides(b.shape, outShape),
      stridesOf(outShape),
    ]);
    if (!walk) return runOnCpu(kernelName, args);
    const out = backend.makeTensorInfo(outShape, comparison ? 'bool' : a.dtype);
    if (util.sizeFromShape(outShape) > 0) {
      const [aStrides, bStrides] = walk.strides;
      backend.device.binary(
        op,
        a.dtype as DeviceDType,
        backend.ptr(a),
        aStrides,
        backend.ptr(b),
        bStrides,
        backend.ptr(out),
        walk.shape,
      );
    }
    return out;
  });
}

function unary(kernelName: string, op: UnaryOp): KernelConfig {
  return cudaKernel(kernelName, (args) => {
    const { backend } = args;
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return runOnCpu(kernelName, args);
    const out = backend.makeTensorInfo(x.shape, 'float32');
    const n = util.sizeFromShape(x.shape);
    if (n > 0) backend.device.unary(op, backend.ptr(x), backend.ptr(out), n);
    return out;
  });
}

const cast = cudaKernel(tf.Cast, (args) => {
  const { backend } = args;
  const { x } = args.inputs as { x: TensorInfo };
  const { dtype } = args.attrs as unknown as CastAttrs;
  if (dtype === x.dtype) return backend.share(x);
  if (!isDeviceType(x.dtype) || !isDeviceType(dtype)) return runOnCpu(tf.Cast, args);
  const out = backend.makeTensorInfo(x.shape, dtype);
  const n = util.sizeFromShape(x.shape);
  if (n > 0) backend.device.cast(backend.ptr(x), x.dtype, backend.ptr(out), dtype, n);
  return out;
});

function filled({ backend }: CudaKernelArgs, shape: number[], dtype: DeviceDType, value: number): TensorInfo {
  const out = backend.makeTensorInfo(shape, dtype);
  const n = util.sizeFromShape(shape);
  if (n > 0) backend.device.fill(backend.ptr(out), dtype, value, n);
  return out;
}

const fill = cudaKernel(tf.Fill, (args) => {
  const { shape, value, dtype } = args.attrs as unknown as FillAttrs;
  if (!isDeviceType(dtype) || typeof value !== 'number') return runOnCpu(tf.Fill, args);
  return filled(args, shape, dtype, value);
});

// Range's few values are made on the host, as tfjs-backend-cpu's rangeImpl makes them (its edge cases
// included), and uploaded.
const range = cudaKernel(tf.Range, ({ backend, attrs }) => {
  const { start, stop, dtype } = attrs as unknown as RangeAttrs;
  let { step } = attrs as unknown as RangeAttrs;
  const empty = start === stop || (start < stop && step < 0) || (stop < start && step > 1);
  const n = empty ? 0 : Math.abs(Math.ceil((stop - start) / step));
  if (stop < start && step === 1) step = -1;
  const values = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = i === 0 ? start : values[i - 1] + step;
  return backend.makeTensorInfo([n], dtype, values);
});

function filledLike(kernelName: string, value: number): KernelConfig {
  return cudaKernel(kernelName, (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (!isDeviceType(x.dtype)) return runOnCpu(kernelName, args);
    return filled(args, x.shape, x.dtype, value);
  });
}

const addN = cudaKernel(tf.AddN, (args) => {
  const { backend } = args;
  const xs = inputList(args.inputs);
  if (xs.some((x) => x.dtype !== 'float32')) return runOnCpu(tf.AddN, args);
  const out = backend.makeTensorInfo(xs[0].shape, 'float32');
  const n = util.sizeFromShape(xs[0].shape);
  if (n > 0)
    backend.device.addN(
      xs.map((x) => backend.ptr(x)),
      backend.ptr(out),
      n,
    );
  return out;
});

const softmax = cudaKernel(tf.Softmax, (args) => {
  const { backend } = args;
  const { logits } = args.inputs as { logits: TensorInfo };
  const { dim } = args.attrs as unknown as SoftmaxAttrs;
  const rank = logits.shape.length;
  if (logits.dtype !== 'float32' || rank === 0 || (dim !== -1 && dim !== rank - 1)) return runOnCpu(tf.Softmax, args);
  const out = backend.makeTensorInfo(logits.shape, 'float32');
  const cols = logits.shape[rank - 1];
  const n = util.sizeFromShape(logits.shape);
  if (n > 0) backend.device.softmax(backend.ptr(logits), backend.ptr(out), n / cols, cols);
  return out;
});

export const ELEMENTWISE_KERNELS: KernelConfig[] = [
  binary(tf.Add, 'add'),
  binary(tf.Sub, 'sub'),
  binary(tf.Multiply, 'mul'),
  binary(tf.RealDiv, 'div'),
  binary(tf.Maximum, 'maximum'),
  binary(tf.Minimum, 'minimum'),
  binary(tf.Pow, 'pow'),
  binary(tf.Equal, 'equal'),
  binary(tf.NotEqual, 'notEqual'),
  binary(tf.Less, 'less'),
  binary(tf.Greater, 'greater'),
  unary(tf.Neg, 'neg'),
  unary(tf.Exp, 'exp'),
  unary(tf.Log, 'log'),
  unary(tf.Sqrt, 'sqrt'),
  unary(tf.Rsqrt, 'rsqrt'),
  unary(tf.Square, 'square'),
  unary(tf.Abs, 'abs'),
  unary(tf.Sigmoid, 'sigmoid'),
  unary(tf.Tanh, 'tanh'),
  unary(tf.Relu, 'relu'),
  unary(tf.Reciprocal, 'reciprocal'),
  cast,
  fill,
  range,
  filledLike(tf.OnesLike, 1),
  filledLike(tf.ZerosLike, 0),
  addN,
  softmax,
];
