// Encodes and decodes the safetensors format, independent of any tensor library: float32 tensors, written as
// F32 (checkpoints) or F16 (exports), read back from F32 only.
// Layout: u64 little-endian header length N, N bytes of JSON header (space-padded), then raw little-endian data.
// No maintained npm package reads and writes local safetensors files, so this follows the spec directly.
import { endianness } from 'node:os';
import { z } from 'zod';
import { toHalf } from '../collective/fp16.js';

export interface Float32Tensor {
  shape: number[];
  data: Float32Array;
}

export type TensorMap = Map<string, Float32Tensor>;

export interface SafetensorsContent {
  tensors: TensorMap;
  metadata: Record<string, string>;
}

/** Largest header accepted on decode; guards against allocating for a corrupt length field. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';
const F32_BYTES = 4;
const DTYPE_BYTES = { F32: 4, F16: 2 } as const;
export type StoredDtype = keyof typeof DTYPE_BYTES;

const tensorInfoSchema = z.object({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
});

// Float32Array views use the host's byte order; the format is little-endian.
function requireLittleEndianHost(): void {
  if (endianness() !== 'LE') throw new Error('safetensors: only little-endian hosts are supported');
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

/**
 * Serializes tensors in sorted name order, so equal inputs give byte-identical files.
 * `metadata` becomes the `__metadata__` string map when given. F16 rounds each value to the nearest half
 * and refuses a finite value beyond the half range (±65504) rather than store it as infinity.
 */
export function encodeSafetensors(tensors: TensorMap, metadata?: Record<string, string>, dtype: StoredDtype = 'F32'): Buffer {
  requireLittleEndianHost();
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) throw new Error(`safetensors: "${METADATA_KEY}" is reserved and cannot name a tensor`);
    const { shape, data } = tensors.get(name)!;
    if (!shape.every((dim) => Number.isInteger(dim) && dim >= 0)) {
      throw new Error(`safetensors: tensor "${name}" has invalid shape [${shape.join(', ')}]`);
    }
    if (elementCount(shape) !== data.length) {
      throw new Error(
        `safetensors: tensor "${name}" has shape [${shape.join(', ')}] (${elementCount(shape)} elements) but ${data.length} values`,
      );
    }
    const bytes = data.length * DTYPE_BYTES[dtype];
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  // Padding keeps the data section 8-byte aligned, as the reference implementation does.
  const headerBytes = Math.ceil(jsonBytes / 8) * 8;
  const out = Buffer.alloc(8 + headerBytes + offset, 0x20);
  out.writeBigUInt64LE(BigInt(headerBytes), 0);
  out.write(json, 8, 'utf8');
  let position = 8 + headerBytes;
  for (const name of names) {
    const { data } = tensors.get(name)!;
    if (dtype === 'F32') out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), position);
    else
      for (let i = 0; i < data.length; i++) {
        const half = toHalf(data[i]);
        if ((half & 0x7fff) === 0x7c00 && Number.isFinite(data[i]))
          throw new Error(`safetensors: tensor "${name}" holds ${data[i]}, beyond float16's range (±65504)`);
        out.writeUInt16LE(half, position + 2 * i);
      }
    position += data.length * DTYPE_BYTES[dtype];
  }
  return out;
}

/**
 * Parses and validates a safetensors file. `source` (e.g. the file path) prefixes every error.
 * Returned tensors own copies of their data, so they do not keep `bytes` alive.
 */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors'): SafetensorsContent {
  requireLittleEndianHost();
  function fail(message: string): never {
    throw new Error(`${source}: ${message}`);
  }
  if (bytes.byteLength < 8) fail(`file is ${bytes.byteLength} bytes, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const headerBytes = Number(headerLength);
  if (8 + headerBytes > bytes.byteLength) {
    fail(`header length ${headerBytes} runs past the end of the ${bytes.byteLength}-byte file (truncated?)`);
  }

  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerBytes).toString('utf8'));
  } catch (err) {
    fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const entries = header as Record<string, unknown>;

  let metadata: Record<string, string> = {};
  if (METADATA_KEY in entries) {
    const parsed = z.record(z.string(), z.string()).safeParse(entries[METADATA_KEY]);
    if (!parsed.success) fail(`${METADATA_KEY} must map strings to strings`);
    metadata = parsed.data;
  }

  const infos: { name: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(entries)) {
    if (name === METADATA_KEY) continue;
    const parsed = tensorInfoSchema.safeParse(raw);
    if (!parsed.success) fail(`tensor "${name}": invalid header entry: ${z.prettifyError(parsed.error)}`);
    const {
      dtype,
      shape,
      data_offsets: [begin, end],
    } = parsed.data;
    if (dtype !== 'F32') fail(`tensor "${name}" has dtype ${dtype}; only F32 is supported`);
    if (end < begin) fail(`tensor "${name}" has data_offsets [${begin}, ${end}] that end before they begin`);
    if (elementCount(shape) * F32_BYTES !== end - begin) {
      fail(
        `tensor "${name}" has shape [${shape.join(', ')}] (${elementCount(shape) * F32_BYTES} bytes) but data_offsets span ${end - begin} bytes`,
      );
    }
    infos.push({ name, shape, begin, end });
  }

  // Tensors must tile the data section exactly: no gaps, no overlaps, nothing left over.
  const dataStart = 8 + headerBytes;
  const dataLength = bytes.byteLength - dataStart;
  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const info of infos) {
    if (info.begin !== expected) {
      fail(`tensor "${info.name}" starts at byte ${info.begin}, expected ${expected} (offsets must be contiguous)`);
    }
    if (info.end > dataLength) {
      fail(`tensor "${info.name}" ends at byte ${info.end}, past the ${dataLength}-byte data section (truncated?)`);
    }
    expected = info.end;
  }
  if (expected !== dataLength) fail(`data section is ${dataLength} bytes but tensors cover ${expected}`);

  const tensors: TensorMap = new Map();
  for (const info of infos.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    // slice() copies into a fresh, 4-byte-aligned ArrayBuffer whatever the source buffer's alignment.
    const copy = bytes.buffer.slice(bytes.byteOffset + dataStart + info.begin, bytes.byteOffset + dataStart + info.end);
    tensors.set(info.name, { shape: info.shape, data: new Float32Array(copy) });
  }
  return { tensors, metadata };
}
