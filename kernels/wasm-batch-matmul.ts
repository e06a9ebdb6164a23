// A faster BatchMatMul for the wasm backend. The stock kernel only reaches XNNPACK (~20 GFLOP/s)
// when neither input is transposed and both have batch size 1; everything else, including the
// transposed matmuls that matmul gradients use and [B,T,d]x[d,n] projections, runs a scalar loop
// at ~1 GFLOP/s. This wrapper reshapes each case into the XNNPACK one. Figures: bench/matmul.ts.
import { broadcast_util, util } from '@tensorflow/tfjs';
import type { BatchMatMulAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Args = Parameters<KernelFunc>[0];

/**
 * Wraps the stock wasm BatchMatMul (`original`) so that:
 * - transposed inputs are materialised with the wasm Transpose kernel first;
 * - when b has no batch (or batch 1), a's batch folds into its rows: one [B*M,K]x[K,N] matmul;
 * - when both are batched, each batch runs as its own 2-D matmul.
 * The stock kernel's setupFunc is kept: the wrapper calls its kernelFunc, which needs it.
 */
export function fastWasmBatchMatMulConfig(original: KernelConfig, transpose: KernelConfig): KernelConfig {
  const matMul2d = original.kernelFunc;
  const transposeKernel = transpose.kernelFunc;

  const kernelFunc: KernelFunc = (args) => {
    const backend = args.backend as BackendWasm;
    const a = args.inputs.a as TensorInfo;
    const b = args.inputs.b as TensorInfo;
    const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
    // The stock kernel throws its own clear error for non-float32.
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return matMul2d(args);

    const temporaries: TensorInfo[] = [];
    const swapLastTwo = (x: TensorInfo): TensorInfo => {
      const rank = x.shape.length;
      const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
      const t = transposeKernel({ inputs: { x }, backend, attrs: { perm } }) as TensorInfo;
      temporaries.push(t);
      return t;
    };
    try {
      const a2 = transposeA ? swapLastTwo(a) : a;
      const b2 = transposeB ? swapLastTwo(b) : b;
      const [m, k] = a2.shape.slice(-2);
      const [kB, n] = b2.shape.slice(-2);
      util.assert(
        k === kB,
        () =>
          `Error in matMul: inner shapes (${k}) and (${kB}) of Tensors with shapes ${a.shape} and ` +
          `${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
      );
      const outerA = a.shape.slice(0, -2);
      const outerB = b.shape.slice(0, -2);
      const outShape = [...broadcast_util.assertAndGetBroadcastShape(outerA, outerB), m, n];
      const batchA = util.sizeFromShape(outerA);
      const batchB = util.sizeFromShape(outerB);

      if (batchB === 1) {
        const out = plainMatMul(a2, [batchA * m, k], b2, [k, n]);
        out.shape = outShape;
        return out;
      }
      if (batchA === batchB || batchA === 1) {
        const out = perBatchMatMul(backend, a2, batchA, b2, batchB, m, k, n);
        out.shape = outShape;
        return out;
      }
      // Outer dims that broadcast against each other (e.g. [2,1] with [1,3]): leave to the stock kernel.
      return matMul2d({ ...args, inputs: { a: a2, b: b2 }, attrs: { transposeA: false, transposeB: false } });
    } finally {
      for (const t of temporaries) backend.disposeData(t.dataId);
    }

    function plainMatMul(x: TensorInfo, xShape: number[], y: TensorInfo, yShape: number[]): TensorInfo {
      return matMul2d({
        inputs: { a: { ...x, shape: xShape }, b: { ...y, shape: yShape } },
        backend,
        attrs: { transposeA: false, transposeB: false },
      }) as TensorInfo;
    }

    // One XNNPACK matmul per batch on copied slices. Each b slice must be a fresh tensor: XNNPACK
    // caches its packed weights by b's tensor id, and ids are dropped from that cache on dispose.
    function perBatchMatMul(
      backend: BackendWasm, a: TensorInfo, batchA: number, b: TensorInfo, batch: number,
      m: number, k: number, n: number,
    ): TensorInfo {
      const out = backend.makeOutput([batch, m, n], 'float32');
      const aSliceSize = m * k;
      const bSliceSize = k * n;
      const outSliceSize = m * n;
      for (let i = 0; i < batch; i++) {
        const aSlice = batchA === 1 ? { ...a, shape: [m, k] } : copySlice(backend, a, i * aSliceSize, [m, k]);
        const bSlice = copySlice(backend, b, i * bSliceSize, [k, n]);
        const product = plainMatMul(aSlice, [m, k], bSlice, [k, n]);
        backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(product), i * outSliceSize);
        backend.disposeData(product.dataId);
        backend.disposeData(bSlice.dataId);
        if (aSlice.dataId !== a.dataId) backend.disposeData(aSlice.dataId);
      }
      return out;
    }
  };

  return { ...original, kernelFunc };
}

function copySlice(backend: BackendWasm, x: TensorInfo, offset: number, shape: number[]): TensorInfo {
  const slice = backend.makeOutput(shape, x.dtype);
  const size = util.sizeFromShape(shape);
  // Source view taken after makeOutput, which may grow (and so detach) the heap.
  backend.typedArrayFromHeap(slice).set(backend.typedArrayFromHeap(x).subarray(offset, offset + size));
  return slice;
}
