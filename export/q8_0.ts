// ggml's Q8_0 block quantisation, as written into a GGUF file: each row is cut into blocks of 32 values, and
// a block is stored as 34 bytes: a float16 scale d ≈ max|x|/127, then 32 int8 quants q = round(x/d), so that
// x ≈ d·q. The quants are rounded against the scale as stored (float16), and where that scale is a float16
// subnormal too coarse to reach max|x| (blocks with max|x| below ~1e-3) it goes up by one step, so that
// every value is within d/2 of d·q and |q| ≤ 127. ggml's reference (quantize_row_q8_0_ref) rounds against the
// float32 scale, which can add up to 127·|d₁₆ − d₃₂| to that error.
import { fromHalf, toHalf } from '../collective/fp16.js';

export const Q8_0_BLOCK = 32; // values per block
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK; // float16 scale, then the int8 quants

/** Rounds half away from zero, as C's roundf (Math.round rounds -2.5 to -2). */
function roundAway(x: number): number {
  return Math.sign(x) * Math.floor(Math.abs(x) + 0.5);
}

/** Q8_0 blocks of `values`, whose length must be a multiple of 32 (each row of a tensor is, in GGUF). */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % Q8_0_BLOCK !== 0) throw new Error(`q8_0 needs a multiple of ${Q8_0_BLOCK} values, got ${values.length}`);
  const blocks = values.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const at = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(values[at + j]));
    if (!Number.isFinite(amax)) throw new Error(`q8_0: block ${b} holds a value that is not finite`);
    let half = toHalf(amax / 127);
    if (amax > 0 && 127.5 * fromHalf(half) <= amax) half++; // the next float16 up: |x/d| < 127.5, so |q| ≤ 127
    if (half >= 0x7c00) throw new Error(`q8_0: block ${b} holds ${amax}, whose scale is beyond float16's range`);
    const d = fromHalf(half);
    const offset = b * Q8_0_BLOCK_BYTES;
    view.setUint16(offset, half, true);
    for (let j = 0; j < Q8_0_BLOCK; j++) view.setInt8(offset + 2 + j, d === 0 ? 0 : roundAway(values[at + j] / d));
  }
  return out;
}

/** The values Q8_0 blocks stand for (d·q), as ggml's dequantize_row_q8_0 computes them. */
export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  if (bytes.length % Q8_0_BLOCK_BYTES !== 0) throw new Error(`q8_0 data must be whole ${Q8_0_BLOCK_BYTES}-byte blocks`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array((bytes.length / Q8_0_BLOCK_BYTES) * Q8_0_BLOCK);
  for (let b = 0; b < out.length / Q8_0_BLOCK; b++) {
    const d = fromHalf(view.getUint16(b * Q8_0_BLOCK_BYTES, true));
    for (let j = 0; j < Q8_0_BLOCK; j++) out[b * Q8_0_BLOCK + j] = d * view.getInt8(b * Q8_0_BLOCK_BYTES + 2 + j);
  }
  return out;
}
