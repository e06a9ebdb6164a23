// The shape of a BatchMatMul kernel call, read once for every kernel that replaces the stock one.
import { broadcast_util, util } from '@tensorflow/tfjs';
import type { BatchMatMulAttrs, KernelFunc, TensorInfo } from '@tensorflow/tfjs';

export interface MatMulShape {
  a: TensorInfo;
  b: TensorInfo;
  transposeA: boolean;
  transposeB: boolean;
  m: number; // rows of op(a)
  k: number; // columns of op(a)
  kB: number; // rows of op(b); a well-formed call has kB === k
  n: number; // columns of op(b)
  outerA: number[]; // a's batch dimensions
  outerB: number[];
}

export function matMulShape(args: Parameters<KernelFunc>[0]): MatMulShape {
  const a = args.inputs.a as TensorInfo;
  const b = args.inputs.b as TensorInfo;
  const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
  return {
    a,
    b,
    transposeA,
    transposeB,
    m: transposeA ? a.shape.at(-1)! : a.shape.at(-2)!,
    k: transposeA ? a.shape.at(-2)! : a.shape.at(-1)!,
    kB: transposeB ? b.shape.at(-1)! : b.shape.at(-2)!,
    n: transposeB ? b.shape.at(-2)! : b.shape.at(-1)!,
    outerA: a.shape.slice(0, -2),
    outerB: b.shape.slice(0, -2),
  };
}

/** One strided-batched gemm that computes a BatchMatMul: C [batch, m, n] = op(A)·op(B). */
export interface GemmPlan {
  a: TensorInfo;
  b: TensorInfo;
  outShape: number[];
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  strideA: number; // 0: one A shared by every product
  strideB: number;
}

/**
 * How a BatchMatMul runs as one gemm, for every kernel that calls a BLAS (native sgemm, cuBLAS, and the
 * host device that stands in for cuBLAS), so they take the same decisions and give the same bits: equal
 * batches or one side broadcast; when b is shared and a untransposed, a's batch folds into its rows (one
 * big product). Null for what a gemm does not take (non-float32, k mismatch, rank < 2, batch dimensions
 * that broadcast both ways, as [2,1] with [1,2]): the stock kernel runs those, with its own errors.
 */
export function gemmPlan(args: Parameters<KernelFunc>[0]): GemmPlan | null {
  const { a, b, transposeA, transposeB, m, k, kB, n, outerA, outerB } = matMulShape(args);
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || k !== kB || a.shape.length < 2 || b.shape.length < 2) return null;
  let outer: number[];
  try {
    outer = broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return null;
  }
  const batch = util.sizeFromShape(outer);
  const batchA = util.sizeFromShape(outerA);
  const batchB = util.sizeFromShape(outerB);
  if (!((batchA === batch || batchA === 1) && (batchB === batch || batchB === 1))) return null;
  const outShape = [...outer, m, n];
  if (batchB === 1 && !transposeA && batch > 1)
    return { a, b, outShape, batch: 1, m: batch * m, n, k, transA: false, transB: transposeB, strideA: 0, strideB: 0 };
  return {
    a,
    b,
    outShape,
    batch,
    m,
    n,
    k,
    transA: transposeA,
    transB: transposeB,
    strideA: batchA === 1 ? 0 : m * k,
    strideB: batchB === 1 ? 0 : k * n,
  };
}
