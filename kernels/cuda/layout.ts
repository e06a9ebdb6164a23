// Kernels of the cuda backend that move elements without arithmetic: views that share the buffer
// (Identity, Reshape, ExpandDims), strided copies (Transpose, Slice, Concat, SplitV, Pack, Unpack, Tile),
// and the indexed ones (GatherV2, and its gradient UnsortedSegmentSum).
import * as tf from '@tensorflow/tfjs';
import { backend_util, slice_util, util } from '@tensorflow/tfjs';
import type {
  ConcatAttrs,
  ExpandDimsAttrs,
  GatherV2Attrs,
  KernelConfig,
  PackAttrs,
  ReshapeAttrs,
  SliceAttrs,
  SplitVAttrs,
  TensorInfo,
  TileAttrs,
  TransposeAttrs,
  UnpackAttrs,
  UnsortedSegmentSumAttrs,
} from '@tensorflow/tfjs';
import type { CudaBackend } from './backend.js';
import { cudaKernel, inputList } from './cuda-kernel.js';
import { runOnCpu } from './fallback.js';
import { collapse, stridesOf } from './strides.js';

const identity = cudaKernel(tf.Identity, ({ inputs, backend }) => backend.share(inputs.x as TensorInfo));

const reshape = cudaKernel(tf.Reshape, ({ inputs, backend, attrs }) => {
  const x = inputs.x as TensorInfo;
  const size = util.sizeFromShape(x.shape);
  const shape = util.inferFromImplicitShape((attrs as unknown as ReshapeAttrs).shape, size);
  util.assert(util.sizeFromShape(shape) === size, () => `Reshape: [${x.shape}] (${size} elements) cannot become [${shape}]`);
  return backend.share(x, shape);
});

const expandDims = cudaKernel(tf.ExpandDims, ({ inputs, backend, attrs }) => {
  const x = inputs.input as TensorInfo;
  const { dim } = attrs as unknown as ExpandDimsAttrs;
  const rank = x.shape.length;
  util.assert(dim >= -(rank + 1) && dim <= rank, () => `ExpandDims: dim ${dim} is outside [${-(rank + 1)}, ${rank}]`);
  const shape = x.shape.slice();
  shape.splice(dim < 0 ? rank + dim + 1 : dim, 0, 1);
  return backend.share(x, shape);
});

/**
 * Copies `shape` elements from x (starting at element `srcOffset`, stepping `srcStrides`) into `dst` (from
 * `dstOffset`, stepping `dstStrides`). False when the walk does not collapse to MAX_RANK dimensions.
 */
function copy(
  backend: CudaBackend,
  x: TensorInfo,
  srcOffset: number,
  srcStrides: number[],
  dst: TensorInfo,
  dstOffset: number,
  dstStrides: number[],
  shape: number[],
): boolean {
  if (util.sizeFromShape(shape) === 0) return true;
  const walk = collapse(shape, [srcStrides, dstStrides]);
  if (!walk) return false;
  const [src, to] = walk.strides;
  backend.device.copyStrided(backend.ptr(x), srcOffset, src, backend.ptr(dst), dstOffset, to, walk.shape);
  return true;
}

/** A new tensor of x's elements walked from `offset` along `strides` over `shape`; null past MAX_RANK. */
function gathered(backend: CudaBackend, x: TensorInfo, offset: number, strides: number[], shape: number[]): TensorInfo | null {
  const out = backend.makeTensorInfo(shape, x.dtype);
  if (copy(backend, x, offset, strides, out, 0, stridesOf(shape), shape)) return out;
  backend.disposeData(out.dataId);
  return null;
}

/** x transposed by `perm`, as a new tensor (also used by the reductions); null past MAX_RANK. */
export function transposed(backend: CudaBackend, x: TensorInfo, perm: number[]): TensorInfo | null {
  const strides = stridesOf(x.shape);
  return gathered(
    backend,
    x,
    0,
    Array.from(perm, (p) => strides[p]),
    Array.from(perm, (p) => x.shape[p]),
  );
}

