// The GGUF v3 container (ggml's docs/gguf.md): a header, typed metadata key/value pairs, a table of tensor
// infos, then the tensors' data, each starting at a multiple of the alignment from the start of the data
// section, one after the other in table order (ggml's reader checks both). All little-endian. It knows
// nothing of models: export/gguf.ts decides the keys and tensors, export/q8_0.ts and collective/fp16.ts
// encode the data.

const MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
const VERSION = 3;
export const DEFAULT_ALIGNMENT = 32;

/** ggml's tensor types that Ringlet writes, with their codes in the file. */
export const GGML_TYPE = { F32: 0, F16: 1, Q8_0: 8 } as const;
export type GgmlType = keyof typeof GGML_TYPE;

/** A metadata value with the GGUF value type it is written as. */
export type GgufValue =
  | { type: 'uint32'; value: number }
  | { type: 'int32'; value: number }
  | { type: 'float32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'int32[]'; value: ArrayLike<number> };

export interface GgufTensor {
  name: string;
  /** Row-major, the last dimension varying fastest (the file lists them the other way round: ggml's ne). */
  shape: readonly number[];
  type: GgmlType;
  /** The encoded data: shape's elements as F32, F16 or Q8_0 blocks along the last dimension. */
  data: Uint8Array;
}

const VALUE_TYPE = { uint32: 4, int32: 5, float32: 6, bool: 7, string: 8, array: 9 } as const;

/** Appends little-endian values to a growing buffer. */
class ByteSink {
  private bytes = new Uint8Array(1 << 16);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  // Each method reserves before it reads this.view or this.bytes: `this.view.setX(this.reserve(n), …)` would
  // read the view first and write past the end of the old buffer whenever reserve() grows it.
  u8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  i32(v: number): void {
    const at = this.reserve(4);
    this.view.setInt32(at, v, true);
  }
  f32(v: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, v, true);
  }
  u64(v: number): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }
  raw(data: Uint8Array): void {
    const at = this.reserve(data.length);
    this.bytes.set(data, at);
  }
  /** A GGUF string: its UTF-8 byte length as uint64, then the bytes (no terminator). */
  string(s: string): void {
    const utf8 = Buffer.from(s, 'utf8');
    this.u64(utf8.length);
    this.raw(utf8);
  }
  padTo(alignment: number): void {
    this.reserve((alignment - (this.length % alignment)) % alignment); // zeros: nothing was written there
  }
  result(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}

function writeValue(out: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case 'uint32':
      out.u32(VALUE_TYPE.uint32);
      return out.u32(v.value);
    case 'int32':
      out.u32(VALUE_TYPE.int32);
      return out.i32(v.value);
    case 'float32':
      out.u32(VALUE_TYPE.float32);
      return out.f32(v.value);
    case 'bool':
      out.u32(VALUE_TYPE.bool);
      return out.u8(v.value ? 1 : 0);
    case 'string':
      out.u32(VALUE_TYPE.string);
      return out.string(v.value);
    case 'string[]':
      out.u32(VALUE_TYPE.array);
      out.u32(VALUE_TYPE.string);
      out.u64(v.value.length);
      for (const s of v.value) out.string(s);
      return;
    case 'int32[]':
      out.u32(VALUE_TYPE.array);
      out.u32(VALUE_TYPE.int32);
      out.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) out.i32(v.value[i]);
      return;
  }
}

/** Bytes a tensor of `shape` takes as `type`. */
export function tensorBytes(shape: readonly number[], type: GgmlType): number {
  const elements = shape.reduce((a, b) => a * b, 1);
  if (type === 'F32') return elements * 4;
  if (type === 'F16') return elements * 2;
  return (elements / 32) * 34;
}

/**
 * A whole GGUF file. `general.alignment` is written when `alignment` is not the default 32; a reader
 * assumes 32 otherwise.
 */
export function encodeGguf(
  metadata: ReadonlyMap<string, GgufValue>,
  tensors: readonly GgufTensor[],
  alignment = DEFAULT_ALIGNMENT,
): Uint8Array {
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0)
    throw new Error(`GGUF alignment must be a power of two, got ${alignment}`);
  if (metadata.has('general.alignment')) throw new Error('GGUF: general.alignment comes from the alignment argument');
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF: two tensors are named "${t.name}"`);
    names.add(t.name);
    if (t.type === 'Q8_0' && (t.shape.at(-1) ?? 0) % 32 !== 0)
      throw new Error(`GGUF: tensor "${t.name}" has rows of ${t.shape.at(-1)} values, q8_0 needs a multiple of 32`);
    const expected = tensorBytes(t.shape, t.type);
    if (t.data.length !== expected)
      throw new Error(`GGUF: tensor "${t.name}" [${t.shape}] as ${t.type} takes ${expected} bytes, got ${t.data.length}`);
  }
  const entries = [...metadata];
  if (alignment !== DEFAULT_ALIGNMENT) entries.push(['general.alignment', { type: 'uint32', value: alignment }]);

  const out = new ByteSink();
  out.u32(MAGIC);
  out.u32(VERSION);
  out.u64(tensors.length);
  out.u64(entries.length);
  for (const [key, value] of entries) {
    out.string(key);
    writeValue(out, value);
  }
  let offset = 0; // from the start of the data section
  for (const t of tensors) {
    out.string(t.name);
    out.u32(t.shape.length);
    for (let i = t.shape.length - 1; i >= 0; i--) out.u64(t.shape[i]);
    out.u32(GGML_TYPE[t.type]);
    out.u64(offset);
    offset += Math.ceil(t.data.length / alignment) * alignment;
  }
  out.padTo(alignment);
  // The data goes straight into the file's buffer, sized once: a model's tensors are most of its bytes.
  const header = out.result();
  const file = new Uint8Array(header.length + offset);
  file.set(header);
  let at = header.length;
  for (const t of tensors) {
    file.set(t.data, at);
    at += Math.ceil(t.data.length / alignment) * alignment;
  }
  return file;
}
