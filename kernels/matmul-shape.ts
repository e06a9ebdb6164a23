// The shape of a BatchMatMul kernel call, read once for every kernel that replaces the stock one.
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
