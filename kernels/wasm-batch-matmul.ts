// A faster BatchMatMul for the wasm backend. The stock kernel reaches XNNPACK (~20 GFLOP/s) only
// when neither input is transposed and both have batch size 1; everything else, including the
// transposed matmuls of matmul gradients, [B,T,d]x[d,n] projections and attention's batched
// matmuls, runs a scalar loop at ~2 GFLOP/s. This wrapper turns those cases into XNNPACK ones
// (8-17x faster on tiny-LM shapes; figures from bench/matmul.ts).
import { broadcast_util, util } from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { matMulShape } from './matmul-shape.js';

// Below this many flops per XNNPACK call, its per-call overhead (operator creation, weight
// packing, copies) costs more than the stock loop saves. Measured on 1 thread, 64 batches: at
// 4096 flops per batch the stock loop is 2x faster, at 8192 they tie, at 16384 this is 1.2-3x faster.
const MIN_FLOPS_PER_CALL = 16384;

/**
 * Wraps the stock wasm BatchMatMul (`stock`) so that transposed inputs are materialised with the
 * wasm Transpose kernel, and then:
 * - when b has batch 1, a's batch folds into its rows: one [batch*m,k]x[k,n] matmul;
 * - when both are batched, each batch runs as its own 2-D matmul.
 * Small products and outer dims that broadcast both ways stay on the stock kernel. The stock
 * setupFunc is kept: the wrapper calls the stock kernelFunc, which needs it.
 */
export function fastWasmBatchMatMulConfig(stock: KernelConfig, transpose: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const backend = args.backend as BackendWasm;
    const { a, b, transposeA, transposeB, m, k, kB, n, outerA, outerB } = matMulShape(args);
    const plan =
      a.dtype !== 'float32' || b.dtype !== 'float32' || k !== kB
        ? 'stock' // the stock kernel throws its own clear errors for these
        : choosePlan(outerA, outerB, transposeA || transposeB, m, k, n);
    if (plan === 'stock') return stock.kernelFunc(args);

    const outShape = [...broadcast_util.assertAndGetBroadcastShape(outerA, outerB), m, n];
    const matMul2d = (x: TensorInfo, y: TensorInfo): TensorInfo =>
      stock.kernelFunc({
        inputs: { a: { ...x, shape: [util.sizeFromShape(x.shape) / k, k] }, b: { ...y, shape: [k, n] } },
        backend,
        attrs: { transposeA: false, transposeB: false },
      }) as TensorInfo;
    const a2 = transposeA ? swapLastTwoDims(transpose, backend, a) : a;
    const b2 = transposeB ? swapLastTwoDims(transpose, backend, b) : b;
    try {
      const out =
        plan === 'fold' ? matMul2d(a2, b2) : perBatchMatMul(backend, matMul2d, a2, b2, util.sizeFromShape(outerB), m, k, n);
      out.shape = outShape;
      return out;
    } finally {
      if (a2 !== a) backend.disposeData(a2.dataId);
      if (b2 !== b) backend.disposeData(b2.dataId);
    }
  };
  return { ...stock, kernelFunc };
}

/** Which way a matmul runs; exported so tests can see each way is reached. */
export function choosePlan(
  outerA: number[],
  outerB: number[],
  transposed: boolean,
  m: number,
  k: number,
  n: number,
): 'stock' | 'fold' | 'perBatch' {
  const batchA = util.sizeFromShape(outerA);
  const batchB = util.sizeFromShape(outerB);
  if (batchB === 1) {
    if (!transposed && batchA === 1) return 'stock'; // already the XNNPACK case
    return 2 * batchA * m * k * n < MIN_FLOPS_PER_CALL ? 'stock' : 'fold';
  }
  // Equal batch sizes may still broadcast against each other ([2,1] with [1,2]): stock handles that.
  const outBatch = util.sizeFromShape(broadcast_util.assertAndGetBroadcastShape(outerA, outerB));
  if (outBatch !== batchB || (batchA !== batchB && batchA !== 1)) return 'stock';
  return 2 * m * k * n < MIN_FLOPS_PER_CALL ? 'stock' : 'perBatch';
}

function swapLastTwoDims(transpose: KernelConfig, backend: BackendWasm, x: TensorInfo): TensorInfo {
  const rank = x.shape.length;
  const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
  return transpose.kernelFunc({ inputs: { x }, backend, attrs: { perm } }) as TensorInfo;
}

// One XNNPACK matmul per batch on copied slices (a with batch 1 is shared by all). Each b slice
// must be a fresh tensor: XNNPACK caches packed weights by b's tensor id, dropped on dispose.
function perBatchMatMul(
  backend: BackendWasm,
  matMul2d: (x: TensorInfo, y: TensorInfo) => TensorInfo,
  a: TensorInfo,
  b: TensorInfo,
  batch: number,
  m: number,
  k: number,
  n: number,
): TensorInfo {
  const aShared = util.sizeFromShape(a.shape) === m * k;
  const out = backend.makeOutput([batch, m, n], 'float32');
  for (let i = 0; i < batch; i++) {
    const aSlice = aShared ? a : copySlice(backend, a, i * m * k, [m, k]);
    const bSlice = copySlice(backend, b, i * k * n, [k, n]);
    const product = matMul2d(aSlice, bSlice);
    backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(product), i * m * n);
    backend.disposeData(product.dataId);
    backend.disposeData(bSlice.dataId);
    if (!aShared) backend.disposeData(aSlice.dataId);
  }
  return out;
}

function copySlice(backend: BackendWasm, x: TensorInfo, offset: number, shape: number[]): TensorInfo {
  const slice = backend.makeOutput(shape, x.dtype);
  const size = util.sizeFromShape(shape);
  // The source view is taken after makeOutput, which can grow (and so detach) the wasm heap.
  backend.typedArrayFromHeap(slice).set(backend.typedArrayFromHeap(x).subarray(offset, offset + size));
  return slice;
}