const transpose = cudaKernel(
  tf.Transpose,
  (args) =>
    transposed(args.backend, args.inputs.x as TensorInfo, (args.attrs as unknown as TransposeAttrs).perm) ??
    runOnCpu(tf.Transpose, args),
);

/** The box of x from `begin` of `size`, as a new tensor viewed as `shape`; null past MAX_RANK. */
function sliced(backend: CudaBackend, x: TensorInfo, begin: number[], size: number[], shape = size): TensorInfo | null {
  const strides = stridesOf(x.shape);
  const out = gathered(
    backend,
    x,
    begin.reduce((sum, b, i) => sum + b * strides[i], 0),
    strides,
    size,
  );
  return out && { ...out, shape };
}

const slice = cudaKernel(tf.Slice, (args) => {
  const x = args.inputs.x as TensorInfo;
  const { begin, size } = args.attrs as unknown as SliceAttrs;
  const [$begin, $size] = slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  slice_util.assertParamsValid(x as tf.Tensor, $begin, $size);
  return sliced(args.backend, x, $begin, $size) ?? runOnCpu(tf.Slice, args);
});

/** The parts laid side by side along `axis` (each viewed with its own shape); null past MAX_RANK. */
function concatenated(backend: CudaBackend, parts: TensorInfo[], axis: number): TensorInfo | null {
  const outShape = backend_util.computeOutShape(
    parts.map((t) => t.shape),
    axis,
  );
  const out = backend.makeTensorInfo(outShape, parts[0].dtype);
  const outStrides = stridesOf(outShape);
  let offset = 0;
  for (const part of parts) {
    if (!copy(backend, part, 0, stridesOf(part.shape), out, offset * outStrides[axis], outStrides, part.shape)) {
      backend.disposeData(out.dataId);
      return null;
    }
    offset += part.shape[axis];
  }
  return out;
}

const concat = cudaKernel(tf.Concat, (args) => {
  const xs = inputList(args.inputs);
  const axis = util.parseAxisParam((args.attrs as unknown as ConcatAttrs).axis, xs[0].shape)[0];
  backend_util.assertParamsConsistent(
    xs.map((t) => t.shape),
    axis,
  );
  if (xs.some((t) => t.dtype !== xs[0].dtype)) return runOnCpu(tf.Concat, args);
  return concatenated(args.backend, xs, axis) ?? runOnCpu(tf.Concat, args);
});

const pack = cudaKernel(tf.Pack, (args) => {
  const xs = inputList(args.inputs);
  const rank = xs[0].shape.length;
  const { axis } = args.attrs as unknown as PackAttrs;
  const at = axis < 0 ? axis + rank + 1 : axis;
  const expanded = (t: TensorInfo) => ({ ...t, shape: [...t.shape.slice(0, at), 1, ...t.shape.slice(at)] });
  if (xs.some((t) => t.dtype !== xs[0].dtype || !util.arraysEqual(t.shape, xs[0].shape))) return runOnCpu(tf.Pack, args);
  return concatenated(args.backend, xs.map(expanded), at) ?? runOnCpu(tf.Pack, args);
});

/** Cuts x along `axis` into pieces of `sizes`, each viewed through `shapeOf`; null past MAX_RANK. */
function pieces(
  backend: CudaBackend,
  x: TensorInfo,
  axis: number,
  sizes: number[],
  shapeOf: (size: number[]) => number[] = (size) => size,
): TensorInfo[] | null {
  const outs: TensorInfo[] = [];
  const begin = x.shape.map(() => 0);
  for (const s of sizes) {
    const size = x.shape.slice();
    size[axis] = s;
    const out = sliced(backend, x, begin, size, shapeOf(size));
    if (!out) {
      for (const t of outs) backend.disposeData(t.dataId);
      return null;
    }
    outs.push(out);
    begin[axis] += s;
  }
  return outs;
}

