// Element strides for the device's strided kernels (copyStrided, binary): row-major strides, broadcasting
// as stride 0, and the fewest dimensions that describe the same walk, so any rank that collapses to
// MAX_RANK or fewer reaches the device.
import { MAX_RANK } from './device.js';

/** Row-major strides of a contiguous array of `shape`. */
export function stridesOf(shape: number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

/** Strides that read a contiguous `shape` broadcast to `outShape` (aligned at the last axis; 0 where it repeats). */
export function broadcastStrides(shape: number[], outShape: number[]): number[] {
  const own = stridesOf(shape);
  const lead = outShape.length - shape.length;
  return outShape.map((_, i) => (i < lead || shape[i - lead] === 1 ? 0 : own[i - lead]));
}

/**
 * The same walk over `shape` with every operand's strides, in the fewest dimensions: size-1 axes dropped,
 * and neighbouring axes merged where every operand steps through them as one. Null when that is still
 * more than MAX_RANK dimensions.
 */
export function collapse(shape: number[], strides: number[][]): { shape: number[]; strides: number[][] } | null {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, j) => outStrides[j][last] === s[i] * shape[i])) {
      outShape[last] *= shape[i];
      strides.forEach((s, j) => (outStrides[j][last] = s[i]));
    } else {
      outShape.push(shape[i]);
      strides.forEach((s, j) => outStrides[j].push(s[i]));
    }
  }
  return outShape.length > MAX_RANK ? null : { shape: outShape, strides: outStrides };
}