const splitV = cudaKernel(tf.SplitV, (args) => {
  const x = args.inputs.x as TensorInfo;
  const { numOrSizeSplits, axis } = args.attrs as unknown as SplitVAttrs;
  const $axis = util.parseAxisParam(axis, x.shape)[0];
  const sizes = backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, $axis);
  return pieces(args.backend, x, $axis, sizes) ?? runOnCpu(tf.SplitV, args);
});

const unpack = cudaKernel(tf.Unpack, (args) => {
  const x = args.inputs.value as TensorInfo;
  const { axis } = args.attrs as unknown as UnpackAttrs;
  const $axis = axis < 0 ? axis + x.shape.length : axis;
  const sizes = new Array<number>(x.shape[$axis]).fill(1);
  return pieces(args.backend, x, $axis, sizes, (size) => size.filter((_, i) => i !== $axis)) ?? runOnCpu(tf.Unpack, args);
});

// Tile, one axis at a time (any rank): x seen as [outer, d, inner] becomes [outer, reps, d, inner], reading
// x with stride 0 along reps.
const tile = cudaKernel(tf.Tile, ({ inputs, backend, attrs }) => {
  const { reps } = attrs as unknown as TileAttrs;
  let current = backend.share(inputs.x as TensorInfo);
  reps.forEach((r, axis) => {
    if (r === 1) return;
    const { shape } = current;
    const [outer, d, inner] = [util.sizeFromShape(shape.slice(0, axis)), shape[axis], util.sizeFromShape(shape.slice(axis + 1))];
    const out = backend.makeTensorInfo(
      shape.map((n, i) => (i === axis ? n * r : n)),
      current.dtype,
    );
    copy(backend, current, 0, [d * inner, 0, inner, 1], out, 0, [r * d * inner, d * inner, inner, 1], [outer, r, d, inner]);
    backend.disposeData(current.dataId);
    current = out;
  });
  return current;
});

const gatherV2 = cudaKernel(tf.GatherV2, (args) => {
  const { backend } = args;
  const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
  const { axis, batchDims } = args.attrs as unknown as GatherV2Attrs;
  if (batchDims !== 0 || indices.dtype !== 'int32') return runOnCpu(tf.GatherV2, args);
  const $axis = util.parseAxisParam(axis, x.shape)[0];
  const outer = util.sizeFromShape(x.shape.slice(0, $axis));
  const inner = util.sizeFromShape(x.shape.slice($axis + 1));
  const count = util.sizeFromShape(indices.shape);
  const out = backend.makeTensorInfo([...x.shape.slice(0, $axis), ...indices.shape, ...x.shape.slice($axis + 1)], x.dtype);
  if (outer * count * inner > 0)
    backend.device.gather(backend.ptr(x), backend.ptr(indices), backend.ptr(out), outer, x.shape[$axis], inner, count);
  return out;
});

// Segment ids index x's leading dimensions (their shape is a prefix of x's), as in TensorFlow.
const unsortedSegmentSum = cudaKernel(tf.UnsortedSegmentSum, (args) => {
  const { backend } = args;
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = args.attrs as unknown as UnsortedSegmentSumAttrs;
  const idRank = segmentIds.shape.length;
  if (x.dtype !== 'float32' || segmentIds.dtype !== 'int32' || !segmentIds.shape.every((d, i) => d === x.shape[i]))
    return runOnCpu(tf.UnsortedSegmentSum, args);
  const innerShape = x.shape.slice(idRank);
  const inner = util.sizeFromShape(innerShape);
  const rows = util.sizeFromShape(segmentIds.shape);
  const out = backend.makeTensorInfo([numSegments, ...innerShape], 'float32');
  if (numSegments * inner === 0) return out;
  if (rows === 0) backend.device.fill(backend.ptr(out), 'float32', 0, numSegments * inner);
  else backend.device.unsortedSegmentSum(backend.ptr(x), backend.ptr(segmentIds), backend.ptr(out), rows, inner, numSegments);
  return out;
});

export const LAYOUT_KERNELS: KernelConfig[] = [
  identity,
  reshape,
  expandDims,
  transpose,
  slice,
  concat,
  pack,
  splitV,
  unpack,
  tile,
  gatherV2,
  unsortedSegmentSum,
];
